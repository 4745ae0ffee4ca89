"""The app as ASGI for an event-loop server (uvicorn_server.py): captures natively, the rest
via WSGI.

Why: on a thread-per-request server every capture costs a thread hand-off to the writer and
back, and the server's own HTTP parsing in Python; on an event loop with a C parser the capture
is parsed, queued for the single writer and answered when its commit's future resolves, with
no thread of its own (about 3x the captures per second of gunicorn's gthread worker here, see
README "Performance"). Everything that is not ``/in/…`` (UI, API, vendor emulation) is the
same Flask app, run on a thread pool through ``a2wsgi``. The live websocket never reaches this
object: the server hands its connection to the Flask app on a thread of its own (see
uvicorn_server.py), so the live hub keeps writing frames straight to the socket.

A capture still answers only after its commit (a forwarding bin's forwards are written in the
same commit); a bin in proxy mode, whose sender waits for the app's answer, takes the blocking
path on the pool.
"""

from __future__ import annotations

import asyncio
from typing import Any

from a2wsgi import WSGIMiddleware

from ..storage import NewCapture
from .capture import (
    PREFIX,
    STORE_FAILED,
    Answer,
    CaptureMiddleware,
    ascii_target,
    log,
    split_target,
)

Scope = dict[str, Any]
Receive = Any
Send = Any

_PREFIX = PREFIX.encode()
GONE = object()
COMMIT_TIMEOUT = 30.0
"""Seconds a capture waits for its commit before the sender gets a 503 (as ``db.write``)."""


class AsgiFront:
    """``flask_app``: the app from ``create_app`` (its ``wsgi_app`` is the CaptureMiddleware)."""

    def __init__(self, flask_app: Any, threads: int) -> None:
        capture = flask_app.wsgi_app
        if not isinstance(capture, CaptureMiddleware):
            raise TypeError("expected the app built by inspector.app.create_app")
        self.capture = capture
        self.wsgi = WSGIMiddleware(flask_app, workers=max(4, threads))
        self.pool = self.wsgi.executor  # the same threads run blocking captures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["raw_path"].startswith(_PREFIX):
            await self._capture(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
        else:
            await self.wsgi(scope, receive, send)

    async def _capture(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = split_target(ascii_target(scope["raw_path"].decode("latin-1")))
        if isinstance(target, Answer):
            await _send(send, target)
            return
        bin_name, sub = target
        # A declared length over the limit is refused before the body is read (and before
        # uvicorn sends "100 Continue" to a client that asked for it).
        body = None if _declared_length(scope) > self.capture.max_body else \
            await _read_body(receive, self.capture.max_body)
        if body is None:
            await _send(send, self.capture.too_large())
            return
        if body is GONE:
            return  # the sender left mid-body: nothing half-received is stored
        client = scope.get("client")
        new = NewCapture(
            bin=bin_name, method=scope["method"], path=sub,
            query=ascii_target(scope["query_string"].decode("latin-1")),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
            body=body, remote_addr=client[0] if client else None, tls=None)
        future = self.capture.add_later(new)
        if future is None:  # proxy mode: the sender waits for the app
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self.pool, self.capture.store_and_answer, new)
        else:
            try:
                stored = await asyncio.wait_for(asyncio.wrap_future(future), COMMIT_TIMEOUT)
            except Exception:  # noqa: BLE001 - the sender gets a 503; the reason is logged
                log.exception("capture not stored")
                answer = STORE_FAILED
            else:
                answer = self.capture.answer(stored)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        await _send(send, answer)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return -1


async def _read_body(receive: Receive, limit: int) -> Any:
    """The whole body; None as soon as it passes ``limit``; GONE when the sender disconnects
    before its end (nothing is kept in either case)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return GONE
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Send, answer: Answer) -> None:
    await send({"type": "http.response.start", "status": answer.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                            for k, v in answer.headers]})
    await send({"type": "http.response.body", "body": answer.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
