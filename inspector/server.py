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
import subprocess
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
            + _tls_ready_lines(config) +
            f"  Database:      {config.db_path}\n"
            f"Press Ctrl-C to stop.")


def _tls_ready_lines(config: Config) -> str:
    if not getattr(config, "tls", False):
        return ""
    base = f"https://{display_host(config.host)}:{config.tls_port}"
    if config.tls_cert:
        trust = f"  Certificate:   {config.tls_cert} (yours)\n"
    else:
        from .tls import ca_cert_path

        trust = (f"  CA (trust it): {ca_cert_path()}   ('webhook-inspector ca' says how; "
                 f"the UI offers {base}/ca.pem)\n")
    return (f"  HTTPS UI:      {base}/\n"
            f"  HTTPS capture: {base}/in/<bin>   (websocket: wss://…/ws)\n" + trust)


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def choose_server(config: Config) -> str:
    """``auto``: uvicorn for one process (measured fastest, see uvicorn_server.py), gunicorn
    for ``--workers`` above one (it supervises the processes), Werkzeug as the fallback."""
    if config.server in ("uvicorn", "gunicorn", "werkzeug"):
        return config.server
    if os.name != "posix":
        return "werkzeug"
    if config.workers <= 1 and _installed("uvicorn") and _installed("httptools"):
        return "uvicorn"
    return "gunicorn" if _installed("gunicorn") else "werkzeug"


def serve(config: Config, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted. ``on_ready`` gets the UI URL once requests are accepted."""
    check_port(config.host, config.port)
    tls = _prepare_tls(config)  # None without --tls; else the TLS port is bound from here on
    migrate(config.db_path)  # once, in this process, before any worker opens the file
    check_fixtures_in_background()
    kind = choose_server(config)
    if kind == "uvicorn":
        from .uvicorn_server import serve_uvicorn

        serve_uvicorn(config, lambda port: _announce(config, port, on_ready), tls)
    elif kind == "gunicorn":
        _serve_gunicorn(config, on_ready, tls)
    else:
        _serve_werkzeug(config, on_ready, tls)


def check_fixtures_in_background() -> None:
    """Validate the vendor fixtures at start without keeping Faker in the server's memory.

    A short-lived child runs ``fixtures check``; only its problems reach stderr. A broken
    fixture never stops the server: that vendor or event is left out and the API says why.
    """
    def run() -> None:
        try:
            out = subprocess.run([sys.executable, "-m", "inspector", "fixtures", "check"],
                                 capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return
        if out.returncode != 0:
            problems = (out.stdout + out.stderr).strip()
            print(f"warning: some vendor fixtures have problems (left out until fixed):\n"
                  f"{problems}", file=sys.stderr, flush=True)

    threading.Thread(target=run, name="fixtures-check", daemon=True).start()


def _announce(config: Config, port: int, on_ready: Callable[[str], None] | None) -> None:
    print(ready_message(config, port), flush=True)
    if on_ready is not None:
        on_ready(f"http://{display_host(config.host)}:{port}/")


def _serve_werkzeug(config: Config, on_ready: Callable[[str], None] | None,
                    tls: _TLSSetup | None = None) -> None:
    from werkzeug.serving import make_server

    from .app import create_app
    from .rawheaders import RawHeadersRequestHandler

    app = create_app(config)
    server = make_server(config.host, config.port, app, threaded=True,
                         request_handler=RawHeadersRequestHandler)
    server.daemon_threads = True
    tls_listener = tls.start(app) if tls is not None else None
    _announce(config, server.server_port, on_ready)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if tls_listener is not None:
            tls_listener.stop()
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


def _serve_gunicorn(config: Config, on_ready: Callable[[str], None] | None,
                    tls: _TLSSetup | None = None) -> None:
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

    extra: dict[str, Any] = {}
    if tls is not None:
        def post_worker_init(worker: Any) -> None:
            # Each worker serves HTTPS too, on its own thread, from the socket bound before fork.
            worker.inspector_tls = tls.start(worker.wsgi)

        extra["post_worker_init"] = post_worker_init
    run_gunicorn(gunicorn_options(config, when_ready=when_ready, worker_exit=worker_exit,
                                  **extra), load)


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
        # With config.tls the same app also listens over HTTPS (config.tls_port; 0 = any free).
        try:
            self.tls: _TLSSetup | None = _prepare_tls(config)
        except Exception:
            self.server.server_close()
            raise
        self.tls_port: int | None = config.tls_port if self.tls is not None else None
        self.tls_url: str | None = (f"https://{display_host(config.host)}:{self.tls_port}"
                                    if self.tls is not None else None)
        self._tls_listener: TLSListener | None = None
        self.app = create_app(config)
        self.server.app = self.app
        self.url = f"http://{display_host(config.host)}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        if self.tls is not None:
            self._tls_listener = self.tls.start(self.app)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self._tls_listener is not None:
            self._tls_listener.stop()
        if self.tls is not None:
            self.tls.close()
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


# -- HTTPS beside the plain port ------------------------------------------------------------------
# The plain port stays with gunicorn (or Werkzeug); HTTPS is a second listener on --tls-port
# serving the same WSGI app object: a Werkzeug threaded server with our raw-header handler, one
# per process. gunicorn's own ``certfile`` would apply to every bind, so it cannot serve both.
# The listening socket is bound once in the main process (before gunicorn forks), and each
# worker accepts from it in a thread started by ``post_worker_init``, so several workers share
# the TLS port as they share the plain one. The TLS handshake runs on the connection's own
# thread (not in the accept loop), so a client that never finishes it blocks nobody.


class TLSSetupError(PortInUse):
    """Unusable TLS settings (a bad --tls-cert, …): reported by the CLI in one line, like a
    port in use, with exit status 2."""


class _TLSSetup:
    """The HTTPS side prepared in the main process: certificate, context and bound socket."""

    def __init__(self, config: Config, material: Any, sock: socket.socket) -> None:
        self.config = config
        self.material = material
        self.sock = sock

    def start(self, app: Any) -> TLSListener:
        return TLSListener(self.config.host, self.sock, app, self.material.context).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _prepare_tls(config: Config) -> _TLSSetup | None:
    """With ``--tls`` (or ``--tls-cert``): the certificate (local CA or the user's) and the
    bound TLS port; ``config.tls_port`` becomes the real port (0 picks a free one)."""
    if getattr(config, "tls_cert", None) or getattr(config, "tls_key", None):
        config.tls = True
    if not getattr(config, "tls", False):
        return None
    from .tls import TLSError, prepare

    if config.tls_port and int(config.tls_port) == int(config.port):
        raise TLSSetupError(f"--tls-port {config.tls_port} is the same as --port; choose "
                            "another (or INSPECTOR_TLS_PORT)")
    try:
        material = prepare(config)
    except TLSError as exc:
        raise TLSSetupError(str(exc)) from None
    host = config.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(config.tls_port)))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {config.tls_port} on {config.host} is already in use; choose "
                            "another with --tls-port PORT (or INSPECTOR_TLS_PORT)") from None
        raise PortInUse(f"cannot listen on {config.host}:{config.tls_port}: {exc.strerror}"
                        ) from None
    config.tls_port = sock.getsockname()[1]
    return _TLSSetup(config, material, sock)


def _tls_handler() -> type:
    from .rawheaders import RawHeadersRequestHandler
    from .tls import ENVIRON_KEY

    class TLSRequestHandler(RawHeadersRequestHandler):  # type: ignore[misc, valid-type]
        def make_environ(self) -> dict[str, Any]:
            environ = super().make_environ()
            version = getattr(self.connection, "version", None)
            environ[ENVIRON_KEY] = (version() if callable(version) else None) or "tls"
            return environ

        def log_error(self, format: str, *args: Any) -> None:
            pass  # handshake noise (a browser rejecting an untrusted CA) is not worth a line

    return TLSRequestHandler


class TLSListener:
    """Werkzeug's threaded server on an already-bound socket, TLS per connection."""

    def __init__(self, host: str, sock: socket.socket, app: Any, context: Any) -> None:
        import ssl

        from werkzeug.serving import ThreadedWSGIServer

        from .tls import HANDSHAKE_TIMEOUT

        class Server(ThreadedWSGIServer):  # type: ignore[misc]
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                try:
                    request.settimeout(HANDSHAKE_TIMEOUT)
                    if _plain_http_probe(request):
                        return
                    conn = context.wrap_socket(request, server_side=True)
                    conn.settimeout(None)
                except (OSError, ssl.SSLError, ValueError):
                    return  # failed handshake: the client saw why (e.g. unknown CA)
                try:
                    self.RequestHandlerClass(conn, client_address, self)
                finally:
                    with contextlib.suppress(OSError):
                        conn.close()

        self.server = Server(host.strip("[]") or "127.0.0.1", sock.getsockname()[1], app,
                             _tls_handler(), fd=sock.fileno())
        self.server.socket.setblocking(False)  # workers share it: a lost accept race is no hang
        self.server.ssl_context = context  # https in the environ; sockets wrapped above
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True,
                                        name="tls-listener")

    def start(self) -> TLSListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.shutdown()
        with contextlib.suppress(Exception):
            self.server.server_close()


_TLS_HINT = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
             b"Content-Length: 56\r\n\r\nThis port speaks HTTPS: use https:// instead of http://\n")


def _plain_http_probe(request: socket.socket) -> bool:
    """A plain-HTTP request on the TLS port gets a one-line hint instead of a silent reset."""
    try:
        first = request.recv(1, socket.MSG_PEEK)
    except OSError:
        return True
    if not first:
        return True
    if first[0] == 0x16:  # a TLS handshake record
        return False
    with contextlib.suppress(OSError):
        request.sendall(_TLS_HINT)
    return True
