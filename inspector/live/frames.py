"""Websocket frames for the live stream, encoded once per capture and shared by all clients.

A server's frames are never masked (RFC 6455 §5.1), so one capture's frame is the same bytes for
every client: the hub encodes it once and writes it to each socket. An unfragmented text frame
without RSV bits is valid whatever extension was negotiated (permessage-deflate allows
uncompressed messages, RFC 7692 §6).
"""

from __future__ import annotations

import json
import struct

from ..storage import Capture


def text_frame(text: str) -> bytes:
    payload = text.encode("utf-8")
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x81, 126, n)
    else:
        header = struct.pack("!BBQ", 0x81, 127, n)
    return header + payload


def capture_message(cap: Capture) -> str:
    return json.dumps({"type": "capture", "capture": cap.summary()}, separators=(",", ":"))
