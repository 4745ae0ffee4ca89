"""Search over captures: the SQL behind ``GET /api/captures?q=`` (syntax: inspector/query.py).

The index is the contentless FTS5 table ``captures_fts`` (schema/002_search.sql), one row per
capture with the capture's id as rowid. Each clause of a query becomes

* an exact SQL condition on ``captures`` (method, bin, path glob, header via json_each, …), and
* where it can, an FTS5 expression that matches a superset of those rows, so the index narrows
  the candidates before the exact check reads any row.

When the query has such an expression, the index drives: it yields rowids newest first
(``ORDER BY rowid DESC`` is consumed by FTS5, so LIMIT stops it early, common term or rare),
and each candidate is checked against the SQL conditions. Otherwise ``captures`` is read newest
first through its primary key or ``captures_bin_id``. Free text is exact in FTS5 terms by
definition, so it is never re-checked. ``after:``/``before:`` have no index of their own: they
are checked on whatever the other clauses select, so on their own over a very large store a
date far in the past reads the newer captures first (about 0.7 s per million).

Safety: no user text is ever spliced into SQL (it is bound as parameters), and inside FTS5
expressions every piece of user text is a double-quoted FTS5 string with quotes doubled, so
``NEAR(``, ``*``, ``"``, ``OR`` and column filters typed by a user are just words.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from ..query import (
    MIN_PREFIX,
    Bin,
    Clause,
    ContentType,
    Header,
    Method,
    Path,
    Query,
    Received,
    Status,
    Text,
    has_word,
    is_separator,
    parse,
    trailing_word,
)
from .captures import SUMMARY_COLUMNS, CaptureStore, Page, _row_to_capture

TEXT_COLUMNS = "{path query headers body}"  # what free text searches
_COLUMNS = ", ".join("c." + name.strip() for name in SUMMARY_COLUMNS.split(","))


def search_captures(store: CaptureStore, q: str, bin_name: str | None, limit: int,
                    before: int | None) -> Page:
    """Captures matching ``q`` (and in ``bin_name`` when given), newest first.

    Same cursor as :meth:`CaptureStore.list`: ``before`` is an id, and ``next`` is the last id
    of the page when more may follow. Raises :class:`inspector.query.QueryError` (a
    ValueError) when ``q`` cannot be parsed.
    """
    query = parse(q)
    if not query and not bin_name:
        return store.list(None, limit=limit, before=before)
    catch_up(store)
    sql, args = compile_search(query, bin_name, limit + 1, before)
    rows = store.db.read(lambda conn: conn.execute(sql, args).fetchall())
    caps = [_row_to_capture(r) for r in rows[:limit]]
    return Page(caps, caps[-1].id if len(rows) > limit and caps else None)


INDEX_BATCH = 200


def index_step(conn: sqlite3.Connection, limit: int = INDEX_BATCH) -> bool:
    """Index the next ``limit`` captures not yet in the full-text index (migration 008).

    Runs inside a writer transaction. Returns whether more may be waiting.
    """
    upto = conn.execute("SELECT indexed_upto FROM search_state WHERE id = 1").fetchone()[0]
    top = conn.execute("SELECT MAX(id) FROM (SELECT id FROM captures WHERE id > ?"
                       " ORDER BY id LIMIT ?)", (upto, limit)).fetchone()[0]
    if top is None:
        return False
    conn.execute(
        "INSERT INTO captures_fts (rowid, bin, method, ctype, path, query, hnames, headers,"
        " body) SELECT id, bin, method, ctype, path, query, hnames, headers, body"
        " FROM captures_search_src WHERE id > ? AND id <= ?", (upto, top))
    conn.execute("UPDATE search_state SET indexed_upto = ? WHERE id = 1", (top,))
    return True


def catch_up(store: CaptureStore) -> None:
    """Make every committed capture searchable before a search runs (read-your-writes).

    Cheap when the background indexer is current: one read. After a burst it indexes the
    backlog in writer jobs of a few hundred, so captures keep flowing in between.
    """
    def behind(conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT (SELECT indexed_upto FROM search_state WHERE id = 1)"
                           " < (SELECT COALESCE(MAX(id), 0) FROM captures)").fetchone()
        return bool(row[0])

    while store.db.read(behind):
        if not store.db.write(index_step):
            break


@dataclass
class _Plan:
    fts: list[str] = field(default_factory=list)  # positive FTS5 expressions (AND)
    fts_bin: list[str] = field(default_factory=list)  # used only beside another expression
    fts_not: list[str] = field(default_factory=list)  # negated free text
    where: list[str] = field(default_factory=list)  # exact SQL conditions on c
    args: list[Any] = field(default_factory=list)

    def sql(self, condition: str, *args: Any) -> None:
        self.where.append(condition)
        self.args.extend(args)


def compile_search(query: Query, bin_name: str | None, limit: int, before: int | None
                   ) -> tuple[str, list[Any]]:
    """The SELECT for a parsed query: (sql, parameters). Public for tests and the bench."""
    plan = _Plan()
    clauses: list[Clause] = list(query.clauses)
    if bin_name:
        clauses.append(Bin(bin_name))
    for clause in clauses:
        _add(plan, clause)

    fts = plan.fts + plan.fts_bin if plan.fts else []
    if fts:
        match = " AND ".join(fts)
        if plan.fts_not:
            match = f"({match}) NOT ({' OR '.join(plan.fts_not)})"
        where = ["captures_fts MATCH ?"]
        args: list[Any] = [match]
        if before is not None:
            where.append("captures_fts.rowid < ?")
            args.append(before)
        # CROSS JOIN keeps the index as the outer loop: its rowid order is the page order.
        sql = (f"SELECT {_COLUMNS} FROM captures_fts CROSS JOIN captures AS c"
               " ON c.id = captures_fts.rowid WHERE " + " AND ".join(where + plan.where)
               + " ORDER BY captures_fts.rowid DESC LIMIT ?")
        return sql, args + plan.args + [limit]

    where, args = list(plan.where), list(plan.args)
    if plan.fts_not:
        # Only negated words: the set to exclude is read once (cheap for a rare word) rather
        # than one index probe per row (ruinous for a word in every row).
        where.append("c.id NOT IN (SELECT rowid FROM captures_fts WHERE captures_fts MATCH ?)")
        args.append(" OR ".join(plan.fts_not))
    if before is not None:
        where.append("c.id < ?")
        args.append(before)
    sql = f"SELECT {_COLUMNS} FROM captures AS c"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY c.id DESC LIMIT ?", args + [limit]


def _add(plan: _Plan, clause: Clause) -> None:
    if isinstance(clause, Text):
        expr = f"{TEXT_COLUMNS} : {fts_string(clause.text)}" + (" *" if clause.prefix else "")
        (plan.fts_not if clause.negated else plan.fts).append(expr)
        return
    condition, args, fts = _exact(clause)
    if clause.negated:
        # The FTS side is only a superset: never negate it, negate the exact condition.
        plan.sql(f"NOT ({condition})", *args)
        return
    plan.sql(condition, *args)
    if fts:
        (plan.fts_bin if isinstance(clause, Bin) else plan.fts).append(fts)


def _exact(clause: Clause) -> tuple[str, list[Any], str | None]:
    """(SQL condition on c, its parameters, an FTS5 expression matching a superset or None)."""
    if isinstance(clause, Method):
        marks = ", ".join("?" * len(clause.names))
        fts = None
        if all(has_word(n) for n in clause.names):
            fts = " OR ".join(f"{{method}} : {fts_string(n)}" for n in clause.names)
            fts = f"({fts})" if len(clause.names) > 1 else fts
        return f"c.method IN ({marks})", list(clause.names), fts
    if isinstance(clause, Bin):
        return "c.bin = ?", [clause.name], f"{{bin}} : {fts_string(clause.name)}"
    if isinstance(clause, Path):
        pattern = clause.pattern
        if "*" in pattern:
            return "c.path GLOB ?", [glob_literal(pattern)], literal_fts("path", pattern)
        if pattern.rstrip("/") == "":
            return "1", [], None  # path:/ is everything
        below = glob_literal(pattern.rstrip("/") + "/") + "*"
        return "(c.path = ? OR c.path GLOB ?)", [pattern, below], literal_fts("path", pattern)
    if isinstance(clause, Header):
        fts = f"{{hnames}} : {fts_string(header_token(clause.name))}"
        if clause.value is None:
            return ("EXISTS (SELECT 1 FROM json_each(c.headers) AS h"
                    " WHERE lower(h.value ->> 0) = ?)", [clause.name], fts)
        value_fts = literal_fts("headers", clause.value)
        return ("EXISTS (SELECT 1 FROM json_each(c.headers) AS h"
                " WHERE lower(h.value ->> 0) = ? AND h.value ->> 1 LIKE ? ESCAPE '\\')",
                [clause.name, like_pattern(clause.value)],
                f"{fts} AND {value_fts}" if value_fts else fts)
    if isinstance(clause, ContentType):
        # Whole words from FTS (no prefix: "json" is in nearly every row, and a prefix query
        # reads every matching row before the first is returned); the substring test keeps
        # the exact condition meaningful on its own (negation).
        return ("instr(lower(coalesce(c.content_type, '')), ?) > 0", [clause.text.lower()],
                f"{{ctype}} : {fts_string(clause.text)}")
    if isinstance(clause, Status):
        if clause.negated:
            col = "coalesce(c.status, 0)"  # a capture with no recorded status is "not 200"
        elif len(clause.ranges) == 1 and clause.ranges[0][0] == clause.ranges[0][1]:
            col = "c.status"  # captures_status (status, id) yields this one newest first
        else:
            col = "+c.status"  # several values: that index would need a sort, the scan not
        parts, args = [], []
        for low, high in clause.ranges:
            parts.append(f"{col} = ?" if low == high else f"{col} BETWEEN ? AND ?")
            args += [low] if low == high else [low, high]
        return "(" + " OR ".join(parts) + ")", args, None
    if isinstance(clause, Received):
        op = ">=" if clause.op == "after" else "<"
        return f"c.received_at {op} ?", [clause.at], None
    raise TypeError(f"unexpected clause {clause!r}")


# -- FTS5 and pattern helpers ---------------------------------------------------------------------
def fts_string(text: str) -> str:
    """``text`` as an FTS5 string: a phrase of its words, with no operator meaning."""
    return '"' + text.replace("\x00", " ").replace('"', '""') + '"'


def header_token(name: str) -> str:
    """A header name as the one word schema/002_search.sql indexes it under (column hnames)."""
    return (name.lower().replace("q", "qq").replace("-", "qh").replace("_", "qu")
            .replace(".", "qd"))


def literal_fts(column: str, pattern: str) -> str | None:
    """An FTS5 expression matching a superset of what the ``*``-pattern matches, or None.

    Each literal run between wildcards becomes a phrase. A word cut by a ``*`` after it
    becomes a prefix when it has MIN_PREFIX letters, else it is dropped (a short stem expands
    to too many words); a word cut by a ``*`` before it (we only know its end) is dropped.
    """
    chunks = pattern.split("*")
    parts = []
    for i, chunk in enumerate(chunks):
        if i > 0 and chunk and not is_separator(chunk[0]):
            cut = next((k for k, ch in enumerate(chunk) if is_separator(ch)), len(chunk))
            chunk = chunk[cut:]
        prefix = False
        if i < len(chunks) - 1 and chunk and not is_separator(chunk[-1]):
            stem = trailing_word(chunk)
            prefix = len(stem) >= MIN_PREFIX
            if not prefix:
                chunk = chunk[: len(chunk) - len(stem)]
        if has_word(chunk):
            parts.append(f"{{{column}}} : {fts_string(chunk)}" + (" *" if prefix else ""))
    return " AND ".join(parts) or None


def glob_literal(pattern: str) -> str:
    """A GLOB pattern where only ``*`` is special (``?`` and ``[`` match themselves)."""
    return "".join("[" + ch + "]" if ch in "?[" else ch for ch in pattern)


def like_pattern(pattern: str) -> str:
    """A LIKE pattern (ESCAPE '\\') where only ``*`` is special; LIKE ignores ASCII case."""
    out = []
    for ch in pattern:
        out.append("%" if ch == "*" else "\\" + ch if ch in "%_\\" else ch)
    return "".join(out)


def explain(conn: sqlite3.Connection, q: str, bin_name: str | None = None) -> list[str]:
    """EXPLAIN QUERY PLAN of a search, for the bench and for tests of the plan's shape."""
    sql, args = compile_search(parse(q), bin_name, 51, None)
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args)]
