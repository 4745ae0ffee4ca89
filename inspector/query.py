"""The search syntax of the UI and of ``GET /api/captures?q=``: text in, a list of clauses out.

Pure parsing: no SQL, no Flask. ``storage/search.py`` turns the clauses into queries.

    word            free text: headers (names and values), body, path and query contain it
    "two words"     a phrase: the words next to each other, in this order
    word*           words starting with "word" (3 letters or more before the *; a shorter
                    stem would expand to too many words, so it means the word itself)
    method:POST     the request method (any case); method:GET,PUT for either
    path:/orders    /orders and everything below it (/orders/42), not /orders-old;
                    * matches any run of characters: path:/orders* path:*/refund
    header:NAME     a header NAME is present (any case): header:x-audian-signature
    header:NAME=V   a header NAME has exactly the value V (any case); * matches any run of
                    characters: header:user-agent=Audian*
    type:json       the Content-Type contains the word json (application/json,
                    application/vnd.api+json; charset=utf-8); type:form matches
                    multipart/form-data and application/x-www-form-urlencoded
    bin:NAME        captured in bin NAME
    status:404      answered with that status; status:4xx a class, status:500-504 a range,
                    status:200,201 either (captures stored before statuses were recorded have
                    none: they never match, and -status:… keeps them)
    after:DATE      received at or after DATE; before:DATE strictly before it. DATE is UTC
                    unless it names an offset: 2026-11-23, 2026-11-23T10:00, 2026-11-23T10:00:05Z,
                    2026-11-23T11:00+01:00. after:2026-11-23 includes the 23rd, before: excludes it
    -word -"a phrase" -method:GET -header:NAME -status:2xx ...   a minus in front excludes

Every clause must hold (AND). Field names are case-insensitive; a value may be quoted
(``header:x-note="two words"``). Free text is matched by words, case- and accent-insensitively:
punctuation separates words, so ``ord_123`` finds the phrase ``ord 123``. Text that holds no
word at all (``*``, ``')--``) is ignored rather than refused. An unknown ``name:`` is refused
with a message (put text with a colon in quotes, ``"a:b"``); ``https://…`` is text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from .storage.captures import BIN_NAME

FIELDS = ("method", "path", "header", "type", "bin", "status", "after", "before")
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token: header and method names
_FIELD = re.compile(r"([A-Za-z]+):(.*)", re.S)
_STATUS = re.compile(r"([1-5])xx|(\d{3})(?:-(\d{3}))?", re.I)
MAX_QUERY = 2000
MIN_PREFIX = 3  # letters before a trailing * for a prefix search
MAX_CLAUSES = 32


class QueryError(ValueError):
    """The search text cannot be understood; the message names the offending part."""


@dataclass(frozen=True)
class Text:
    """Free text: one word or a quoted phrase; ``prefix`` for a trailing ``*``."""

    text: str
    prefix: bool = False
    negated: bool = False


@dataclass(frozen=True)
class Method:
    names: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class Path:
    """``pattern`` has ``*`` wildcards; without one it means the path and everything below."""

    pattern: str
    negated: bool = False


@dataclass(frozen=True)
class Header:
    name: str  # lower case
    value: str | None = None  # None: present with any value; may hold * wildcards
    negated: bool = False


@dataclass(frozen=True)
class ContentType:
    text: str
    negated: bool = False


@dataclass(frozen=True)
class Bin:
    name: str
    negated: bool = False


@dataclass(frozen=True)
class Status:
    """Inclusive (low, high) ranges of answered statuses: 404 is (404, 404), 4xx (400, 499)."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool = False


@dataclass(frozen=True)
class Received:
    """``op`` is "after" (at or after ``at``) or "before" (strictly before ``at``).

    ``at`` uses the stored format of ``received_at`` so the two compare as text.
    """

    op: str
    at: str
    negated: bool = False


Clause = Text | Method | Path | Header | ContentType | Bin | Status | Received


@dataclass(frozen=True)
class Query:
    clauses: tuple[Clause, ...]

    def __bool__(self) -> bool:
        return bool(self.clauses)


def parse(q: str) -> Query:
    """Parse search text; raises :class:`QueryError` naming the part it cannot read."""
    if len(q) > MAX_QUERY:
        raise QueryError(f"search text is too long ({len(q)} characters; at most {MAX_QUERY})")
    clauses: list[Clause] = []
    # A NUL would end the text early for SQLite's FTS5 parser: never let one through.
    for segments in _words(q.replace("\x00", " ")):
        clause = _clause(segments)
        if clause is not None:
            clauses.append(clause)
    if len(clauses) > MAX_CLAUSES:
        raise QueryError(f"too many search terms ({len(clauses)}; at most {MAX_CLAUSES})")
    return Query(tuple(clauses))


def has_word(text: str) -> bool:
    """Whether the index would find a word in ``text`` (letters, digits, private use)."""
    return any(unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "Co"
               for ch in text)


def is_separator(ch: str) -> bool:
    """Characters every tokenizer we use treats as separators (ASCII punctuation, spaces).

    Anything else might be part of a word; code that cuts text into words errs that way.
    """
    return ch.isspace() or (ch.isascii() and not ch.isalnum())


def trailing_word(text: str) -> str:
    """The run of word characters at the end of ``text`` ("" when it ends in a separator)."""
    k = len(text)
    while k > 0 and not is_separator(text[k - 1]):
        k -= 1
    return text[k:]


# -- lexing ---------------------------------------------------------------------------------------
Segment = tuple[str, bool]  # (text, was quoted)


def _words(q: str) -> list[list[Segment]]:
    """Split on whitespace outside quotes; a word is a run of plain and quoted segments.

    A quote left open runs to the end (a lone ``"`` is text, not an error); inside quotes
    ``\\"`` is a quote and ``\\\\`` a backslash.
    """
    words: list[list[Segment]] = []
    i, n = 0, len(q)
    while i < n:
        if q[i].isspace():
            i += 1
            continue
        segments: list[Segment] = []
        plain = ""
        while i < n and not q[i].isspace():
            if q[i] != '"':
                plain += q[i]
                i += 1
                continue
            if plain:
                segments.append((plain, False))
                plain = ""
            i += 1
            quoted = ""
            while i < n and q[i] != '"':
                if q[i] == "\\" and i + 1 < n and q[i + 1] in '"\\':
                    i += 1
                quoted += q[i]
                i += 1
            i += 1  # the closing quote, if any
            segments.append((quoted, True))
        if plain:
            segments.append((plain, False))
        words.append(segments)
    return words


# -- clauses --------------------------------------------------------------------------------------
def _clause(segments: list[Segment]) -> Clause | None:
    negated = False
    first, quoted = segments[0]
    if not quoted and first.startswith("-") and (len(first) > 1 or len(segments) > 1):
        negated = True
        segments = ([(first[1:], False)] if len(first) > 1 else []) + segments[1:]
        first, quoted = segments[0]
    whole = "".join(text for text, _ in segments)
    if not quoted:
        m = _FIELD.fullmatch(first)
        if m:
            name, head = m.group(1).lower(), m.group(2)
            value = head + "".join(text for text, _ in segments[1:])
            if name in FIELDS:
                return _field(name, value, whole, negated)
            if not head.startswith("//"):  # https://… is text; anything else is a typo
                raise QueryError(
                    f"unknown filter {m.group(1) + ':'!r} in {whole!r}; filters are "
                    + ", ".join(f + ":" for f in FIELDS)
                    + ' (put text with a colon in quotes: "a:b")')
    last_text, last_quoted = segments[-1]
    prefix = not last_quoted and last_text.endswith("*")
    text = whole.rstrip("*") if prefix else whole
    if not has_word(text):
        return None
    return Text(text, prefix=prefix and len(trailing_word(text)) >= MIN_PREFIX, negated=negated)


def _field(name: str, value: str, token: str, negated: bool) -> Clause:
    if not value.strip():
        raise QueryError(f"{name}: needs a value, as in {_EXAMPLES[name]}")
    if name == "method":
        names = tuple(v.upper() for v in value.split(",") if v)
        for v in names:
            if not TOKEN.fullmatch(v):
                raise QueryError(f"{v!r} in {token!r} is not a method name")
        return Method(names, negated)
    if name == "path":
        return Path(value if value.startswith(("/", "*")) else "/" + value, negated)
    if name == "header":
        header, eq, wanted = value.partition("=")
        if not TOKEN.fullmatch(header):
            raise QueryError(f"{header!r} in {token!r} is not a header name; "
                             f"use {_EXAMPLES['header']}")
        return Header(header.lower(), wanted if eq else None, negated)
    if name == "type":
        if not has_word(value):
            raise QueryError(f"{token!r}: type: needs a word of the content type, "
                             f"as in {_EXAMPLES['type']}")
        return ContentType(value, negated)
    if name == "bin":
        if not BIN_NAME.fullmatch(value):
            raise QueryError(f"{value!r} in {token!r} is not a bin name "
                             "(1-64 of A-Z a-z 0-9 _ -)")
        return Bin(value, negated)
    if name == "status":
        return Status(tuple(_status_range(v, token) for v in value.split(",") if v), negated)
    return Received(name, parse_time(value, token), negated)


def _status_range(item: str, token: str) -> tuple[int, int]:
    m = _STATUS.fullmatch(item)
    if m and m.group(1):
        low = int(m.group(1)) * 100
        return low, low + 99
    if m:
        low, high = int(m.group(2)), int(m.group(3) or m.group(2))
        if 100 <= low <= high <= 599:
            return low, high
    raise QueryError(f"{item!r} in {token!r} is not a status: use a code (404), a class (4xx), "
                     "a range (500-504) or a list (200,201)")


_EXAMPLES = {
    "method": "method:POST", "path": "path:/orders", "header": "header:x-audian-signature "
    "or header:content-type=application/json", "type": "type:json", "bin": "bin:demo",
    "after": "after:2026-11-23", "before": "before:2026-11-23T10:00", "status": "status:404",
}


def parse_time(value: str, token: str = "") -> str:
    """A date or date-time (UTC unless it carries an offset) in ``received_at``'s format."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{token or value!r}: expected a date like 2026-11-23 or "
                         "2026-11-23T10:00 (UTC)") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
