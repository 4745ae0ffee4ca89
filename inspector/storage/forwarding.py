"""Forwarding rules per bin, and the forward deliveries written with their capture.

A capture of a bin with rules and its forward deliveries are written in one transaction
(:func:`insert_capture_with_forwards`), so a committed capture always has its forwards: none
is lost to a crash between two writes, and delivery ids follow capture order across
processes. Forwards to one target form a queue (``deliveries.queue``): only its head is due;
the delivery engine promotes the next one when the head settles (storage/deliveries.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any

from .captures import CaptureStore, NewCapture, Stored, utc_now
from .db import Database
from .deliveries import Delivery, DeliveryStore, NewDelivery

__all__ = ["ForwardRulesStore", "insert_capture_with_forwards"]


class ForwardRulesStore:
    """``bin -> rules document`` (as validated by inspector/forwarding.py), plus a version
    number that moves on every change."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def version(self) -> int:
        return self.db.read(lambda c: c.execute(
            "SELECT version FROM forward_version WHERE id = 1").fetchone()[0])

    def all(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """(version, every bin's rules) read together."""
        def run(c: sqlite3.Connection) -> tuple[int, dict[str, dict[str, Any]]]:
            c.execute("BEGIN")
            try:
                version = c.execute(
                    "SELECT version FROM forward_version WHERE id = 1").fetchone()[0]
                rules = {r[0]: json.loads(r[1]) for r in c.execute(
                    "SELECT bin, rules FROM forward_rules")}
            finally:
                c.execute("COMMIT")
            return version, rules
        return self.db.read(run)

    def get(self, bin_name: str) -> dict[str, Any] | None:
        row = self.db.read(lambda c: c.execute(
            "SELECT rules FROM forward_rules WHERE bin = ?", (bin_name,)).fetchone())
        return json.loads(row[0]) if row else None

    def set(self, bin_name: str, rules: dict[str, Any] | None) -> None:
        """Replace a bin's rules (None or no targets: remove them)."""
        text = json.dumps(rules, ensure_ascii=False) if rules and rules.get("targets") else None

        def run(conn: sqlite3.Connection) -> None:
            if text is None:
                conn.execute("DELETE FROM forward_rules WHERE bin = ?", (bin_name,))
            else:
                conn.execute(
                    "INSERT INTO forward_rules (bin, rules, updated_at) VALUES (?,?,?)"
                    " ON CONFLICT (bin) DO UPDATE SET rules = excluded.rules,"
                    " updated_at = excluded.updated_at", (bin_name, text, utc_now()))
            conn.execute("UPDATE forward_version SET version = version + 1 WHERE id = 1")
        self.db.write(run)

    def deliveries_for(self, capture_id: int) -> list[Delivery]:
        """The capture's forward deliveries (redeliveries included), oldest first."""
        page = DeliveryStore(self.db).list(limit=1000, source="forward", capture_id=capture_id)
        return list(reversed(page.deliveries))

    def statuses(self, capture_ids: Iterable[int]) -> dict[int, str]:
        """A badge per capture: ``delivered`` (every target has a delivered forward),
        ``failed`` (one target's forwards all failed), ``pending``; captures without
        forwards are left out."""
        return {cap: b["status"] for cap, b in self.badges(capture_ids).items()}

    def badges(self, capture_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """:meth:`statuses` with what the list's badge shows: per capture ``status``,
        ``state`` (``pending`` split into ``retrying`` once an attempt failed), ``code`` (the
        app's last HTTP status), ``error`` (the last attempt's error), ``attempts`` and
        ``targets``. Per target (forward URL) the delivered forward counts if there is one,
        else the newest pending one, else the newest."""
        ids = [int(i) for i in capture_ids][:1000]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.read(lambda c: c.execute(
            "SELECT capture_id, url, status, attempt_count, last_status, last_error"
            " FROM deliveries WHERE source = 'forward'"
            f" AND capture_id IN ({marks}) ORDER BY id", ids).fetchall())
        rank = {"delivered": 2, "pending": 1, "failed": 0}
        per: dict[int, dict[str, tuple[Any, ...]]] = {}
        for row in rows:  # oldest first: a later forward of the same rank replaces
            targets = per.setdefault(row[0], {})
            best = targets.get(row[1])
            if best is None or rank[row[2]] >= rank[best[2]]:
                targets[row[1]] = row
        out: dict[int, dict[str, Any]] = {}
        for cap, targets in per.items():
            chosen = list(targets.values())  # in the order the targets were first forwarded
            states = [r[2] for r in chosen]
            status = ("failed" if "failed" in states else "pending" if "pending" in states
                      else "delivered")
            shown = next(r for r in chosen if r[2] == status)
            state = "retrying" if status == "pending" and any(
                r[2] == "pending" and r[3] > 0 for r in chosen) else status
            out[cap] = {"status": status, "state": state, "code": shown[4],
                        "error": shown[5], "attempts": sum(r[3] for r in chosen),
                        "targets": len(chosen)}
        return out

    def lease_queue_head(self, delivery_id: int, token: str, lease_until: str,
                         now: str) -> int | None:
        """Re-send now: lease the head of ``delivery_id``'s queue (the delivery itself when
        it has no queue) to the engine ``token`` if it is pending and not being attempted,
        so that engine attempts it at once instead of at its next retry time. Returns the
        id so leased (None: nothing pending, or an attempt is under way)."""
        def run(conn: sqlite3.Connection) -> int | None:
            row = conn.execute("SELECT queue FROM deliveries WHERE id = ?",
                               (delivery_id,)).fetchone()
            if row is None:
                return None
            head = delivery_id
            if row[0]:
                first = conn.execute(
                    "SELECT id FROM deliveries WHERE queue = ? AND status = 'pending'"
                    " ORDER BY id LIMIT 1", (row[0],)).fetchone()
                if first is None:
                    return None
                head = first[0]
            leased = conn.execute(
                "UPDATE deliveries SET next_attempt_at = ?, claimed_by = ? WHERE id = ?"
                " AND status = 'pending' AND (claimed_by IS NULL OR next_attempt_at <= ?)"
                " RETURNING id", (lease_until, token, head, now)).fetchone()
            return leased[0] if leased else None
        return self.db.write(run)


def insert_capture_with_forwards(db: Database, captures: CaptureStore, new: NewCapture,
                                 forwards: Sequence[tuple[NewDelivery, str]], token: str,
                                 lease_until: str) -> tuple[Stored, list[Delivery]]:
    """Store ``new`` and one forward delivery per ``(delivery, queue)`` in one transaction.

    A forward whose queue has nothing pending is the head: it is leased to ``token`` at once
    (the caller's engine makes its first attempt now). The others wait (no due time) until the
    delivery ahead of them settles.
    """
    return db.write(_capture_with_forwards(captures, new, forwards, token, lease_until))


def insert_capture_with_forwards_later(
        db: Database, captures: CaptureStore, new: NewCapture,
        forwards: Sequence[tuple[NewDelivery, str]], token: str, lease_until: str,
) -> Future[tuple[Stored, list[Delivery]]]:
    """:func:`insert_capture_with_forwards` without blocking: resolves once committed."""
    return db.submit(_capture_with_forwards(captures, new, forwards, token, lease_until))


def _capture_with_forwards(captures: CaptureStore, new: NewCapture,
                           forwards: Sequence[tuple[NewDelivery, str]], token: str,
                           lease_until: str
                           ) -> Callable[[sqlite3.Connection], tuple[Stored, list[Delivery]]]:
    def run(conn: sqlite3.Connection) -> tuple[Stored, list[Delivery]]:
        stored = captures._insert(conn, new)
        out = []
        for nd, queue in forwards:
            nd.capture_id = stored.capture.id
            busy = conn.execute(
                "SELECT 1 FROM deliveries WHERE queue = ? AND status = 'pending' LIMIT 1",
                (queue,)).fetchone()
            nd.next_attempt_at, nd.claimed_by = (None, None) if busy else (lease_until, token)
            d = DeliveryStore._insert(conn, nd)
            conn.execute("UPDATE deliveries SET queue = ? WHERE id = ?", (queue, d.id))
            out.append(d)
        return stored, out
    return run
