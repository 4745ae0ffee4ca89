"""The application factory: builds storage, the live hub and the web faces for one database."""

from __future__ import annotations

import gc
import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .config import Config
from .delivery import DeliveryEngine
from .forwarding import Forwarder, ForwardingCaptures
from .live.hub import LiveHub
from .live.notify import CrossProcessNotifier
from .storage import CaptureStore, Database
from .storage.search import index_step
from .web import (
    api,
    forward_api,
    live,
    provider_api,
    subscriptions_api,
    tls_routes,
    tools_api,
    ui,
    vendor_emulation,
)
from .web.capture import CaptureMiddleware
from .web.guard import HostGuard
from .web.services import Services

log = logging.getLogger(__name__)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")


def notify_dir(db_path: Path) -> Path:
    """A short per-database directory for worker wake-up sockets (Unix paths max ~107 bytes)."""
    digest = hashlib.sha1(str(db_path.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"webhook-inspector-{digest}"


def create_app(config: Config | None = None, *, multiprocess: bool = False) -> Flask:
    config = config or Config.from_env()
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]

    # Domain services (no Flask in them), wired to each other here and nowhere else.
    db = Database(config.db_path, sync=config.sync)
    db.set_background(index_step)  # full-text indexing, off the captures' commits
    store = CaptureStore(db, max_captures=config.max_captures)
    hub = LiveHub(store)
    guard = HostGuard(config.host, [config.port])
    delivery = DeliveryEngine.from_config(db, config)  # the only outbound HTTP
    forwarder = Forwarder(store, delivery)
    forwarder.add_cli_targets(config.forward)  # serve --forward BIN=URL
    svc = Services(config=config, db=db, store=store, hub=hub, guard=guard)
    svc.extra.update(delivery=delivery, forwarder=forwarder)
    svc.extra.setdefault("closers", []).append(delivery.close)
    svc.extra.setdefault("stopping", []).append(delivery.release_waiters)

    # Live: the hub hears of every commit (ours, and other workers' through the notifier)
    # and of every delivery change.
    db.on_commit(hub.notify)
    delivery.listeners.append(lambda summary: hub.publish("delivery", summary))
    if multiprocess:
        notifier = CrossProcessNotifier(notify_dir(config.db_path), hub.notify)
        db.on_commit(lambda _results: notifier.broadcast())
        svc.extra["closers"].append(notifier.close)
    app.extensions["inspector"] = svc

    # The faces. Subscriptions attach their listeners to the engine when registered, so
    # the engine starts (resuming retries left pending by the last run) only after them.
    for blueprint in (api.bp, provider_api.bp, subscriptions_api.bp, vendor_emulation.bp,
                      tools_api.bp, forward_api.bp, tls_routes.bp, live.bp, ui.bp):
        app.register_blueprint(blueprint)
    live.sock.init_app(app)
    delivery.start()

    @app.before_request
    def _guard() -> Any:
        if request.path == "/healthz":
            return None
        refusal = guard.check(
            request.method, request.host, request.headers.get("Origin"),
            request.headers.get("Sec-Fetch-Site"),
            websocket=request.headers.get("Upgrade", "").lower() == "websocket",
        )
        if refusal is not None:
            status, message = refusal
            return jsonify({"error": message}), status
        return None

    @app.after_request
    def _security_headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        if resp.mimetype == "text/html":
            resp.headers.setdefault("Content-Security-Policy", CSP)
            resp.headers.setdefault("X-Frame-Options", "DENY")
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Any:
        # Unmatched routes never reach a blueprint's handlers: answer API clients in JSON here.
        if request.path.startswith(("/api/", "/vendors/")) or request.accept_mimetypes.best == \
                "application/json":
            return jsonify({"error": err.description or err.name}), err.code
        return err

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok"})

    app.wsgi_app = CaptureMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, ForwardingCaptures(forwarder),  # type: ignore[arg-type]
        max_body=config.max_body,
        max_delay_s=config.max_response_delay,
        proxy=forwarder.proxy_answer,
    )
    # What startup built (Faker's data, templates, the catalog) lives as long as the process:
    # keep it out of the cyclic GC, whose full passes would otherwise walk it again and again.
    gc.freeze()
    return app

