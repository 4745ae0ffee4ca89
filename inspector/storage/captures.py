"""Captures and bins: the SQL behind the capture URLs, the API and the live stream."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .db import Database

BIN_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
SUMMARY_COLUMNS = ("id, bin, method, path, query, content_type, size, received_at, remote_addr,"
                   " tls, status")


def utc_now() -> str:
    """ISO 8601 UTC with microseconds; sorts lexically in time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def header_value(headers: Sequence[Sequence[str]], name: str) -> str | None:
    low = name.lower()
    for key, value in headers:
        if key.lower() == low:
            return value
    return None


@dataclass
class NewCapture:
    """A request as it arrived, before it has an id."""

    bin: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    remote_addr: str | None
    received_at: str = field(default_factory=utc_now)
    tls: str | None = None

    @property
    def content_type(self) -> str | None:
        return header_value(self.headers, "content-type")


@dataclass
class Capture:
    id: int
    bin: str
    method: str
    path: str
    query: str
    content_type: str | None
    size: int
    received_at: str
    remote_addr: str | None
    tls: str | None
    status: int | None = None  # what the capture URL answered
    headers: list[list[str]] | None = None
    body: bytes | None = None

    def summary(self) -> dict[str, Any]:
        """The short form used by lists and the live stream (CONTRACT.md: summary)."""
        return {
            "id": self.id, "bin": self.bin, "method": self.method, "path": self.path,
            "query": self.query, "content_type": self.content_type, "size": self.size,
            "received_at": self.received_at, "status": self.status,
        }

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BinResponse:
    """What a bin answers. The default is decided by the capture layer (it needs the id)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    delay_ms: int = 0

    @classmethod
    def from_json(cls, text: str | None) -> BinResponse | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(status=data["status"], headers=data.get("headers") or {},
                   body=data.get("body"), delay_ms=data.get("delay_ms") or 0)


@dataclass
class Bin:
    name: str
    count: int
    pruned: int
    last_at: str | None
    created_at: str
    response: BinResponse | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "pruned": self.pruned,
                "last_at": self.last_at, "created_at": self.created_at,
                "response": asdict(self.response) if self.response else None}


@dataclass
class Stored:
    """What the writer returns for a new capture: it and the bin's configured answer."""

    capture: Capture
    response: BinResponse | None


@dataclass
class Page:
    captures: list[Capture]
    next: int | None


_N_SUMMARY = SUMMARY_COLUMNS.count(",") + 1


def _row_to_capture(row: sqlite3.Row | tuple, full: bool = False) -> Capture:
    cap = Capture(*row[:_N_SUMMARY])
    if full:
        cap.headers = json.loads(row[_N_SUMMARY])
        cap.body = bytes(row[_N_SUMMARY + 1])
    return cap


class CaptureStore:
    """Capture and bin operations over a :class:`Database`."""

    def __init__(self, db: Database, max_captures: int = 10_000) -> None:
        self.db = db
        self.max_captures = max_captures

    # -- writes -------------------------------------------------------------------------------
    def add(self, new: NewCapture) -> Stored:
        """Store one capture; returns once it is committed (group commit with its neighbours).

        The bin's configured response comes back from the same statement that counts the
        capture, so answering costs no extra read.
        """
        return self.db.write(lambda conn: self._insert(conn, new))

    def add_later(self, new: NewCapture) -> Future[Stored]:
        """:meth:`add` without blocking: the future resolves once the capture is committed
        (an event-loop server awaits it instead of parking a thread)."""
        return self.db.submit(lambda conn: self._insert(conn, new))

    def _insert(self, conn: sqlite3.Connection, new: NewCapture) -> Stored:
        # The bin first: its configured answer decides the status stored with the capture.
        row = conn.execute(
            "UPDATE bins SET count = count + 1, last_at = ? WHERE name = ?"
            " RETURNING count, response",
            (new.received_at, new.bin),
        ).fetchone()
        if row is None:
            conn.execute("INSERT INTO bins (name, created_at, count, last_at) VALUES (?,?,1,?)",
                         (new.bin, new.received_at, new.received_at))
            count, response = 1, None
        else:
            count, response = row[0], BinResponse.from_json(row[1])
        status = response.status if response else 200
        content_type = new.content_type
        headers_json = json.dumps(new.headers, ensure_ascii=False, separators=(",", ":"))
        cap_id = conn.execute(
            "INSERT INTO captures (bin, method, path, query, content_type, size, remote_addr,"
            " received_at, tls, status, headers, body) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (new.bin, new.method, new.path, new.query, content_type, len(new.body),
             new.remote_addr, new.received_at, new.tls, status, headers_json, new.body),
        ).lastrowid
        if count > self.max_captures:
            self._prune(conn, new.bin, count - self.max_captures)
        cap = Capture(cap_id, new.bin, new.method, new.path, new.query, content_type,
                      len(new.body), new.received_at, new.remote_addr, new.tls, status)
        return Stored(cap, response)

    @staticmethod
    def _prune(conn: sqlite3.Connection, bin_name: str, excess: int) -> None:
        deleted = conn.execute(
            "DELETE FROM captures WHERE id IN"
            " (SELECT id FROM captures WHERE bin = ? ORDER BY id LIMIT ?)",
            (bin_name, excess),
        ).rowcount
        conn.execute("UPDATE bins SET count = count - ?, pruned = pruned + ? WHERE name = ?",
                     (deleted, deleted, bin_name))

    def ensure_bin(self, name: str) -> None:
        self.db.write(lambda conn: conn.execute(
            "INSERT OR IGNORE INTO bins (name, created_at) VALUES (?, ?)", (name, utc_now())))

    def delete(self, capture_id: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute("DELETE FROM captures WHERE id = ? RETURNING bin",
                               (capture_id,)).fetchone()
            if row is None:
                return False
            conn.execute("UPDATE bins SET count = count - 1 WHERE name = ?", (row[0],))
            return True
        return self.db.write(run)

    def clear_bin(self, bin_name: str) -> int:
        def run(conn: sqlite3.Connection) -> int:
            n = conn.execute("DELETE FROM captures WHERE bin = ?", (bin_name,)).rowcount
            conn.execute("UPDATE bins SET count = 0 WHERE name = ?", (bin_name,))
            return n
        return self.db.write(run)

    def delete_bin(self, bin_name: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM captures WHERE bin = ?", (bin_name,))
            return conn.execute("DELETE FROM bins WHERE name = ?", (bin_name,)).rowcount > 0
        return self.db.write(run)

    def set_response(self, bin_name: str, response: BinResponse | None) -> None:
        text = json.dumps(asdict(response)) if response else None

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO bins (name, created_at) VALUES (?, ?)",
                         (bin_name, utc_now()))
            conn.execute("UPDATE bins SET response = ? WHERE name = ?", (text, bin_name))
        self.db.write(run)

    # -- reads --------------------------------------------------------------------------------
    def get(self, capture_id: int) -> Capture | None:
        row = self.db.read(lambda c: c.execute(
            f"SELECT {SUMMARY_COLUMNS}, headers, body FROM captures WHERE id = ?",
            (capture_id,)).fetchone())
        return _row_to_capture(row, full=True) if row else None

    def get_summary(self, capture_id: int) -> Capture | None:
        row = self.db.read(lambda c: c.execute(
            f"SELECT {SUMMARY_COLUMNS} FROM captures WHERE id = ?", (capture_id,)).fetchone())
        return _row_to_capture(row) if row else None

    def response_for(self, bin_name: str) -> BinResponse | None:
        row = self.db.read(lambda c: c.execute(
            "SELECT response FROM bins WHERE name = ?", (bin_name,)).fetchone())
        return BinResponse.from_json(row[0]) if row else None

    def bins(self) -> list[Bin]:
        rows = self.db.read(lambda c: c.execute(
            "SELECT name, count, pruned, last_at, created_at, response FROM bins"
            " ORDER BY COALESCE(last_at, created_at) DESC").fetchall())
        return [Bin(r[0], r[1], r[2], r[3], r[4], BinResponse.from_json(r[5])) for r in rows]

    def get_bin(self, name: str) -> Bin | None:
        r = self.db.read(lambda c: c.execute(
            "SELECT name, count, pruned, last_at, created_at, response FROM bins"
            " WHERE name = ?", (name,)).fetchone())
        return Bin(r[0], r[1], r[2], r[3], r[4], BinResponse.from_json(r[5])) if r else None

    def list(self, bin_name: str | None = None, limit: int = 50, before: int | None = None,
             where: str = "", params: Sequence[Any] = ()) -> Page:
        """Newest first. ``before`` is an id cursor, so new arrivals never shift a page."""
        clauses, args = [], []
        if bin_name:
            clauses.append("bin = ?")
            args.append(bin_name)
        if before is not None:
            clauses.append("id < ?")
            args.append(before)
        if where:
            clauses.append(where)
            args.extend(params)
        sql = f"SELECT {SUMMARY_COLUMNS} FROM captures"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit + 1)
        rows = self.db.read(lambda c: c.execute(sql, args).fetchall())
        caps = [_row_to_capture(r) for r in rows[:limit]]
        nxt = caps[-1].id if len(rows) > limit and caps else None
        return Page(caps, nxt)

    @staticmethod
    def _after_sql(after_id: int, bin_name: str | None, limit: int) -> tuple[str, list[Any]]:
        sql = f"SELECT {SUMMARY_COLUMNS} FROM captures WHERE id > ?"
        args: list[Any] = [after_id]
        if bin_name:
            sql += " AND bin = ?"
            args.append(bin_name)
        return sql + " ORDER BY id LIMIT ?", [*args, limit]

    def after(self, after_id: int, bin_name: str | None = None, limit: int = 500
              ) -> list[Capture]:
        """Captures with id above ``after_id``, oldest first: the live stream's source."""
        sql, args = self._after_sql(after_id, bin_name, limit)
        rows = self.db.read(lambda c: c.execute(sql, args).fetchall())
        return [_row_to_capture(r) for r in rows]

    def after_with_horizon(self, after_id: int, bin_name: str | None, limit: int
                           ) -> tuple[list[Capture], int]:
        """Like :meth:`after`, plus the id up to which the answer is complete: the newest id
        in the same snapshot when the page was not full, so a client filtered to a quiet bin
        can still move its cursor past other bins' captures."""
        def run(conn: sqlite3.Connection) -> tuple[list[Capture], int]:
            conn.execute("BEGIN")
            try:
                rows = conn.execute(*self._after_sql(after_id, bin_name, limit)).fetchall()
                caps = [_row_to_capture(r) for r in rows]
                if len(caps) == limit:
                    return caps, caps[-1].id
                top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM captures").fetchone()[0]
                return caps, max(top, after_id)
            finally:
                conn.execute("COMMIT")
        return self.db.read(run)

    def max_id(self) -> int:
        return self.db.read(lambda c: c.execute(
            "SELECT COALESCE(MAX(id), 0) FROM captures").fetchone()[0])

    def count(self, bin_name: str | None = None) -> int:
        if bin_name:
            return self.db.read(lambda c: c.execute(
                "SELECT COUNT(*) FROM captures WHERE bin = ?", (bin_name,)).fetchone()[0])
        return self.db.read(lambda c: c.execute("SELECT COUNT(*) FROM captures").fetchone()[0])
