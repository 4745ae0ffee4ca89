"""The delivery engine: records deliveries, makes their attempts, retries on schedule.

Threads: a pool of ``workers`` daemon threads makes attempts (one blocking HTTP request each,
through one shared connection pool, ``sender.Client``), and one scheduler thread hands them the
deliveries whose next attempt is due. The database is the schedule: a retry is a row with
``status = 'pending'`` and a ``next_attempt_at``, so pending retries survive a restart and the
scheduler picks them up on start. A delivery is *leased* before its attempt (see
``DeliveryStore.claim_due``), so several engines on one database (gunicorn workers) never make
the same attempt twice, and an engine that dies mid-attempt only delays it by the lease.

Every write goes through the database's single writer; ``listeners`` are called with the
delivery's summary after each committed change (created, attempt recorded, settled), which is
where the layer above pushes ``{"type": "delivery", …}`` to live clients.
"""

from __future__ import annotations

import logging
import queue
import random
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from ..storage.captures import Capture
from ..storage.db import Database
from ..storage.deliveries import Attempt as StoredAttempt
from ..storage.deliveries import (
    AttemptResult,
    Delivery,
    DeliveryPage,
    DeliveryStore,
    NewDelivery,
)
from . import build, sender
from .build import ReplayError
from .policy import RetryPolicy
from .recorder import AttemptRecorder
from .requests import attempt_request
from .targets import OwnServer, TargetRefused, check_url, https_rule, own_ports

log = logging.getLogger(__name__)
Listener = Callable[[dict[str, Any]], None]

SCHEDULER_POLL = 1.0
"""Longest nap of the scheduler: other processes' deliveries and expired leases are noticed
within this."""
LEASE_MARGIN = 30.0
SCHEDULER_LEASE = 120.0
"""How long a claimed delivery stays ours: longer than any attempt (vendors' timeouts are at
most 30 s), short enough that a crashed engine's deliveries are soon picked up elsewhere."""
MAX_TIMEOUT = SCHEDULER_LEASE - LEASE_MARGIN
"""Attempt timeouts are capped here so an attempt never outlives its lease."""
QUEUE_SWEEP = 5.0
"""How often the scheduler looks for a queue whose head lost its due time (a process that
settled or deleted the delivery ahead of it stopped first; see ``promote_stalled``)."""
CLOSE_GRACE = 2.0
"""On close, attempts under way get this long to finish; the others are handed back."""


def iso(ts: float) -> str:
    """Epoch seconds as stored (``2024-01-15T10:30:00.123456Z``, sorts as text)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def from_iso(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


class DeliveryEngine:
    """Sends deliveries for one database. ``start()`` runs the scheduler; ``close()`` stops.

    ``max_deliveries``: keep about this many deliveries; older settled ones are pruned with
    their attempts as new ones settle (None: keep everything)."""

    def __init__(self, db: Database, *, catalog: Any = None, retry_scale: float = 1.0,
                 strict_vendor_rules: bool = False, own: OwnServer | None = None,
                 workers: int = 16, ssl_context: ssl.SSLContext | None = None,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time,
                 max_deliveries: int | None = None) -> None:
        self.db = db
        self.store = DeliveryStore(db, max_deliveries=max_deliveries)
        self.retry_scale = max(0.0, float(retry_scale))
        self.strict_vendor_rules = strict_vendor_rules
        self.own = own
        self.workers = max(1, workers)
        self.listeners: list[Listener] = []
        self.token = secrets.token_hex(8)
        self._catalog = catalog
        self._rng = rng or random.Random()
        self._clock = clock
        self._client = sender.make_client(ssl_context=ssl_context, pool_size=self.workers)
        self._recorder = AttemptRecorder(self.store)
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self._settle = threading.Condition()  # wait() sleeps on it; notified on changes
        self._waiting = 0
        self._wake = threading.Event()
        self._starved = False  # the scheduler saw due work but no idle worker
        self._fresh: dict[int, Delivery] = {}  # just created here: no need to read it back
        self._stopping = False
        self.released = threading.Event()  # release_waiters(): the server is stopping
        self._threads: list[threading.Thread] = []
        self._scheduler: threading.Thread | None = None
        self._only: set[int] | None = None
        self._swept_at = 0.0

    @classmethod
    def from_config(cls, db: Database, config: Any, **kwargs: Any) -> DeliveryEngine:
        """An engine for a server: its retry scale, vendor rules and own host/ports."""
        kwargs.setdefault("retry_scale", config.retry_scale)
        kwargs.setdefault("strict_vendor_rules", config.strict_vendor_rules)
        kwargs.setdefault("max_deliveries", config.max_deliveries)
        kwargs.setdefault("own", OwnServer(config.host, own_ports(config)))
        return cls(db, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            from ..provider.catalog import default_catalog

            self._catalog = default_catalog()
        return self._catalog

    def start(self, *, own_only: bool = False) -> DeliveryEngine:
        """Start the scheduler, which first picks up every due delivery. (The workers start
        with the first delivery, so a server that never sends has no idle pool.)

        ``own_only``: retry only the deliveries this engine created (the CLI's ``send``,
        which must not take over a server's pending retries in a shared database).
        """
        if self._scheduler is not None:
            return self
        self._only = set() if own_only else None
        self._scheduler = threading.Thread(target=self._schedule, name="delivery-scheduler",
                                           daemon=True)
        self._scheduler.start()
        return self

    def close(self) -> None:
        """Stop; attempts under way get a short grace, and every lease not used is handed
        back so a restart (or another process) makes those attempts at once."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        if self._scheduler is not None:
            self._scheduler.join(timeout=5)
        with self._lock:
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        deadline = time.monotonic() + CLOSE_GRACE
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self._recorder.close()  # attempts made are written before their leases go back
        with self._lock:
            leftover = set(self._inflight)
        try:
            self.store.release(leftover, self.token, iso(self._clock()))
        except Exception:  # the database may already be closed
            log.debug("could not release leases", exc_info=True)
        self._client.close()
        with self._settle:
            self._settle.notify_all()

    def release_waiters(self) -> None:
        """The server is stopping: every :meth:`wait` answers now, with the delivery as it
        stands (pending ones go on after a restart), rather than holding its client until
        the server's graceful-shutdown timeout cuts the connection. Whoever paces work
        by the engine (a scenario run) watches ``released`` and stops."""
        self.released.set()
        with self._settle:
            self._settle.notify_all()

    def __enter__(self) -> DeliveryEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_own_port(self, port: int) -> None:
        if self.own is not None:
            self.own.add_port(port)

    # -- creating deliveries ----------------------------------------------------------------------
    def send(self, vendor: str, event: str, url: str, *, seed: int | None = None,
             method: str | None = None, secret: str | None = None,
             overrides: Mapping[str, object] | None = None, source: str = "send",
             timeout: float | None = None, extra_headers: Sequence[tuple[str, str]] = (),
             context: Mapping[str, Any] | None = None, shared: dict[str, Any] | None = None,
             batch: int | None = None, policy: RetryPolicy | None = None,
             rendered: Any = None) -> Delivery:
        """Render ``event`` as ``vendor`` sends it and deliver it to ``url``.

        Raises the provider's errors (unknown vendor/event, bad override or method) and
        :class:`TargetRefused` before anything is stored. A vendor rule broken by ``url``
        (https only) becomes a warning, or with ``strict_vendor_rules`` a failed delivery
        with no attempt. ``rendered``: a body already rendered for this vendor and event
        (e.g. one event emitted to several subscriptions); seed, overrides and method are
        then ignored.
        """
        from ..provider.render import render

        v = self.catalog.vendor(vendor)
        url = check_url(url, self.own)
        if rendered is None:
            rendered = render(v, event, seed=seed, overrides=overrides, method=method,
                              shared=shared, batch=batch)
        elif rendered.vendor.id != v.id or rendered.event != v.event(event).name:
            raise ValueError("rendered is for another vendor or event")
        policy = policy or RetryPolicy.from_vendor(v, self.retry_scale, timeout)
        new = build.vendor_delivery(v, rendered, url, policy=policy, secret=secret,
                                    overrides=overrides, source=source,
                                    extra_headers=extra_headers, context=context, batch=batch)
        return self._submit(new, (v.name, v.https_only))

    def replay(self, capture: Capture, url: str, *, resign: bool = False,
               secret: str | None = None, scheme: str | None = None,
               body: bytes | None = None, headers: Sequence[Sequence[str]] | None = None,
               policy: RetryPolicy | None = None, source: str = "replay") -> Delivery:
        """Send a stored capture again, byte for byte (same method, headers, body).

        The capture's query string is appended when ``url`` has none (GET deliveries carry
        their data there). With ``resign`` the signature headers are re-made at each attempt
        with a fresh timestamp (``signing.resign``); ``scheme`` defaults to the one the
        capture's headers show, ``secret`` the demo secret of the vendor that signs that way
        (with a warning saying so).
        """
        new = build.replay_delivery(
            capture, check_url(url, self.own), catalog=self.catalog, resign=resign,
            secret=secret, scheme=scheme, body=body, headers=headers,
            policy=policy or RetryPolicy(scale=self.retry_scale), source=source,
            timestamp=int(self._clock()))
        return self.submit(new)

    def redeliver(self, delivery_id: int) -> Delivery:
        """The same request again as a new delivery (same body and message id; fresh
        signature timestamps and delivery ids), with its own attempts."""
        old = self.store.get(delivery_id, attempts=False)
        if old is None:
            raise LookupError(f"no delivery with id {delivery_id}")
        check_url(old.url, self.own)
        rule = None
        if old.vendor and old.headers_mode == "vendor":
            v = self.catalog.vendor(old.vendor)
            rule = (v.name, v.https_only)
        new = build.redelivery(old, scale=self.retry_scale)
        return self.submit(new, vendor_rule=rule)

    def cancel(self, delivery_id: int) -> Delivery:
        """Stop a pending delivery: it settles as failed, with no further attempt (a forward
        to a target that stays down would otherwise retry for ever). An attempt under way
        finishes and is logged, but the delivery stays cancelled; a forwarding queue goes on
        with its next delivery at once (so that one may arrive before the cancelled one's
        attempt has finished).

        Raises LookupError (no such delivery) or ValueError (already settled)."""
        # Waiting in memory for a worker: that worker must read it again, not use this copy.
        self._fresh.pop(delivery_id, None)
        failed = self.store.fail(delivery_id, "cancelled")
        if failed is None:  # not pending: say why
            d = self.store.get(delivery_id, attempts=False)
            if d is None:
                raise LookupError(f"no delivery with id {delivery_id}")
            raise ValueError(f"delivery {delivery_id} is already {d.status}")
        self._changed_state(failed)
        self._wake.set()  # the next delivery of its queue, if any, is due now
        got = self.store.get(delivery_id)
        return got if got is not None else failed

    def submit(self, new: NewDelivery, vendor_rule: tuple[str, bool] | None = None
               ) -> Delivery:
        """Record ``new`` and start its first attempt at once (leased to this engine).

        The entry point for other sources (emit, forward): they build the NewDelivery.
        """
        check_url(new.url, self.own)
        return self._submit(new, vendor_rule)

    def _submit(self, new: NewDelivery, vendor_rule: tuple[str, bool] | None) -> Delivery:
        """:meth:`submit` for a URL already checked (``send`` checks it before rendering)."""
        if self._stopping:
            raise RuntimeError("the delivery engine is stopped")
        if vendor_rule is not None:
            problem = https_rule(vendor_rule[0], vendor_rule[1], new.url)
            if problem and self.strict_vendor_rules:
                new.status = "failed"
                new.error = problem + " (refused: --strict-vendor-rules is on)"
            elif problem:
                new.warnings.append(problem + "; sent anyway (--strict-vendor-rules is off)")
        now = self._clock()
        if new.status == "pending":
            new.next_attempt_at = iso(now + float(new.policy["timeout"]) + LEASE_MARGIN)
            new.claimed_by = self.token
        d = self.store.create(new)
        if self._only is not None:
            with self._lock:
                self._only.add(d.id)
        self._changed_state(d)
        if d.status == "pending":
            self._fresh[d.id] = d
            self._enqueue(d.id)
        return d

    def adopt(self, deliveries: Sequence[Delivery], *, hold: Sequence[int] = ()) -> None:
        """Deliveries recorded by another writer (forwards, written with their capture):
        tell the listeners, and start the first attempt of those leased to this engine,
        except the ``hold`` ones (the caller makes that attempt itself: ``attempt_now``)."""
        if self._stopping:
            return
        for d in deliveries:
            self._changed_state(d)
            if d.status == "pending" and d.claimed_by == self.token and d.id not in hold:
                self._fresh[d.id] = d
                self._enqueue(d.id)

    def attempt_now(self, d: Delivery, *, keep: int = sender.DRAIN_LIMIT
                    ) -> sender.Outcome | None:
        """Make the next attempt of ``d`` (leased to this engine) on the calling thread and
        return what the target answered, body kept raw up to ``keep`` bytes (a proxy answers
        its client with it). Recorded like any other attempt; a retry goes on as usual.
        None when the delivery is not ours to attempt."""
        if self._stopping or d.status != "pending" or d.claimed_by != self.token:
            return None
        policy = RetryPolicy.from_dict(d.policy or {})
        number = d.attempt_count + 1
        started = self._clock()
        req = attempt_request(d, number=number, timestamp=int(started))
        out = sender.attempt(self._client, req.method, req.url, req.headers, req.body,
                             min(policy.timeout, MAX_TIMEOUT), keep=keep, raw=True)
        kept = out.excerpt
        if kept is not None and len(kept) > sender.EXCERPT_BYTES:
            out.excerpt = kept[:sender.EXCERPT_BYTES]
        result = self._decide(d, policy, number, started, req.body, out)
        out.excerpt = kept
        if result.keep_claim:  # retry at once: a worker takes it from here, lease kept
            self.store.record_attempt_later(d, self.token, result).add_done_callback(
                lambda f: self._adopt_retry(f))
        else:
            self._record_later(d, result)
        return out

    def _adopt_retry(self, future: Future[Delivery]) -> None:
        try:
            updated = future.result()
        except Exception:
            log.exception("could not record a delivery attempt")
            return
        self._changed_state(updated)
        if updated.status == "pending" and updated.claimed_by == self.token:
            self._enqueue(updated.id)

    # -- reading and waiting ---------------------------------------------------------------------
    def get(self, delivery_id: int) -> Delivery | None:
        return self.store.get(delivery_id)

    def list(self, **kwargs: Any) -> DeliveryPage:
        return self.store.list(**kwargs)

    def wait(self, delivery_id: int, timeout: float | None = None, *,
             first_attempt: bool = False) -> Delivery | None:
        """Block until the delivery is settled or ``timeout`` passes (None: its policy's
        worst case); returns it with its attempts either way (None if it does not exist).
        ``first_attempt``: return as soon as one attempt is recorded (what comes next is
        sent in order after it, as a scenario's steps are)."""
        with self._settle:
            self._waiting += 1
        try:
            d = self.store.get(delivery_id, attempts=False)
            if d is None:
                return None
            if timeout is None:
                timeout = RetryPolicy.from_dict(d.policy or {}).worst_case_seconds() + 5
            deadline = time.monotonic() + timeout
            while not d.settled and not (first_attempt and d.attempt_count > 0):
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping or self.released.is_set():
                    break
                with self._settle:
                    # Another process may settle it (gunicorn workers): poll as well.
                    self._settle.wait(min(left, 0.25))
                d = self.store.get(delivery_id, attempts=False)
                if d is None:
                    return None
        finally:
            with self._settle:
                self._waiting -= 1
        return self.store.get(delivery_id)

    # -- the machinery ---------------------------------------------------------------------------
    def _enqueue(self, delivery_id: int) -> None:
        with self._lock:
            self._inflight.add(delivery_id)
            if not self._threads and not self._stopping:
                for i in range(self.workers):
                    t = threading.Thread(target=self._work, name=f"delivery-{i}", daemon=True)
                    t.start()
                    self._threads.append(t)
        self._queue.put(delivery_id)

    def _changed_state(self, d: Delivery) -> None:
        if self._waiting:  # nobody waiting is the common case: skip the lock
            with self._settle:
                self._settle.notify_all()
        if self.listeners:
            summary = d.summary()
            for listener in list(self.listeners):
                try:
                    listener(summary)
                except Exception:  # a broken listener must never stop deliveries
                    log.exception("delivery listener failed")

    def _schedule(self) -> None:
        while not self._stopping:
            nap = SCHEDULER_POLL
            try:
                nap = self._schedule_once()
            except Exception:
                log.exception("delivery scheduler failed; retrying")
            self._wake.wait(nap)
            self._wake.clear()

    def _schedule_once(self) -> float:
        """Claim what is due (as many as there are idle workers); return how long to nap."""
        now = self._clock()
        with self._lock:
            only = sorted(self._only) if self._only is not None else None
        if only is None and now - self._swept_at >= QUEUE_SWEEP:
            self._swept_at = now
            self.store.promote_stalled(iso(now))
        due = self.store.next_due_at(only)
        if due is None:
            return SCHEDULER_POLL
        wait = from_iso(due) - now
        if wait > 0:
            return min(wait, SCHEDULER_POLL)
        with self._lock:
            idle = self.workers - len(self._inflight)
        if idle <= 0:
            self._starved = True  # the next worker to finish wakes us
            return SCHEDULER_POLL
        ids = self.store.claim_due(iso(now), iso(now + SCHEDULER_LEASE), self.token, idle,
                                   only)
        for delivery_id in ids:
            self._enqueue(delivery_id)
        return 0.0 if len(ids) == idle else SCHEDULER_POLL

    def _work(self) -> None:
        while True:
            delivery_id = self._queue.get()
            if delivery_id is None or self._stopping:
                return
            try:
                while self._attempt(delivery_id) and not self._stopping:
                    pass
            except Exception:
                log.exception("delivery %s: attempt failed unexpectedly", delivery_id)
            finally:
                if not self._stopping:
                    with self._lock:
                        self._inflight.discard(delivery_id)
                if self._starved:
                    self._starved = False
                    self._wake.set()

    def _vendor_for(self, d: Delivery) -> Any:
        if d.headers_mode != "vendor" or not d.vendor:
            return None
        return self.catalog.vendors.get(d.vendor)

    def _attempt(self, delivery_id: int) -> bool:
        """Make the next attempt of a delivery leased to us. True: go again at once."""
        d = self._fresh.pop(delivery_id, None) or self.store.get(delivery_id, attempts=False)
        if d is None or d.status != "pending" or d.claimed_by != self.token:
            return False
        policy = RetryPolicy.from_dict(d.policy or {})
        number = d.attempt_count + 1
        started = self._clock()
        try:
            req = attempt_request(d, number=number, timestamp=int(started),
                                  vendor=self._vendor_for(d))
        except Exception as exc:  # noqa: BLE001 - e.g. the vendor's fixture was removed
            failed = self.store.fail(delivery_id, f"cannot build the request: {exc}")
            if failed is not None:
                self._changed_state(failed)
            return False
        out = sender.attempt(self._client, req.method, req.url, req.headers, req.body,
                             min(policy.timeout, MAX_TIMEOUT))
        if self._stopping and out.error is not None:
            return False  # cut off by shutdown: not the target's fault; the lease is released
        result = self._decide(d, policy, number, started, req.body, out)
        if not result.keep_claim:
            # The worker moves on; the record is written with the other workers' in a few
            # milliseconds (see recorder.py), and listeners hear of it once it is durable.
            self._record_later(d, result)
            return False
        try:
            updated = self.store.record_attempt(d, self.token, result)
        except LookupError:
            return False
        self._changed_state(updated)
        return True

    def _record_later(self, d: Delivery, result: AttemptResult) -> None:
        try:
            self._recorder.add(d, self.token, result,
                               lambda updated, exc: self._recorded(updated, exc, result),
                               urgent=bool((d.context or {}).get("queue")))
        except RuntimeError:  # the recorder is closed (an attempt that outlived close's
            # grace): written at once, as the lease may already be handed back
            self._recorder.write_now(d, self.token, result,
                                     lambda updated, exc: self._recorded(updated, exc, result))

    def _recorded(self, updated: Delivery | None, exc: BaseException | None,
                  result: AttemptResult) -> None:
        """After an attempt's record is committed (on the writer thread: keep it short)."""
        if exc is not None or updated is None:
            if not isinstance(exc, LookupError):  # LookupError: deleted meanwhile
                log.error("could not record a delivery attempt: %s", exc)
            return
        self._changed_state(updated)
        chained = result.chained
        if chained is not None and not self._stopping:
            self._enqueue(chained)  # a queue's head settled: the next one, leased to us
        elif updated.status == "pending" or (updated.context or {}).get("queue"):
            # The scheduler may be napping past this retry's time, or (a queue's head
            # settled) the next delivery of the queue is due now.
            self._wake.set()

    def _decide(self, d: Delivery, policy: RetryPolicy, number: int, started: float,
                body: bytes, out: sender.Outcome) -> AttemptResult:
        ok = out.error is None and out.status is not None and 200 <= out.status < 300
        retry = not ok and policy.should_retry(out.status if out.error is None else None)
        delay = policy.delay_before(number + 1, self._rng) if retry else None
        what = out.error or f"HTTP {out.status}"
        if ok:
            status, outcome, error = "delivered", "delivered", None
        elif not retry:
            status, outcome = "failed", "failed"
            error = (f"HTTP {out.status} is final: {policy.name or 'the sender'} does not "
                     f"retry it")
        elif delay is None:
            status, outcome = "failed", "failed"
            error = f"gave up after {number} attempt{'s' * (number != 1)} (last: {what})"
        else:
            status, outcome, error = "pending", "retry", None
        attempt = StoredAttempt(
            number=number, started_at=iso(started), method=d.method, url=out.url,
            request_headers=out.sent_headers,
            request_body=None if body == d.body else body,
            response_status=out.status, response_headers=out.headers,
            response_body=out.excerpt, response_size=out.size,
            duration_ms=out.duration_ms, error=out.error, outcome=outcome,
        )
        now = self._clock()
        keep = status == "pending" and delay is not None and delay <= 0
        return AttemptResult(
            attempt=attempt, status=status, error=error,
            next_attempt_at=iso(now + delay) if delay is not None else None,
            keep_claim=keep, lease_until=iso(now + policy.timeout + LEASE_MARGIN),
        )


__all__ = ["DeliveryEngine", "ReplayError", "TargetRefused", "iso"]
