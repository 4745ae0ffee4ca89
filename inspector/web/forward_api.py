"""Forwarding rules and forward status (CONTRACT.md, "Forwarding"); thin over forwarding.py.

- ``PUT /api/bins/<bin>/forward`` ``{"targets": [{"url", "path", "filters"}], "mode",
  "timeout", "retry"}``: replace the bin's rules; answers them as stored (defaults filled in).
- ``GET /api/bins/<bin>/forward``: the rules (``{"bin", "targets": []}`` when none).
- ``DELETE /api/bins/<bin>/forward``: remove them (``{"bin", "deleted": bool}``).
- ``GET /api/captures/<id>/forwards``: ``{"capture_id", "status", "deliveries": [summary]}``,
  ``status`` one of ``none | pending | delivered | failed`` (the list badge).
- ``GET /api/forwards/status?ids=1,2,3``: ``{"statuses": {"1": "delivered", …}}`` for a page
  of captures (captures without forwards are left out).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..forwarding import Forwarder, ForwardError
from ..storage.captures import BIN_NAME
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


@bp.get("/captures/<int:capture_id>/forwards")
def capture_forwards(capture_id: int) -> Response:
    get_capture(capture_id)
    fw = forwarder()
    deliveries = fw.rules_store.deliveries_for(capture_id)
    status = fw.rules_store.statuses([capture_id]).get(capture_id, "none")
    return jsonify({"capture_id": capture_id, "status": status,
                    "deliveries": [d.summary() for d in deliveries]})


@bp.get("/forwards/status")
def forward_statuses() -> Response:
    raw = request.args.get("ids", "")
    try:
        ids = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ApiError(400, "ids must be comma-separated capture ids") from None
    if len(ids) > 1000:
        raise ApiError(400, "at most 1000 ids")
    statuses = forwarder().rules_store.statuses(ids)
    return jsonify({"statuses": {str(k): v for k, v in statuses.items()}})
