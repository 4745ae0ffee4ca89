"""``/ws?bin=&after=``: the live stream of captures (CONTRACT.md, "Live").

Messages: each capture as ``{"type": "capture", "capture": <summary>}``; once the backlog
(captures above ``after``) is out, ``{"type": "hello", "last_id": …}``; every 20 s a
``{"type": "ping"}`` so proxies and the page can tell a quiet stream from a dead one.
The hub (live/hub.py) does the sending; this handler only hands the client over and watches it.
"""

from __future__ import annotations

import json
import time

from flask import Blueprint, abort, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed

from ..live.frames import text_frame
from ..storage.captures import BIN_NAME
from .services import services

sock = Sock()
bp = Blueprint("live", __name__)
PING_EVERY_S = 20.0


@bp.before_request
def _refuse_a_bad_bin() -> None:
    """A bad ``?bin=`` gets a plain 400 instead of the handshake: flask-sock answers 101
    before the route's own code runs, and a 400 after it is only a closed socket."""
    bin_name = request.args.get("bin") or None
    if request.path == "/ws" and bin_name is not None and not BIN_NAME.fullmatch(bin_name):
        abort(400)


@sock.route("/ws", bp=bp)
def live(ws) -> None:  # noqa: ANN001 - flask-sock's server object
    svc = services()
    hub = svc.hub
    bin_name = request.args.get("bin") or None
    after_raw = request.args.get("after", "")
    after = int(after_raw) if after_raw.isdigit() else None
    raw_sock = ws.sock

    def send(data: bytes) -> None:
        if not ws.connected:
            raise ConnectionClosed(1006, "closed")
        raw_sock.sendall(data)

    sub = hub.subscribe(bin_name, after, raw_sock)
    try:
        hub.catch_up(sub, send, then=text_frame(json.dumps(
            {"type": "hello", "last_id": sub.cursor, "bin": bin_name})))
        last_ping = time.monotonic()
        while ws.connected and not sub.dead and not hub.closed:
            if sub.event.wait(timeout=1.0) and sub.mode == "catchup":
                hub.catch_up(sub, send)
            # Drain what the client sent (its own pings); notices a closed socket too.
            while ws.receive(timeout=0) is not None:
                pass
            if time.monotonic() - last_ping > PING_EVERY_S:
                hub.pause(sub)
                hub.catch_up(sub, send, then=text_frame(json.dumps(
                    {"type": "ping", "last_id": sub.cursor})))
                last_ping = time.monotonic()
    except (ConnectionClosed, OSError):
        pass
    finally:
        hub.unsubscribe(sub)
