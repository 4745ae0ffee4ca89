"""The captures and bins JSON API (CONTRACT.md, "API"). Thin: parse, call storage, shape JSON."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from ..query import QueryError
from ..storage import BinResponse, Capture
from ..storage.captures import BIN_NAME
from ..storage.search import search_captures
from .services import services

bp = Blueprint("api", __name__, url_prefix="/api")
MAX_LIMIT = 500


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> tuple[Response, int]:
    return jsonify({"error": err.message}), err.status


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException) -> tuple[Response, int]:
    return jsonify({"error": err.description or err.name}), err.code or 500


def capture_json(cap: Capture) -> dict[str, Any]:
    """The whole capture; the body as text when it is UTF-8, else base64 (CONTRACT.md)."""
    data = cap.summary()
    data.update(headers=cap.headers, remote_addr=cap.remote_addr, tls=cap.tls)
    body = cap.body or b""
    try:
        data["body"] = body.decode("utf-8")
        data["body_encoding"] = "utf-8"
    except UnicodeDecodeError:
        data["body"] = base64.b64encode(body).decode("ascii")
        data["body_encoding"] = "base64"
    return data


def int_arg(name: str, default: int | None = None, lo: int | None = None,
            hi: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer, got {raw!r}") from None
    if lo is not None and value < lo:
        raise ApiError(400, f"{name} must be at least {lo}")
    if hi is not None and value > hi:
        value = hi
    return value


def bin_arg(name: str) -> str:
    if not BIN_NAME.fullmatch(name):
        raise ApiError(400, f"invalid bin name {name[:80]!r}: use 1-64 of A-Z a-z 0-9 _ -")
    return name


def json_body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object body")
    return data


def get_capture(capture_id: int) -> Capture:
    cap = services().store.get(capture_id)
    if cap is None:
        raise ApiError(404, f"no capture with id {capture_id}")
    return cap


@bp.get("/bins")
def list_bins() -> Response:
    return jsonify({"bins": [b.to_dict() for b in services().store.bins()]})


@bp.get("/bins/<name>")
def get_bin(name: str) -> Response:
    b = services().store.get_bin(bin_arg(name))
    if b is None:
        raise ApiError(404, f"no bin named {name!r}")
    return jsonify({"bin": b.to_dict()})


@bp.post("/bins/<name>")
def create_bin(name: str) -> tuple[Response, int]:
    services().store.ensure_bin(bin_arg(name))
    return jsonify({"bin": services().store.get_bin(name).to_dict()}), 201


@bp.delete("/bins/<name>")
def delete_bin(name: str) -> Response:
    if not services().store.delete_bin(bin_arg(name)):
        raise ApiError(404, f"no bin named {name!r}")
    return jsonify({"deleted": name})


@bp.get("/bins/<name>/response")
def get_response(name: str) -> Response:
    resp = services().store.response_for(bin_arg(name))
    return jsonify({"response": resp.__dict__ if resp else None})


@bp.put("/bins/<name>/response")
def put_response(name: str) -> Response:
    bin_arg(name)
    data = json_body()
    status = data.get("status", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ApiError(422, "status must be an integer from 100 to 599")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ApiError(422, "headers must be an object of string names to string values")
    for key, value in headers.items():
        if not key or any(c in key for c in ":\r\n ") or any(c in value for c in "\r\n"):
            raise ApiError(422, f"header {key!r} is not a valid header name/value")
    body = data.get("body")
    if body is not None and not isinstance(body, str):
        raise ApiError(422, "body must be a string")
    delay = data.get("delay_ms", 0) or 0
    if not isinstance(delay, int) or delay < 0:
        raise ApiError(422, "delay_ms must be a non-negative integer")
    cap_ms = int(services().config.max_response_delay * 1000)
    resp = BinResponse(status=status, headers=headers, body=body, delay_ms=min(delay, cap_ms))
    services().store.set_response(name, resp)
    return jsonify({"response": resp.__dict__, "delay_capped": delay > cap_ms})


@bp.delete("/bins/<name>/response")
def reset_response(name: str) -> Response:
    services().store.set_response(bin_arg(name), None)
    return jsonify({"response": None})


@bp.get("/captures")
def list_captures() -> Response:
    svc = services()
    bin_name = request.args.get("bin") or None
    if bin_name:
        bin_arg(bin_name)
    limit = int_arg("limit", 50, lo=1, hi=MAX_LIMIT)
    before = int_arg("before")
    q = request.args.get("q", "").strip()
    if q:
        try:
            page = search_captures(svc.store, q, bin_name, limit, before)
        except QueryError as exc:
            raise ApiError(400, str(exc)) from None
    else:
        page = svc.store.list(bin_name, limit=limit, before=before)
    return jsonify({"captures": [c.summary() for c in page.captures], "next": page.next})


@bp.delete("/captures")
def clear_captures() -> Response:
    name = request.args.get("bin")
    if not name:
        raise ApiError(400, "give ?bin=<name> to clear a bin")
    deleted = services().store.clear_bin(bin_arg(name))
    return jsonify({"deleted": deleted, "bin": name})


@bp.get("/captures/<int:capture_id>")
def get_one(capture_id: int) -> Response:
    return jsonify(capture_json(get_capture(capture_id)))


@bp.get("/captures/<int:capture_id>/raw")
def get_raw(capture_id: int) -> Response:
    cap = get_capture(capture_id)
    resp = Response(cap.body or b"", status=200)
    # The original type, but never let a captured body render as a page of ours.
    resp.headers["Content-Type"] = cap.content_type or "application/octet-stream"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    if request.args.get("download"):
        resp.headers["Content-Disposition"] = f'attachment; filename="capture-{cap.id}.bin"'
    return resp


@bp.delete("/captures/<int:capture_id>")
def delete_one(capture_id: int) -> Response:
    if not services().store.delete(capture_id):
        raise ApiError(404, f"no capture with id {capture_id}")
    return jsonify({"deleted": capture_id})
