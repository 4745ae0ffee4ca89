"""Webhook subscriptions and the deliveries made to them: every SQL statement of that side.

The domain rules (ids, secrets, validation, matching, pausing) live in ``inspector.subscriptions``;
this module only records. A subscription's health (consecutive failures, counts, paused) moves
when a delivery made to it settles: :meth:`SubscriptionStore.link` and
:meth:`SubscriptionStore.settle_later` may run in either order, the counters move once both
are known (exactly once per delivery).
"""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from .db import Database
from .deliveries import utc_now

_COLS = ("id, vendor, scope, url, events, active, description, secret, options, warnings,"
         " pause_after, paused_at, consecutive_failures, delivered_count, failed_count,"
         " last_delivery_at, last_outcome, created_at, updated_at")
RECENT_WINDOW = 20
"""How many of a subscription's newest deliveries its listed health counts."""
UPDATABLE = frozenset({"url", "events", "active", "description", "secret", "options",
                       "warnings", "pause_after", "paused_at", "consecutive_failures"})


@dataclass
class Subscription:
    id: str
    vendor: str
    url: str
    events: list[str]
    scope: str = ""
    active: bool = True
    description: str | None = None
    secret: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pause_after: int | None = None
    paused_at: str | None = None
    consecutive_failures: int = 0
    delivered_count: int = 0
    failed_count: int = 0
    last_delivery_at: str | None = None
    last_outcome: str | None = None
    created_at: str = ""
    updated_at: str = ""

    @property
    def paused(self) -> bool:
        return self.paused_at is not None

    @property
    def receiving(self) -> bool:
        """Active and not paused: emitted events reach it."""
        return self.active and not self.paused

    def health(self) -> dict[str, Any]:
        return {
            "state": ("paused" if self.paused else "active" if self.active else "inactive"),
            "consecutive_failures": self.consecutive_failures,
            "delivered": self.delivered_count, "failed": self.failed_count,
            "last_delivery_at": self.last_delivery_at, "last_outcome": self.last_outcome,
            "paused_at": self.paused_at,
        }


@dataclass
class LogEntry:
    delivery_id: int
    subscription_id: str
    event: str | None
    event_id: str | None
    kind: str | None
    created_at: str | None
    outcome: str | None


def _row(r: sqlite3.Row | tuple) -> Subscription:
    (sid, vendor, scope, url, events, active, description, secret, options, warnings,
     pause_after, paused_at, fails, delivered, failed, last_at, last_outcome, created,
     updated) = r
    return Subscription(
        id=sid, vendor=vendor, scope=scope, url=url, events=json.loads(events),
        active=bool(active), description=description, secret=secret,
        options=json.loads(options or "{}"), warnings=json.loads(warnings or "[]"),
        pause_after=pause_after, paused_at=paused_at, consecutive_failures=fails,
        delivered_count=delivered, failed_count=failed, last_delivery_at=last_at,
        last_outcome=last_outcome, created_at=created, updated_at=updated)


def _encode(name: str, value: Any) -> Any:
    if name in ("events", "options", "warnings"):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if name == "active":
        return 1 if value else 0
    return value


class SubscriptionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- subscriptions ----------------------------------------------------------------------
    def create(self, sub: Subscription) -> Subscription:
        now = utc_now()
        sub.created_at = sub.created_at or now
        sub.updated_at = now

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO subscriptions (id, vendor, scope, url, events, active, description,"
                " secret, options, warnings, pause_after, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (sub.id, sub.vendor, sub.scope, sub.url, _encode("events", sub.events),
                 _encode("active", sub.active), sub.description, sub.secret,
                 _encode("options", sub.options), _encode("warnings", sub.warnings),
                 sub.pause_after, sub.created_at, sub.updated_at))

        self.db.write(write)
        return sub

    def get(self, sub_id: str) -> Subscription | None:
        def read(conn: sqlite3.Connection) -> Subscription | None:
            r = conn.execute(f"SELECT {_COLS} FROM subscriptions WHERE id = ?",
                             (sub_id,)).fetchone()
            return _row(r) if r else None

        return self.db.read(read)

    def list(self, vendor: str | None = None, scope: str | None = None) -> list[Subscription]:
        where, args = [], []
        if vendor is not None:
            where.append("vendor = ?")
            args.append(vendor)
        if scope is not None:
            where.append("scope = ?")
            args.append(scope)
        sql = f"SELECT {_COLS} FROM subscriptions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, id"
        return self.db.read(lambda conn: [_row(r) for r in conn.execute(sql, args)])

    def update(self, sub_id: str, **changes: Any) -> Subscription | None:
        bad = set(changes) - UPDATABLE
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")

        def write(conn: sqlite3.Connection) -> Subscription | None:
            if changes:
                sets = ", ".join(f"{k} = ?" for k in changes)
                conn.execute(f"UPDATE subscriptions SET {sets}, updated_at = ? WHERE id = ?",
                             [*(_encode(k, v) for k, v in changes.items()), utc_now(), sub_id])
            r = conn.execute(f"SELECT {_COLS} FROM subscriptions WHERE id = ?",
                             (sub_id,)).fetchone()
            return _row(r) if r else None

        return self.db.write(write)

    def delete(self, sub_id: str) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM subscriptions WHERE id = ?", (sub_id,))
            conn.execute("DELETE FROM subscription_deliveries WHERE subscription_id = ?",
                         (sub_id,))
            return cur.rowcount > 0

        return self.db.write(write)

    # -- deliveries made to subscriptions ---------------------------------------------------
    def link(self, delivery_id: int, sub_id: str, event: str, event_id: str | None,
             kind: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO subscription_deliveries (delivery_id, subscription_id, event,"
                " event_id, kind, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (delivery_id) DO UPDATE SET subscription_id = excluded"
                ".subscription_id, event = excluded.event, event_id = excluded.event_id,"
                " kind = excluded.kind, created_at = excluded.created_at",
                (delivery_id, sub_id, event, event_id, kind, utc_now()))
            _count(conn, delivery_id)

        self.db.write(write)

    def settle_later(self, delivery_id: int, outcome: str, at: str | None) -> Future[None]:
        """Record a settled delivery's outcome without waiting: safe to call from the writer
        thread (the delivery engine's listeners run there)."""
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO subscription_deliveries (delivery_id, outcome) VALUES (?, ?)"
                " ON CONFLICT (delivery_id) DO UPDATE SET outcome = excluded.outcome",
                (delivery_id, outcome))
            _count(conn, delivery_id, at)

        return self.db.submit(write)

    def logs(self, sub_id: str, page: int = 1, limit: int = 50) -> tuple[list[LogEntry], int]:
        """Newest first."""
        def read(conn: sqlite3.Connection) -> tuple[list[LogEntry], int]:
            total = conn.execute("SELECT COUNT(*) FROM subscription_deliveries"
                                 " WHERE subscription_id = ?", (sub_id,)).fetchone()[0]
            rows = conn.execute(
                "SELECT delivery_id, subscription_id, event, event_id, kind, created_at, outcome"
                " FROM subscription_deliveries WHERE subscription_id = ?"
                " ORDER BY delivery_id DESC LIMIT ? OFFSET ?",
                (sub_id, limit, (page - 1) * limit)).fetchall()
            return [LogEntry(*r) for r in rows], total

        return self.db.read(read)

    def recent(self, sub_ids: list[str], window: int = RECENT_WINDOW
               ) -> dict[str, dict[str, Any]]:
        """Per subscription, its newest ``window`` deliveries as they stand now (pending ones
        included, which the counters only see once settled) and the newest one: the health a
        list of subscriptions shows. One indexed query per subscription, in one read.

        A delivery pruned meanwhile (``--max-deliveries``; only settled ones are) still
        counts, by the outcome its log row kept, so the window does not shrink."""
        def read(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
            out = {}
            for sid in sub_ids:
                rows = conn.execute(
                    "SELECT s.delivery_id, COALESCE(d.status, CASE s.outcome"
                    " WHEN 'delivered' THEN 'delivered' ELSE 'failed' END),"
                    " d.last_status, d.last_error, d.attempt_count, COALESCE(d.event, s.event),"
                    " COALESCE(d.created_at, s.created_at), d.settled_at, d.id IS NULL"
                    " FROM subscription_deliveries s LEFT JOIN deliveries d"
                    " ON d.id = s.delivery_id WHERE s.subscription_id = ?"
                    " AND (d.id IS NOT NULL OR s.outcome IS NOT NULL)"  # gone, fate unknown
                    " ORDER BY s.delivery_id DESC LIMIT ?",
                    (sid, window)).fetchall()
                counts = {"delivered": 0, "failed": 0, "pending": 0}
                for r in rows:
                    if r[1] in counts:
                        counts[r[1]] += 1
                last = None
                if rows:
                    did, status, code, error, attempts, event, created, settled, gone = rows[0]
                    started = conn.execute("SELECT MAX(started_at) FROM delivery_attempts"
                                           " WHERE delivery_id = ?", (did,)).fetchone()[0]
                    last = {"id": did, "status": status, "status_code": code, "error": error,
                            "attempt_count": attempts, "event": event, "created_at": created,
                            "last_attempt_at": started, "settled_at": settled,
                            "pruned": bool(gone)}
                out[sid] = {"window": window, "count": len(rows), **counts,
                            "last_delivery": last}
            return out

        return self.db.read(read)

    def is_linked(self, delivery_id: int) -> bool:
        return self.db.read(lambda conn: conn.execute(
            "SELECT 1 FROM subscription_deliveries WHERE delivery_id = ?"
            " AND subscription_id IS NOT NULL", (delivery_id,)).fetchone() is not None)


def _count(conn: sqlite3.Connection, delivery_id: int, at: str | None = None) -> None:
    """Move the subscription's counters once the delivery's subscription and outcome are both
    known; pause it after ``pause_after`` consecutive failures."""
    r = conn.execute("SELECT subscription_id, outcome FROM subscription_deliveries"
                     " WHERE delivery_id = ? AND counted = 0 AND subscription_id IS NOT NULL"
                     " AND outcome IS NOT NULL", (delivery_id,)).fetchone()
    if r is None:
        return
    sub_id, outcome = r
    conn.execute("UPDATE subscription_deliveries SET counted = 1 WHERE delivery_id = ?",
                 (delivery_id,))
    if outcome == "cancelled":  # stopped by the user: neither a delivery nor a failure
        return
    now = at or utc_now()
    if outcome == "delivered":
        conn.execute("UPDATE subscriptions SET consecutive_failures = 0,"
                     " delivered_count = delivered_count + 1, last_delivery_at = ?,"
                     " last_outcome = 'delivered' WHERE id = ?", (now, sub_id))
        return
    conn.execute("UPDATE subscriptions SET consecutive_failures = consecutive_failures + 1,"
                 " failed_count = failed_count + 1, last_delivery_at = ?,"
                 " last_outcome = 'failed' WHERE id = ?", (now, sub_id))
    conn.execute("UPDATE subscriptions SET paused_at = ?, updated_at = ? WHERE id = ?"
                 " AND paused_at IS NULL AND pause_after IS NOT NULL"
                 " AND consecutive_failures >= pause_after", (now, now, sub_id))
