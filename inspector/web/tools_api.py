"""Tools over stored captures (issue 6): diff, saved ignore rules, "previous of the same event",
signature verification, shape check and export. Thin: parse, call the pure modules (diffing,
signing, shapes, export) and storage, shape JSON.

Shapes (the UI builds against these):

- ``GET /api/diff?a=&b=[&ignore=r1,r2][&raw=1]`` → ``{"a": summary, "b": summary, "changes":
  [{"path", "kind", "a", "b", "section"}], "ignored": [rules applied], "saved_rules": [the bin's
  rules], "raw": bool, "text_diff": str}``. The saved rules of a's bin apply unless ``raw=1``;
  ``ignore`` adds to them.
- ``GET|PUT /api/bins/<bin>/ignore`` → ``{"rules": [...]}``.
- ``GET /api/captures/<id>/previous`` → ``{"capture": summary | null, "match": {...}}``.
- ``GET /api/captures/<id>/verify[?secret=][&scheme=]`` → ``{"detected_scheme", "scheme",
  "secret_source": "given"|"delivery"|"demo"|null, "verification": {...} | null, "delivery":
  {...} | null}``.
- ``GET /api/captures/<id>/shape[?vendor=&event=]`` → ``{"vendor", "event", "detected",
  "valid", "issues": [{"path", "kind", "message"}], "reference", "payload_source", "enums"}``.
- ``GET /api/captures/<id>/export?format=har|jsonl|curl|httpie[&url=]`` and
  ``GET /api/export?bin=&format=har|jsonl``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request, stream_with_context
from werkzeug.exceptions import HTTPException

from .. import __version__, export, shapes, signing
from ..diffing import InvalidIgnoreRuleError, RequestParts, diff_requests, text_diff
from ..provider import Catalog, default_catalog
from ..provider.errors import UnknownEventError, UnknownVendorError
from ..storage import Capture
from ..storage.bin_rules import BinRules, ProducingDelivery, producing_delivery
from .api import ApiError, bin_arg, get_capture, int_arg, json_body
from .services import services

bp = Blueprint("tools_api", __name__, url_prefix="/api")

MAX_RULES = 200
MAX_RULE_LENGTH = 500
PREVIOUS_SCAN = 2000
"""Earlier captures of a bin looked at for "previous of the same event"."""
EXPORT_PAGE = 200
REPLAY_CHAIN = 5
"""How many byte-exact replays/forwards are followed back to the send that signed a body."""


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> tuple[Response, int]:
    return jsonify({"error": err.message}), err.status


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException) -> tuple[Response, int]:
    return jsonify({"error": err.description or err.name}), err.code or 500


@bp.errorhandler(UnknownVendorError)
@bp.errorhandler(UnknownEventError)
def _unknown(err: Exception) -> tuple[Response, int]:
    return jsonify({"error": str(err)}), 404


# -- helpers -------------------------------------------------------------------------------------
def _rules_store() -> BinRules:
    svc = services()
    store = svc.extra.get("bin_rules")
    if store is None:
        store = svc.extra["bin_rules"] = BinRules(svc.db)
    return store


def _catalog() -> Catalog:
    engine = services().extra.get("delivery")
    if engine is not None:
        return engine.catalog
    return default_catalog()


def _parts(cap: Capture) -> RequestParts:
    return RequestParts(method=cap.method, path=cap.path, query=cap.query or "",
                        headers=[(str(n), str(v)) for n, v in cap.headers or []],
                        body=cap.body or b"", content_type=cap.content_type)


def _headers(cap: Capture) -> list[tuple[str, str]]:
    return [(str(n), str(v)) for n, v in cap.headers or []]


def validate_rules(rules: Any) -> list[str]:
    """A list of rule strings, each one checked; 400 naming the first bad rule."""
    if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
        raise ApiError(400, "rules must be a list of strings such as \"$.sentAt\" or "
                            "\"header:date\"")
    if len(rules) > MAX_RULES:
        raise ApiError(400, f"at most {MAX_RULES} rules per bin")
    out: list[str] = []
    for rule in rules:
        rule = rule.strip()
        if not rule:
            continue
        if len(rule) > MAX_RULE_LENGTH:
            raise ApiError(400, f"ignore rule {rule[:40]!r}… is longer than {MAX_RULE_LENGTH}")
        try:
            diff_requests(_EMPTY, _EMPTY, [rule])
        except InvalidIgnoreRuleError as exc:
            raise ApiError(400, f"invalid ignore rule {rule!r}: {exc}") from None
        if rule not in out:
            out.append(rule)
    return out


_EMPTY = RequestParts(method="", path="", query="", headers=(), body=b"")


def _capture_arg(name: str) -> Capture:
    value = int_arg(name)
    if value is None:
        raise ApiError(400, f"give ?{name}=<capture id>")
    return get_capture(value)


# -- diff ----------------------------------------------------------------------------------------
@bp.get("/diff")
def diff() -> Response:
    a, b = _capture_arg("a"), _capture_arg("b")
    raw = request.args.get("raw") in ("1", "true", "yes")
    saved = _rules_store().get(a.bin)
    extra = [r for r in (request.args.get("ignore") or "").split(",") if r.strip()]
    rules = validate_rules(([] if raw else saved) + extra)
    changes = diff_requests(_parts(a), _parts(b), rules)
    return jsonify({
        "a": a.summary(), "b": b.summary(),
        "changes": [c.to_dict() for c in changes],
        "ignored": rules, "saved_rules": saved, "raw": raw,
        "text_diff": text_diff(a.body or b"", b.body or b""),
    })


@bp.get("/bins/<name>/ignore")
def get_ignore(name: str) -> Response:
    return jsonify({"rules": _rules_store().get(bin_arg(name))})


@bp.put("/bins/<name>/ignore")
def put_ignore(name: str) -> Response:
    bin_arg(name)
    rules = validate_rules(json_body().get("rules"))
    return jsonify({"rules": _rules_store().set(name, rules)})


# -- previous of the same event ----------------------------------------------------------------
def _key(catalog: Catalog, cap: Capture) -> tuple[str, str, str]:
    return shapes.event_key(catalog, cap.method, cap.path, cap.query or "", _headers(cap),
                            cap.body or b"")


@bp.get("/captures/<int:capture_id>/previous")
def previous(capture_id: int) -> Response:
    cap = get_capture(capture_id)
    catalog = _catalog()
    key = _key(catalog, cap)
    if key[0] == "event":
        match = {"by": "event", "vendor": key[1], "event": key[2]}
    else:
        match = {"by": "request", "method": key[1], "path": key[2]}
    store = services().store
    before, scanned = cap.id, 0
    while before is not None and scanned < PREVIOUS_SCAN:
        page = store.list(cap.bin, limit=100, before=before)
        for summary in page.captures:
            scanned += 1
            if key[0] == "request" and (summary.method.upper(), summary.path) != key[1:]:
                continue
            full = store.get(summary.id)
            if full is not None and _key(catalog, full) == key:
                return jsonify({"capture": full.summary(), "match": match})
        before = page.next
    return jsonify({"capture": None, "match": match})


# -- verification --------------------------------------------------------------------------------
def _producer(cap: Capture) -> ProducingDelivery | None:
    """The send that signed this body: follows byte-exact replays and forwards back."""
    db, store = services().db, services().store
    current: Capture | None = cap
    for _ in range(REPLAY_CHAIN):
        if current is None:
            return None
        found = producing_delivery(db, current)
        if found is None or found.secret or found.capture_id is None:
            return found
        current = store.get(found.capture_id)
    return None


@bp.get("/captures/<int:capture_id>/verify")
def verify(capture_id: int) -> Response:
    cap = get_capture(capture_id)
    headers, body = _headers(cap), cap.body or b""
    detected = signing.detect_scheme(headers)
    scheme = request.args.get("scheme") or None
    if scheme is not None and scheme not in signing.SCHEMES:
        raise ApiError(400, f"unknown signing scheme {scheme!r} (known: "
                            f"{', '.join(sorted(signing.SCHEMES))})")
    given = request.args.get("secret")
    producer = _producer(cap)
    if scheme is None:
        scheme = detected or (producer.scheme if producer and producer.scheme != "none"
                              else None)
    answer: dict[str, Any] = {
        "detected_scheme": detected, "scheme": scheme, "secret_source": None,
        "verification": None, "delivery": producer.to_dict() if producer else None,
    }
    if scheme is None:
        answer["message"] = ("the capture carries no signature header this tool knows "
                             "(Audian, Standard Webhooks, Stripe, GitHub, Atomic); give "
                             "?scheme= to check it anyway")
        return jsonify(answer)
    secret, source = _secret_for(cap, scheme, given, producer)
    answer["secret_source"] = source
    if secret is None:
        impl = signing.SCHEMES[scheme]
        answer["verification"] = signing.Verification(
            scheme=scheme, valid=False,
            reason="no secret known for this capture; give ?secret=",
            tolerance_seconds=impl.tolerance_seconds).to_dict()
        return jsonify(answer)
    answer["verification"] = signing.verify(scheme, secret, body, headers,
                                            int(time.time())).to_dict()
    return jsonify(answer)


def _secret_for(cap: Capture, scheme: str, given: str | None,
                producer: ProducingDelivery | None) -> tuple[str | None, str | None]:
    if given:
        return given, "given"
    if producer is not None and producer.secret and producer.scheme in (scheme, None):
        return producer.secret, "delivery"
    catalog = _catalog()
    key = _key(catalog, cap)
    vendors = list(catalog.vendors.values())
    if key[0] == "event":  # the detected vendor first, when it signs this way
        vendors.sort(key=lambda v: v.id != key[1])
    demo = next((v.demo_secret for v in vendors if v.signing == scheme and v.demo_secret),
                None)
    return (demo, "demo") if demo else (None, None)


# -- shape check ---------------------------------------------------------------------------------
@bp.get("/captures/<int:capture_id>/shape")
def shape(capture_id: int) -> Response:
    cap = get_capture(capture_id)
    try:
        result = shapes.check(_catalog(), cap.method, cap.query or "", _headers(cap),
                              cap.body or b"", vendor=request.args.get("vendor") or None,
                              event=request.args.get("event") or None)
    except shapes.ShapeError as exc:
        raise ApiError(422, str(exc)) from None
    return jsonify(result.to_dict())


# -- export --------------------------------------------------------------------------------------
def _export_dict(cap: Capture) -> dict[str, Any]:
    data = cap.to_dict()
    data["headers"] = _headers(cap)
    data["body"] = cap.body or b""
    return data


def _base_url() -> str:
    return request.host_url.rstrip("/")


def _attachment(resp: Response, filename: str) -> Response:
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


def _format_arg(allowed: tuple[str, ...]) -> str:
    fmt = (request.args.get("format") or "").lower()
    if fmt not in allowed:
        raise ApiError(400, f"format must be one of {', '.join(allowed)}")
    return fmt


@bp.get("/captures/<int:capture_id>/export")
def export_one(capture_id: int) -> Response:
    fmt = _format_arg(("har", "jsonl", "curl", "httpie"))
    cap = get_capture(capture_id)
    data = _export_dict(cap)
    if fmt == "har":
        har = export.to_har([data], _base_url(), __version__)
        resp = Response(json.dumps(har, ensure_ascii=False, indent=2),
                        mimetype="application/json")
        return _attachment(resp, f"capture-{cap.id}.har")
    if fmt == "jsonl":
        resp = Response("".join(export.to_jsonl([data])), mimetype="application/x-ndjson")
        return _attachment(resp, f"capture-{cap.id}.jsonl")
    url = request.args.get("url") or export.capture_url(_base_url(), data)
    make = export.to_curl if fmt == "curl" else export.to_httpie
    try:
        command = make(data, url)
    except export.UnreproducibleRequestError as exc:
        raise ApiError(422, str(exc)) from None
    return Response(command + "\n", mimetype="text/plain")


def _bin_captures(bin_name: str) -> Iterator[dict[str, Any]]:
    """Every capture of a bin, oldest first, read a page at a time."""
    store = services().store
    ids: list[int] = []
    before: int | None = None
    while True:
        page = store.list(bin_name, limit=EXPORT_PAGE, before=before)
        ids.extend(c.id for c in page.captures)
        if page.next is None:
            break
        before = page.next

    def generate() -> Iterator[dict[str, Any]]:
        for capture_id in reversed(ids):
            cap = store.get(capture_id)
            if cap is not None:  # deleted meanwhile
                yield _export_dict(cap)
    return generate()


@bp.get("/export")
def export_bin() -> Response:
    name = request.args.get("bin")
    if not name:
        raise ApiError(400, "give ?bin=<name>")
    bin_arg(name)
    fmt = _format_arg(("har", "jsonl"))
    if services().store.get_bin(name) is None:
        raise ApiError(404, f"no bin named {name!r}")
    captures = _bin_captures(name)
    if fmt == "har":
        har = export.to_har(captures, _base_url(), __version__)
        resp = Response(json.dumps(har, ensure_ascii=False, indent=2),
                        mimetype="application/json")
        return _attachment(resp, f"{name}.har")
    resp = Response(stream_with_context(export.to_jsonl(captures)),
                    mimetype="application/x-ndjson")
    return _attachment(resp, f"{name}.jsonl")
