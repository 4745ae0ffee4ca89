"""Hand the request's header list, as the server parsed it, to the app.

WSGI's environ cannot hold what a capture tool must keep: servers join repeated headers into one
comma-separated value and rewrite names into ``HTTP_*`` keys. Both servers we run under parse the
ordered list first, so each gets a thin hook that passes it on:

* Werkzeug: our request handler copies ``self.headers`` (an ordered email message, original
  case, repeats kept) into ``environ["inspector.raw_headers"]``.
* gunicorn: its ``pre_request`` hook runs on the request's thread just before the app; it leaves
  the parsed list in a thread-local tagged with the request body object, which gunicorn also
  puts in ``environ["wsgi.input"]``, so a stale list can never be picked up by another request.
  gunicorn upper-cases names; we lower-case them, as HTTP/2 does (CONTRACT.md allows it).
"""

from __future__ import annotations

import threading
from email.errors import MissingHeaderBodySeparatorDefect
from typing import Any

from werkzeug.serving import WSGIRequestHandler

ENVIRON_KEY = "inspector.raw_headers"
RAW_TARGET_KEY = "inspector.raw_target"
_local = threading.local()


class RawHeadersRequestHandler(WSGIRequestHandler):
    """Werkzeug request handler that keeps the raw header list and stays quiet per request."""

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        # http.client stops at the first line that is not a header and treats the rest of the
        # head as a body: later headers (Content-Length among them) would vanish silently.
        # gunicorn answers such a request 400; so do we.
        # (Only that defect: a multipart Content-Type makes the email parser report others
        # about the absent body, which are harmless here.)
        if any(isinstance(d, MissingHeaderBodySeparatorDefect) for d in self.headers.defects):
            self.send_error(400, "Bad Request", "malformed header line")
            return False
        return True

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ[ENVIRON_KEY] = [(k, v) for k, v in self.headers.items()]
        # http.server decoded the request line as Latin-1; Werkzeug then re-encodes it as
        # UTF-8 for REQUEST_URI, mangling raw non-ASCII bytes. Keep the undamaged form.
        environ[RAW_TARGET_KEY] = self.path
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per captured request would drown the startup message


def gunicorn_pre_request(worker: Any, req: Any) -> None:
    """gunicorn server hook (see server.py)."""
    _local.body = req.body
    _local.headers = req.headers


def raw_headers(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The ordered header list of this request, from whichever hook saw it."""
    headers = environ.get(ENVIRON_KEY)
    if headers is not None:
        return headers
    body = getattr(_local, "body", None)
    if body is not None and environ.get("wsgi.input") is body:
        return [(name.lower(), value) for name, value in _local.headers]
    return headers_from_environ(environ)


def headers_from_environ(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """Fallback for other servers: lossy (repeats joined, order unknown), but never empty."""
    out = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            out.append((key[5:].replace("_", "-").title(), value))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            out.append((key.replace("_", "-").title(), value))
    return out
