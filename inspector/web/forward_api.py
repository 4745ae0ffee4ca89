"""Forwarding rules and forward status (CONTRACT.md, "Forwarding"); thin over forwarding.py.

- ``PUT /api/bins/<bin>/forward`` ``{"targets": [{"url", "path", "filters"}], "mode",
  "timeout", "retry"}``: replace the bin's rules; answers them as stored (defaults filled in).
- ``GET /api/bins/<bin>/forward``: the rules (``{"bin", "targets": []}`` when none).
- ``DELETE /api/bins/<bin>/forward``: remove them (``{"bin", "deleted": bool}``).
- ``GET /api/captures/<id>/forwards``: ``{"capture_id", "status", "deliveries": [summary]}``,
  ``status`` one of ``none | pending | delivered | failed`` (the list badge).
  With ``?attempts=1`` each delivery also has its newest ``attempts`` (at most
  ``MAX_ATTEMPTS``, oldest first): the app's status, headers, body excerpt, duration and error,
  and the request line and headers sent (not the body: that is the capture's).
- ``POST /api/captures/<id>/forward``: re-send the capture to the bin's matching targets now
  (``Forwarder.resend``); ``202 {"capture_id", "status", "resent": [{"target", "action",
  "delivery"}]}``, ``action`` one of ``resent | retry_now | in_flight``; 400 when there is no
  target to send to.
- ``GET /api/forwards/status?ids=1,2,3``: ``{"statuses": {"1": "delivered", …}, "badges":
  {"1": {"status", "state", "code", "error", "attempts", "targets"}, …}}`` for a page of
  captures (captures without forwards are left out; ``state`` tells ``retrying`` from
  ``pending``, ``code`` is the app's last HTTP status).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..forwarding import Forwarder, ForwardError
from ..storage.captures import BIN_NAME
from ..storage.deliveries import Delivery
from .api import ApiError, get_capture
from .services import services

bp = Blueprint("forward_api", __name__, url_prefix="/api")


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> tuple[Response, int]:
    return jsonify({"error": err.message}), err.status


@bp.errorhandler(ForwardError)
def _forward_error(err: ForwardError) -> tuple[Response, int]:
    return jsonify({"error": str(err)}), 400


def forwarder() -> Forwarder:
    found = services().extra.get("forwarder")
    if found is None:
        raise ApiError(503, "forwarding is not set up")
    return found


def _bin(name: str) -> str:
    if not BIN_NAME.fullmatch(name):
        raise ApiError(400, f"invalid bin name {name[:80]!r}")
    return name


def _shape(bin_name: str, rules: Any) -> dict[str, Any]:
    if rules is None:
        return {"bin": bin_name, "targets": [], "mode": "respond"}
    return {"bin": bin_name, **rules.to_dict()}


@bp.put("/bins/<name>/forward")
def put_rules(name: str) -> Response:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object body")
    rules = forwarder().set(_bin(name), data)
    return jsonify(_shape(name, rules if rules.targets else None))


@bp.get("/bins/<name>/forward")
def get_rules(name: str) -> Response:
    return jsonify(_shape(name, forwarder().get(_bin(name))))


@bp.delete("/bins/<name>/forward")
def delete_rules(name: str) -> Response:
    return jsonify({"bin": name, "deleted": forwarder().delete(_bin(name))})


MAX_ATTEMPTS = 20


def _with_attempts(fw: Forwarder, d: Delivery) -> dict[str, Any]:
    out = d.summary()
    full = fw.engine.store.get(d.id)
    attempts = (full.attempts or []) if full is not None else []
    shown = []
    for a in attempts[-MAX_ATTEMPTS:]:
        data = a.to_dict()
        data["request"] = {k: v for k, v in data["request"].items()
                           if k not in ("body", "body_encoding")}
        shown.append(data)
    out["attempts"] = shown
    return out


@bp.get("/captures/<int:capture_id>/forwards")
def capture_forwards(capture_id: int) -> Response:
    get_capture(capture_id)
    fw = forwarder()
    deliveries = fw.rules_store.deliveries_for(capture_id)
    status = fw.rules_store.statuses([capture_id]).get(capture_id, "none")
    full = request.args.get("attempts") in ("1", "true")
    return jsonify({"capture_id": capture_id, "status": status,
                    "deliveries": [_with_attempts(fw, d) if full else d.summary()
                                   for d in deliveries]})


@bp.post("/captures/<int:capture_id>/forward")
def resend(capture_id: int) -> tuple[Response, int]:
    cap = get_capture(capture_id)
    fw = forwarder()
    resent = fw.resend(cap)
    status = fw.rules_store.statuses([capture_id]).get(capture_id, "none")
    return jsonify({"capture_id": capture_id, "status": status, "resent": resent}), 202


@bp.get("/forwards/status")
def forward_statuses() -> Response:
    raw = request.args.get("ids", "")
    try:
        ids = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ApiError(400, "ids must be comma-separated capture ids") from None
    if len(ids) > 1000:
        raise ApiError(400, "at most 1000 ids")
    badges = forwarder().rules_store.badges(ids)
    return jsonify({"statuses": {str(k): b["status"] for k, b in badges.items()},
                    "badges": {str(k): b for k, b in badges.items()}})
