"""The capture URLs, ``ANY /in/<bin>[/<path>]``: the hot path, kept as plain WSGI.

Why not a Flask view: a capture must accept every method (WebDAV and made-up ones included),
read the header list the server parsed (see rawheaders.py), and cost as little as possible per
request. Routing it before Flask does all three; everything else goes on to the Flask app.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from ..rawheaders import RAW_TARGET_KEY, raw_headers
from ..storage import BinResponse, CaptureStore, NewCapture
from ..storage.captures import BIN_NAME
from ..tls import tls_version

log = logging.getLogger(__name__)
PREFIX = "/in/"
READ_CHUNK = 64 * 1024

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class BodyTooLarge(Exception):
    pass


class BodyIncomplete(Exception):
    """The connection ended before the declared Content-Length arrived."""


def ascii_target(uri: str) -> str:
    """The target as ASCII: raw non-ASCII bytes (sent unencoded by some clients) become
    %XX escapes, which is lossless and replays as the same bytes. ``uri`` holds the bytes
    as Latin-1 characters, as WSGI servers hand them over."""
    if uri.isascii():
        return uri
    return "".join(c if ord(c) < 0x80 else f"%{ord(c):02X}" for c in uri)


def raw_target(environ: dict[str, Any]) -> tuple[str, str]:
    """The request target's path and query exactly as the client sent them (not decoded)."""
    uri = environ.get(RAW_TARGET_KEY) or environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        uri = ascii_target(uri)
        if "://" in uri[:12]:  # absolute-form (a proxy-style request): drop scheme and authority
            rest = uri.split("://", 1)[1]
            uri = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        path, _, query = uri.partition("?")
        return path, query
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
                 safe="/;:@&=+$,!~*'()%")
    return path, environ.get("QUERY_STRING", "")


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The whole body, or BodyTooLarge as soon as it passes ``limit`` (nothing kept then)."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            n = int(length)
        except ValueError:
            n = -1
        if n >= 0:
            if n > limit:
                raise BodyTooLarge
            chunks, remaining = [], n
            while remaining > 0:
                chunk = stream.read(min(remaining, READ_CHUNK))
                if not chunk:
                    raise BodyIncomplete
                chunks.append(chunk)
                remaining -= len(chunk)
            return b"".join(chunks)
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not (chunked or environ.get("wsgi.input_terminated")):
        return b""
    chunks, total = [], 0
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class CaptureMiddleware:
    """Serves ``/in/…`` itself and hands every other request to the wrapped Flask app.

    ``store`` is anything with ``add(NewCapture) -> Stored`` that commits before returning
    (the capture store, or forwarding's wrapper that writes forwards in the same commit).
    """

    def __init__(self, app: WSGIApp, store: CaptureStore, max_body: int,
                 max_delay_s: float,
                 proxy: Callable[[Any], tuple[int, list[tuple[str, str]], bytes] | None]
                 | None = None) -> None:
        self.app = app
        self.store = store
        self.max_body = max_body
        self.max_delay_s = max_delay_s
        self.proxy = proxy  # forwarding's proxy mode: (status, headers, body) or None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.app(environ, start_response)
        return self.capture(environ, start_response)

    def capture(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path, query = raw_target(environ)
        target = split_target(path)
        if isinstance(target, Answer):
            return target.wsgi(start_response)
        bin_name, sub = target
        try:
            body = read_body(environ, self.max_body)
        except BodyTooLarge:
            return self.too_large().wsgi(start_response)
        except BodyIncomplete:  # the sender is gone; nothing half-received is stored
            return json_answer(400, {"error": "the body ended before its Content-Length"},
                               close=True).wsgi(start_response)
        new = NewCapture(
            bin=bin_name, method=environ["REQUEST_METHOD"], path=sub, query=query,
            headers=raw_headers(environ), body=body, remote_addr=environ.get("REMOTE_ADDR"),
            tls=tls_version(environ),  # e.g. "TLSv1.3"; None over plain HTTP
        )
        answer = self.store_and_answer(new)
        if answer.delay:
            time.sleep(answer.delay)
        return answer.wsgi(start_response)

    def too_large(self) -> Answer:
        return json_answer(413, {"error": f"body exceeds the {self.max_body}-byte limit "
                                          "(--max-body); nothing was stored"}, close=True)

    def store_and_answer(self, new: NewCapture) -> Answer:
        """Store (blocking until committed) and say what the sender gets (forwarding's proxy
        mode waits for the app here)."""
        try:
            stored = self.store.add(new)
        except Exception:
            log.exception("capture not stored")
            return STORE_FAILED
        if self.proxy is not None:
            try:
                answer = self.proxy(stored)
            except Exception:
                log.exception("forward proxy failed")
                answer = None
            if answer is not None:
                status, headers, payload = answer
                return Answer(status, list(headers), payload)
        return self.answer(stored)

    def add_later(self, new: NewCapture) -> Future[Any] | None:
        """The capture's commit as a future, for a server that must not block (asgi.py);
        None when this capture needs :meth:`store_and_answer` on a thread (proxy mode)."""
        add_later = getattr(self.store, "add_later", None)
        return add_later(new) if add_later is not None else None

    def answer(self, stored: Any) -> Answer:
        """The bin's configured response (or ``{"ok": true, "id": …}``) for a stored capture;
        ``delay`` is for the caller to wait (capped by --max-response-delay)."""
        response: BinResponse | None = stored.response
        if response is None:
            return json_answer(200, {"ok": True, "id": stored.capture.id})
        body = (response.body or "").encode()
        headers = [(k, v) for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        headers.append(("Content-Length", str(len(body))))
        if not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        delay = min(response.delay_ms / 1000, self.max_delay_s) if response.delay_ms else 0.0
        return Answer(response.status, headers, body, delay)


class Answer:
    """What the sender of a capture gets, whichever server carries it."""

    __slots__ = ("status", "headers", "body", "delay")

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes,
                 delay: float = 0.0) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.delay = delay

    def wsgi(self, start_response: StartResponse) -> list[bytes]:
        start_response(f"{self.status} {_reason(self.status)}", self.headers)
        return [self.body]


def json_answer(status: int, payload: dict[str, Any], close: bool = False) -> Answer:
    body = json.dumps(payload).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
               ("Access-Control-Allow-Origin", "*")]
    if close:
        headers.append(("Connection", "close"))
    return Answer(status, headers, body)


STORE_FAILED = json_answer(503, {"error": "capture could not be stored; try again"})


def split_target(path: str) -> tuple[str, str] | Answer:
    """``/in/<bin>/<sub-path>`` -> (bin, "/<sub-path>" or ""), or the 400 for a bad bin name."""
    rest = path[len(PREFIX):] if path.startswith(PREFIX) else path.split("/in/", 1)[-1]
    bin_name, slash, sub = rest.partition("/")
    if not BIN_NAME.fullmatch(bin_name):
        return json_answer(400, {
            "error": f"invalid bin name {bin_name[:80]!r}: use 1-64 of A-Z a-z 0-9 _ -"})
    return bin_name, slash + sub


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Custom"
