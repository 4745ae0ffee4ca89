"""Run the app: gunicorn (gthread) on POSIX, Werkzeug's threaded server as the fallback.

Both get the raw-header hook (rawheaders.py). gunicorn is tuned for a capture tool rather than
a public site: no request-line or header-size caps tighter than vendors use (Audata's GET
deliveries put a whole record in the query string), underscores in header names kept, no
trusted proxies (a captured ``X-Forwarded-Proto`` must not change how we see the request), and a
one-second graceful timeout so Ctrl-C returns within two even with websockets open.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from . import __version__
from .config import Config
from .storage.db import migrate


class PortInUse(RuntimeError):
    pass


def check_port(host: str, port: int, flag: str = "--port") -> None:
    """Fail with one line that names the port and the flag, before any server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} on {host} is already in use; choose another "
                                f"with {flag} PORT (or INSPECTOR_PORT)") from None
            raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def ready_message(config: Config, port: int) -> str:
    base = f"http://{display_host(config.host)}:{port}"
    return (f"webhook-inspector {__version__} ready\n"
            f"  Inspector UI:  {base}/\n"
            f"  Capture URL:   {base}/in/<bin>   (e.g. {base}/in/demo)\n"
            f"  Database:      {config.db_path}\n"
            f"Press Ctrl-C to stop.")


def choose_server(config: Config) -> str:
    if config.server in ("gunicorn", "werkzeug"):
        return config.server
    if os.name == "posix":
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            return "werkzeug"
        return "gunicorn"
    return "werkzeug"


def serve(config: Config, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted. ``on_ready`` gets the UI URL once requests are accepted."""
    check_port(config.host, config.port)
    migrate(config.db_path)  # once, in this process, before any worker opens the file
    kind = choose_server(config)
    if kind == "gunicorn":
        _serve_gunicorn(config, on_ready)
    else:
        _serve_werkzeug(config, on_ready)


def _announce(config: Config, port: int, on_ready: Callable[[str], None] | None) -> None:
    print(ready_message(config, port), flush=True)
    if on_ready is not None:
        on_ready(f"http://{display_host(config.host)}:{port}/")


def _serve_werkzeug(config: Config, on_ready: Callable[[str], None] | None) -> None:
    from werkzeug.serving import make_server

    from .app import create_app
    from .rawheaders import RawHeadersRequestHandler

    app = create_app(config)
    server = make_server(config.host, config.port, app, threaded=True,
                         request_handler=RawHeadersRequestHandler)
    server.daemon_threads = True
    _announce(config, server.server_port, on_ready)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["inspector"].close()


def gunicorn_options(config: Config, **hooks: Any) -> dict[str, Any]:
    """gunicorn settings for a capture tool (see the module docstring for why each)."""
    from .rawheaders import gunicorn_pre_request

    host = config.host.strip("[]")
    bind = f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"
    return {
        "bind": [bind],
        "workers": config.workers,
        "threads": config.threads,
        "worker_class": "gthread",
        "graceful_timeout": 1,
        "timeout": 60,
        "keepalive": 5,
        "errorlog": "-",
        "loglevel": "warning",
        "limit_request_line": 0,
        "limit_request_field_size": 0,
        "limit_request_fields": 1000,
        "header_map": "dangerous",
        "forwarded_allow_ips": "",
        "proc_name": "webhook-inspector",
        "pre_request": gunicorn_pre_request,
        "control_socket_disable": True,  # gunicorn 27: two instances would share one socket
        **hooks,
    }


def run_gunicorn(options: dict[str, Any], load: Callable[[], Any]) -> None:
    """Run gunicorn in this process with ``options``; ``load`` builds the app in each worker."""
    from gunicorn.app.base import BaseApplication

    class InspectorApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings and value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return load()

    sys.argv = sys.argv[:1]  # gunicorn would otherwise parse our CLI's arguments
    InspectorApplication().run()


def _serve_gunicorn(config: Config, on_ready: Callable[[str], None] | None) -> None:
    multiprocess = config.workers > 1

    def when_ready(server: Any) -> None:
        _announce(config, config.port, on_ready)

    def worker_exit(server: Any, worker: Any) -> None:
        app = getattr(worker, "wsgi", None)
        svc = getattr(app, "extensions", {}).get("inspector") if app is not None else None
        if svc is not None:
            with contextlib.suppress(Exception):
                svc.close()

    def load() -> Any:
        from .app import create_app

        return create_app(config, multiprocess=multiprocess)

    run_gunicorn(gunicorn_options(config, when_ready=when_ready, worker_exit=worker_exit), load)


class ServerThread:
    """The real app on a free loopback port in a background thread (tests, the pytest plugin).

    Werkzeug's threaded server with the raw-header hook: a real socket, real HTTP, real SQLite.
    """

    def __init__(self, config: Config) -> None:
        from werkzeug.serving import make_server

        from .app import create_app
        from .rawheaders import RawHeadersRequestHandler

        self.config = config
        self.server = make_server(config.host, config.port, _Deferred(), threaded=True,
                                  request_handler=RawHeadersRequestHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        config.port = self.port
        self.app = create_app(config)
        self.server.app = self.app
        self.url = f"http://{display_host(config.host)}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with contextlib.suppress(Exception):
            self.app.extensions["inspector"].close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Deferred:
    """Placeholder WSGI app: the real one needs the port, known only after binding."""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"starting"]
