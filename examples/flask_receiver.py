"""A tiny Flask app that receives Audian webhooks (the app under test in the examples).

``POST /webhooks/audian`` verifies ``X-Audian-Signature`` (hex HMAC-SHA256 keyed with the
``whsec_`` secret over ``"{X-Audian-Timestamp}.{raw body}"``) and answers 401 when it does not
match. For a completed call it posts ``{"call": <call id>, "seconds": <duration>}`` to
``notify_url``: the outbound webhook a test catches in a bin.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request

from flask import Flask, abort, request


def verify_audian(secret: str, body: bytes, signature: str | None, timestamp: str | None,
                  tolerance: int = 300) -> bool:
    if not signature or not timestamp or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = timestamp.encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.removeprefix("sha256="))


def post_json(url: str, data: object) -> None:
    req = urllib.request.Request(url, json.dumps(data).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        resp.read()


def create_app(secret: str, notify_url: str | None = None) -> Flask:
    app = Flask(__name__)

    @app.post("/webhooks/audian")
    def audian() -> dict:
        body = request.get_data()
        if not verify_audian(secret, body, request.headers.get("X-Audian-Signature"),
                             request.headers.get("X-Audian-Timestamp")):
            abort(401)
        event = json.loads(body)
        if event["event"] == "call.completed" and notify_url:
            post_json(notify_url, {"call": event["data"]["call_id"],
                                   "seconds": event["data"]["duration"]})
        return {"received": event["id"]}

    return app
