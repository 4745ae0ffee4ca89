"""Turning a vendor event into the exact request the vendor would send. Pure: no I/O, no clock
unless no seed and no `now` is given, no network.

Two steps, because a vendor sends the *same* body on every retry but fresh headers each time:

- `render(vendor, event, seed=…, overrides=…)` -> `Rendered`: the payload, the exact body bytes
  (or URL parameters for a GET), and the headers that do not change between attempts.
- `prepare(rendered, secret=…, timestamp=…, attempt=n)` -> `Prepared`: the full header list of
  one attempt (timestamp, delivery id, signature), ready to send.

Body bytes: `json` vendors get compact JSON (`{"a":1,"b":[2]}`), the form JavaScript's
`JSON.stringify` and Rails' `to_json` produce and the one Audian's own verification example
re-creates; `json-pretty` vendors (Stripe) get two-space indentation. Non-ASCII text is sent as
UTF-8, not `\\u` escapes. A GET carries no body: the payload travels as URL parameters.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .engine import AttemptCtx, AttemptInfo, EventInfo, Run, Settings, seeded
from .errors import MethodNotAllowedError, OverrideError, RenderError
from .generators import plain, text
from .model import Vendor
from .paths import PathError, Segment, parse_path, set_at
from .template import Expr, Interp, Lit, TNode
from .timefmt import zone

SignFn = Callable[..., list[tuple[str, str]]]
"""`sign(scheme, secret, body, timestamp, msg_id=None) -> [(header, value), …]`."""

SEEDED_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
"""With a seed, "now" is this instant plus a seeded offset of up to a year, so a seeded body is
the same bytes tomorrow; without one it is the real current time."""
_YEAR = 365 * 86400


@dataclass(frozen=True)
class Rendered:
    """One rendered event: the same bytes on every attempt."""

    vendor: Vendor = field(repr=False)
    event: str
    method: str
    content_type: str | None
    """None for a GET, which has no body."""
    body: bytes
    url_params: list[tuple[str, str]]
    """For a GET: the payload flattened (vendor.get_encoding); empty otherwise."""
    payload: Any
    static_headers: list[tuple[str, str]]
    seed: int
    """The seed used (a random one when none was given): render again with it (and `now`)."""
    now: datetime
    message_id: str | None
    """The vendor's message id (Standard Webhooks `webhook-id`): kept across retries."""
    batch: int | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass(frozen=True)
class Prepared:
    """One attempt, ready to send: the method, query parameters, every header, the body."""

    method: str
    url_params: list[tuple[str, str]]
    headers: list[tuple[str, str]]
    body: bytes
    delivery_id: str | None = None
    timestamp: int = 0
    attempt: int = 1

    def to_public(self) -> dict[str, Any]:
        """The JSON of `GET /api/vendors/<v>/events/<e>/sample` (CONTRACT.md)."""
        return {"method": self.method, "url_params": [list(p) for p in self.url_params],
                "headers": [list(h) for h in self.headers],
                "body": self.body.decode("utf-8", errors="replace")}


# --- overrides -------------------------------------------------------------------------------

def parse_override_value(raw: str) -> object:
    """`--set` values: valid JSON is JSON (`5`, `true`, `"5"`, `{"a":1}`), anything else text.

    So `--set sender.postcode='"3205"'` keeps a string where `--set sender.postcode=3205`
    gives a number. NaN/Infinity are not JSON a vendor could send, so they stay text.
    """
    def reject(name: str) -> object:
        raise ValueError(name)

    try:
        return json.loads(raw, parse_constant=reject)
    except ValueError:
        return raw


def parse_set_args(args: Iterable[str]) -> dict[str, object]:
    """`["sender.email=a@b.c", "data.duration=5"]` -> `{"sender.email": "a@b.c", …}`."""
    out: dict[str, object] = {}
    for arg in args:
        path, eq, raw = arg.partition("=")
        if not eq or not path.strip():
            raise OverrideError(arg, "expected path=value, e.g. sender.email=x@example.com")
        out[path.strip()] = parse_override_value(raw)
    return out


def _parse_overrides(overrides: Mapping[str, object] | None
                     ) -> list[tuple[str, tuple[Segment, ...], object]]:
    parsed = []
    for path, value in (overrides or {}).items():
        try:
            _, segments = parse_path(path)
        except PathError as exc:
            raise OverrideError(path, str(exc)) from None
        parsed.append((path, segments, value))
    return parsed


# --- render ----------------------------------------------------------------------------------

def render(vendor: Vendor, event: str, *, seed: int | None = None,
           overrides: Mapping[str, object] | None = None, method: str | None = None,
           shared: dict[str, Any] | None = None, now: datetime | None = None,
           batch: int | None = None) -> Rendered:
    """Render `event` as `vendor` sends it.

    - `seed`: same vendor, event, seed and overrides -> the same body bytes; None: fresh data
      (the seed picked is on the result).
    - `overrides`: `{"sender.email": "x@y.z"}`; every path must exist (else OverrideError
      naming it). A field that refers to an overridden one follows it (`sender_id` follows
      `sender.id`).
    - `shared`: values a scenario carries between events; `{{ shared call_id … }}` takes its
      value from here, or generates it and records it here.
    - `now`: the event's time (default: seeded, or the clock when there is no seed).
    - `batch`: N events in one delivery, for vendors with a `batch:` setting (Atomic).
    """
    ev = vendor.event(event)
    chosen = _method(vendor, ev.methods, method, event)
    seed_given = seed is not None
    # Below 2**53 so the seed survives a round trip through JavaScript numbers (the UI).
    seed = seed if seed is not None else secrets.randbits(53)
    base_key = f"{seed}|{vendor.id}|{event}|"
    if now is None:
        offset = seeded(base_key + "@now").uniform(0, _YEAR)
        now = SEEDED_EPOCH + timedelta(seconds=offset) if seed_given else datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    parsed = _parse_overrides(overrides)
    shared_values: dict[str, Any] = {} if shared is None else shared

    def run_for(key: str, pins: dict[tuple[Segment, ...], Any],
                shared_in: dict[str, Any] = shared_values, at: datetime = now) -> Run:
        return Run(ev.template, Settings(
            key=key, event=EventInfo(ev.name, ev.object, ev.action), now=at,
            zone=zone(vendor.timezone), time_format=vendor.time_format, locale=vendor.locale,
            shared=shared_in, pins=pins, message_node=vendor.message_id_template))

    # Pinning overrides while rendering makes dependent fields follow them; they are applied
    # again to the finished payload below, which also catches paths that do not exist.
    if batch is None:
        first = run_for(base_key, {s: v for _, s, v in parsed})
        payload = plain(first.payload())
    else:
        first, payload = _batched(vendor, batch, base_key, now, shared_values, run_for)
    for path, segments, value in parsed:
        try:
            set_at(payload, segments, value)
        except PathError as exc:
            raise OverrideError(path, str(exc)) from None
    message_id = first.message_id()
    headers = [(h.name, first.header(h.name, h.template)) for h in vendor.headers
               if not h.per_attempt]
    if chosen == "GET":
        headers = [(n, v) for n, v in headers if n.lower() != "content-type"]
        body, params, content_type = b"", url_params(payload, vendor.get_encoding), None
    else:
        body, params, content_type = encode_body(payload, vendor.body_format), [], \
            vendor.content_type
    return Rendered(vendor=vendor, event=ev.name, method=chosen, content_type=content_type,
                    body=body, url_params=params, payload=payload, static_headers=headers,
                    seed=seed, now=now, message_id=None if message_id is None else text(message_id),
                    batch=batch)


def _method(vendor: Vendor, allowed: tuple[str, ...], method: str | None, event: str) -> str:
    if method is None:
        return vendor.default_method if vendor.default_method in allowed else allowed[0]
    chosen = method.upper()
    if chosen not in allowed:
        raise MethodNotAllowedError(f"{vendor.name} sends {event} with {', '.join(allowed)},"
                                    f" not {chosen}")
    return chosen


def _batched(vendor: Vendor, count: int, base_key: str, now: datetime,
             shared: dict[str, Any], run_for: Callable[..., Run]) -> tuple[Run, Any]:
    """`count` events in one envelope: the envelope of the first, the list of all items.

    Item i happened a little before item i+1 (the last one at `now`), and only what the
    caller put in `shared` is common to all items: each has its own user, card and ids.
    """
    spec = vendor.batch
    if spec is None:
        raise RenderError(f"{vendor.name} does not batch events")
    if not 1 <= count <= 1000:
        raise RenderError(f"batch size must be between 1 and 1000, not {count}")
    gaps = seeded(base_key + "@gaps")
    starts = [now]
    for _ in range(1, count):
        starts.append(starts[-1] - timedelta(seconds=gaps.uniform(0.5, 30)))
    starts.reverse()
    given = dict(shared)
    runs = [run_for(f"{base_key}#{i}|", {}, shared if i == 0 else dict(given), starts[i])
            for i in range(count)]
    payload = plain(runs[0].payload())
    try:
        set_at(payload, spec.flag, True)
        set_at(payload, spec.items, [plain(r.value(spec.items)) for r in runs])
    except PathError as exc:
        raise RenderError(f"batch setting does not fit this event: {exc}") from None
    return runs[0], payload


# --- bytes and URL parameters ----------------------------------------------------------------

def encode_body(payload: Any, body_format: str) -> bytes:
    """The exact bytes of a JSON body (see the module docstring for why these forms)."""
    if body_format == "json-pretty":
        return json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _param_text(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise RenderError(f"{value} cannot be sent")
    if isinstance(value, float):
        return json.dumps(value)
    return text(value)


def url_params(payload: Any, encoding: str = "brackets") -> list[tuple[str, str]]:
    """Flatten a payload into ordered (name, value) pairs, unencoded.

    `brackets` (Rails' `to_query`, PHP's `http_build_query` for objects): `sender[first_name]`,
    list items `tags[]`; `dots`: `sender.first_name`, `tags.0`. Null is an empty value;
    booleans are `true`/`false`.
    """
    out: list[tuple[str, str]] = []

    def visit(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if encoding == "dots":
                    visit(f"{name}.{key}" if name else str(key), child)
                else:
                    visit(f"{name}[{key}]" if name else str(key), child)
        elif isinstance(value, list):
            for i, child in enumerate(value):
                visit(f"{name}.{i}" if encoding == "dots" else f"{name}[]", child)
        else:
            out.append((name, _param_text(value)))

    if not isinstance(payload, dict):
        raise RenderError("only an object payload can be sent as URL parameters")
    visit("", payload)
    return out


# --- prepare ---------------------------------------------------------------------------------

def prepare(rendered: Rendered, *, secret: str | None = None, timestamp: int, attempt: int = 1,
            delivery_id: str | None = None,
            extra_headers: Iterable[tuple[str, str]] | None = None,
            sign: SignFn | None = None) -> Prepared:
    """The complete request for one attempt.

    Headers, in order: the vendor's headers as vendor.yaml lists them (per-attempt ones such
    as `X-Audian-Timestamp` and `X-Audian-Delivery-ID` filled in now), then `extra_headers`
    (those a user configured on the subscription), then the signature headers from
    `sign(scheme, secret, body, timestamp, msg_id=…)`; a signature header that has the name
    of a listed one replaces its value in place. `secret` defaults to the vendor's demo
    secret; a delivery id is generated (fresh randomness) unless given. `sign` defaults to
    `inspector.signing.sign`.
    """
    vendor = rendered.vendor
    secret = vendor.demo_secret if secret is None else secret
    ctx = AttemptCtx(event=_event_info(vendor, rendered.event),
                     attempt=AttemptInfo(attempt, timestamp, delivery_id),
                     locale=vendor.locale, message_id=rendered.message_id, now=rendered.now,
                     zone=zone(vendor.timezone), time_format=vendor.time_format)
    if delivery_id is None and vendor.delivery_id_template is not None:
        delivery_id = _attempt_text(vendor.delivery_id_template, ctx)
        ctx.attempt = AttemptInfo(attempt, timestamp, delivery_id)
    headers: list[tuple[str, str]] = []
    static = list(rendered.static_headers)
    for spec in vendor.headers:
        if spec.per_attempt:
            headers.append((spec.name, _attempt_text(spec.template, ctx)))
        elif static and static[0][0] == spec.name:
            headers.append(static.pop(0))
    headers.extend(static)
    headers.extend(extra_headers or ())
    if vendor.signing != "none":
        if sign is None:
            from inspector.signing import sign as sign  # lazy: owned by another module
        signature = sign(vendor.signing, secret, rendered.body, timestamp,
                         msg_id=rendered.message_id)
        headers = _merge_headers(headers, signature)
    return Prepared(method=rendered.method, url_params=list(rendered.url_params),
                    headers=headers, body=rendered.body, delivery_id=delivery_id,
                    timestamp=timestamp, attempt=attempt)


def _merge_headers(headers: list[tuple[str, str]], signature: Iterable[tuple[str, str]]
                   ) -> list[tuple[str, str]]:
    """Signature headers win over listed ones of the same name (the signer may also write
    e.g. X-Audian-Timestamp or webhook-id), keeping the listed header's position."""
    out = list(headers)
    where = {n.lower(): i for i, (n, _) in reversed(list(enumerate(out)))}  # first wins
    for name, value in signature:
        at = where.get(name.lower())
        if at is None:
            where[name.lower()] = len(out)
            out.append((name, value))
        else:
            out[at] = (out[at][0], value)
    return out


def _event_info(vendor: Vendor, name: str) -> EventInfo:
    ev = vendor.event(name)
    return EventInfo(ev.name, ev.object, ev.action)


def _attempt_text(node: TNode, ctx: AttemptCtx) -> str:
    if isinstance(node, Lit):
        return text(node.value)
    if isinstance(node, Expr):
        return text(node.fn(ctx))
    if isinstance(node, Interp):
        return "".join(p if isinstance(p, str) else text(p(ctx)) for p in node.parts)
    raise RenderError("a header value must be text")
