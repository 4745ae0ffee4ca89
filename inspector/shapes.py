"""Which vendor event a captured request is, and how it departs from that event's shape.

"Is this a valid Audian ``call.completed``?": the vendor and event are read from the request
where the vendor names them (headers such as ``X-Audian-Event`` / ``X-GitHub-Event``, body fields
such as Stripe's ``type`` or AlphaTouch's ``entity`` + ``action``), a reference payload is
rendered from the vendor's fixture (seeded, so always the same), and
:func:`inspector.diffing.shape_check` compares the two: missing and extra keys, wrong JSON types
and values outside the enums the fixture draws from.

Payloads sent as URL parameters (Audata's GET deliveries) or as a form are rebuilt into objects
from their ``brackets`` / ``dots`` names; their values are all text, so the reference goes through
the same flattening and the comparison stays fair.

Pure: the catalog, header pairs and body bytes in, dataclasses out. No Flask, no storage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from .diffing import shape_check
from .provider.errors import ProviderError
from .provider.generators import text as param_text
from .provider.model import Catalog, Event, Vendor
from .provider.paths import WILDCARD, Segment
from .provider.render import render, url_params
from .provider.template import Expr, walk

__all__ = [
    "Payload",
    "ShapeError",
    "ShapeResult",
    "check",
    "detect",
    "enum_paths",
    "event_key",
    "reference_payload",
    "request_payload",
    "unflatten",
]

REFERENCE_SEED = 0
"""The seed the reference sample is rendered with: the same reference every time."""

Source = Literal["json", "form", "query"]
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENUM = re.compile(r"\benum\s+([A-Za-z0-9_-]+)")
_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class ShapeError(ValueError):
    """The request cannot be checked: no payload, or no vendor/event known for it."""


@dataclass(frozen=True)
class Payload:
    """The data a request carries, and where it was read from."""

    value: Any
    source: Source


@dataclass(frozen=True)
class ShapeResult:
    vendor: str
    event: str
    detected: bool
    issues: list[dict[str, str]]
    reference: Any
    source: Source
    enums: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor, "event": self.event, "detected": self.detected,
            "valid": not self.issues, "issues": self.issues, "reference": self.reference,
            "payload_source": self.source, "enums": self.enums,
        }


# ---------------------------------------------------------------------------------------------
# Reading the payload
# ---------------------------------------------------------------------------------------------


def _header(headers: Iterable[Sequence[str]], name: str) -> str | None:
    lowered = name.lower()
    return next((value for key, value in headers if key.lower() == lowered), None)


def _split_name(name: str, encoding: str) -> list[str]:
    if encoding == "dots":
        return name.split(".")
    if encoding == "brackets" and "[" in name and name.endswith("]"):
        head = name[: name.index("[")]
        rest = name[len(head):]
        parts = _BRACKETS.findall(rest)
        if head and "".join(f"[{p}]" for p in parts) == rest:
            return [head, *parts]
    return [name]


def unflatten(pairs: Iterable[tuple[str, str]], encoding: str = "brackets") -> dict[str, Any]:
    """URL parameters back into an object: ``sender[first_name]`` / ``tags[]`` (``brackets``,
    Rails style: ``items[][id]`` starts a new item when the last one already has ``id``) or
    ``sender.first_name`` / ``tags.0`` (``dots``). ``flat`` keeps names as they are."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        parts = _split_name(name, encoding)
        node: Any = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            following = None if last else parts[index + 1]
            is_list_next = following == "" or (encoding == "dots" and following is not None
                                               and following.isdigit())
            if isinstance(node, list):
                if part == "":  # `[]`: append, or extend the last item (Rails)
                    if last:
                        node.append(value)
                        break
                    tail = node[-1] if node else None
                    if not isinstance(tail, dict) or following in tail:
                        tail = [] if is_list_next else {}
                        node.append(tail)
                    node = tail
                    continue
                position = int(part) if part.isdigit() else len(node)
                while len(node) <= position:
                    node.append(None)
                if last:
                    node[position] = value
                    break
                if not isinstance(node[position], list | dict):
                    node[position] = [] if is_list_next else {}
                node = node[position]
                continue
            if last:
                node[part] = value
                break
            child = node.get(part)
            if not isinstance(child, list | dict):
                child = [] if is_list_next else {}
                node[part] = child
            node = child
    return root


def request_payload(method: str, query: str, headers: Sequence[Sequence[str]], body: bytes,
                    encoding: str | None = None) -> Payload | None:
    """The request's data: a JSON body, else a form body, else the query string (a bodyless
    request, e.g. Audata's GET); ``None`` when there is none."""
    content_type = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if body:
        if "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
            try:
                return Payload(json.loads(body), "json")
            except ValueError:
                pass
        if content_type == "application/x-www-form-urlencoded":
            pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
            return Payload(unflatten(pairs, encoding or _guess(pairs)), "form")
        return None
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        return Payload(unflatten(pairs, encoding or _guess(pairs)), "query")
    return None


def _guess(pairs: Sequence[tuple[str, str]]) -> str:
    return "brackets" if any("[" in name for name, _ in pairs) else "flat"


# ---------------------------------------------------------------------------------------------
# Detecting vendor and event
# ---------------------------------------------------------------------------------------------


def _get(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _candidates(headers: Sequence[Sequence[str]], data: Any) -> Iterable[tuple[str, Any]]:
    """(vendor, event name) guesses, most specific first; checked against the catalog."""
    audian = _header(headers, "X-Audian-Event")
    if audian:
        yield "audian", audian
    github = _header(headers, "X-GitHub-Event")
    if github:
        action = _get(data, "action")
        if isinstance(action, str):
            yield "github", f"{github}.{action}"
        yield "github", github
    if _header(headers, "Stripe-Signature") or _get(data, "object") == "event":
        yield "stripe", _get(data, "type")
    if _header(headers, "X-Atomic-Signature") or _get(data, "data", "analyticsEvent"):
        yield "atomic", _get(data, "data", "analyticsEvent")
    if _header(headers, "webhook-signature") or _header(headers, "webhook-id"):
        yield "standard-webhooks", _get(data, "type")
    if not isinstance(data, Mapping):
        return
    # Body-only vendors, by the fields their envelopes carry.
    if "entity" in data and "action" in data:
        yield "alphatouch", f"{data['entity']}.{data['action']}"
    if "object" in data and "event" in data:
        yield "apirtc", f"{data['object']}.{data['event']}"
    if "event" in data and ("sentAt" in data or "webhookCallId" in data):
        yield "audata", data["event"]
    if "event" in data and "data" in data:
        yield "audian", data["event"]
    if "type" in data and "data" in data:
        yield "standard-webhooks", data["type"]
        yield "stripe", data["type"]


def detect(catalog: Catalog, headers: Sequence[Sequence[str]], data: Any
           ) -> tuple[str, str] | None:
    """``(vendor id, event name)`` of a request, or ``None`` when no vendor's marks fit.

    Header marks come first (``X-Audian-Event``, ``X-GitHub-Event`` with the body's
    ``action``, the signature headers of Stripe, Atomic and Standard Webhooks), then body
    envelopes (AlphaTouch ``entity``+``action``, ApiRTC ``object``+``event``, Audata ``event``
    with ``sentAt``, Audian ``event``, ``type``). A guess counts only when the catalog has that
    event; as a last resort an ``event`` or ``type`` value that only one vendor uses.
    """
    for vendor_id, event in _candidates(headers, data):
        vendor = catalog.vendors.get(vendor_id)
        if vendor is not None and isinstance(event, str) and event in vendor.events:
            return vendor_id, event
    if isinstance(data, Mapping):
        for key in ("event", "type"):
            name = data.get(key)
            if not isinstance(name, str):
                continue
            owners = [v.id for v in catalog.vendors.values() if name in v.events]
            if len(owners) == 1:
                return owners[0], name
    return None


def detect_event_of(vendor: Vendor, headers: Sequence[Sequence[str]], data: Any) -> str | None:
    """The event within a known vendor (the caller named the vendor but not the event)."""
    for vendor_id, event in _candidates(headers, data):
        if vendor_id == vendor.id and isinstance(event, str) and event in vendor.events:
            return event
    if isinstance(data, Mapping):
        for key in ("event", "type"):
            if isinstance(data.get(key), str) and data[key] in vendor.events:
                return data[key]
    return None


def event_key(catalog: Catalog, method: str, path: str, query: str,
              headers: Sequence[Sequence[str]], body: bytes) -> tuple[str, str, str]:
    """What "the same event" means for "compare with previous": the detected vendor event, or
    else the same method and path."""
    payload = request_payload(method, query, headers, body)
    found = detect(catalog, headers, payload.value if payload else None)
    if found is not None:
        return ("event", *found)
    return ("request", method.upper(), path or "")


# ---------------------------------------------------------------------------------------------
# The reference shape
# ---------------------------------------------------------------------------------------------


def _format(segments: Sequence[Segment]) -> str:
    out = "$"
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif seg == WILDCARD:
            out += "[*]"
        elif _IDENTIFIER.fullmatch(seg):
            out += f".{seg}"
        else:
            out += "['" + seg.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def enum_paths(vendor: Vendor, event: Event) -> dict[str, list[Any]]:
    """``$``-path -> allowed values, for every field the fixture fills from a named enum."""
    out: dict[str, list[Any]] = {}
    for segments, node in walk(event.template):
        if not isinstance(node, Expr):
            continue
        for name in _ENUM.findall(node.text):
            if name in vendor.enums:
                out[_format(segments)] = list(vendor.enums[name])
                break
    return out


def reference_payload(vendor: Vendor, event: str, source: Source = "json") -> Any:
    """The event rendered with :data:`REFERENCE_SEED`; for form/query captures flattened and
    rebuilt the way such a capture is, so both sides hold text."""
    rendered = render(vendor, event, seed=REFERENCE_SEED)
    payload = rendered.payload
    if source != "json" and isinstance(payload, Mapping):
        payload = unflatten(url_params(payload, vendor.get_encoding), vendor.get_encoding)
    return payload


def check(catalog: Catalog, method: str, query: str, headers: Sequence[Sequence[str]],
          body: bytes, vendor: str | None = None, event: str | None = None) -> ShapeResult:
    """Shape-check one request. ``vendor``/``event`` override detection (either may be given
    alone). Raises :class:`ShapeError` when there is no payload or nothing identifies the
    event, and the provider's Unknown*Error for names the catalog lacks."""
    payload = request_payload(method, query, headers, body)
    if payload is None:
        raise ShapeError("the capture carries no JSON body, form body or query parameters to "
                         "check")
    detected = vendor is None or event is None
    if vendor is None and event is not None:
        owners = [v.id for v in catalog.vendors.values() if event in v.events]
        if len(owners) != 1:
            raise ShapeError(f"event {event!r} belongs to "
                             f"{'no vendor' if not owners else ', '.join(owners)}; "
                             "give ?vendor= too")
        vendor = owners[0]
    if vendor is None:
        found = detect(catalog, headers, payload.value)
        if found is None:
            raise ShapeError("could not tell which vendor and event this capture is; give "
                             "?vendor=<id>&event=<name> (see GET /api/vendors)")
        vendor, event = found
    v = catalog.vendor(vendor)
    if event is None:
        event = detect_event_of(v, headers, payload.value)
        if event is None:
            raise ShapeError(f"could not tell which {v.name} event this capture is; give "
                             f"?event=<name> (one of: {', '.join(v.events)})")
    ev = v.event(event)
    if payload.source != "json":
        # Rebuild with the vendor's own parameter naming now that it is known.
        payload = request_payload(method, query, headers, body, v.get_encoding) or payload
    try:
        reference = reference_payload(v, ev.name, payload.source)
    except ProviderError as exc:
        raise ShapeError(f"cannot render the {v.name} {ev.name} reference: {exc}") from None
    enums = enum_paths(v, ev)
    if payload.source != "json":
        enums = {path: [param_text(value) for value in values] for path, values in enums.items()}
    issues = [issue.to_dict() for issue in shape_check(payload.value, reference, enums)]
    return ShapeResult(vendor=v.id, event=ev.name, detected=detected, issues=issues,
                       reference=reference, source=payload.source, enums=enums)
