"""Deliveries and their attempts: every SQL statement of the outbound side.

The delivery engine (inspector/delivery) decides *what* happens; this module only records it.
Scheduling across processes rests on one statement, :meth:`DeliveryStore.claim_due`: it moves
a due delivery's ``next_attempt_at`` forward by a lease and stamps the claimer's token in the
same write, so two engines on one file never make the same attempt, and an engine that dies
mid-attempt leaves a lease that simply expires.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .db import Database

log = logging.getLogger(__name__)

SOURCES = ("send", "replay", "emit", "forward")
STATUSES = ("pending", "delivered", "failed")
EXCERPT_BYTES = 4096

_SUMMARY = ("id, source, vendor, event, url, method, status, error, warnings, attempt_count,"
            " last_status, last_error, capture_id, redelivery_of, created_at, updated_at,"
            " settled_at, next_attempt_at")
_FULL = (_SUMMARY + ", url_params, headers, headers_mode, scheme, secret, msg_id, seed,"
         " overrides, content_type, body, policy, context, claimed_by")
_ATTEMPT = ("number, started_at, method, url, request_headers, request_body, response_status,"
            " response_headers, response_body, response_size, duration_ms, error, outcome")

Pairs = list[tuple[str, str]]

_MANY = 64
"""Most attempts one multi-row statement records (x 14 parameters: under SQLite's oldest
default limit of 999)."""


_INSERT_COLUMNS = (
    "source, vendor, event, url, method, url_params, headers, headers_mode, scheme, secret,"
    " msg_id, seed, overrides, content_type, body, status, error, warnings, policy,"
    " capture_id, redelivery_of, context, created_at, updated_at, settled_at,"
    " next_attempt_at, claimed_by")
_DELIVERY_VALUES = "(" + ",".join("?" * 27) + ")"
_MANY_DELIVERIES = 32
"""Most deliveries one INSERT carries (x 27 parameters, under 999)."""


def _chunk_sizes(n: int) -> list[int]:
    """``n`` as powers of two, largest first: a batch of any size then runs through a few
    statement texts that stay in the connection's statement cache."""
    return [1 << b for b in range(n.bit_length() - 1, -1, -1) if n >> b & 1]


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""One encoder: json.dumps with any option builds a new encoder per call, which shows in the
delivery benchmark (several documents per attempt)."""


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def utc_now() -> str:
    """The captures' timestamp format (``2024-01-15T10:30:00.123456Z``), made faster than
    strftime."""
    return datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def encode_body(body: bytes | None) -> tuple[str | None, str]:
    """Text when the bytes are UTF-8, else base64; the capture API's convention."""
    if body is None:
        return None, "utf-8"
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


@dataclass
class NewDelivery:
    """What the engine records before the first attempt."""

    source: str
    url: str
    method: str
    body: bytes
    policy: dict[str, Any]
    headers: Pairs = field(default_factory=list)
    headers_mode: str = "fixed"
    vendor: str | None = None
    event: str | None = None
    url_params: Pairs | None = None
    scheme: str | None = None
    secret: str | None = None
    msg_id: str | None = None
    seed: int | None = None
    overrides: dict[str, Any] | None = None
    content_type: str | None = None
    warnings: list[str] = field(default_factory=list)
    capture_id: int | None = None
    redelivery_of: int | None = None
    context: dict[str, Any] | None = None
    status: str = "pending"
    error: str | None = None
    next_attempt_at: str | None = None
    claimed_by: str | None = None


@dataclass
class Attempt:
    number: int
    started_at: str
    method: str
    url: str
    request_headers: Pairs
    request_body: bytes | None
    response_status: int | None
    response_headers: Pairs | None
    response_body: bytes | None
    response_size: int | None
    duration_ms: float
    error: str | None
    outcome: str  # delivered | retry | failed

    def to_dict(self, delivery_body: bytes | None = None) -> dict[str, Any]:
        body, enc = encode_body(self.request_body if self.request_body is not None
                                else delivery_body)
        response = None
        if self.response_status is not None:
            rbody, renc = encode_body(self.response_body)
            response = {
                "status": self.response_status, "headers": self.response_headers or [],
                "body": rbody, "body_encoding": renc, "size": self.response_size,
                "truncated": (self.response_size or 0) > len(self.response_body or b""),
            }
        return {
            "number": self.number, "started_at": self.started_at,
            "status_code": self.response_status, "error": self.error,
            "duration_ms": round(self.duration_ms, 2), "outcome": self.outcome,
            "request": {"method": self.method, "url": self.url,
                        "headers": self.request_headers, "body": body, "body_encoding": enc},
            "response": response,
        }


@dataclass
class Delivery:
    id: int
    source: str
    vendor: str | None
    event: str | None
    url: str
    method: str
    status: str
    error: str | None
    warnings: list[str]
    attempt_count: int
    last_status: int | None
    last_error: str | None
    capture_id: int | None
    redelivery_of: int | None
    created_at: str
    updated_at: str
    settled_at: str | None
    next_attempt_at: str | None
    # Only on full reads:
    url_params: Pairs | None = None
    headers: Pairs | None = None
    headers_mode: str | None = None
    scheme: str | None = None
    secret: str | None = None
    msg_id: str | None = None
    seed: int | None = None
    overrides: dict[str, Any] | None = None
    content_type: str | None = None
    body: bytes | None = None
    policy: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    claimed_by: str | None = None
    attempts: list[Attempt] | None = None

    @property
    def settled(self) -> bool:
        return self.status != "pending"

    def summary(self) -> dict[str, Any]:
        """The short form for lists and the live stream."""
        return {
            "id": self.id, "source": self.source, "vendor": self.vendor, "event": self.event,
            "url": self.url, "method": self.method, "status": self.status,
            "error": self.error, "warnings": self.warnings,
            "attempt_count": self.attempt_count, "last_status": self.last_status,
            "last_error": self.last_error, "capture_id": self.capture_id,
            "redelivery_of": self.redelivery_of, "created_at": self.created_at,
            "updated_at": self.updated_at, "settled_at": self.settled_at,
            # A leased attempt is running now; only a free pending delivery has a due time.
            "next_attempt_at": self.next_attempt_at if self.claimed_by is None else None,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.summary()
        body, enc = encode_body(self.body)
        data.update(
            url_params=self.url_params, headers=self.headers, headers_mode=self.headers_mode,
            scheme=self.scheme, secret=self.secret, msg_id=self.msg_id, seed=self.seed,
            overrides=self.overrides, content_type=self.content_type, body=body,
            body_encoding=enc, policy=self.policy, context=self.context,
            attempts=[a.to_dict(self.body) for a in self.attempts or []],
        )
        return data


@dataclass
class DeliveryPage:
    deliveries: list[Delivery]
    next: int | None


@dataclass
class AttemptResult:
    """An attempt as made, plus the delivery state it leads to (one write records both)."""

    attempt: Attempt
    status: str                      # the delivery's new status
    next_attempt_at: str | None      # when pending
    error: str | None = None         # the delivery's failure reason when failed
    keep_claim: bool = False         # the engine goes on at once with the same lease
    lease_until: str | None = None   # next_attempt_at while the claim is kept
    chained: int | None = None       # set on record: the next delivery of the queue, now
    #                                  leased to the same engine (queued deliveries only)


def _row_to_delivery(row: Sequence[Any], full: bool = False) -> Delivery:
    d = Delivery(*row[:8], warnings=json.loads(row[8]), attempt_count=row[9],
                 last_status=row[10], last_error=row[11], capture_id=row[12],
                 redelivery_of=row[13], created_at=row[14], updated_at=row[15],
                 settled_at=row[16], next_attempt_at=row[17])
    if full:
        (params, headers, d.headers_mode, d.scheme, d.secret, d.msg_id, d.seed, overrides,
         d.content_type, body, policy, context, d.claimed_by) = row[18:31]
        d.url_params = [tuple(p) for p in _loads(params)] if params else None
        d.headers = [tuple(h) for h in json.loads(headers)]
        d.overrides = _loads(overrides)
        d.body = bytes(body)
        d.policy = json.loads(policy)
        d.context = _loads(context)
    return d


def _row_to_attempt(row: Sequence[Any]) -> Attempt:
    return Attempt(
        number=row[0], started_at=row[1], method=row[2], url=row[3],
        request_headers=[tuple(h) for h in json.loads(row[4])],
        request_body=bytes(row[5]) if row[5] is not None else None,
        response_status=row[6],
        response_headers=[tuple(h) for h in json.loads(row[7])] if row[7] else None,
        response_body=bytes(row[8]) if row[8] is not None else None,
        response_size=row[9], duration_ms=row[10], error=row[11], outcome=row[12],
    )


def _only(ids: Iterable[int] | None) -> tuple[str, list[int]]:
    """An ``AND id IN (…)`` filter (a few ids: an engine that serves only its own sends)."""
    if ids is None:
        return "", []
    ids = [int(i) for i in ids]
    if not ids:
        return " AND 0", []
    return f" AND id IN ({','.join('?' * len(ids))})", ids


def _promote_queue(conn: sqlite3.Connection, queue: str, now: str,
                   lease: tuple[str, str] | None = None) -> int | None:
    """Make the head of ``queue`` (its earliest pending delivery) due now, if it waits; with
    ``lease`` (token, until) lease it at once to that engine. Returns the id so leased."""
    if lease is not None:
        row = conn.execute(
            "UPDATE deliveries SET next_attempt_at = ?, claimed_by = ? WHERE id = (SELECT id"
            " FROM deliveries WHERE queue = ? AND status = 'pending' ORDER BY id LIMIT 1)"
            " AND next_attempt_at IS NULL RETURNING id", (lease[1], lease[0], queue)).fetchone()
        return row[0] if row else None
    conn.execute(
        "UPDATE deliveries SET next_attempt_at = ? WHERE id = (SELECT id FROM deliveries"
        " WHERE queue = ? AND status = 'pending' ORDER BY id LIMIT 1)"
        " AND next_attempt_at IS NULL", (now, queue))
    return None


def _promote_after(conn: sqlite3.Connection, delivery_id: int, now: str,
                   lease: tuple[str, str] | None = None) -> int | None:
    """``delivery_id`` just settled: the next delivery of its queue (if any) is due now (or
    leased, see :func:`_promote_queue`)."""
    row = conn.execute("SELECT queue FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    if row and row[0]:
        return _promote_queue(conn, row[0], now, lease)
    return None


class DeliveryStore:
    """Delivery operations over a :class:`Database`; writes go through its single writer."""

    def __init__(self, db: Database, max_deliveries: int | None = None) -> None:
        self.db = db
        self.max_deliveries = max_deliveries
        self._settled_since_prune = 0
        self._gather_lock = threading.Lock()
        self._gathered: list[tuple[NewDelivery, Future[Delivery]]] = []

    # -- writes -------------------------------------------------------------------------------
    def create(self, new: NewDelivery) -> Delivery:
        """Record ``new``; returns once it is committed.

        Creates from many threads at once (sixteen API clients, an emit to many
        subscriptions) are gathered: the first one queues a write, and every create that
        arrives before the writer runs it joins it, as one multi-row INSERT. One write per
        create cost a writer hand-off and three statements each (see
        :meth:`record_attempts_later` for why statements are what counts)."""
        if new.source not in SOURCES:
            raise ValueError(f"unknown delivery source {new.source!r}")
        future: Future[Delivery] = Future()
        with self._gather_lock:
            self._gathered.append((new, future))
            first = len(self._gathered) == 1
        if first:
            taken: list[tuple[NewDelivery, Future[Delivery]]] = []
            try:
                job = self.db.submit(lambda conn: self._insert_gathered(conn, taken),
                                     background=False)
            except Exception as exc:  # the database is closed: fail every create waiting
                with self._gather_lock:
                    waiting, self._gathered = self._gathered, []
                for _, f in waiting:
                    f.set_exception(exc)
            else:
                job.add_done_callback(lambda f: self._answer_gathered(f, taken))
        return future.result(30)

    def _answer_gathered(self, job: Future[list[Delivery | Exception]],
                         taken: list[tuple[NewDelivery, Future[Delivery]]]) -> None:
        """After the gathered creates' commit, or its failure: answer each waiting create."""
        try:
            made = job.result()
        except Exception as exc:  # noqa: BLE001 - nothing was stored
            if not taken:  # the write failed before it took them: they are still gathered
                with self._gather_lock:
                    taken += self._gathered
                    self._gathered = []
            made = [exc] * len(taken)
        for (_, future), d in zip(taken, made, strict=True):
            if isinstance(d, Exception):
                future.set_exception(d)
            else:
                future.set_result(d)

    def _insert_gathered(self, conn: sqlite3.Connection,
                         taken: list[tuple[NewDelivery, Future[Delivery]]]
                         ) -> list[Delivery | Exception]:
        """Every create gathered so far (into ``taken``, for whoever answers them)."""
        with self._gather_lock:
            taken += self._gathered
            self._gathered = []
        news = [new for new, _ in taken]
        self._prune_if_due(conn)
        conn.execute("SAVEPOINT gathered")
        try:
            made: list[Delivery | Exception] = list(self._insert_many(conn, news))
        except Exception:  # noqa: BLE001 - find the one that fails, alone
            conn.execute("ROLLBACK TO gathered")
            made = []
            for new in news:
                conn.execute("SAVEPOINT one")
                try:
                    made.append(self._insert(conn, new))
                except Exception as exc:  # noqa: BLE001 - handed to its create
                    conn.execute("ROLLBACK TO one")
                    made.append(exc)
                conn.execute("RELEASE one")
        conn.execute("RELEASE gathered")
        self._count_settled(made)
        return made

    @classmethod
    def _insert_many(cls, conn: sqlite3.Connection, news: list[NewDelivery]
                     ) -> list[Delivery]:
        now = utc_now()
        out: list[Delivery] = []
        rest = news
        while rest:
            size = _chunk_sizes(min(len(rest), _MANY_DELIVERIES))[0]
            part, rest = rest[:size], rest[size:]
            args: list[Any] = []
            for new in part:
                args += cls._row(new, now)
            marks = ",".join([_DELIVERY_VALUES] * len(part))
            ids = sorted(r[0] for r in conn.execute(
                f"INSERT INTO deliveries ({_INSERT_COLUMNS}) VALUES {marks} RETURNING id",
                args))
            # AUTOINCREMENT hands one statement's rows consecutive ids, in VALUES order.
            if len(ids) != len(part) or ids[-1] - ids[0] != len(part) - 1:
                raise sqlite3.IntegrityError("multi-row insert returned unexpected ids")
            out += [cls._made(i, new, now) for i, new in zip(ids, part, strict=True)]
        return out

    @staticmethod
    def _row(new: NewDelivery, now: str) -> tuple[Any, ...]:
        pending = new.status == "pending"
        return (new.source, new.vendor, new.event, new.url, new.method,
                _dumps(new.url_params) if new.url_params is not None else None,
                _dumps(new.headers), new.headers_mode, new.scheme, new.secret, new.msg_id,
                new.seed, _dumps(new.overrides) if new.overrides is not None else None,
                new.content_type, new.body, new.status, new.error, _dumps(new.warnings),
                _dumps(new.policy), new.capture_id, new.redelivery_of,
                _dumps(new.context) if new.context is not None else None, now, now,
                None if pending else now, new.next_attempt_at if pending else None,
                new.claimed_by if pending else None)

    @staticmethod
    def _made(delivery_id: int, new: NewDelivery, now: str) -> Delivery:
        """The stored delivery, built here rather than read back (the hot path of a send)."""
        pending = new.status == "pending"
        return Delivery(
            id=delivery_id, source=new.source, vendor=new.vendor, event=new.event,
            url=new.url, method=new.method, status=new.status, error=new.error,
            warnings=list(new.warnings), attempt_count=0, last_status=None, last_error=None,
            capture_id=new.capture_id, redelivery_of=new.redelivery_of, created_at=now,
            updated_at=now, settled_at=None if pending else now,
            next_attempt_at=new.next_attempt_at if pending else None,
            url_params=new.url_params, headers=list(new.headers),
            headers_mode=new.headers_mode, scheme=new.scheme, secret=new.secret,
            msg_id=new.msg_id, seed=new.seed, overrides=new.overrides,
            content_type=new.content_type, body=new.body, policy=new.policy,
            context=new.context, claimed_by=new.claimed_by if pending else None)

    @classmethod
    def _insert(cls, conn: sqlite3.Connection, new: NewDelivery) -> Delivery:
        now = utc_now()
        cur = conn.execute(
            f"INSERT INTO deliveries ({_INSERT_COLUMNS}) VALUES {_DELIVERY_VALUES}",
            cls._row(new, now))
        return cls._made(cur.lastrowid, new, now)  # type: ignore[arg-type]

    def record_attempt(self, delivery: Delivery, token: str | None, result: AttemptResult
                       ) -> Delivery:
        """Store one attempt of ``delivery`` and its new state in one transaction; returns
        the delivery as it now stands (without its attempts)."""
        return self.db.write(lambda conn: self._record(conn, delivery, token, result),
                             background=False)

    def record_attempt_later(self, delivery: Delivery, token: str | None,
                             result: AttemptResult) -> Future[Delivery]:
        """:meth:`record_attempt` without waiting: the future resolves once committed."""
        return self.db.submit(lambda conn: self._record(conn, delivery, token, result),
                              background=False)

    @staticmethod
    def _record(conn: sqlite3.Connection, delivery: Delivery, token: str | None,
                result: AttemptResult) -> Delivery:
        a = result.attempt
        now = utc_now()
        pending = result.status == "pending"
        if pending and result.keep_claim:
            next_at, claimed = result.lease_until, token
        else:
            next_at, claimed = (result.next_attempt_at if pending else None), None
        settled_at = None if pending else now
        updated = conn.execute(
            "UPDATE deliveries SET status = ?, error = ?, attempt_count = ?, last_status = ?,"
            " last_error = ?, updated_at = ?, settled_at = ?, next_attempt_at = ?,"
            " claimed_by = ? WHERE id = ? AND status = 'pending'",
            (result.status, result.error, a.number, a.response_status, a.error, now,
             settled_at, next_at, claimed, delivery.id),
        ).rowcount
        if not updated:  # deleted, or cancelled while the attempt was under way
            return DeliveryStore._record_late(conn, delivery, token, result, now)
        DeliveryStore._insert_attempts(conn, [(delivery, token, result)])
        if not pending and (delivery.context or {}).get("queue"):
            lease = (token, result.lease_until) if token and result.lease_until else None
            result.chained = _promote_after(conn, delivery.id, now, lease)
        return DeliveryStore._recorded(delivery, result, now, next_at, claimed)

    @staticmethod
    def _record_late(conn: sqlite3.Connection, delivery: Delivery, token: str | None,
                     result: AttemptResult, now: str) -> Delivery:
        """The attempt of a delivery settled meanwhile (cancelled while it was under way):
        logged all the same, so what the target answered is on record, and counted, but the
        delivery keeps its settled status and error. LookupError when it was deleted."""
        a = result.attempt
        row = conn.execute(
            f"UPDATE deliveries SET attempt_count = MAX(attempt_count, ?), last_status = ?,"
            f" last_error = ?, updated_at = ? WHERE id = ? RETURNING {_FULL}",
            (a.number, a.response_status, a.error, now, delivery.id)).fetchone()
        if row is None:
            raise LookupError(f"no delivery with id {delivery.id}")
        DeliveryStore._insert_attempts(conn, [(delivery, token, result)])
        return _row_to_delivery(row, full=True)

    def record_attempts_later(self, items: Sequence[tuple[Delivery, str | None, AttemptResult]]
                              ) -> Future[list[Delivery | Exception]]:
        """Several attempts in one write: per item, the delivery as it now stands, or the
        exception that item met (``LookupError``: deleted or cancelled while its attempt was
        under way; that attempt is then not recorded).

        Why not one :meth:`record_attempt_later` each: every statement the writer runs lets
        go of the GIL and has to win it back from the delivery workers, which is most of what
        an attempt's record costs at concurrency 16. Here a batch is two statements
        (``_record_many``) whatever its size."""
        return self.db.submit(lambda conn: self._record_and_prune(conn, list(items)),
                              background=False)

    def _record_and_prune(self, conn: sqlite3.Connection,
                          items: list[tuple[Delivery, str | None, AttemptResult]]
                          ) -> list[Delivery | Exception]:
        # Before this batch's records: a delivery settling now is still pending here, so
        # nobody is told of a delivery that is already gone.
        self._prune_if_due(conn)
        out = self._record_many(conn, items)
        self._count_settled(out)
        return out

    def _count_settled(self, results: Iterable[Delivery | Exception]) -> None:
        """Settles (recorded, cancelled, refused at create) are what make deliveries
        prunable: once a tenth of the limit has settled, the writer's next delivery write
        prunes first. Writer thread only."""
        if self.max_deliveries is not None:
            self._settled_since_prune += sum(
                1 for d in results if isinstance(d, Delivery) and d.settled)

    def _prune_if_due(self, conn: sqlite3.Connection) -> None:
        if (self.max_deliveries is None
                or self._settled_since_prune < max(100, self.max_deliveries // 10)):
            return
        self._settled_since_prune = 0
        conn.execute("SAVEPOINT prune")
        try:
            self.prune(conn, self.max_deliveries)
        except sqlite3.Error:  # never at the cost of the write it precedes
            conn.execute("ROLLBACK TO prune")
            log.exception("pruning old deliveries failed")
        conn.execute("RELEASE prune")

    @staticmethod
    def prune(conn: sqlite3.Connection, keep: int, most: int | None = None) -> int:
        """Delete settled deliveries older than the newest ``keep`` (by id), except forwards
        whose capture is still kept, with their attempts (foreign key cascade), at most
        ``most`` of them (default: a fifth of
        ``keep``, so one pass never holds the writer long). Pending ones stay whatever their
        age: their retries are still to come. Returns how many went."""
        newest = conn.execute("SELECT MAX(id) FROM deliveries").fetchone()[0]
        if newest is None or newest <= keep:
            return 0
        # A forward belongs to its capture (its badge, its Forwarded section): it goes when
        # the capture goes (--max-captures), not before.
        return conn.execute(
            "DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d WHERE d.id <= ?"
            " AND d.status != 'pending' AND NOT (d.source = 'forward' AND EXISTS"
            " (SELECT 1 FROM captures c WHERE c.id = d.capture_id)) ORDER BY d.id LIMIT ?)",
            (newest - keep, most if most is not None else max(200, keep // 5))).rowcount

    @classmethod
    def _record_many(cls, conn: sqlite3.Connection,
                     items: list[tuple[Delivery, str | None, AttemptResult]]
                     ) -> list[Delivery | Exception]:
        out: list[Delivery | Exception | None] = [None] * len(items)
        simple: list[int] = []  # indexes recorded by the multi-row statements
        seen: set[int] = set()
        for i, (d, _, result) in enumerate(items):
            again = d.id in seen
            seen.add(d.id)
            if result.keep_claim or (d.context or {}).get("queue") or again:
                continue  # keeps its lease, promotes a queue, or a later record of one id:
            simple.append(i)  # one by one below, in order, after these
        now = utc_now()
        done: set[int] = set()
        conn.execute("SAVEPOINT many")
        try:
            for start in range(0, len(simple), _MANY):
                chunk = simple[start:start + _MANY]
                for size in _chunk_sizes(len(chunk)):
                    part, chunk = chunk[:size], chunk[size:]
                    done.update(cls._update_many(conn, [items[i] for i in part], now))
                    rows = [items[i] for i in part if items[i][0].id in done]
                    if rows:
                        cls._insert_attempts(conn, rows)
        except sqlite3.Error:  # e.g. an attempt recorded twice: find it one by one below
            conn.execute("ROLLBACK TO many")
            simple = []
        conn.execute("RELEASE many")
        for i in simple:
            d, _, result = items[i]
            if d.id in done:
                out[i] = cls._recorded(d, result, now, None, None)
            # else: settled or deleted meanwhile: the one-row path below tells which
        for i, (d, token, result) in enumerate(items):
            if out[i] is not None:
                continue
            conn.execute("SAVEPOINT record")  # alone: a failure here spoils no other record
            try:
                out[i] = cls._record(conn, d, token, result)
            except (LookupError, sqlite3.Error) as exc:
                conn.execute("ROLLBACK TO record")
                out[i] = exc
            conn.execute("RELEASE record")
        return out  # type: ignore[return-value]

    @staticmethod
    def _update_many(conn: sqlite3.Connection,
                     items: list[tuple[Delivery, str | None, AttemptResult]], now: str
                     ) -> list[int]:
        """The deliveries' new states (no kept lease), one statement; returns the ids found."""
        args: list[Any] = []
        for d, _, result in items:
            a = result.attempt
            pending = result.status == "pending"
            args += (d.id, result.status, result.error, a.number, a.response_status, a.error,
                     None if pending else now, result.next_attempt_at if pending else None)
        rows = ",".join(["(?,?,?,?,?,?,?,?)"] * len(items))
        return [r[0] for r in conn.execute(
            "UPDATE deliveries SET status = r.column2, error = r.column3,"
            " attempt_count = r.column4, last_status = r.column5, last_error = r.column6,"
            " updated_at = ?, settled_at = r.column7, next_attempt_at = r.column8,"
            f" claimed_by = NULL FROM (VALUES {rows}) AS r WHERE deliveries.id = r.column1"
            " AND deliveries.status = 'pending' RETURNING deliveries.id", (now, *args))]

    @staticmethod
    def _insert_attempts(conn: sqlite3.Connection,
                         items: list[tuple[Delivery, str | None, AttemptResult]]) -> None:
        args: list[Any] = []
        for d, _, result in items:
            a = result.attempt
            args += (d.id, a.number, a.started_at, a.method, a.url, _dumps(a.request_headers),
                     a.request_body, a.response_status,
                     _dumps(a.response_headers) if a.response_headers is not None else None,
                     a.response_body, a.response_size, a.duration_ms, a.error, a.outcome)
        rows = ",".join(["(?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(items))
        conn.execute(f"INSERT INTO delivery_attempts (delivery_id, {_ATTEMPT}) VALUES {rows}",
                     args)

    @staticmethod
    def _recorded(delivery: Delivery, result: AttemptResult, now: str,
                  next_at: str | None, claimed: str | None) -> Delivery:
        a = result.attempt
        pending = result.status == "pending"
        if not pending:
            next_at = None
        elif claimed is None:
            next_at = result.next_attempt_at
        # A shallow copy with the new state (dataclasses.replace re-runs __init__ over all
        # 31 fields: a visible share of the writer's time per attempt).
        out = copy.copy(delivery)
        out.status, out.error, out.attempt_count = result.status, result.error, a.number
        out.last_status, out.last_error, out.updated_at = a.response_status, a.error, now
        out.settled_at = None if pending else now
        out.next_attempt_at, out.claimed_by, out.attempts = next_at, claimed, None
        return out

    def claim_due(self, now: str, lease_until: str, token: str, limit: int,
                  only: Iterable[int] | None = None) -> list[int]:
        """Lease up to ``limit`` due pending deliveries to ``token``, earliest first
        (``only``: among these ids)."""
        where, args = _only(only)

        def run(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "UPDATE deliveries SET next_attempt_at = ?, claimed_by = ? WHERE id IN"
                " (SELECT id FROM deliveries WHERE status = 'pending'"
                f"  AND next_attempt_at <= ?{where} ORDER BY next_attempt_at, id LIMIT ?)"
                " RETURNING id",
                (lease_until, token, now, *args, limit),
            ).fetchall()
            return sorted(r[0] for r in rows)
        return self.db.write(run)

    def release(self, ids: Iterable[int], token: str, at: str) -> int:
        """Give leases back (an engine stopping before it could make their attempts)."""
        ids = list(ids)
        if not ids:
            return 0

        def run(conn: sqlite3.Connection) -> int:
            marks = ",".join("?" * len(ids))
            return conn.execute(
                f"UPDATE deliveries SET next_attempt_at = ?, claimed_by = NULL"
                f" WHERE id IN ({marks}) AND status = 'pending' AND claimed_by = ?",
                (at, *ids, token)).rowcount
        return self.db.write(run)

    def fail(self, delivery_id: int, error: str) -> Delivery | None:
        """Settle a pending delivery as failed without an attempt (e.g. its vendor vanished)."""
        def run(conn: sqlite3.Connection) -> Delivery | None:
            self._prune_if_due(conn)  # before: this one is still pending, so it stays
            now = utc_now()
            row = conn.execute(
                "UPDATE deliveries SET status = 'failed', error = ?, updated_at = ?,"
                " settled_at = ?, next_attempt_at = NULL, claimed_by = NULL"
                f" WHERE id = ? AND status = 'pending' RETURNING {_SUMMARY}",
                (error, now, now, delivery_id)).fetchone()
            if row is None:
                return None
            _promote_after(conn, delivery_id, now)
            failed = _row_to_delivery(row)
            self._count_settled([failed])
            return failed
        return self.db.write(run)

    def delete(self, delivery_id: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute("DELETE FROM deliveries WHERE id = ? RETURNING queue",
                               (delivery_id,)).fetchone()
            if row and row[0]:
                _promote_queue(conn, row[0], utc_now())
            return row is not None
        return self.db.write(run)

    def promote_stalled(self, now: str) -> int:
        """Give a due time to the head of every queue that has none (its predecessor settled
        or was deleted by a process that stopped before promoting it). Reads first: nearly
        always there is nothing to do, and then nothing is written."""
        heads_sql = (
            "SELECT d.id FROM deliveries d JOIN (SELECT MIN(id) AS id FROM deliveries"
            " WHERE status = 'pending' AND queue IS NOT NULL GROUP BY queue) h ON d.id = h.id"
            " WHERE d.next_attempt_at IS NULL")
        stalled = self.db.read(lambda c: [r[0] for r in c.execute(heads_sql)])
        if not stalled:
            return 0
        return self.db.write(lambda conn: conn.execute(
            f"UPDATE deliveries SET next_attempt_at = ? WHERE id IN ({heads_sql})",
            (now,)).rowcount)

    # -- reads --------------------------------------------------------------------------------
    def get(self, delivery_id: int, attempts: bool = True) -> Delivery | None:
        def run(conn: sqlite3.Connection) -> Delivery | None:
            row = conn.execute(f"SELECT {_FULL} FROM deliveries WHERE id = ?",
                               (delivery_id,)).fetchone()
            if row is None:
                return None
            d = _row_to_delivery(row, full=True)
            if attempts:
                d.attempts = [_row_to_attempt(r) for r in conn.execute(
                    f"SELECT {_ATTEMPT} FROM delivery_attempts WHERE delivery_id = ?"
                    " ORDER BY number", (delivery_id,))]
            return d
        return self.db.read(run)

    def list(self, limit: int = 50, before: int | None = None, status: str | None = None,
             vendor: str | None = None, source: str | None = None,
             capture_id: int | None = None) -> DeliveryPage:
        """Newest first, with an id cursor like the captures list."""
        clauses, args = [], []
        for column, value in (("status", status), ("vendor", vendor), ("source", source),
                              ("capture_id", capture_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if before is not None:
            clauses.append("id < ?")
            args.append(before)
        sql = f"SELECT {_SUMMARY}, claimed_by FROM deliveries"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit + 1)
        rows = self.db.read(lambda c: c.execute(sql, args).fetchall())
        out = []
        for r in rows[:limit]:
            d = _row_to_delivery(r)
            d.claimed_by = r[18]
            out.append(d)
        nxt = out[-1].id if len(rows) > limit and out else None
        return DeliveryPage(out, nxt)

    def next_due_at(self, only: Iterable[int] | None = None) -> str | None:
        """The earliest ``next_attempt_at`` of a pending delivery (leases included)."""
        where, args = _only(only)
        return self.db.read(lambda c: c.execute(
            f"SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'{where}",
            args).fetchone()[0])

    def count_attempts(self, delivery_ids: Iterable[int] | None = None) -> int:
        if delivery_ids is None:
            return self.db.read(lambda c: c.execute(
                "SELECT COUNT(*) FROM delivery_attempts").fetchone()[0])
        ids = list(delivery_ids)
        total = 0
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            total += self.db.read(lambda c, chunk=chunk, marks=marks: c.execute(
                f"SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id IN ({marks})",
                chunk).fetchone()[0])
        return total
