"""Forwarding: each capture of a bin with rules is also sent on to the developer's app(s).

A bin's rules (``PUT /api/bins/<bin>/forward``, ``serve --forward BIN=URL``)::

    {"targets": [{"url": "http://localhost:3000/hooks", "path": true,
                  "filters": {"method": "POST", "path": "/orders/*",
                              "header": "Stripe-Signature",
                              "json": {"$.type": "invoice.paid"}}}],
     "mode": "respond" | "proxy", "timeout": 30, "retry": [0, 1, 2, 5, 10, 30]}

Each matching target gets the capture byte-exact as a delivery (source ``forward``): the same
method, the sub-path (``path``, default true) and raw query appended to the target URL, the
headers in order minus the hop-by-hop ones (RFC 9110 §7.6.1: ``Connection`` and every header it
names, ``Keep-Alive``, ``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``, ``Proxy-*``),
``Host`` rewritten by the client for the target, ``X-Forwarded-For`` appended to and
``X-Forwarded-Proto``/``X-Forwarded-Host`` added (kept when a tunnel in front already set them).
Anything but a 2xx is retried forever on ``retry`` (× ``--retry-scale``, the last delay
repeating), one delivery at a time per target in capture order (a delivery queue), so an app
that was down gets everything, in order, once it is up.

The capture and its forwards are written in one transaction (storage/forwarding.py). Rules are
cached per process; changes made here apply at once, changes made by another worker process
within ``RECHECK`` seconds (a version number in the database says when to re-read).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .delivery import RetryPolicy, build, check_url, iso
from .delivery.engine import LEASE_MARGIN
from .storage.captures import BIN_NAME, Capture, CaptureStore, NewCapture, Stored
from .storage.deliveries import Delivery, NewDelivery
from .storage.forwarding import (
    ForwardRulesStore,
    insert_capture_with_forwards,
    insert_capture_with_forwards_later,
)

log = logging.getLogger(__name__)

MODES = ("respond", "proxy")
FORWARD_SCHEDULE = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Default waits between attempts (seconds, × --retry-scale); the last one repeats forever:
a local app that comes back is served within about 30 s."""
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 90.0
MAX_TARGETS = 20
RECHECK = 1.0
"""Seconds between checks of the rules version by a process (other workers' changes)."""

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    "proxy-connection", "proxy-authenticate", "proxy-authorization", "http2-settings",
})
"""RFC 9110 §7.6.1 (plus the legacy Proxy-Connection and HTTP/2's upgrade header); every
``Proxy-*`` header and those named in ``Connection`` go too."""
NOT_FORWARDED = frozenset({"host", "content-length", "expect"})
"""Rewritten for the new hop by the HTTP client (Host for the target, the same length)."""
RESPONSE_DROP = HOP_BY_HOP | {"content-length"}


class ForwardError(ValueError):
    """Rules that cannot be used, with a message for the user."""


# -- rules ----------------------------------------------------------------------------------------
def _names(value: Any, what: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(
            isinstance(i, str) and i.strip() for i in items):
        raise ForwardError(f"filters.{what} must be a string or a list of strings")
    return [i.strip() for i in items]


def parse_json_path(path: str) -> list[str | int]:
    """``$.data.items[0].type`` (the ``$.`` is optional) as keys and indexes."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    text = text.lstrip(".")
    if not text:
        return []
    out: list[str | int] = []
    for part in text.split("."):
        name, _, rest = part.partition("[")
        if name:
            out.append(name)
        elif not rest:
            raise ForwardError(f"invalid JSON path {path!r}")
        while rest:
            index, sep, rest = rest.partition("]")
            if not sep or not index.strip().lstrip("-").isdigit():
                raise ForwardError(f"invalid JSON path {path!r}")
            out.append(int(index))
            rest = rest[1:] if rest.startswith("[") else rest
            if rest:
                raise ForwardError(f"invalid JSON path {path!r}")
    return out


_MISSING = object()


def json_at(doc: Any, steps: Sequence[str | int]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(doc, list) or not -len(doc) <= step < len(doc):
                return _MISSING
            doc = doc[step]
        else:
            if not isinstance(doc, dict) or step not in doc:
                return _MISSING
            doc = doc[step]
    return doc


@dataclass
class Filters:
    methods: list[str] | None = None
    path: str | None = None
    headers: list[str] | None = None
    json: list[tuple[str, list[str | int], Any]] | None = None

    @classmethod
    def parse(cls, data: Any) -> Filters:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ForwardError("filters must be an object")
        unknown = set(data) - {"method", "path", "header", "json"}
        if unknown:
            raise ForwardError(f"unknown filter {sorted(unknown)[0]!r} (known: method, path, "
                               "header, json)")
        f = cls()
        if data.get("method") is not None:
            f.methods = [m.upper() for m in _names(data["method"], "method")]
        if data.get("path") is not None:
            if not isinstance(data["path"], str) or not data["path"]:
                raise ForwardError("filters.path must be a glob such as \"/orders/*\"")
            f.path = data["path"]
        if data.get("header") is not None:
            f.headers = [h.lower() for h in _names(data["header"], "header")]
        if data.get("json") is not None:
            if not isinstance(data["json"], dict) or not data["json"]:
                raise ForwardError("filters.json must be an object of {json path: value}")
            f.json = [(k, parse_json_path(k), v) for k, v in data["json"].items()]
        return f

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.methods:
            out["method"] = self.methods[0] if len(self.methods) == 1 else self.methods
        if self.path:
            out["path"] = self.path
        if self.headers:
            out["header"] = self.headers[0] if len(self.headers) == 1 else self.headers
        if self.json:
            out["json"] = {k: v for k, _, v in self.json}
        return out

    def matches(self, new: NewCapture | Capture, doc: Callable[[], Any]) -> bool:
        if self.methods and new.method.upper() not in self.methods:
            return False
        if self.path and not fnmatch.fnmatchcase(new.path or "/", self.path):
            return False
        if self.headers:
            present = {n.lower() for n, _ in new.headers}
            if not all(h in present for h in self.headers):
                return False
        if self.json:
            body = doc()
            if body is _MISSING:
                return False
            for _, steps, want in self.json:
                got = json_at(body, steps)
                if got is _MISSING or got != want or \
                        isinstance(got, bool) != isinstance(want, bool):
                    return False
        return True


@dataclass
class Target:
    url: str
    filters: Filters = field(default_factory=Filters)
    path: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "path": self.path, "filters": self.filters.to_dict()}


@dataclass
class Rules:
    targets: list[Target]
    mode: str = "respond"
    timeout: float = DEFAULT_TIMEOUT
    retry: tuple[float, ...] = FORWARD_SCHEDULE

    @property
    def needs_json(self) -> bool:
        return any(t.filters.json for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        return {"targets": [t.to_dict() for t in self.targets], "mode": self.mode,
                "timeout": self.timeout, "retry": list(self.retry)}


def parse_rules(data: Any, *, bin_name: str | None = None, own: Any = None) -> Rules:
    """Validate a rules document (the PUT body); raises :class:`ForwardError`."""
    if not isinstance(data, dict):
        raise ForwardError("expected a JSON object {\"targets\": [...], \"mode\": ...}")
    unknown = set(data) - {"targets", "mode", "timeout", "retry"}
    if unknown:
        raise ForwardError(f"unknown field {sorted(unknown)[0]!r}")
    raw_targets = data.get("targets")
    if not isinstance(raw_targets, list):
        raise ForwardError("\"targets\" must be a list of {\"url\", \"filters\"}")
    if len(raw_targets) > MAX_TARGETS:
        raise ForwardError(f"at most {MAX_TARGETS} targets per bin")
    targets = []
    for i, t in enumerate(raw_targets):
        if isinstance(t, str):
            t = {"url": t}
        if not isinstance(t, dict) or not isinstance(t.get("url"), str):
            raise ForwardError(f"targets[{i}] must be an object with a \"url\"")
        extra = set(t) - {"url", "filters", "path"}
        if extra:
            raise ForwardError(f"targets[{i}]: unknown field {sorted(extra)[0]!r}")
        try:
            url = check_url(t["url"], own)
        except ValueError as exc:
            raise ForwardError(f"targets[{i}]: {exc}") from None
        if "#" in url:
            raise ForwardError(f"targets[{i}]: a target url has no #fragment")
        if bin_name and own is not None and _is_own_bin(url, bin_name, own):
            raise ForwardError(f"targets[{i}]: forwarding bin {bin_name!r} to itself would "
                               "loop forever")
        path = t.get("path", True)
        if not isinstance(path, bool):
            raise ForwardError(f"targets[{i}].path must be true or false")
        targets.append(Target(url=url, filters=Filters.parse(t.get("filters")), path=path))
    mode = data.get("mode") or "respond"
    if mode not in MODES:
        raise ForwardError(f"\"mode\" must be one of {', '.join(MODES)}")
    if mode == "proxy" and not targets:
        raise ForwardError("proxy mode needs a target")
    timeout = data.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or \
            not 0 < timeout <= MAX_TIMEOUT:
        raise ForwardError(f"\"timeout\" must be a number of seconds in (0, {MAX_TIMEOUT:g}]")
    retry = data.get("retry", list(FORWARD_SCHEDULE))
    if not isinstance(retry, list) or not retry or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 86400
            for x in retry):
        raise ForwardError("\"retry\" must be a non-empty list of waits in seconds")
    return Rules(targets=targets, mode=mode, timeout=float(timeout),
                 retry=tuple(float(x) for x in retry))


def _is_own_bin(url: str, bin_name: str, own: Any) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not own.is_own(parts.hostname or "", port):
        return False
    segs = [s for s in parts.path.split("/") if s]
    return len(segs) >= 2 and segs[0] == "in" and segs[1] == bin_name


# -- the request sent on --------------------------------------------------------------------------
def target_url(url: str, sub_path: str, query: str, pass_path: bool = True) -> str:
    """``url`` + the capture's sub-path (raw, as received) + its raw query."""
    base, _, own_query = url.partition("?")
    if pass_path and sub_path and sub_path != "/":
        base = base.rstrip("/") + "/" + sub_path.lstrip("/")
    elif pass_path and sub_path == "/" and not base.endswith("/"):
        base += "/"
    q = "&".join(x for x in (own_query, query) if x)
    return f"{base}?{q}" if q else base


def forward_headers(headers: Sequence[Sequence[str]], *, remote_addr: str | None,
                    tls: bool) -> list[tuple[str, str]]:
    """The capture's headers in order, repeats kept, minus hop-by-hop ones; X-Forwarded-*."""
    named: set[str] = set()
    for n, v in headers:
        if str(n).lower() in ("connection", "proxy-connection"):
            named.update(t.strip().lower() for t in str(v).split(",") if t.strip())
    out: list[tuple[str, str]] = []
    host = None
    xff_at = None
    has_proto = has_host = False
    for n, v in headers:
        name, low = str(n), str(n).lower()
        if low == "host":
            host = str(v)
        if low in HOP_BY_HOP or low in NOT_FORWARDED or low in named or \
                low.startswith("proxy-"):
            continue
        if low == "x-forwarded-for":
            if xff_at is not None:  # repeated: fold into the first, order kept
                prev_n, prev_v = out[xff_at]
                out[xff_at] = (prev_n, f"{prev_v}, {v}")
                continue
            xff_at = len(out)
        has_proto = has_proto or low == "x-forwarded-proto"
        has_host = has_host or low == "x-forwarded-host"
        out.append((name, str(v)))
    if remote_addr:
        if xff_at is not None:
            n, v = out[xff_at]
            out[xff_at] = (n, f"{v}, {remote_addr}")
        else:
            out.append(("X-Forwarded-For", remote_addr))
    if not has_proto:
        out.append(("X-Forwarded-Proto", "https" if tls else "http"))
    if not has_host and host:
        out.append(("X-Forwarded-Host", host))
    return out


def response_headers(headers: Sequence[Sequence[str]] | None, body_len: int
                     ) -> list[tuple[str, str]]:
    """The app's response headers as a proxy passes them back (hop-by-hop ones out)."""
    headers = headers or []
    named: set[str] = set()
    for n, v in headers:
        if str(n).lower() == "connection":
            named.update(t.strip().lower() for t in str(v).split(",") if t.strip())
    out = [(str(n), str(v)) for n, v in headers
           if (low := str(n).lower()) not in RESPONSE_DROP and low not in named
           and not low.startswith("proxy-")]
    out.append(("Content-Length", str(body_len)))
    return out


# -- the forwarder --------------------------------------------------------------------------------
@dataclass
class ForwardStored(Stored):
    """A capture with forwards: the proxied delivery (mode proxy) and its rules."""

    forwards: list[Delivery] = field(default_factory=list)
    proxy: Delivery | None = None
    rules: Rules | None = None


class Forwarder:
    """Per-bin rules, cached; builds the forwards of each capture; answers in proxy mode."""

    def __init__(self, store: CaptureStore, engine: Any, *, retry_scale: float = 1.0) -> None:
        self.store = store
        self.db = store.db
        self.engine = engine
        self.rules_store = ForwardRulesStore(store.db)
        self.retry_scale = retry_scale
        self._lock = threading.Lock()
        self._rules: dict[str, Rules] = {}
        self._version = -1
        self._checked = 0.0
        self.reload()

    # -- rules --------------------------------------------------------------------------------
    def reload(self) -> None:
        version, docs = self.rules_store.all()
        rules: dict[str, Rules] = {}
        for bin_name, doc in docs.items():
            try:
                rules[bin_name] = parse_rules(doc)
            except ForwardError as exc:
                log.warning("forward rules of bin %s ignored: %s", bin_name, exc)
        with self._lock:
            self._rules, self._version = rules, version
            self._checked = time.monotonic()

    def rules_for(self, bin_name: str) -> Rules | None:
        now = time.monotonic()
        if now - self._checked > RECHECK:
            self._checked = now
            try:
                if self.rules_store.version() != self._version:
                    self.reload()
            except Exception:
                log.exception("could not re-read the forward rules")
        return self._rules.get(bin_name)

    def get(self, bin_name: str) -> Rules | None:
        doc = self.rules_store.get(bin_name)
        return parse_rules(doc) if doc else None

    def set(self, bin_name: str, data: Any) -> Rules:
        rules = parse_rules(data, bin_name=bin_name, own=getattr(self.engine, "own", None))
        self.rules_store.set(bin_name, rules.to_dict())
        self.reload()
        return rules

    def delete(self, bin_name: str) -> bool:
        existed = self.rules_store.get(bin_name) is not None
        self.rules_store.set(bin_name, None)
        self.reload()
        return existed

    def add_cli_targets(self, specs: Sequence[str]) -> None:
        """``serve --forward BIN=URL`` (repeatable): each URL becomes a target of its bin,
        added to the bin's saved rules unless already there."""
        per_bin: dict[str, list[str]] = {}
        for spec in specs:
            bin_name, sep, url = str(spec).partition("=")
            bin_name, url = bin_name.strip(), url.strip()
            if not sep or not BIN_NAME.fullmatch(bin_name) or not url:
                raise ForwardError(f"--forward {spec!r}: expected BIN=URL")
            per_bin.setdefault(bin_name, []).append(url)
        for bin_name, urls in per_bin.items():
            current = self.rules_store.get(bin_name) or {"targets": [], "mode": "respond"}
            known = {t["url"] for t in current.get("targets", [])}
            added = [{"url": u} for u in urls if u not in known]
            if added:
                current["targets"] = [*current.get("targets", []), *added]
                self.set(bin_name, current)

    # -- captures -----------------------------------------------------------------------------
    def add(self, new: NewCapture) -> Stored:
        """Store a capture (CaptureMiddleware calls this instead of ``CaptureStore.add``); a
        bin with rules gets its forwards written in the same transaction."""
        rules = self.rules_for(new.bin)
        chosen = self.matching(rules, new) if rules is not None else []
        if rules is None or not chosen:
            return self.store.add(new)
        engine = self.engine
        stored, deliveries = insert_capture_with_forwards(
            self.db, self.store, new, *self._forwards(new, rules, chosen))
        proxy = None
        if rules.mode == "proxy" and deliveries and chosen[0][0] == 0:
            proxy = deliveries[0]
        engine.adopt(deliveries, hold=[proxy.id] if proxy is not None else [])
        return ForwardStored(stored.capture, stored.response, forwards=deliveries, proxy=proxy,
                             rules=rules)

    def add_later(self, new: NewCapture) -> Future[Stored] | None:
        """:meth:`add` without blocking (an event-loop server awaits it); None for a bin in
        proxy mode, whose sender waits for the app: use :meth:`add` on a thread."""
        rules = self.rules_for(new.bin)
        if rules is not None and rules.mode == "proxy":
            return None
        chosen = self.matching(rules, new) if rules is not None else []
        if rules is None or not chosen:
            return self.store.add_later(new)
        engine = self.engine
        written = insert_capture_with_forwards_later(
            self.db, self.store, new, *self._forwards(new, rules, chosen))
        result: Future[Stored] = Future()

        def committed(f: Future[tuple[Stored, list[Delivery]]]) -> None:
            try:
                stored, deliveries = f.result()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting sender
                result.set_exception(exc)
                return
            try:
                engine.adopt(deliveries)  # first attempts start now (on the writer's thread)
            except Exception:  # the forwards are stored: the scheduler picks them up anyway
                log.exception("could not start forwards")
            result.set_result(ForwardStored(stored.capture, stored.response,
                                            forwards=deliveries, proxy=None, rules=rules))

        written.add_done_callback(committed)
        return result

    def _forwards(self, new: NewCapture, rules: Rules, chosen: Sequence[tuple[int, Target]]
                  ) -> tuple[list[tuple[NewDelivery, str]], str, str]:
        """What the capture's write also records: each forward with its queue, the engine
        token leasing the first attempts, and the lease's end."""
        forwards = [(nd, nd.context["queue"]) for nd in self._build(new, rules, chosen)]
        return forwards, self.engine.token, iso(time.time() + rules.timeout + LEASE_MARGIN)

    def _build(self, cap: NewCapture | Capture, rules: Rules,
               chosen: Sequence[tuple[int, Target]]) -> list[NewDelivery]:
        """One forward delivery per chosen target (not yet recorded)."""
        policy = RetryPolicy(schedule=rules.retry, timeout=rules.timeout,
                             scale=self.engine.retry_scale, forever=True,
                             name="forwarding").to_dict()
        hdrs = forward_headers(cap.headers or [], remote_addr=cap.remote_addr,
                               tls=bool(cap.tls))
        return [NewDelivery(
            source="forward", url=target_url(target.url, cap.path, cap.query, target.path),
            method=cap.method, body=cap.body or b"", policy=policy, headers=list(hdrs),
            headers_mode="fixed",
            content_type=next((v for n, v in hdrs if n.lower() == "content-type"), None),
            context={"bin": cap.bin, "path": cap.path, "target": target.url,
                     "target_index": index, "queue": f"forward:{cap.bin}:{target.url}"})
            for index, target in chosen]

    def resend(self, cap: Capture) -> list[dict[str, Any]]:
        """Re-forward a stored capture (the UI's Re-send), to the bin's current targets that
        match it (without rules: to the targets it was forwarded to before).

        Per target: a forward of this capture still pending is attempted now rather than at
        its next retry time (``retry_now``; when it waits behind earlier captures' forwards
        to the same target, the head of that queue is, so order is kept); ``in_flight`` when
        an attempt is under way already; otherwise a new forward delivery is made at once
        (``resent``, ``redelivery_of`` the previous one), outside the target's queue.
        Returns ``[{"target", "action", "delivery": summary}]``; raises
        :class:`ForwardError` when there is nothing to send to."""
        engine = self.engine
        latest: dict[str, Delivery] = {}  # forward URL -> newest forward of this capture
        for d in self.rules_store.deliveries_for(cap.id):
            latest[d.url] = d
        rules = self.get(cap.bin)
        fresh: list[tuple[str, NewDelivery]] = []
        again: list[tuple[str, Delivery]] = []
        if rules is not None and rules.targets:
            chosen = self.matching(rules, cap)
            if not chosen:
                raise ForwardError(f"no forward target of bin {cap.bin!r} matches capture "
                                   f"{cap.id} (see the targets' filters)")
            for (_, target), nd in zip(chosen, self._build(cap, rules, chosen), strict=True):
                prev = latest.get(nd.url)
                if prev is not None and prev.status == "pending":
                    again.append((target.url, prev))
                else:
                    nd.redelivery_of = prev.id if prev is not None else None
                    fresh.append((target.url, nd))
        elif latest:
            for d in latest.values():
                if d.status == "pending":
                    again.append((d.url, d))
                else:
                    fresh.append((d.url, build.redelivery(self.db_delivery(d.id),
                                                          scale=engine.retry_scale)))
        else:
            raise ForwardError(f"bin {cap.bin!r} has no forwarding rules and capture "
                               f"{cap.id} was never forwarded")
        out = []
        for target, d in again:
            out.append(self._retry_now(target, d))
        for target, nd in fresh:
            nd.capture_id = cap.id
            if nd.context:
                nd.context.pop("queue", None)  # a re-send goes at once, not behind the queue
            out.append({"target": target, "action": "resent",
                        "delivery": engine.submit(nd).summary()})
        return out

    def db_delivery(self, delivery_id: int) -> Delivery:
        found = self.engine.store.get(delivery_id, attempts=False)
        if found is None:
            raise ForwardError(f"no delivery with id {delivery_id}")
        return found

    def _retry_now(self, target: str, d: Delivery) -> dict[str, Any]:
        engine = self.engine
        full = self.db_delivery(d.id)
        timeout = float((full.policy or {}).get("timeout") or DEFAULT_TIMEOUT)
        now = time.time()
        head = self.rules_store.lease_queue_head(d.id, engine.token,
                                                 iso(now + timeout + LEASE_MARGIN), iso(now))
        if head is None:
            return {"target": target, "action": "in_flight", "delivery": full.summary()}
        leased = self.db_delivery(head)
        engine.adopt([leased])
        shown = leased if head == d.id else self.db_delivery(d.id)
        return {"target": target, "action": "retry_now", "delivery": shown.summary(),
                "attempting": head}

    @staticmethod
    def matching(rules: Rules, new: NewCapture | Capture) -> list[tuple[int, Target]]:
        parsed: list[Any] = []

        def doc() -> Any:
            if not parsed:
                try:
                    parsed.append(json.loads(new.body or b""))
                except (ValueError, UnicodeDecodeError):
                    parsed.append(_MISSING)
            return parsed[0]
        return [(i, t) for i, t in enumerate(rules.targets) if t.filters.matches(new, doc)]

    def proxy_answer(self, stored: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """Mode proxy: the first target's status, headers and body for the sender (502 when
        it cannot be reached; the forward is then retried like any other)."""
        if not isinstance(stored, ForwardStored) or stored.rules is None or \
                stored.rules.mode != "proxy":
            return None
        d = stored.proxy
        if d is None:  # the first target's filters did not match
            return None
        if d.claimed_by == self.engine.token:
            out = self.engine.attempt_now(d)
            if out is not None and out.status is not None and out.error is None:
                body = out.excerpt or b""
                return out.status, response_headers(out.headers, len(body)), body
            why = out.error if out is not None else "the delivery engine is stopping"
            return self._bad_gateway(d, why or "no response")
        # Earlier forwards to this target are still queued: wait for this one's turn.
        done = self.engine.wait(d.id, timeout=stored.rules.timeout)
        last = (done.attempts or [None])[-1] if done is not None else None
        if done is not None and done.status == "delivered" and last is not None and \
                last.response_status is not None:
            body = last.response_body or b""
            return last.response_status, response_headers(last.response_headers,
                                                           len(body)), body
        why = (last.error or f"HTTP {last.response_status}") if last is not None else \
            "queued behind earlier forwards to the same target"
        final = done.error if done is not None and done.status == "failed" else None
        return self._bad_gateway(d, why, final)

    @staticmethod
    def _bad_gateway(d: Delivery, why: str, final: str | None = None
                     ) -> tuple[int, list[tuple[str, str]], bytes]:
        """``final``: the forward has settled as failed (cancelled meanwhile): why, instead
        of a promise of retries."""
        text = (f"the forward to {d.url} failed and will not be retried ({final})" if final
                else f"forward target {d.url} could not be reached: {why}; the capture is "
                     "queued and will be retried")
        body = json.dumps({"error": text, "delivery": d.id,
                           "capture_id": d.capture_id}).encode()
        return 502, [("Content-Type", "application/json"),
                     ("Content-Length", str(len(body)))], body


class ForwardingCaptures:
    """What CaptureMiddleware stores through: the capture store, with forwards on ``add``."""

    def __init__(self, forwarder: Forwarder) -> None:
        self._forwarder = forwarder
        self._store = forwarder.store

    def add(self, new: NewCapture) -> Stored:
        return self._forwarder.add(new)

    def add_later(self, new: NewCapture) -> Future[Stored] | None:
        """Non-blocking add (forwards written with the capture); None in proxy mode."""
        return self._forwarder.add_later(new)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
