"""Subscriptions set up in a vendor's console, emitting events to subscriptions, scenarios.

- ``GET|POST /api/subscriptions``, ``GET|PATCH|DELETE /api/subscriptions/<id>``,
  ``POST /api/subscriptions/<id>/test``, ``GET /api/subscriptions/<id>/logs``,
  ``POST /api/subscriptions/<id>/rotate-secret``. Creating is for console vendors (Audata,
  ApiRTC, AlphaTouch and the generic schemes); listing shows every vendor's subscriptions
  (Audian's and Atomic's too, ``managed``: ``console`` or ``vendor_api``; the list also names
  the ``console_vendors`` and the ``console_options`` each takes) with their delivery health:
  the settled counters, and in GET (list and one) ``health.recent``, the newest deliveries as
  they stand now (``window``, ``count``, ``delivered``, ``failed``, ``pending``,
  ``last_delivery``: id, status, status_code, error, attempt_count, event, created_at,
  last_attempt_at, settled_at). Console options (``options``):
  Audata ``method`` (GET|POST) or ``methods`` ({event: GET|POST}); ApiRTC ``headers``
  ({name: value}) and ``active`` (the console's Activate checkbox); AlphaTouch ``api_key``.
- ``POST /api/vendors/<vendor>/events/<event>/emit`` ``{"seed", "overrides", "environment"}``
  sends the event to every active subscription of the vendor listening for it, each as its
  own delivery: ``201 {"event", "seed", "deliveries": [{"subscription", "delivery"}],
  "skipped": [{"subscription", "reason"}]}``.
- ``GET /api/scenarios``, ``GET /api/scenarios/<name>``, ``POST /api/scenarios/<name>/run``
  ``{"to": url, "secret", "seed", "delay_scale", "overrides"}`` (without ``to``: emitted to the
  vendor's subscriptions). Runs in the request, sleeping the delays × ``delay_scale`` (at most
  ``MAX_RUN_SECONDS``), each step only after the previous one's first attempt (so steps
  arrive in order), and answers with each step's deliveries and the shared values.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from ..delivery import TargetRefused
from ..provider.errors import ProviderError, UnknownEventError, UnknownVendorError
from ..provider.scenario import (
    ScenarioError,
    UnknownScenarioError,
    get_scenario,
    load_scenarios,
    render_scenario,
)
from ..storage.subscriptions import Subscription
from ..subscriptions import (
    CONSOLE_VENDORS,
    NotFound,
    SubscriptionError,
    SubscriptionService,
    run_steps,
)
from .api import ApiError, int_arg
from .services import services

bp = Blueprint("subscriptions_api", __name__, url_prefix="/api")
MAX_RUN_SECONDS = 120.0
STEP_ORDER_WAIT = 5.0
"""Longest a scenario step waits for the previous step's first attempt (a slow receiver)."""
EMIT_GRACE = 0.3
_install_lock = threading.Lock()


def install_service(app: Flask) -> SubscriptionService:
    """The app's SubscriptionService, made once and listening to the delivery engine."""
    svc = app.extensions["inspector"]
    with _install_lock:
        found = svc.extra.get("subscriptions")
        if found is None:
            engine = svc.extra.get("delivery")
            if engine is None:
                raise RuntimeError("the delivery engine must be set up before subscriptions")
            found = SubscriptionService(svc.db, engine).attach()
            svc.extra["subscriptions"] = found
    return found


def subscription_service() -> SubscriptionService:
    found = services().extra.get("subscriptions")
    return found if found is not None else install_service(current_app)  # type: ignore[arg-type]


bp.record_once(lambda state: install_service(state.app))


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> tuple[Response, int]:
    return jsonify({"error": err.message}), err.status


@bp.errorhandler(SubscriptionError)
def _sub_error(err: SubscriptionError) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": err.message}
    if err.field:
        body["field"] = err.field
    return jsonify(body), err.status


@bp.errorhandler(NotFound)
def _not_found(err: NotFound) -> tuple[Response, int]:
    return jsonify({"error": str(err)}), 404


@bp.errorhandler(ProviderError)
def _provider_error(err: ProviderError) -> tuple[Response, int]:
    unknown = (UnknownVendorError, UnknownEventError, UnknownScenarioError)
    return jsonify({"error": str(err)}), 404 if isinstance(err, unknown) else 400


@bp.errorhandler(TargetRefused)
def _target_refused(err: TargetRefused) -> tuple[Response, int]:
    return jsonify({"error": str(err)}), 400


def _body(required: bool = True) -> dict[str, Any]:
    if not request.get_data():
        if required:
            raise ApiError(400, "expected a JSON object body")
        return {}
    data = request.get_json(silent=True, force=True)
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object body")
    return data


def subscription_json(sub: Subscription, recent: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """``recent`` (SubscriptionStore.recent): the newest deliveries as they stand now, added to
    ``health`` as ``recent`` (window, count, delivered, failed, pending, last_delivery)."""
    health = sub.health()
    if recent is not None:
        health["recent"] = recent
    return {
        "id": sub.id, "vendor": sub.vendor, "environment": sub.scope or None, "url": sub.url,
        "events": sub.events, "active": sub.active, "description": sub.description,
        "secret": sub.secret, "options": sub.options, "warnings": sub.warnings,
        "managed": "console" if sub.vendor in CONSOLE_VENDORS else "vendor_api",
        "created_at": sub.created_at, "updated_at": sub.updated_at, "health": health,
    }


def _with_health(subs: list[Subscription]) -> list[dict[str, Any]]:
    recent = subscription_service().store.recent([s.id for s in subs])
    return [subscription_json(s, recent.get(s.id)) for s in subs]


CONSOLE_OPTIONS = {"audata": ("method", "methods"), "apirtc": ("headers",),
                   "alphatouch": ("api_key",)}
"""What each console offers (``options``); the generic schemes take extra ``headers``."""


def console_options(vendor: str) -> set[str]:
    return set(CONSOLE_OPTIONS.get(vendor, ("headers",)))


def _options(svc: SubscriptionService, vendor: str, raw: Any, events: list[str]
             ) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SubscriptionError("options", "options must be an object", 400)
    allowed = console_options(vendor)
    unknown = set(raw) - allowed
    if unknown:
        raise SubscriptionError(f"options.{sorted(unknown)[0]}",
                                f"options: {', '.join(sorted(unknown))} not available for "
                                f"{vendor} (available: {', '.join(sorted(allowed))})")
    out: dict[str, Any] = {}
    if "method" in raw:
        m = svc.check_method(vendor, raw["method"], "options.method")
        if m:
            out["method"] = m
    if "methods" in raw:
        per = raw["methods"]
        if not isinstance(per, dict):
            raise SubscriptionError("options.methods", "options.methods must be an object of "
                                                       "event: GET|POST", 400)
        checked = {}
        for ev, m in per.items():
            if ev not in events and "*" not in events:
                raise SubscriptionError(f"options.methods.{ev}",
                                        f"options.methods: {ev!r} is not one of the events")
            checked[ev] = svc.check_method(vendor, m, f"options.methods.{ev}")
        out["methods"] = checked
    if "headers" in raw:
        out["headers"] = svc.check_headers(raw["headers"], "options.headers")
    if "api_key" in raw:
        key = svc.check_str(raw["api_key"], "options.api_key", 200)
        if key:
            out["api_key"] = key
    return out


def _console_sub(sub_id: str) -> Subscription:
    return subscription_service().get(sub_id)


# -- console subscriptions ----------------------------------------------------------------------
@bp.get("/subscriptions")
def list_subscriptions() -> Response:
    vendor = request.args.get("vendor") or None
    subs = subscription_service().list(vendor)
    return jsonify({"subscriptions": _with_health(subs),
                    "console_vendors": list(CONSOLE_VENDORS),
                    "console_options": {v: sorted(console_options(v)) for v in CONSOLE_VENDORS}})


@bp.post("/subscriptions")
def create_subscription() -> tuple[Response, int]:
    data = _body()
    svc = subscription_service()
    vendor = data.get("vendor")
    if not isinstance(vendor, str) or not vendor:
        raise SubscriptionError("vendor", "vendor is required")
    v = svc.catalog.vendor(vendor)
    if v.id not in CONSOLE_VENDORS:
        raise SubscriptionError("vendor", f"{v.name} subscriptions are made through its own "
                                          f"API under /vendors/{v.id}/, not the console")
    events = svc.check_events(v.id, data.get("events"))
    options = _options(svc, v.id, data.get("options"), events)
    sub = svc.create(v.id, url=data.get("url"), events=events,
                     active=data.get("active", True), description=data.get("description"),
                     options=options)
    return jsonify({"subscription": subscription_json(sub)}), 201


@bp.get("/subscriptions/<sub_id>")
def get_subscription(sub_id: str) -> Response:
    (found,) = _with_health([_console_sub(sub_id)])
    return jsonify({"subscription": found})


@bp.patch("/subscriptions/<sub_id>")
def patch_subscription(sub_id: str) -> Response:
    svc = subscription_service()
    sub = _console_sub(sub_id)
    data = _body()
    changes: dict[str, Any] = {}
    if "url" in data:
        changes["url"] = data["url"]
    if "events" in data:
        changes["events"] = svc.check_events(sub.vendor, data["events"],
                                             allow_star=sub.vendor != "atomic")
    if "active" in data:
        changes["active"] = svc.check_bool(data["active"], "active")
    if "description" in data:
        changes["description"] = svc.check_str(data["description"], "description")
    if "options" in data and sub.vendor in CONSOLE_VENDORS:
        changes["options"] = _options(svc, sub.vendor, data["options"],
                                      changes.get("events", sub.events))
    return jsonify({"subscription": subscription_json(svc.update(sub, **changes))})


@bp.delete("/subscriptions/<sub_id>")
def delete_subscription(sub_id: str) -> Response:
    subscription_service().delete(_console_sub(sub_id))
    return jsonify({"deleted": sub_id})


@bp.post("/subscriptions/<sub_id>/rotate-secret")
def rotate_subscription(sub_id: str) -> Response:
    svc = subscription_service()
    return jsonify({"subscription": subscription_json(svc.rotate_secret(_console_sub(sub_id)))})


@bp.post("/subscriptions/<sub_id>/test")
def test_subscription(sub_id: str) -> tuple[Response, int]:
    svc = subscription_service()
    sub = _console_sub(sub_id)
    data = _body(required=False)
    event = data.get("event")
    if event is not None and not isinstance(event, str):
        raise SubscriptionError("event", "event must be a string", 400)
    sent = svc.send_test(sub, event)
    d = svc.wait(sent.delivery.id, EMIT_GRACE) or sent.delivery
    return jsonify({"subscription": sub.id, "delivery": d.to_dict()}), 201


@bp.get("/subscriptions/<sub_id>/logs")
def subscription_logs(sub_id: str) -> Response:
    svc = subscription_service()
    sub = _console_sub(sub_id)
    page = int_arg("page", 1, lo=1) or 1
    limit = int_arg("limit", 50, lo=1, hi=100) or 50
    rows, total = svc.logs(sub, page, limit)
    data = []
    for row in rows:
        e, d = row["entry"], row["delivery"]
        data.append({"delivery_id": e.delivery_id, "event": e.event, "event_id": e.event_id,
                     "kind": e.kind, "created_at": e.created_at,
                     "delivery": d.summary() if d else None})
    return jsonify({"data": data, "pagination": {"page": page, "limit": limit,
                                                 "total": total}})


# -- emit -------------------------------------------------------------------------------------
def _seed(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ApiError(400, "seed must be an integer")
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"seed must be an integer, got {raw!r}") from None


def _overrides(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ApiError(400, "overrides must be an object of {\"json.path\": value}")
    return raw


def _emit_json(result: Any) -> dict[str, Any]:
    return {
        "vendor": result.vendor, "event": result.event, "seed": result.seed,
        "deliveries": [{"subscription": s.subscription.id, "event_id": s.event_id,
                        "delivery": s.delivery.summary()} for s in result.sent],
        "skipped": result.skipped,
    }


@bp.post("/vendors/<vendor>/events/<event>/emit")
def emit(vendor: str, event: str) -> tuple[Response, int]:
    data = _body(required=False)
    svc = subscription_service()
    env = data.get("environment")
    if env is not None and not isinstance(env, str):
        raise ApiError(400, "environment must be a string")
    result = svc.emit(vendor, event, seed=_seed(data.get("seed")),
                      overrides=_overrides(data.get("overrides")), scope=env or None)
    return jsonify(_emit_json(result)), 201


# -- scenarios --------------------------------------------------------------------------------
@bp.get("/scenarios")
def list_scenarios() -> Response:
    svc = subscription_service()
    try:
        found = load_scenarios(catalog=svc.catalog)
    except ScenarioError as exc:
        raise ApiError(500, str(exc)) from None
    return jsonify({"scenarios": [s.to_public() for s in found.values()]})


@bp.get("/scenarios/<name>")
def get_one_scenario(name: str) -> Response:
    svc = subscription_service()
    return jsonify({"scenario": get_scenario(name, catalog=svc.catalog).to_public()})


@bp.post("/scenarios/<name>/run")
def run_scenario(name: str) -> tuple[Response, int]:
    svc = subscription_service()
    data = _body(required=False)
    sc = get_scenario(name, catalog=svc.catalog)
    to = data.get("to")
    if to is not None and not isinstance(to, str):
        raise SubscriptionError("to", "to must be a URL", 400)
    secret = data.get("secret")
    if secret is not None and not isinstance(secret, str):
        raise SubscriptionError("secret", "secret must be a string", 400)
    scale = data.get("delay_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale < 0:
        raise SubscriptionError("delay_scale", "delay_scale must be a number >= 0", 400)
    total = sum(s.delay for s in sc.steps) * scale
    if total > MAX_RUN_SECONDS:
        raise SubscriptionError("delay_scale", f"this run would take {total:.0f}s; at most "
                                               f"{MAX_RUN_SECONDS:.0f}s (lower delay_scale)")
    env = data.get("environment")
    if env is not None and not isinstance(env, str):
        raise SubscriptionError("environment", "environment must be a string", 400)
    common = _overrides(data.get("overrides")) or {}
    planned, shared = render_scenario(svc.catalog, sc, seed=_seed(data.get("seed")),
                                      overrides=common)
    if to:
        svc.check_url(sc.vendor, to, "to")

    def send(p: Any) -> dict[str, Any]:
        step = {"index": p.index, "event": p.step.event, "at": p.at}
        if to:
            d = svc.engine.send(sc.vendor, p.step.event, to, rendered=p.rendered,
                                secret=secret, source="send")
            step["deliveries"] = [{"subscription": None, "delivery": d.summary()}]
            sent = [d]
        else:
            res = svc.emit(sc.vendor, p.step.event, seed=p.seed,
                           overrides=p.overrides or None, shared=shared,
                           now=p.now, scope=env or None, kind="scenario")
            step.update({k: v for k, v in _emit_json(res).items()
                         if k in ("deliveries", "skipped")})
            sent = [s.delivery for s in res.sent]
        # The next step goes once this one's first attempts are made, so a receiver gets a
        # call's events in the order they happened even at delay_scale 0 (at most
        # STEP_ORDER_WAIT for the whole step, however many subscriptions it went to).
        deadline = time.monotonic() + STEP_ORDER_WAIT
        for d in sent:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not d.settled:
                svc.engine.wait(d.id, left, first_attempt=True)
        return step

    steps = run_steps(planned, send, delay_scale=float(scale), stop=svc.engine.released)
    out: dict[str, Any] = {"scenario": sc.name, "vendor": sc.vendor, "shared": shared,
                           "steps": steps}
    if len(steps) < len(planned):  # the server is stopping: the rest was never sent
        out["interrupted"] = True
    return jsonify(out), 201
