"""The live hub: tells websocket clients about new captures, in commit order, exactly once.

The database is the source of truth. A commit (in this process, or in another worker process,
see notify.py) only *wakes* the hub; one pump thread then reads every capture above the last id
it has seen, once for all clients. Ids grow in commit order across processes (SQLite serialises
writers), so reading ``id > last`` after a wake can never skip one that commits later with a
smaller id.

Each client is in one of two modes:

* ``direct``: the pump encodes each capture's websocket frame once and writes the frames of a
  batch to every direct client with one non-blocking send. No per-client thread wakes up, so
  twenty clients cost little more than one.
* ``catchup``: the client's own thread pages through the database from its cursor (the backlog
  after ``after=``, or after falling behind) and sends with blocking writes; the pump only wakes
  it. A client whose socket cannot take a batch at once drops to catch-up, so a slow or stalled
  client never delays the pump or capture.

A client's ``cursor`` is the id up to which every capture has been sent to it or was not for it.
Switching back to direct happens under the client's lock and only once its cursor has reached
what the pump has published, which is what makes the hand-over free of gaps and duplicates.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from ..storage import Capture, CaptureStore
from .frames import capture_message, text_frame

log = logging.getLogger(__name__)
PAGE = 500
COALESCE = 0.001
MAX_COALESCE = 0.005
"""After a pass that sent n captures the pump rests ``min(MAX_COALESCE, COALESCE * (n - 1))``
seconds (see ``_pump``): nothing when captures come one at a time, a few milliseconds under
load, which turns hundreds of tiny writes per client per second into a few larger ones."""


class Subscriber:
    """One live client: its bin filter, its cursor, and how to reach its socket."""

    def __init__(self, bin_name: str | None, cursor: int, sock: socket.socket | None) -> None:
        self.bin = bin_name
        self.cursor = cursor
        # Direct sends need per-call non-blocking writes on a plain socket (not TLS).
        self.sock = sock if sock is not None and not isinstance(sock, ssl.SSLSocket) else None
        self.mode = "catchup"
        self.remainder = b""  # bytes of a frame the pump could only partly write
        self.dead = False
        self.lock = threading.Lock()
        self.event = threading.Event()

    def wants(self, cap: Capture) -> bool:
        return cap.id > self.cursor and (self.bin is None or cap.bin == self.bin)

    def _send_nowait(self, data: bytes, *, droppable: bool = False) -> bool:
        """Write what the socket takes now (under ``self.lock``, in direct mode). Unsent bytes
        become ``remainder`` and the client goes to its own thread; a ``droppable`` message
        that cannot start at once is dropped whole instead. False when the socket is dead."""
        assert self.sock is not None
        try:
            sent = self.sock.send(data, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            if droppable:
                return True  # dropping a whole frame is safe; half a frame would not be
            sent = 0
        except OSError:
            self.dead = True
            self.mode = "catchup"
            self.event.set()
            return False
        if sent < len(data):
            self.remainder = data[sent:]
            self.mode = "catchup"
            self.event.set()
        return True

    def push_event(self, frame: bytes) -> None:
        """A non-capture event (e.g. a delivery update): best effort, live clients only.
        Events are not replayed on resume; the API holds their current state."""
        with self.lock:
            if self.mode != "direct" or self.sock is None or self.remainder:
                return
            self._send_nowait(frame, droppable=True)

    def push(self, frames: list[tuple[Capture, bytes]], upto: int) -> None:
        """Called by the pump with the batch up to id ``upto``: ``frames`` holds at least
        every capture of it this client wants (those of its bin, or all)."""
        with self.lock:
            if self.mode != "direct" or self.sock is None:
                self.event.set()
                return
            if frames:
                data = b"".join(f for cap, f in frames if self.wants(cap))
                if data and not self._send_nowait(data):
                    return
            if upto > self.cursor:
                self.cursor = upto


class LiveHub:
    def __init__(self, store: CaptureStore) -> None:
        self.store = store
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._last: int | None = None  # last id read by the pump
        self.published = 0  # ids up to here have been handed to every subscriber (or are being)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def closed(self) -> bool:
        return self._stopped

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def notify(self, *_: Any) -> None:
        """Something was committed somewhere: cheap, callable from any thread."""
        if self._subs:
            self._wake.set()

    def subscribe(self, bin_name: str | None, after: int | None,
                  sock: socket.socket | None) -> Subscriber:
        with self._lock:
            if self._last is None:
                self._last = self.store.max_id()
                self.published = self._last
            cursor = after if after is not None else self.published
            sub = Subscriber(bin_name, cursor, sock)
            self._subs.add(sub)
            if self._thread is None:
                self._thread = threading.Thread(target=self._pump, name="live-hub", daemon=True)
                self._thread.start()
        self._wake.set()  # catch up on anything committed while nobody listened
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, kind: str, payload: dict[str, Any], bin_name: str | None = None) -> None:
        """Push ``{"type": kind, kind: payload}`` to live clients (of ``bin_name`` if given)."""
        if not self._subs:
            return
        frame = text_frame(json.dumps({"type": kind, kind: payload}, separators=(",", ":")))
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            if bin_name is None or sub.bin is None or sub.bin == bin_name:
                sub.push_event(frame)

    def close(self) -> None:
        """Stop the pump and tell every client's thread to end its connection."""
        self._stopped = True
        self._wake.set()
        with self._lock:
            for sub in self._subs:
                sub.event.set()

    def pause(self, sub: Subscriber) -> None:
        """Take a client out of direct mode so its own thread may write to its socket."""
        with sub.lock:
            sub.mode = "catchup"

    def catch_up(self, sub: Subscriber, send: Callable[[bytes], None],
                 then: bytes = b"") -> None:
        """On the client's own thread (in catch-up mode): send from the database until the
        client is current, then ``then`` (a hello or a ping), then hand it back to the pump."""
        with sub.lock:
            remainder, sub.remainder = sub.remainder, b""
        if remainder:
            send(remainder)
        while True:
            caps, horizon = self.store.after_with_horizon(sub.cursor, sub.bin, limit=PAGE)
            if caps:
                send(b"".join(text_frame(capture_message(c)) for c in caps))
            with sub.lock:
                sub.cursor = max(sub.cursor, horizon)
                if sub.cursor >= self.published and not then:
                    if sub.sock is not None:
                        sub.mode = "direct"
                    sub.event.clear()
                    return
            if then and sub.cursor >= self.published:
                send(then)
                then = b""

    def _pump(self) -> None:
        while not self._stopped:
            self._wake.wait()
            self._wake.clear()
            if self._stopped:
                break
            with self._lock:
                subs = list(self._subs)
                if not subs:
                    self._last = None  # re-read max_id when someone subscribes again
                    continue
                last = self._last or 0
            try:
                while True:
                    caps = self.store.after(last, limit=PAGE)
                    if not caps:
                        break
                    last = caps[-1].id
                    self.published = last
                    self._push(subs, caps, last)
                    if len(caps) < PAGE:
                        break
            except Exception:
                log.exception("live hub could not read new captures")
            with self._lock:
                start, self._last = self._last or 0, last
            if last - start > 1:
                # Under load, let a few more commits land so the next pass sends them to
                # every client in one write each; a quiet hub answers its next wake at once.
                time.sleep(min(MAX_COALESCE, COALESCE * (last - start - 1)))

    @staticmethod
    def _push(subs: list[Subscriber], caps: list[Capture], upto: int) -> None:
        """Encode each capture once, only if some client wants it, and hand every client
        the frames of its bin (clients of other bins only move their cursor)."""
        watched = {sub.bin for sub in subs}
        everything = None in watched
        by_bin: dict[str | None, list[tuple[Capture, bytes]]] = {}
        for c in caps:
            if everything or c.bin in watched:
                pair = (c, text_frame(capture_message(c)))
                by_bin.setdefault(c.bin, []).append(pair)
                if everything:
                    by_bin.setdefault(None, []).append(pair)
        for sub in subs:
            sub.push(by_bin.get(sub.bin, ()), upto)  # type: ignore[arg-type]
