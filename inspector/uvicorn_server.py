"""Serving on uvicorn (httptools parser, uvloop): the default server on POSIX.

Measured against gunicorn's gthread worker on this project's capture path (bench/ingest.py,
README "Performance"), an event loop with a C parser takes about three times the captures per
second in one process, and one process also means no arbiter beside it in memory. Two things a
capture tool needs that uvicorn does not do by itself are added here:

* **Any method, any body.** The C parser (llhttp) knows only the registered methods, and it
  skips the body of any request asking for an Upgrade; such a request (``X-CUSTOM-VERB``,
  ``BREW``, a POST from ``curl --http2``) is handed, with the bytes read so far, to uvicorn's
  pure Python h11 protocol for that connection, which takes any token and keeps the body.
  Everything else llhttp refuses (e.g. Content-Length with Transfer-Encoding) gets a 400; see
  ``CaptureHttp`` for when a hand-over is safe.
* **The live websocket stays on a plain socket.** The live hub writes each capture's frame,
  encoded once, straight to every client's socket (live/hub.py); through an ASGI websocket every
  message would cross the event loop per client. So an upgrade request is not run as ASGI: its
  connection is paused in the loop, a duplicate of its socket goes to the Flask app's ``/ws``
  route (flask-sock, the same code the other servers run) on a thread of its own, and the
  loop's transport is closed once that thread is done.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

FALLBACK_BUFFER = 1024 * 1024
"""Bytes of one request kept for a hand-over to h11; a longer request the C parser refused
gets its 400 (its head would be past any sane size anyway)."""


def request_environ(head: bytes, peer: Any, local: Any, sock: socket.socket) -> dict[str, Any]:
    """A WSGI environ for the upgrade request uvicorn re-assembled (``METHOD target HTTP/1.1``
    and the header lines), with the connection's socket where flask-sock looks for it."""
    line, _, rest = head.partition(b"\r\n")
    method, target, _ = line.split(b" ", 2)
    path, _, query = target.partition(b"?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method.decode("latin-1"),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": str(local[0]) if local else "127.0.0.1",
        "SERVER_PORT": str(local[1]) if local else "80",
        "REMOTE_ADDR": str(peer[0]) if peer else "",
        "REMOTE_PORT": str(peer[1]) if peer else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        # flask-sock finds the connection here and, once the websocket is over, ends the
        # response with StopIteration (as under gunicorn): see run_on_socket.
        "gunicorn.socket": sock,
    }
    for header in rest.split(b"\r\n"):
        name, sep, value = header.partition(b":")
        if not sep:
            continue
        key = name.strip().decode("latin-1").upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key
        text = value.strip().decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def run_on_socket(app: Callable[..., Iterable[bytes]], environ: dict[str, Any],
                  sock: socket.socket) -> None:
    """Run ``app`` for an upgrade request whose connection is ``sock``: either the websocket
    route takes the socket over (flask-sock ends with StopIteration when it is done), or the
    app answers in plain HTTP (a refused Origin, a bad bin), which is written here."""
    answer: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None
                       ) -> Callable[[bytes], None]:
        answer[:] = [status, headers]
        return lambda _data: None

    try:
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
    except StopIteration:
        return  # the websocket ran and is over
    if not answer or sock.fileno() == -1:
        return
    status, headers = answer
    head = [f"HTTP/1.1 {status}"]
    head += [f"{k}: {v}" for k, v in headers if k.lower() not in ("connection", "content-length")]
    head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    sock.sendall("\r\n".join(head).encode("latin-1") + body)


def _h11_can_parse(exc: BaseException) -> bool:
    """A method llhttp does not know, or a URL too long for httptools' parser."""
    if isinstance(exc, httptools.HttpParserInvalidMethodError):
        return True
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, httptools.HttpParserInvalidURLError)


def protocols(wsgi_app: Callable[..., Iterable[bytes]]) -> tuple[type, type]:
    """uvicorn's ``http`` and ``ws`` protocol classes for this app (see the module docstring)."""

    class WebSocketHandoff(asyncio.Protocol):
        def __init__(self, config: Any, server_state: Any, app_state: Any,
                     _loop: asyncio.AbstractEventLoop | None = None) -> None:
            self.loop = _loop or asyncio.get_event_loop()
            self.transport: asyncio.Transport | None = None
            self.started = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            if self.started or self.transport is None:
                return
            self.started = True
            transport = self.transport
            transport.pause_reading()
            own = transport.get_extra_info("socket")
            sock = socket.socket(own.family, own.type, own.proto, fileno=os.dup(own.fileno()))
            sock.setblocking(True)
            environ = request_environ(data, transport.get_extra_info("peername"),
                                      transport.get_extra_info("sockname"), sock)
            threading.Thread(target=self._run, args=(environ, sock), name="live-ws",
                             daemon=True).start()

        def _run(self, environ: dict[str, Any], sock: socket.socket) -> None:
            try:
                run_on_socket(wsgi_app, environ, sock)
            except Exception:
                log.exception("websocket connection failed")
            finally:
                try:
                    sock.close()
                finally:
                    try:
                        self.loop.call_soon_threadsafe(self._close)
                    except RuntimeError:
                        pass  # the loop is gone (shutting down)

        def _close(self) -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc: Exception | None) -> None:
            self.transport = None

    class CaptureHttp(HttpToolsProtocol):  # type: ignore[misc]
        """httptools, handing what it cannot take to h11 (see the module docstring).

        A request goes to h11, with every byte of it read so far, only when all of these
        hold: llhttp refused its method (or its URL was too long for httptools), or it asks
        for an upgrade that is not the live websocket (llhttp would drop its body); it began
        at the start of a chunk, so its first byte is known; the app has not started on it;
        and every earlier response on the connection is complete. Anything else llhttp
        refuses (say Content-Length with Transfer-Encoding) gets uvicorn's 400.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._request: bytearray | None = bytearray()
            self._at_start = True  # the next chunk begins a request
            self._completed = False  # a request ended inside the current chunk
            self._app_started = False  # the app runs for the request being parsed
            self._to_other = False  # an upgrade that is not ours: h11 takes it

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._app_started = False
            self._to_other = False
            if self._completed:  # pipelined after another request: where it starts is unknown
                self._request = None
                self._at_start = False

        def on_headers_complete(self) -> None:
            if self.parser.should_upgrade() and not self._should_upgrade():
                self._to_other = True  # h2c, or a websocket to a capture URL: keep the body
                return
            super().on_headers_complete()
            self._app_started = True

        def on_message_complete(self) -> None:
            if self._to_other:
                return  # no cycle was started: h11 takes the whole request
            super().on_message_complete()
            self._at_start = True
            self._completed = True

        def _should_upgrade(self) -> bool:
            return super()._should_upgrade() and self.url.partition(b"?")[0] == b"/ws"

        def data_received(self, data: bytes) -> None:
            if self._at_start:
                self._request = bytearray(data)
                self._at_start = False
            elif self._request is not None:
                if len(self._request) + len(data) > FALLBACK_BUFFER:
                    self._request = None
                else:
                    self._request += data
            self._completed = False
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                if self._to_other:
                    self._fall_back_or_400()
                elif self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
            except httptools.HttpParserError as exc:
                if _h11_can_parse(exc):
                    self._fall_back_or_400()
                else:
                    self._bad_request()

        def _fall_back_or_400(self) -> None:
            idle = self.cycle is None or self.cycle.response_complete
            if self._request and not self._app_started and not self._completed and idle:
                self._to_h11(bytes(self._request))
            else:
                self._bad_request()

        def _bad_request(self) -> None:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)

        def _to_h11(self, data: bytes) -> None:
            self.connections.discard(self)
            other = H11Protocol(config=self.config, server_state=self.server_state,
                                app_state=self.app_state, _loop=self.loop)
            self.transport.set_protocol(other)
            other.connection_made(self.transport)
            other.data_received(data)

    return CaptureHttp, WebSocketHandoff


def run_asgi(app: Any, config: Any, announce: Callable[[int], None] | None = None, *,
             http: Any = "httptools", ws: Any = "none",
             stopping: Callable[[], None] | None = None) -> None:
    """Run an ASGI app with the server settings of ``serve`` (also the benchmark's ceiling).

    ``stopping``: called once the listeners are closed, before the graceful wait for the
    open connections (so requests that wait on something can answer within it)."""
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    server_config = uvicorn.Config(
        app, host=config.host.strip("[]"), port=config.port, loop=loop, http=http, ws=ws,
        lifespan="off", log_level="warning", access_log=False, server_header=False,
        # A captured X-Forwarded-For/-Proto is data, never the request's own address or
        # scheme (every local sender would otherwise be trusted as a proxy).
        proxy_headers=False, forwarded_allow_ips="",
        timeout_keep_alive=5, timeout_graceful_shutdown=1, backlog=2048,
        h11_max_incomplete_event_size=FALLBACK_BUFFER,
    )

    class Server(uvicorn.Server):  # type: ignore[misc]
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if announce is not None and self.started and not self.should_exit:
                announce(config.port)

        async def shutdown(self, sockets: Any = None) -> None:
            if stopping is not None:
                stopping()
            await super().shutdown(sockets)

    try:
        Server(server_config).run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the signal it stopped on


def serve_uvicorn(config: Any, announce: Callable[[int], None] | None = None,
                  tls: Any = None) -> None:
    """Serve ``config`` in this process until SIGINT/SIGTERM; ``announce(port)`` once up."""
    from .app import create_app
    from .web.asgi import AsgiFront

    app = create_app(config)
    http_class, ws_class = protocols(app)
    tls_listener = tls.start(app) if tls is not None else None
    try:
        run_asgi(AsgiFront(app, config.threads), config, announce, http=http_class,
                 ws=ws_class, stopping=app.extensions["inspector"].stopping)
    finally:
        if tls_listener is not None:
            tls_listener.stop()
        app.extensions["inspector"].close()
