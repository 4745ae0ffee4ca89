"""The application factory: builds storage, the live hub and the web faces for one database."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .config import Config
from .live.hub import LiveHub
from .live.notify import CrossProcessNotifier
from .storage import CaptureStore, Database
from .web import api, live, tls_routes, ui
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
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]

    db = Database(config.db_path)
    store = CaptureStore(db, max_captures=config.max_captures)
    hub = LiveHub(store)
    guard = HostGuard(config.host, [config.port])
    svc = Services(config=config, db=db, store=store, hub=hub, guard=guard)
    db.on_commit(hub.notify)
    if multiprocess:
        notifier = CrossProcessNotifier(notify_dir(config.db_path), hub.notify)
        db.on_commit(lambda _results: notifier.broadcast())
        svc.extra.setdefault("closers", []).append(notifier.close)
    app.extensions["inspector"] = svc

    _install_optional(app, svc)
    from .delivery import DeliveryEngine
    from .web import provider_api

    delivery = DeliveryEngine.from_config(db, config)  # the mock provider's outbound side
    svc.extra["delivery"] = delivery
    delivery.listeners.append(lambda summary: hub.publish("delivery", summary))
    svc.extra.setdefault("closers", []).append(delivery.close)
    app.register_blueprint(provider_api.bp)
    from .web import subscriptions_api, vendor_emulation  # after the engine: they use it
    app.register_blueprint(subscriptions_api.bp)
    app.register_blueprint(vendor_emulation.bp)
    delivery.start()  # also resumes retries that were pending when the server last stopped
    app.register_blueprint(api.bp)
    from .web import tools_api  # diff, verify, shape, export (issue 6)
    app.register_blueprint(tools_api.bp)
    app.register_blueprint(live.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(tls_routes.bp)  # /ca.pem; tells the Host guard the TLS port
    live.sock.init_app(app)

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

    from .forwarding import Forwarder, ForwardingCaptures
    from .web import forward_api  # forwarding rules and forward status (issue 8)

    forwarder = Forwarder(store, delivery)
    forwarder.add_cli_targets(config.forward)  # serve --forward BIN=URL
    svc.extra["forwarder"] = forwarder
    app.register_blueprint(forward_api.bp)
    app.wsgi_app = CaptureMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, ForwardingCaptures(forwarder),  # type: ignore[arg-type]
        max_body=config.max_body,
        max_delay_s=config.max_response_delay,
        after_capture=svc.extra.get("after_capture"),
        proxy=forwarder.proxy_answer,
    )
    return app


def _install_optional(app: Flask, svc: Services) -> None:
    """Faces that other modules add (search, provider, …), wired here so the map stays in one
    place."""
    from .storage.search import search_captures

    svc.extra["search"] = search_captures
