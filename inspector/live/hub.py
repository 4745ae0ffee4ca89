"""The live hub: tells websocket clients about new captures, in commit order, exactly once.

The database is the source of truth. A commit (in this process, or in another worker process,
see notify.py) only *wakes* the hub; one pump thread then reads every capture above the last id
it has seen, once for all clients, and hands each client the ones of its bin. Ids grow in
commit order across processes (SQLite serialises writers), so reading ``id > last`` after a
wake can never skip one that commits later with a smaller id.

Each client has a bounded queue. A client that falls behind does not slow anything: its queue is
dropped and it is marked to resynchronise, and its own thread then pages through the database
from the last id it sent. The hub does no work while nobody listens.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from ..storage import Capture, CaptureStore

log = logging.getLogger(__name__)
PAGE = 500


class Subscriber:
    """One live client's mailbox."""

    def __init__(self, bin_name: str | None, max_queue: int) -> None:
        self.bin = bin_name
        self.max_queue = max_queue
        self.items: deque[Capture] = deque()
        self.resync = False
        self.event = threading.Event()
        self.lock = threading.Lock()

    def offer(self, captures: list[Capture]) -> None:
        mine = [c for c in captures if self.bin is None or c.bin == self.bin]
        if not mine:
            return
        with self.lock:
            if self.resync or len(self.items) + len(mine) > self.max_queue:
                self.items.clear()
                self.resync = True
            else:
                self.items.extend(mine)
        self.event.set()

    def take(self) -> tuple[list[Capture], bool]:
        """What arrived since the last call, and whether the client must resync from the DB."""
        with self.lock:
            items = list(self.items)
            self.items.clear()
            resync, self.resync = self.resync, False
            self.event.clear()
        return items, resync

    def wait(self, timeout: float) -> bool:
        return self.event.wait(timeout)


class LiveHub:
    def __init__(self, store: CaptureStore, max_queue: int = 1000) -> None:
        self.store = store
        self.max_queue = max_queue
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._last: int | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def notify(self, *_: Any) -> None:
        """Something was committed somewhere: cheap, callable from any thread."""
        if self._subs:
            self._wake.set()

    def subscribe(self, bin_name: str | None) -> Subscriber:
        sub = Subscriber(bin_name, self.max_queue)
        with self._lock:
            if self._last is None:
                self._last = self.store.max_id()
            self._subs.add(sub)
            if self._thread is None:
                self._thread = threading.Thread(target=self._pump, name="live-hub", daemon=True)
                self._thread.start()
        self._wake.set()  # catch up on anything committed while nobody listened
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    def close(self) -> None:
        self._stopped = True
        self._wake.set()

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
                last = self._last
            try:
                while True:
                    caps = self.store.after(last or 0, limit=PAGE)
                    if caps:
                        last = caps[-1].id
                        for sub in subs:
                            sub.offer(caps)
                    if len(caps) < PAGE:
                        break
            except Exception:
                log.exception("live hub could not read new captures")
            with self._lock:
                self._last = last
