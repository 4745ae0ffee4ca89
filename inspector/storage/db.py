"""The SQLite database: one writer thread with group commit, pooled readers, migrations.

Why one writer: SQLite allows a single writer at a time, and a commit (an fsync-free WAL append
with ``synchronous=NORMAL``, still a syscall or two) dominates the cost of a small insert. Request
threads hand their write to the writer and wait; the writer takes everything queued, runs it in
one transaction and commits once, so N concurrent captures cost one commit. A caller is released
only after the commit, which is what lets the capture URL answer 2xx only for durable requests.

Several server processes may share one file: each has its own writer. SQLite's own lock would
serialise them, but a writer that finds it taken polls with sleeps of up to 100 ms; so writers
first take an exclusive ``flock`` on a lock file beside the database, which the kernel hands
over the moment it is released. Batches of two processes then alternate without idle gaps.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
MAX_BATCH = 256
WRITER_AUTOCHECKPOINT = 250
"""WAL pages between the writer's checkpoints (SQLite's default is 1000). Each checkpoint
fsyncs and stalls every capture waiting on the writer; smaller ones stall for less.
Measured on serve (wrk c=16, 8 s, alternating runs): p99 median ~17 ms at 250 against ~23 ms
at 1000 at the same rate; 8000 made p99 85-105 ms, 100 cost throughput."""


class StorageError(RuntimeError):
    """A database problem worth showing to the user as it is."""


SYNC_MODES = ("normal", "off")


def _connect(path: Path, sync: str = "normal") -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
        check_same_thread=False,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA synchronous = {'OFF' if sync == 'off' else 'NORMAL'}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every schema file shipped in storage/schema, in order."""
    out = []
    for entry in resources.files("inspector.storage").joinpath("schema").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            out.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


def migrate(path: Path) -> int:
    """Bring the schema up to date; safe to call from several processes at once.

    Each applied file is recorded by version in ``schema_migrations``, and every file not
    recorded there is applied in order: a migration merged with a lower number than one
    already applied (parallel branches) still runs. ``PRAGMA user_version`` mirrors the
    highest version for tools that look at it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path)
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StorageError(f"{path}: could not switch to WAL mode (got {mode})")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER"
                         " PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL"
                         " DEFAULT CURRENT_TIMESTAMP)")
            applied = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            if not applied:  # a database from before this table: user_version says how far
                legacy = conn.execute("PRAGMA user_version").fetchone()[0]
                applied = {v for v, _, _ in migrations() if v <= legacy}
                conn.executemany("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                                 [(v, n) for v, n, _ in migrations() if v in applied])
            for version, name, sql in migrations():
                if version not in applied:
                    log.info("applying migration %s", name)
                    # executescript would commit our transaction; run statements one by one.
                    for statement in _split_sql(sql):
                        conn.execute(statement)
                    conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                                 (version, name))
            current = max([v for v, _, _ in migrations()], default=0)
            conn.execute(f"PRAGMA user_version = {current}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return current
    finally:
        conn.close()


def _split_sql(script: str) -> list[str]:
    statements, buf = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


class _Job:
    __slots__ = ("fn", "future", "background")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], background: bool) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()
        self.background = background


class Database:
    """Owns the connections and the single writer of one SQLite file.

    ``after_commit`` is called on the writer thread with the list of results of each committed
    batch; the layer above uses it to wake live clients, so storage never imports the hub.
    """

    def __init__(self, path: Path | str, sync: str = "normal") -> None:
        """``sync``: ``normal`` (SQLite syncs the WAL and the file at checkpoints) or ``off``
        (never; see the ``sync`` setting: each checkpoint's fsync otherwise stalls the single
        writer, and every capture waiting on it, for 10-30 ms on a busy disk)."""
        if sync not in SYNC_MODES:
            raise StorageError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}")
        self.path = Path(path)
        self.sync = sync
        migrate(self.path)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._commit_hooks: list[Callable[[list[Any]], None]] = []
        self._background: Callable[[sqlite3.Connection], bool] | None = None
        self._background_due = False
        self._closed = False
        self._closing = threading.Lock()
        self._writer_conn = _connect(self.path, sync)
        self._writer_conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT}")
        self._lock_fd = os.open(str(self.path) + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
        self._writer = threading.Thread(target=self._write_loop, name="sqlite-writer",
                                        daemon=True)
        self._writer.start()

    # -- reading ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A pooled read connection; threads come and go (Werkzeug), connections stay.

        After :meth:`close` a connection is closed when it is given back, never while a
        thread (a websocket still finishing, say) is using it: closing an SQLite connection
        under a running statement crashes the process."""
        try:
            conn = self._readers.get_nowait()
        except queue.Empty:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only = ON")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if self._closed:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            else:
                self._readers.put(conn)

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self.reader() as conn:
            return fn(conn)

    # -- writing ------------------------------------------------------------------------------
    def on_commit(self, hook: Callable[[list[Any]], None]) -> None:
        self._commit_hooks.append(hook)

    def set_background(self, step: Callable[[sqlite3.Connection], bool]) -> None:
        """Work the writer does only when no write is waiting (e.g. search indexing), one
        ``step`` per transaction; a step returns whether more is waiting. Requests never
        wait behind more than one step."""
        self._background = step
        self._background_due = True

    def submit(self, fn: Callable[[sqlite3.Connection], T], *, background: bool = True
               ) -> Future[T]:
        """Queue ``fn`` for the writer; the future resolves once it is committed.

        ``background=False``: this write gives the background step nothing to do (it adds
        no capture), so it does not schedule one; a delivery's writes, at hundreds a second,
        would otherwise each be followed by an empty indexing transaction."""
        job = _Job(fn, background)
        with self._closing:  # never queued behind the writer's stop mark: it would not run
            if self._closed:
                raise StorageError("database is closed")
            self._queue.put(job)
        return job.future

    def write(self, fn: Callable[[sqlite3.Connection], T], timeout: float | None = 30, *,
              background: bool = True) -> T:
        """Run ``fn`` in the writer's next transaction and return once it is committed."""
        return self.submit(fn, background=background).result(timeout)

    def _write_loop(self) -> None:
        conn = self._writer_conn
        while True:
            if self._background_due:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    self._run_background(conn)
                    continue
            else:
                job = self._queue.get()
            if job is None:
                break
            batch = [job]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run_batch(conn, batch)
            if stop:
                break
        conn.close()

    def _run_background(self, conn: sqlite3.Connection) -> None:
        assert self._background is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            more = self._background(conn)
            conn.execute("COMMIT")
        except Exception:
            log.exception("background write step failed")
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            more = False
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        self._background_due = more

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, bool, Any]] = []
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                # A savepoint per job: one bad job fails alone, the batch still commits.
                conn.execute("SAVEPOINT job")
                try:
                    result = job.fn(conn)
                except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((job, False, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((job, True, result))
            conn.execute("COMMIT")
        except BaseException as exc:  # the commit itself failed: nobody's write is durable
            log.exception("write batch failed")
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(StorageError(f"write failed: {exc}"))
            return
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        if self._background is not None and any(job.background for job in batch):
            self._background_due = True
        committed = [result for _, ok, result in outcomes if ok]
        for hook in self._commit_hooks:
            try:
                hook(committed)
            except Exception:  # a broken listener must never lose or delay a write
                log.exception("commit hook failed")
        for job, ok, result in outcomes:
            if ok:
                job.future.set_result(result)
            else:
                job.future.set_exception(result)

    def close(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._writer.join(timeout=10)
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)
        while True:  # the idle readers; those in use close when given back (see reader)
            try:
                conn = self._readers.get_nowait()
            except queue.Empty:
                break
            with contextlib.suppress(sqlite3.Error):
                conn.close()
