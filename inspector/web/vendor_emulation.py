"""The vendors' own subscription APIs, at their paths under ``/vendors/<vendor>`` (CONTRACT.md,
"Mock provider"): integration code that registers its webhook endpoint with Audian or Atomic
can run against this server instead of the vendor.

- Audian (seed 002): ``/vendors/audian/v2/webhooks[/<id>[/test|/logs|/rotate-secret]]``, header
  ``X-Auth-Token`` (any non-empty token; every token sees the same subscriptions).
- Atomic (seed 003): ``/vendors/atomic/v1/<environment>/webhook[/<id>[/test]]``, header
  ``Authorization: Bearer …``; answers in ``{"data": …}``; DELETE disables.

Errors (assumed; the seeds show only ``{"error": "Invalid signature"}``): ``{"error": message,
"code": …, "field": …}`` with 401 for a missing credential, 400 for a body that is not the right
shape, 422 for a value the vendor refuses, 404 for an unknown id.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from ..provider.errors import ProviderError
from ..storage.subscriptions import Subscription
from ..subscriptions import NotFound, SubscriptionError, SubscriptionService
from .subscriptions_api import install_service, subscription_service

bp = Blueprint("vendor_emulation", __name__, url_prefix="/vendors")
bp.record_once(lambda state: install_service(state.app))
TEST_GRACE = 0.5
MAX_TEST_WAIT = 60.0
MAX_PAGE_LIMIT = 100


class VendorError(Exception):
    def __init__(self, status: int, message: str, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.field = status, message, code, field


@bp.errorhandler(VendorError)
def _vendor_error(err: VendorError) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": err.message, "code": err.code}
    if err.field:
        body["field"] = err.field
    resp = jsonify(body)
    if err.status == 401:
        resp.headers["WWW-Authenticate"] = ("Bearer" if request.path.startswith(
            "/vendors/atomic/") else 'Token header="X-Auth-Token"')
    return resp, err.status


def _sub_error(err: SubscriptionError) -> tuple[Response, int]:
    code = "invalid_request" if err.status == 400 else "validation_failed"
    return _vendor_error(VendorError(err.status, err.message, code, err.field))


@bp.errorhandler(NotFound)
def _not_found(err: NotFound) -> tuple[Response, int]:
    return _vendor_error(VendorError(404, str(err), "not_found"))


@bp.errorhandler(ProviderError)
def _provider_error(err: ProviderError) -> tuple[Response, int]:
    return _vendor_error(VendorError(422, str(err), "validation_failed"))


def _body(required: bool = True) -> dict[str, Any]:
    if not request.get_data():
        if required:
            raise VendorError(400, "a JSON object body is required", "invalid_request", "body")
        return {}
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise VendorError(400, "the body must be a JSON object", "invalid_request", "body")
    return data


def _page_args() -> tuple[int, int]:
    out = []
    for name, default, hi in (("page", 1, None), ("limit", 50, MAX_PAGE_LIMIT)):
        raw = request.args.get(name)
        try:
            value = int(raw) if raw not in (None, "") else default
        except ValueError:
            raise VendorError(400, f"{name} must be an integer", "invalid_request",
                              name) from None
        if value < 1:
            raise VendorError(400, f"{name} must be at least 1", "invalid_request", name)
        out.append(min(value, hi) if hi else value)
    return out[0], out[1]


def _wait_seconds() -> float:
    raw = request.args.get("wait")
    if raw in (None, "", "0", "false"):
        return TEST_GRACE
    if raw in ("1", "true"):
        return MAX_TEST_WAIT
    try:
        return min(max(float(raw), 0.0), MAX_TEST_WAIT)
    except ValueError:
        raise VendorError(400, "wait must be true, false or seconds", "invalid_request",
                          "wait") from None


def _svc() -> SubscriptionService:
    return subscription_service()


# == Audian ======================================================================================
def _audian_auth() -> None:
    if not request.headers.get("X-Auth-Token", "").strip():
        raise VendorError(401, "missing or invalid X-Auth-Token header", "unauthorized")


def _seconds(ts: str | None) -> str | None:
    return ts[:19] + "Z" if ts else None


def audian_json(sub: Subscription, with_secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": sub.id, "url": sub.url, "events": sub.events, "active": sub.active,
        "description": sub.description, "version": sub.options.get("version", "v1"),
        "created_at": _seconds(sub.created_at), "updated_at": _seconds(sub.updated_at),
    }
    if with_secret:
        out["signing_secret"] = sub.secret
    if sub.warnings:
        out["warnings"] = sub.warnings
    return out


def _audian_version(raw: Any) -> str:
    if not isinstance(raw, str):
        raise SubscriptionError("version", "version must be a string", 400)
    if raw != "v1":
        raise SubscriptionError("version", f"version: unsupported payload version {raw!r} "
                                           "(supported: v1)")
    return raw


def _audian_sub(sub_id: str) -> Subscription:
    return _svc().get(sub_id, vendor="audian")


@bp.post("/audian/v2/webhooks")
def audian_create() -> tuple[Response, int]:
    _audian_auth()
    data = _body()
    svc = _svc()
    version = _audian_version(data.get("version", "v1"))
    sub = svc.create("audian", url=data.get("url"), events=data.get("events"),
                     active=data.get("active", True), description=data.get("description"),
                     options={"version": version})
    return jsonify(audian_json(sub, with_secret=True)), 201


@bp.get("/audian/v2/webhooks")
def audian_list() -> Response:
    _audian_auth()
    page, limit = _page_args()
    subs = _svc().list("audian")
    chunk = subs[(page - 1) * limit: page * limit]
    return jsonify({"data": [audian_json(s) for s in chunk],
                    "pagination": {"page": page, "limit": limit, "total": len(subs)}})


@bp.get("/audian/v2/webhooks/<sub_id>")
def audian_get(sub_id: str) -> Response:
    _audian_auth()
    return jsonify(audian_json(_audian_sub(sub_id)))


@bp.patch("/audian/v2/webhooks/<sub_id>")
def audian_patch(sub_id: str) -> Response:
    _audian_auth()
    sub = _audian_sub(sub_id)
    data = _body()
    svc = _svc()
    changes: dict[str, Any] = {}
    if "url" in data:
        changes["url"] = data["url"]  # checked by update
    if "events" in data:
        changes["events"] = svc.check_events("audian", data["events"])
    if "active" in data:
        changes["active"] = svc.check_bool(data["active"], "active")
    if "description" in data:
        changes["description"] = svc.check_str(data["description"], "description")
    if "version" in data:
        changes["options"] = {**sub.options, "version": _audian_version(data["version"])}
    return jsonify(audian_json(svc.update(sub, **changes)))


@bp.delete("/audian/v2/webhooks/<sub_id>")
def audian_delete(sub_id: str) -> tuple[str, int]:
    _audian_auth()
    _svc().delete(_audian_sub(sub_id))
    return "", 204


@bp.post("/audian/v2/webhooks/<sub_id>/test")
def audian_test(sub_id: str) -> tuple[Response, int]:
    _audian_auth()
    sub = _audian_sub(sub_id)
    data = _body(required=False)
    event = data.get("event", "call.completed")
    if not isinstance(event, str) or not event:
        raise SubscriptionError("event", "event must be an event name", 400)
    svc = _svc()
    v = svc.catalog.vendor("audian")
    if event not in v.events:
        raise SubscriptionError("event", f"event: unknown event {event!r} (known: "
                                         f"{', '.join(sorted(v.events))})")
    sent = svc.send_test(sub, event)
    d = svc.wait(sent.delivery.id, _wait_seconds()) or sent.delivery
    return jsonify({"id": sent.event_id, "webhook_id": sub.id, "event": event,
                    "status": d.status, "response_status": d.last_status,
                    "attempts": d.attempt_count, "delivery_id": d.id}), 202


@bp.get("/audian/v2/webhooks/<sub_id>/logs")
def audian_logs(sub_id: str) -> Response:
    _audian_auth()
    sub = _audian_sub(sub_id)
    page, limit = _page_args()
    rows, total = _svc().logs(sub, page, limit)
    data = []
    for row in rows:
        e, d = row["entry"], row["delivery"]
        data.append({
            "id": e.event_id, "webhook_id": sub.id, "event": e.event,
            "timestamp": _seconds(d.created_at if d else e.created_at),
            "status": d.status if d else (e.outcome or "unknown"),
            "response_status": d.last_status if d else None,
            "attempts": d.attempt_count if d else 0,
            "delivery_id": e.delivery_id,
        })
    return jsonify({"data": data, "pagination": {"page": page, "limit": limit,
                                                 "total": total}})


@bp.post("/audian/v2/webhooks/<sub_id>/rotate-secret")
def audian_rotate(sub_id: str) -> Response:
    _audian_auth()
    sub = _svc().rotate_secret(_audian_sub(sub_id))
    return jsonify({"id": sub.id, "signing_secret": sub.secret})


# == Atomic ======================================================================================
def _atomic_auth() -> None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise VendorError(401, "missing or invalid Authorization: Bearer token",
                          "unauthorized")


def _ms(ts: str | None) -> str | None:
    return ts[:23] + "Z" if ts else None


def atomic_json(sub: Subscription) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": sub.id, "types": sub.events, "url": sub.url,
        "headers": sub.options.get("headers") or {}, "secret": sub.secret,
        "created": _ms(sub.created_at), "updated": _ms(sub.updated_at),
    }
    for opt in ("cardTemplateId", "actionFlowConfigId"):
        if sub.options.get(opt) is not None:
            out[opt] = sub.options[opt]
    out["method"] = sub.options.get("method") or "POST"
    out["enabled"] = sub.active
    out["paused"] = sub.paused
    if sub.warnings:
        out["warnings"] = sub.warnings
    return out


def _atomic_id(raw: Any, field_: str) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise SubscriptionError(field_, f"{field_} must be a string", 400)
    value = str(raw)
    if not value or len(value) > 100:
        raise SubscriptionError(field_, f"{field_} must be 1-100 characters")
    return value


def _check_env(environment: str) -> str:
    if not environment or len(environment) > 100:
        raise VendorError(404, "unknown environment", "not_found")
    return environment


@bp.post("/atomic/v1/<environment>/webhook")
def atomic_create(environment: str) -> tuple[Response, int]:
    _atomic_auth()
    env = _check_env(environment)
    data = _body()
    svc = _svc()
    options: dict[str, Any] = {"headers": svc.check_headers(data.get("headers"))}
    for opt in ("cardTemplateId", "actionFlowConfigId"):
        value = _atomic_id(data.get(opt), opt)
        if value is not None:
            options[opt] = value
    method = svc.check_method("atomic", data.get("method"))
    if method:
        options["method"] = method
    sub = svc.create("atomic", url=data.get("url"),
                     events=data.get("types") if "types" in data else None,
                     options=options, scope=env, allow_star=False)
    return jsonify({"data": atomic_json(sub)}), 201


@bp.errorhandler(SubscriptionError)
def _atomic_field_names(err: SubscriptionError) -> tuple[Response, int]:
    # Atomic calls its event list "types".
    if request.path.startswith("/vendors/atomic/") and err.field == "events":
        err = SubscriptionError("types", err.message.replace("events", "types", 1), err.status)
    return _sub_error(err)


@bp.get("/atomic/v1/<environment>/webhook")
def atomic_list(environment: str) -> Response:
    _atomic_auth()
    env = _check_env(environment)
    return jsonify({"data": [atomic_json(s) for s in _svc().list("atomic", env)]})


@bp.get("/atomic/v1/<environment>/webhook/<sub_id>")
def atomic_get(environment: str, sub_id: str) -> Response:
    _atomic_auth()
    return jsonify({"data": atomic_json(_svc().get(sub_id, "atomic", _check_env(environment)))})


@bp.delete("/atomic/v1/<environment>/webhook/<sub_id>")
def atomic_delete(environment: str, sub_id: str) -> Response:
    _atomic_auth()
    svc = _svc()
    sub = svc.disable(svc.get(sub_id, "atomic", _check_env(environment)))
    return jsonify({"data": atomic_json(sub)})


@bp.post("/atomic/v1/<environment>/webhook/<sub_id>/test")
def atomic_test(environment: str, sub_id: str) -> Response:
    _atomic_auth()
    svc = _svc()
    sub = svc.get(sub_id, "atomic", _check_env(environment))
    data = _body(required=False)
    event = data.get("type")
    if event is not None and (not isinstance(event, str) or
                              event not in svc.catalog.vendor("atomic").events):
        raise SubscriptionError("type", f"type: unknown event {event!r}")
    sent = svc.send_test(sub, event)
    d = svc.wait(sent.delivery.id, _wait_seconds()) or sent.delivery
    return jsonify({"data": {"webhookId": sub.id, "type": d.event, "status": d.status,
                             "responseStatus": d.last_status, "attempts": d.attempt_count,
                             "deliveryId": d.id}})
