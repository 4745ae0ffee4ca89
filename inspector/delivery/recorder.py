"""Writes attempts to the database in batches, instead of one write per attempt.

A worker that has made an attempt hands its record here and takes the next delivery at once.
Records are written in one transaction per batch by
:meth:`DeliveryStore.record_attempts_later`, at most one batch every ``linger`` seconds (sooner
when ``max_batch`` records wait): a lone record goes at once, a busy engine's records gather.
One write per attempt was the largest cost of a delivery at concurrency 16: each write is a
hand-off to the writer thread, and each statement there gives the GIL back to the sixteen
workers and waits to win it again. Under load a record waits up to ``linger`` (50 ms) before
it is durable and the listeners (the UI, ``?wait=``) hear of it.

What a crash between an attempt and its batch's commit costs: the delivery is still leased
and pending in the database, so it is attempted again once the lease runs out (a webhook is
delivered at least once, as every vendor promises). ``close()`` writes what is gathered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from ..storage.deliveries import AttemptResult, Delivery, DeliveryStore

log = logging.getLogger(__name__)

Done = Callable[[Delivery | None, BaseException | None], None]
"""Called once the record is committed (or failed), on the writer thread: keep it short."""

LINGER = 0.05
MAX_BATCH = 256


class AttemptRecorder:
    """One per engine; its thread starts with the first record."""

    def __init__(self, store: DeliveryStore, *, linger: float = LINGER,
                 max_batch: int = MAX_BATCH) -> None:
        self.store = store
        self.linger = linger
        self.max_batch = max_batch
        self._pending: list[tuple[Delivery, str | None, AttemptResult, Done]] = []
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._closed = False
        self._urgent = False
        self._thread: threading.Thread | None = None

    def add(self, delivery: Delivery, token: str | None, result: AttemptResult,
            done: Done, *, urgent: bool = False) -> None:
        """Queue one attempt's record; ``done`` hears how it went once it is committed.

        ``urgent``: something waits for this commit to go on (the next delivery of a
        forwarding queue starts only once its head has settled): no lingering."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the attempt recorder is closed")
            self._pending.append((delivery, token, result, done))
            self._urgent = self._urgent or urgent
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delivery-recorder",
                                                daemon=True)
                self._thread.start()
            if len(self._pending) == 1 or len(self._pending) >= self.max_batch or urgent:
                self._ready.notify()

    def write_now(self, delivery: Delivery, token: str | None, result: AttemptResult,
                  done: Done) -> None:
        """One record written on the calling thread, waiting for its commit (after close:
        an attempt that outlived the engine's grace)."""
        self._write([(delivery, token, result, done)])

    def close(self, timeout: float = 10.0) -> None:
        """Write everything gathered so far and stop (waits up to ``timeout``)."""
        with self._lock:
            self._closed = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        last = 0.0  # when the previous batch was taken
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._ready.wait()
                if not self._pending:
                    return  # closed, nothing left
                # At most one batch per ``linger``: a lone record (an idle engine) is
                # written at once, a busy engine's records gather into batches.
                deadline = last + self.linger
                while (not self._closed and not self._urgent
                       and len(self._pending) < self.max_batch
                       and (left := deadline - time.monotonic()) > 0):
                    self._ready.wait(left)
                batch, self._pending = self._pending, []
                self._urgent = False
            last = time.monotonic()
            self._write(batch)

    def _write(self, batch: list[tuple[Delivery, str | None, AttemptResult, Done]]) -> None:
        try:
            future = self.store.record_attempts_later([(d, t, r) for d, t, r, _ in batch])
        except Exception as exc:  # noqa: BLE001 - the database is closed: tell every caller
            for *_, done in batch:
                _call(done, None, exc)
            return

        def settle(f: Future[list[Delivery | Exception]]) -> None:
            try:
                outcomes: list[Delivery | Exception] = f.result()
            except Exception as exc:  # noqa: BLE001 - the whole write failed
                outcomes = [exc] * len(batch)
            for (*_, done), outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, Exception):
                    _call(done, None, outcome)
                else:
                    _call(done, outcome, None)

        future.add_done_callback(settle)
        # One batch at a time: while it commits, the next one gathers (group commit).
        try:
            future.result(timeout=30)
        except Exception:  # noqa: BLE001 - reported to each caller by settle
            pass


def _call(done: Done, delivery: Delivery | None, exc: BaseException | None) -> None:
    try:
        done(delivery, exc)
    except Exception:  # a broken callback must not stop the other records
        log.exception("attempt record callback failed")
