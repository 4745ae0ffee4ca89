"""Saved diff ignore rules per bin, and the lookup "which delivery produced this capture?".

Both serve the diff / verify tools (``inspector/web/tools_api.py``). Rules are stored as given;
validating them is the caller's business (``diffing.diff_requests`` knows the syntax).

A capture made by our own mock provider (``POST /api/send`` to one of our bins, a replay, a
forward) has no column naming its delivery: the capture side never learns who sent it. The link
is found after the fact from the delivery log: an attempt whose URL is the capture's bin and
path, started before the capture arrived, and either answered with the capture's id (the
default bin answer ``{"ok": true, "id": N}``) or that sent exactly the capture's body with the
same identifying headers (signature, timestamp, delivery id …).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from .captures import Capture
from .db import Database

MAX_CANDIDATES = 200
"""Attempts looked at, newest first, when searching for the one that made a capture."""

# Headers a client or proxy sets on its own: they say nothing about which send a request was.
_GENERIC_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "accept", "accept-encoding",
    "user-agent", "keep-alive", "te", "upgrade", "expect",
})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BinRules:
    """``bin -> [rule, …]``; a bin without saved rules has ``[]``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, bin_name: str) -> list[str]:
        row = self.db.read(lambda c: c.execute(
            "SELECT rules FROM bin_ignore_rules WHERE bin = ?", (bin_name,)).fetchone())
        return list(json.loads(row[0])) if row else []

    def set(self, bin_name: str, rules: Sequence[str]) -> list[str]:
        """Replace the bin's rules (an empty list removes them); returns what is stored."""
        stored = [str(rule) for rule in rules]

        def run(conn: sqlite3.Connection) -> None:
            if not stored:
                conn.execute("DELETE FROM bin_ignore_rules WHERE bin = ?", (bin_name,))
                return
            conn.execute(
                "INSERT INTO bin_ignore_rules (bin, rules, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (bin) DO UPDATE SET rules = excluded.rules,"
                " updated_at = excluded.updated_at",
                (bin_name, json.dumps(stored, ensure_ascii=False), _now()))
        self.db.write(run)
        return stored


@dataclass(frozen=True)
class ProducingDelivery:
    """The delivery (and its attempt) whose request became a capture."""

    delivery_id: int
    attempt: int
    source: str                # send | replay | emit | forward
    vendor: str | None
    event: str | None
    scheme: str | None
    secret: str | None
    capture_id: int | None     # for a replay or forward: the capture it re-sent
    matched_by: str            # "response" (answered with the capture's id) | "request"

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id, "attempt": self.attempt, "source": self.source,
            "vendor": self.vendor, "event": self.event, "scheme": self.scheme,
            "capture_id": self.capture_id, "matched_by": self.matched_by,
        }


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _same_target(url: str, capture: Capture) -> bool:
    try:
        path = unquote(urlsplit(url).path)
    except ValueError:
        return False
    return path == unquote(f"/in/{capture.bin}{capture.path or ''}")


def _answered_with(response_body: bytes | None, capture_id: int) -> bool:
    if not response_body:
        return False
    try:
        data = json.loads(response_body)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("id") == capture_id \
        and not isinstance(data.get("id"), bool)


def _identifying(headers: Sequence[Sequence[str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered not in _GENERIC_HEADERS:
            out.setdefault(lowered, value)
    return out


def _sent_as_captured(sent_headers: Sequence[Sequence[str]], sent_body: bytes,
                      capture: Capture) -> bool:
    if sent_body != (capture.body or b""):
        return False
    sent = _identifying(sent_headers)
    if not sent:
        return False
    got = _identifying(capture.headers or [])
    return all(got.get(name) == value for name, value in sent.items())


def producing_delivery(db: Database, capture: Capture) -> ProducingDelivery | None:
    """The delivery attempt that produced ``capture`` (a full capture: headers and body), or
    ``None`` when it did not come from this server's provider (or the log was cleared)."""
    pattern = f"%/in/{_like_escape(capture.bin)}%"

    def run(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
        return conn.execute(
            "SELECT d.id, d.source, d.vendor, d.event, d.scheme, d.secret, d.capture_id,"
            " d.body, a.number, a.url, a.request_headers, a.request_body, a.response_body"
            " FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
            " WHERE a.url LIKE ? ESCAPE '\\' AND a.started_at <= ?"
            " ORDER BY a.started_at DESC, a.id DESC LIMIT ?",
            (pattern, capture.received_at, MAX_CANDIDATES)).fetchall()

    rows = db.read(run)
    fallback: ProducingDelivery | None = None
    for (delivery_id, source, vendor, event, scheme, secret, replayed, body, number, url,
         headers, request_body, response_body) in rows:
        if not _same_target(url, capture):
            continue
        found = ProducingDelivery(
            delivery_id=delivery_id, attempt=number, source=source, vendor=vendor,
            event=event, scheme=scheme, secret=secret, capture_id=replayed,
            matched_by="response")
        if _answered_with(bytes(response_body) if response_body is not None else None,
                          capture.id):
            return found
        sent_body = bytes(request_body if request_body is not None else body or b"")
        if fallback is None and _sent_as_captured(json.loads(headers), sent_body, capture):
            fallback = replace(found, matched_by="request")
    return fallback
