"""The mock provider's JSON API (CONTRACT.md, "Mock provider"): vendors, samples, sending,
the delivery log, redelivery and capture replay. Thin: parse, call the delivery engine, shape.

``POST /api/send`` (and redeliver, replay) answers ``201 {"delivery": …}`` once the delivery is
recorded and its first attempt has either finished or run for ``SEND_GRACE`` seconds, whichever
comes first, so a local target usually comes back settled and a slow one comes back
``pending``. ``?wait=1`` (or ``"wait": true``) blocks until the delivery is settled, at most its
retry policy's worst case (waits × retry scale + timeout × attempts); ``"wait": <seconds>``
blocks at most that long. Either way the answer is the delivery as it then stands.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..delivery import DeliveryEngine, ReplayError, TargetRefused, preview
from ..provider.errors import ProviderError, UnknownEventError, UnknownVendorError
from ..provider.render import parse_set_args
from ..storage.deliveries import SOURCES, STATUSES, Delivery
from .api import MAX_LIMIT, ApiError, get_capture, int_arg, json_body
from .services import services

bp = Blueprint("provider_api", __name__, url_prefix="/api")
SEND_GRACE = 0.3
MAX_WAIT = 3600.0


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> tuple[Response, int]:
    return jsonify({"error": err.message}), err.status


@bp.errorhandler(ProviderError)
def _provider_error(err: ProviderError) -> tuple[Response, int]:
    status = 404 if isinstance(err, UnknownVendorError | UnknownEventError) else 400
    return jsonify({"error": str(err)}), status


@bp.errorhandler(TargetRefused)
def _target_refused(err: TargetRefused) -> tuple[Response, int]:
    return jsonify({"error": str(err)}), 400


@bp.errorhandler(ReplayError)
def _replay_error(err: ReplayError) -> tuple[Response, int]:
    return jsonify({"error": str(err)}), 400


def engine() -> DeliveryEngine:
    eng = services().extra.get("delivery")
    if eng is None:
        raise ApiError(503, "the delivery engine is not running")
    return eng


def _seed(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise ApiError(400, "seed must be an integer")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"seed must be an integer, got {raw!r}") from None


def _opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{name} must be a string")
    return value or None


def _wait_arg(data: dict[str, Any] | None = None) -> float | bool:
    raw: Any = request.args.get("wait")
    if raw is None and data is not None:
        raw = data.get("wait")
    if raw in (None, "", False, "0", "false", "no"):
        return False
    if raw in (True, "1", "true", "yes"):
        return True
    try:
        return min(max(float(raw), 0.0), MAX_WAIT)
    except (TypeError, ValueError):
        raise ApiError(400, f"wait must be true, false or seconds, got {raw!r}") from None


def _answer(d: Delivery, wait: float | bool) -> tuple[Response, int]:
    eng = engine()
    if wait is True:
        settled = eng.wait(d.id, None)
    else:
        settled = eng.wait(d.id, float(wait) if wait else SEND_GRACE)
    return jsonify({"delivery": (settled or d).to_dict()}), 201


# -- vendors and samples ---------------------------------------------------------------------
@bp.get("/vendors")
def list_vendors() -> Response:
    fields = request.args.get("fields") in ("1", "true")
    return jsonify(engine().catalog.to_public(fields=fields))


@bp.get("/vendors/<vendor>")
def get_vendor(vendor: str) -> Response:
    return jsonify({"vendor": engine().catalog.vendor(vendor).to_public(fields=True)})


@bp.get("/vendors/<vendor>/events/<event>/sample")
def sample(vendor: str, event: str) -> Response:
    v = engine().catalog.vendor(vendor)
    v.event(event)
    overrides = parse_set_args(request.args.getlist("set"))
    now = int(time.time())
    rendered, prepared = preview(
        v, event, timestamp=now, seed=_seed(request.args.get("seed")),
        secret=request.args.get("secret") or None, method=request.args.get("method") or None,
        overrides=overrides)
    data = prepared.to_public()
    data.update(seed=rendered.seed, timestamp=now, signing=v.signing,
                secret_is_demo=not request.args.get("secret"))
    return jsonify(data)


@bp.get("/fixtures/errors")
def fixture_errors() -> Response:
    return jsonify({"errors": [e.to_public() for e in engine().catalog.errors]})


# -- sending -------------------------------------------------------------------------------------
@bp.post("/send")
def send() -> tuple[Response, int]:
    data = json_body()
    missing = [k for k in ("vendor", "event", "url") if not data.get(k)]
    if missing:
        raise ApiError(400, f"missing {', '.join(missing)}")
    for name in ("vendor", "event", "url"):
        if not isinstance(data[name], str):
            raise ApiError(400, f"{name} must be a string")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ApiError(400, 'overrides must be an object of {"json.path": value}')
    timeout = data.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or timeout <= 0):
        raise ApiError(400, "timeout must be a positive number of seconds")
    wait = _wait_arg(data)
    d = engine().send(
        data["vendor"], data["event"], data["url"], seed=_seed(data.get("seed")),
        method=_opt_str(data, "method"), secret=_opt_str(data, "secret"),
        overrides=overrides, timeout=timeout)
    return _answer(d, wait)


@bp.get("/deliveries")
def list_deliveries() -> Response:
    status = request.args.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"status must be one of {', '.join(STATUSES)}")
    source = request.args.get("source") or None
    if source is not None and source not in SOURCES:
        raise ApiError(400, f"source must be one of {', '.join(SOURCES)}")
    page = engine().list(limit=int_arg("limit", 50, lo=1, hi=MAX_LIMIT),
                         before=int_arg("before"), status=status,
                         vendor=request.args.get("vendor") or None, source=source,
                         capture_id=int_arg("capture_id"))
    return jsonify({"deliveries": [d.summary() for d in page.deliveries], "next": page.next})


@bp.get("/deliveries/<int:delivery_id>")
def get_delivery(delivery_id: int) -> Response:
    d = engine().get(delivery_id)
    if d is None:
        raise ApiError(404, f"no delivery with id {delivery_id}")
    return jsonify({"delivery": d.to_dict()})


@bp.post("/deliveries/<int:delivery_id>/redeliver")
def redeliver(delivery_id: int) -> tuple[Response, int]:
    data = request.get_json(silent=True) if request.data else {}
    try:
        d = engine().redeliver(delivery_id)
    except LookupError as exc:
        if isinstance(exc, ProviderError):
            raise
        raise ApiError(404, str(exc).strip("'\"")) from None
    return _answer(d, _wait_arg(data if isinstance(data, dict) else None))


@bp.post("/deliveries/<int:delivery_id>/cancel")
def cancel_delivery(delivery_id: int) -> Response:
    try:
        d = engine().cancel(delivery_id)
    except LookupError as exc:
        raise ApiError(404, str(exc).strip("'\"")) from None
    except ValueError as exc:
        raise ApiError(409, str(exc)) from None
    return jsonify({"delivery": d.to_dict()})


# -- replay --------------------------------------------------------------------------------------
def _replay_headers(raw: Any) -> list[tuple[str, str]] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        raw = list(raw.items())
    if not isinstance(raw, list) or not all(
            isinstance(p, list | tuple) and len(p) == 2
            and isinstance(p[0], str) and isinstance(p[1], str) for p in raw):
        raise ApiError(400, "headers must be a list of [name, value] pairs (or an object)")
    for name, value in raw:
        if not name or any(c in name for c in ":\r\n ") or any(c in value for c in "\r\n"):
            raise ApiError(400, f"header {name!r} is not a valid header name/value")
    return [(n, v) for n, v in raw]


def _replay_body(data: dict[str, Any]) -> bytes | None:
    body = data.get("body")
    if body is None:
        return None
    if not isinstance(body, str):
        raise ApiError(400, "body must be a string")
    if data.get("body_encoding") == "base64":
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "body is not valid base64") from None
    return body.encode("utf-8")


@bp.post("/captures/<int:capture_id>/replay")
def replay(capture_id: int) -> tuple[Response, int]:
    data = json_body()
    url = data.get("url")
    if not url or not isinstance(url, str):
        raise ApiError(400, "missing url")
    capture = get_capture(capture_id)
    d = engine().replay(
        capture, url, resign=bool(data.get("resign")), secret=_opt_str(data, "secret"),
        scheme=_opt_str(data, "scheme"), body=_replay_body(data),
        headers=_replay_headers(data.get("headers")))
    return _answer(d, _wait_arg(data))
