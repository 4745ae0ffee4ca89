"""The same Audian receiver as a plain WSGI callable: no framework, standard library only."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any


def verify_audian(secret: str, body: bytes, signature: str | None, timestamp: str | None,
                  tolerance: int = 300) -> bool:
    if not signature or not timestamp or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = timestamp.encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.removeprefix("sha256="))


def make_app(secret: str, notify_url: str | None = None) -> Callable[..., Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def answer(status: str, data: object) -> list[bytes]:
            body = json.dumps(data).encode()
            start_response(status, [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(body)))])
            return [body]

        if (environ["REQUEST_METHOD"], environ.get("PATH_INFO")) != ("POST", "/webhooks/audian"):
            return answer("404 Not Found", {"error": "not found"})
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        if not verify_audian(secret, body, environ.get("HTTP_X_AUDIAN_SIGNATURE"),
                             environ.get("HTTP_X_AUDIAN_TIMESTAMP")):
            return answer("401 Unauthorized", {"error": "bad signature"})
        event = json.loads(body)
        if event["event"] == "call.completed" and notify_url:
            notice = json.dumps({"call": event["data"]["call_id"],
                                 "seconds": event["data"]["duration"]}).encode()
            req = urllib.request.Request(notify_url, notice, method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=5) as resp:
                resp.read()
        return answer("200 OK", {"received": event["id"]})

    return app
