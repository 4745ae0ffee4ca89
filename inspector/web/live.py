"""``/ws?bin=&after=``: the live stream of captures (CONTRACT.md, "Live")."""

from __future__ import annotations

import json
import time

from flask import Blueprint, abort, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from ..storage import Capture
from ..storage.captures import BIN_NAME
from .services import services

sock = Sock()
bp = Blueprint("live", __name__)
PING_EVERY_S = 20.0


def _message(cap: Capture) -> str:
    return json.dumps({"type": "capture", "capture": cap.summary()})


@sock.route("/ws", bp=bp)
def live(ws) -> None:  # noqa: ANN001 - flask-sock's server object
    svc = services()
    bin_name = request.args.get("bin") or None
    if bin_name is not None and not BIN_NAME.fullmatch(bin_name):
        abort(400)
    after_raw = request.args.get("after")
    sub = svc.hub.subscribe(bin_name)
    try:
        if after_raw is not None and after_raw.lstrip("-").isdigit():
            last_sent = _backlog(ws, svc, bin_name, int(after_raw))
        else:
            last_sent = svc.store.max_id()
        ws.send(json.dumps({"type": "hello", "last_id": last_sent, "bin": bin_name}))
        last_ping = time.monotonic()
        while True:
            woke = sub.wait(timeout=1.0)
            if woke:
                items, resync = sub.take()
                if resync:
                    last_sent = _backlog(ws, svc, bin_name, last_sent)
                else:
                    for cap in items:
                        if cap.id > last_sent:
                            ws.send(_message(cap))
                            last_sent = cap.id
            # Drain anything the client sent (its pings) and notice a closed socket.
            while ws.receive(timeout=0) is not None:
                pass
            if time.monotonic() - last_ping > PING_EVERY_S:
                ws.send(json.dumps({"type": "ping", "last_id": last_sent}))
                last_ping = time.monotonic()
    except ConnectionClosed:
        pass
    finally:
        svc.hub.unsubscribe(sub)


def _backlog(ws, svc, bin_name: str | None, after: int) -> int:  # noqa: ANN001
    """Send every capture above ``after``, oldest first, paging so memory stays flat."""
    last = after
    while True:
        caps = svc.store.after(last, bin_name=bin_name, limit=500)
        for cap in caps:
            ws.send(_message(cap))
            last = cap.id
        if len(caps) < 500:
            return last
