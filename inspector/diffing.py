"""Structural diff of two captured requests, and a shape check against a vendor sample.

Users compare two deliveries to answer "what changed?": a new field, a renamed key, an id that
became a string. A byte diff drowns that in key order and whitespace, so bodies are parsed (JSON,
url-encoded forms, multipart) and compared as data, with paths in the JSONPath-like notation of
``GET /api/diff`` (CONTRACT.md).

Path conventions (every :class:`Change` also names its ``section``):

- body: ``$`` is the root; object keys ``$.sender.email``; keys that are not identifiers
  ``$['x-y']``; list items ``$.items[2]``. Form and multipart fields are ``$.<name>``.
- query: the same ``$.<name>`` paths as form fields, with ``section="query"``, because the
  contract uses ``$.<name>`` for JSON, form and query data alike. (Audata's GET deliveries carry in
  the query what its POSTs carry in the body, so one path meaning both is a feature.)
- headers: ``header:<lower-case name>``; method: ``method``; path: ``path``.
- list indices are b's index for ``added`` and ``changed`` items and a's index for ``removed``.

Repeated form/query fields and repeated headers become lists. A multipart file part becomes
``{"filename", "content_type", "size", "sha256"}`` so files are compared without dumping them.

Lists are aligned by a longest common subsequence over canonical JSON of their items, so an
insertion is one ``added`` change rather than a cascade of ``changed`` ones. (DeepDiff 9 with
``ignore_order=False`` cascades as soon as the items are objects, which is the common case.)

Everything here is pure: bytes and strings in, dataclasses out.
"""

from __future__ import annotations

import difflib
import email.message
import email.parser
import email.policy
import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

__all__ = [
    "Change",
    "InvalidIgnoreRuleError",
    "RequestParts",
    "ShapeIssue",
    "diff_requests",
    "shape_check",
    "text_diff",
]

ChangeKind = Literal["changed", "added", "removed", "type_changed"]
Section = Literal["body", "query", "headers", "method", "path"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Any single object-key step: `.name` or `['quoted']` (quotes inside escaped with a backslash).
_ANY_KEY = r"(?:\.[A-Za-z_][A-Za-z0-9_]*|\['(?:[^'\\]|\\.)*'\])"


class InvalidIgnoreRuleError(ValueError):
    """An ignore rule that names no section we know (see :func:`diff_requests`)."""


@dataclass(frozen=True)
class RequestParts:
    """The parts of a request that :func:`diff_requests` compares."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    content_type: str | None = None

    @classmethod
    def from_capture(cls, capture: Mapping[str, Any]) -> RequestParts:
        """Build from a capture dict (``headers`` as ``[name, value]`` pairs, ``body`` bytes)."""
        headers = [(str(name), str(value)) for name, value in capture.get("headers") or ()]
        content_type = capture.get("content_type")
        if content_type is None:
            content_type = next((v for n, v in headers if n.lower() == "content-type"), None)
        body = capture.get("body") or b""
        return cls(
            method=capture.get("method", ""),
            path=capture.get("path", ""),
            query=capture.get("query") or "",
            headers=headers,
            body=body.encode("utf-8") if isinstance(body, str) else bytes(body),
            content_type=content_type,
        )


@dataclass(frozen=True)
class Change:
    """One difference. ``a``/``b`` are ``None`` on the side where the path does not exist."""

    path: str
    kind: ChangeKind
    a: Any
    b: Any
    section: Section = "body"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "a": self.a,
            "b": self.b,
            "section": self.section,
        }


@dataclass(frozen=True)
class ShapeIssue:
    """A way a payload departs from the shape of a reference sample (never its values)."""

    path: str
    kind: Literal["missing", "extra", "type", "enum"]
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "message": self.message}


# ---------------------------------------------------------------------------------------------
# Paths and patterns
# ---------------------------------------------------------------------------------------------


def _child(path: str, key: str) -> str:
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}"
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"{path}['{escaped}']"


def _item(path: str, index: int) -> str:
    return f"{path}[{index}]"


class _PathPattern:
    """A ``$``-path where ``[*]`` matches any list index and ``.*`` any object key."""

    def __init__(self, pattern: str) -> None:
        regex = re.escape(pattern)
        regex = regex.replace(re.escape("[*]"), r"\[\d+\]").replace(re.escape(".*"), _ANY_KEY)
        self.pattern = pattern
        self._exact = re.compile(regex)
        # A rule for `$.sender` also covers everything inside it.
        self._subtree = re.compile(regex + r"(?:[.\[].*)?", re.DOTALL)

    def matches(self, path: str, *, subtree: bool = True) -> bool:
        return bool((self._subtree if subtree else self._exact).fullmatch(path))


@dataclass
class _Ignore:
    """Compiled ignore rules.

    ``$…`` applies to the body and the query, ``body:$…`` / ``query:$…`` to one of them,
    ``header:<name>`` to a header (case-insensitive, ``*`` wildcards allowed), and ``method`` /
    ``path`` to those.
    """

    data: dict[str, list[_PathPattern]] = field(default_factory=lambda: {"body": [], "query": []})
    headers: list[str] = field(default_factory=list)
    sections: set[str] = field(default_factory=set)

    @classmethod
    def compile(cls, rules: Iterable[str]) -> _Ignore:
        ignore = cls()
        for rule in rules:
            rule = rule.strip()
            lowered = rule.lower()
            if lowered.startswith("header:"):
                ignore.headers.append(lowered[len("header:") :].strip())
            elif lowered in ("method", "path"):
                ignore.sections.add(lowered)
            elif rule.startswith("$"):
                ignore.data["body"].append(_PathPattern(rule))
                ignore.data["query"].append(_PathPattern(rule))
            elif lowered.startswith(("body:$", "query:$")):
                section, _, pattern = rule.partition(":")
                ignore.data[section.lower()].append(_PathPattern(pattern))
            else:
                raise InvalidIgnoreRuleError(
                    f"ignore rule {rule!r} must be '$.path', 'body:$.path', 'query:$.path', "
                    "'header:name', 'method' or 'path'"
                )
        return ignore

    def covers(self, section: Section, path: str) -> bool:
        if section == "headers":
            name = path.removeprefix("header:")
            return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.headers)
        if section in ("method", "path"):
            return section in self.sections
        return any(pattern.matches(path) for pattern in self.data[section])


# ---------------------------------------------------------------------------------------------
# Structural comparison
# ---------------------------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    # bool before int: in Python True is an int, in JSON it is not a number.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _same_scalar(a: Any, b: Any) -> bool:
    # 1 and 1.0 are one JSON type but different text; a strict consumer may care, so they differ.
    if type(a) is not type(b):
        return False
    return bool(a == b) or (a != a and b != b)  # NaN (json.loads accepts it) equals itself here


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# Above this many cells the exact LCS gives way to difflib's faster heuristic.
_LCS_LIMIT = 250_000


def _unmatched_runs(keys_a: list[str], keys_b: list[str]) -> list[tuple[int, int, int, int]]:
    """Runs ``(i1, i2, j1, j2)`` where ``a[i1:i2]`` became ``b[j1:j2]``, outside a longest
    common subsequence of the two lists.

    An exact LCS, not :class:`difflib.SequenceMatcher` alone: the latter grabs the longest
    contiguous block first and so turns ``[0, 0, 0]`` to ``[0, 9, 0, 0]`` into an insertion
    *and* a deletion. Common prefix and suffix are trimmed first, which keeps the quadratic part
    small for the usual one-or-two-item edit; huge lists fall back to SequenceMatcher.
    """
    n, m = len(keys_a), len(keys_b)
    start = 0
    while start < min(n, m) and keys_a[start] == keys_b[start]:
        start += 1
    end = 0
    while end < min(n, m) - start and keys_a[n - 1 - end] == keys_b[m - 1 - end]:
        end += 1
    mid_a, mid_b = keys_a[start : n - end], keys_b[start : m - end]
    if not mid_a and not mid_b:
        return []
    if len(mid_a) * len(mid_b) > _LCS_LIMIT:
        matcher = difflib.SequenceMatcher(None, mid_a, mid_b, autojunk=False)
        return [
            (start + i1, start + i2, start + j1, start + j2)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()
            if tag != "equal"
        ]

    rows, cols = len(mid_a), len(mid_b)
    # lcs[i][j]: length of an LCS of mid_a[i:] and mid_b[j:].
    lcs = [[0] * (cols + 1) for _ in range(rows + 1)]
    for i in range(rows - 1, -1, -1):
        for j in range(cols - 1, -1, -1):
            if mid_a[i] == mid_b[j]:
                lcs[i][j] = lcs[i + 1][j + 1] + 1
            else:
                lcs[i][j] = max(lcs[i + 1][j], lcs[i][j + 1])
    runs: list[tuple[int, int, int, int]] = []
    i = j = 0
    run_i, run_j = 0, 0
    while i < rows or j < cols:
        if i < rows and j < cols and mid_a[i] == mid_b[j]:
            if (run_i, run_j) != (i, j):
                runs.append((start + run_i, start + i, start + run_j, start + j))
            i, j = i + 1, j + 1
            run_i, run_j = i, j
        elif j < cols and (i == rows or lcs[i][j + 1] >= lcs[i + 1][j]):
            j += 1
        else:
            i += 1
    if (run_i, run_j) != (rows, cols):
        runs.append((start + run_i, start + rows, start + run_j, start + cols))
    return runs


# Two list items this alike (difflib ratio of their canonical JSON) are one item that changed,
# not one removed and another added.
_SIMILAR = 0.6
# Above this many item pairs in one replaced run, alignment falls back to position.
_ALIGN_LIMIT = 2_500


def _align(keys_a: list[str], keys_b: list[str]) -> list[tuple[int | None, int | None]]:
    """Pair up the items of one run of :func:`_unmatched_runs`.

    Same-length runs pair by position (``[1, 2]`` to ``[1, 3]`` is one ``changed``). Otherwise
    items pair only with a similar item, keeping order, chosen to maximise total similarity:
    an object inserted before a modified one is then ``added`` while the modified one is still
    compared field by field.
    """
    n, m = len(keys_a), len(keys_b)
    if n == m or n * m > _ALIGN_LIMIT:
        paired = min(n, m)
        pairs: list[tuple[int | None, int | None]] = [(k, k) for k in range(paired)]
        pairs += [(i, None) for i in range(paired, n)]
        pairs += [(None, j) for j in range(paired, m)]
        return pairs

    def similarity(i: int, j: int) -> float:
        matcher = difflib.SequenceMatcher(None, keys_a[i], keys_b[j], autojunk=False)
        if matcher.real_quick_ratio() < _SIMILAR or matcher.quick_ratio() < _SIMILAR:
            return 0.0
        ratio = matcher.ratio()
        return ratio if ratio >= _SIMILAR else 0.0

    # best[i][j]: the best total similarity aligning keys_a[i:] with keys_b[j:].
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    sim = [[similarity(i, j) for j in range(m)] for i in range(n)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            take = sim[i][j] + best[i + 1][j + 1] if sim[i][j] else 0.0
            best[i][j] = max(take, best[i + 1][j], best[i][j + 1])
    pairs = []
    i = j = 0
    while i < n and j < m:
        if sim[i][j] and best[i][j] == sim[i][j] + best[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            pairs.append((i, None))
            i += 1
        else:
            pairs.append((None, j))
            j += 1
    pairs += [(k, None) for k in range(i, n)]
    pairs += [(None, k) for k in range(j, m)]
    return pairs


class _Differ:
    def __init__(self, section: Section, ignore: _Ignore, out: list[Change]) -> None:
        self.section = section
        self.ignore = ignore
        self.out = out

    def emit(self, path: str, kind: ChangeKind, a: Any, b: Any) -> None:
        if not self.ignore.covers(self.section, path):
            self.out.append(Change(path, kind, a, b, self.section))

    def strip(self, value: Any, path: str) -> Any:
        """``value`` without ignored subtrees, so list alignment is not fooled by them."""
        if isinstance(value, Mapping):
            return {
                key: self.strip(item, _child(path, key))
                for key, item in value.items()
                if not self.ignore.covers(self.section, _child(path, key))
            }
        if isinstance(value, list | tuple):
            return [self.strip(item, _item(path, i)) for i, item in enumerate(value)]
        return value

    def values(self, a: Any, b: Any, path: str) -> None:
        if self.ignore.covers(self.section, path):
            return
        type_a, type_b = _json_type(a), _json_type(b)
        if type_a != type_b:
            self.emit(path, "type_changed", a, b)
        elif type_a == "object":
            self.objects(a, b, path)
        elif type_a == "array":
            self.arrays(list(a), list(b), path)
        elif not _same_scalar(a, b):
            self.emit(path, "changed", a, b)

    def objects(self, a: Mapping[str, Any], b: Mapping[str, Any], path: str) -> None:
        for key, value in a.items():
            if key in b:
                self.values(value, b[key], _child(path, key))
            else:
                self.emit(_child(path, key), "removed", value, None)
        for key, value in b.items():
            if key not in a:
                self.emit(_child(path, key), "added", None, value)

    def arrays(self, a: list[Any], b: list[Any], path: str) -> None:
        keys_a = [_canonical(self.strip(item, _item(path, i))) for i, item in enumerate(a)]
        keys_b = [_canonical(self.strip(item, _item(path, j))) for j, item in enumerate(b)]
        for i1, i2, j1, j2 in _unmatched_runs(keys_a, keys_b):
            for i, j in _align(keys_a[i1:i2], keys_b[j1:j2]):
                if i is not None and j is not None:
                    self.values(a[i1 + i], b[j1 + j], _item(path, j1 + j))
                elif i is not None:
                    self.emit(_item(path, i1 + i), "removed", a[i1 + i], None)
                elif j is not None:
                    self.emit(_item(path, j1 + j), "added", None, b[j1 + j])

    def fields(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
        """Top-level form/query/multipart fields: untyped, so never ``type_changed``.

        A field sent once on one side and repeated on the other is simply ``changed``.
        """
        for name in [*a, *(key for key in b if key not in a)]:
            path = _child("$", name)
            if name not in b:
                self.emit(path, "removed", a[name], None)
            elif name not in a:
                self.emit(path, "added", None, b[name])
            elif _json_type(a[name]) == _json_type(b[name]):
                self.values(a[name], b[name], path)
            elif not self.ignore.covers(self.section, path):
                self.emit(path, "changed", a[name], b[name])


# ---------------------------------------------------------------------------------------------
# Parsing bodies and queries
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Body:
    kind: Literal["empty", "json", "form", "multipart", "raw"]
    value: Any


def _group(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Ordered fields; a repeated name becomes a list of its values in order."""
    grouped: dict[str, list[Any]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}


def _parse_query(text: str) -> dict[str, Any]:
    return _group(parse_qsl(text, keep_blank_values=True))


def _content_type(value: str | None) -> tuple[str, email.message.Message]:
    message = email.message.Message()
    message["content-type"] = value or ""
    media = (value or "").split(";", 1)[0].strip().lower()
    return media, message


def _describe_bytes(data: bytes) -> str:
    """How a non-text value appears in a change: never raw bytes, which JSON cannot carry."""
    return f"<{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}>"


def _as_text_or_description(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _describe_bytes(data)


def _parse_multipart(body: bytes, boundary: str) -> dict[str, Any] | None:
    """Parts by name (RFC 7578); ``None`` when the body is not well-formed multipart.

    Hand-rolled rather than via :mod:`email` because file contents must be hashed byte-exact,
    and the email parser normalises line endings.
    """
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 2:
        return None
    header_parser = email.parser.BytesHeaderParser(policy=email.policy.HTTP)
    parts: list[tuple[str, Any]] = []
    for index, chunk in enumerate(chunks[1:]):
        if chunk.startswith(b"--"):
            break  # the close delimiter; anything after it is epilogue
        line_end = chunk.find(b"\r\n")
        if line_end < 0:
            return None
        rest = chunk[line_end + 2 :]
        if rest.startswith(b"\r\n"):
            head, content = b"", rest[2:]
        else:
            head, separator, content = rest.partition(b"\r\n\r\n")
            if not separator:
                return None
        headers = header_parser.parsebytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_filename()
        part_type = str(headers["content-type"]) if "content-type" in headers else None
        value: Any
        if filename is None and (part_type is None or part_type.lower().startswith("text/")):
            value = _as_text_or_description(content)
        else:
            value = {
                "filename": filename,
                "content_type": part_type,
                "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            }
        parts.append((str(name) if name is not None else f"#{index}", value))
    return _group(parts)


def _parse_body(body: bytes, content_type: str | None) -> _Body:
    if not body:
        return _Body("empty", None)
    media, message = _content_type(content_type)
    if media == "application/x-www-form-urlencoded":
        return _Body("form", _parse_query(body.decode("utf-8", errors="replace")))
    if media.startswith("multipart/"):
        boundary = message.get_param("boundary")
        if isinstance(boundary, str) and boundary:
            parts = _parse_multipart(body, boundary)
            if parts is not None:
                return _Body("multipart", parts)
        return _Body("raw", body)
    # JSON when the type says so, or when the body looks like it (vendors mislabel: ApiRTC sends
    # "application/JSON", others send JSON as text/plain or with no type at all).
    if "json" in media or body.lstrip()[:1] in (b"{", b"["):
        try:
            return _Body("json", json.loads(body))
        except ValueError:
            pass
    return _Body("raw", body)


def _display(parsed: _Body) -> Any:
    return _as_text_or_description(parsed.value) if parsed.kind == "raw" else parsed.value


def _diff_bodies(a: RequestParts, b: RequestParts, ignore: _Ignore, out: list[Change]) -> None:
    differ = _Differ("body", ignore, out)
    left, right = _parse_body(a.body, a.content_type), _parse_body(b.body, b.content_type)
    if left.kind == "empty" and right.kind == "empty":
        return
    if left.kind == "empty":
        differ.emit("$", "added", None, _display(right))
    elif right.kind == "empty":
        differ.emit("$", "removed", _display(left), None)
    elif left.kind == "raw" or right.kind == "raw":
        if a.body != b.body:
            differ.emit("$", "changed", _display(left), _display(right))
    elif left.kind == right.kind and left.kind in ("form", "multipart"):
        differ.fields(left.value, right.value)
    else:
        differ.values(left.value, right.value, "$")


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return _group((name.lower(), value) for name, value in headers)


def diff_requests(a: RequestParts, b: RequestParts, ignore: Iterable[str] = ()) -> list[Change]:
    """Every difference between two requests, in the order method, path, query, headers, body.

    ``ignore`` rules silence paths and everything under them: ``"$.sentAt"`` (body and query),
    ``"$.items[*].id"`` (``[*]`` is any index, ``.*`` any key), ``"body:$.x"`` or
    ``"query:$.x"`` (one section only), ``"header:date"`` (case-insensitive, ``*`` allowed),
    ``"method"`` and ``"path"``. Raises :class:`InvalidIgnoreRuleError` for anything else.
    """
    rules = _Ignore.compile(ignore)
    out: list[Change] = []
    if a.method != b.method and not rules.covers("method", "method"):
        out.append(Change("method", "changed", a.method, b.method, "method"))
    if a.path != b.path and not rules.covers("path", "path"):
        out.append(Change("path", "changed", a.path, b.path, "path"))
    _Differ("query", rules, out).fields(_parse_query(a.query), _parse_query(b.query))

    headers_a, headers_b = _header_map(a.headers), _header_map(b.headers)
    header_differ = _Differ("headers", rules, out)
    for name in [*headers_a, *(key for key in headers_b if key not in headers_a)]:
        path = f"header:{name}"
        value_a, value_b = headers_a.get(name), headers_b.get(name)
        if value_a is None:
            header_differ.emit(path, "added", None, value_b)
        elif value_b is None:
            header_differ.emit(path, "removed", value_a, None)
        elif value_a != value_b:
            header_differ.emit(path, "changed", value_a, value_b)

    _diff_bodies(a, b, rules, out)
    return out


def text_diff(a: bytes, b: bytes, *, context: int = 3) -> str:
    """A unified diff of two bodies when both are text; a short note when either is binary.

    Empty when the bodies are identical. Text means valid UTF-8 without NUL bytes.
    """
    if a == b:
        return ""

    def as_text(data: bytes) -> str | None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return None if "\x00" in text else text

    text_a, text_b = as_text(a), as_text(b)
    if text_a is None or text_b is None:
        offset = next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
        )
        return (
            f"Binary bodies differ (first difference at byte {offset}): "
            f"a is {_describe_bytes(a)[1:-1]}, b is {_describe_bytes(b)[1:-1]}."
        )
    lines = difflib.unified_diff(
        text_a.splitlines(), text_b.splitlines(), "a", "b", n=context, lineterm=""
    )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Shape check
# ---------------------------------------------------------------------------------------------


def _shape(payload: Any, reference: Any, path: str) -> list[ShapeIssue]:
    expected, actual = _json_type(reference), _json_type(payload)
    if expected == "null":
        return []  # a null in the sample says nothing about the type
    if expected != actual:
        return [ShapeIssue(path, "type", f"expected {expected}, got {actual}")]
    issues: list[ShapeIssue] = []
    if expected == "object":
        for key, value in reference.items():
            if key not in payload:
                issues.append(ShapeIssue(_child(path, key), "missing", f"missing key {key!r}"))
            else:
                issues.extend(_shape(payload[key], value, _child(path, key)))
        for key in payload:
            if key not in reference:
                issues.append(ShapeIssue(_child(path, key), "extra", f"unexpected key {key!r}"))
    elif expected == "array" and reference:
        # Items may come in several shapes; each item is held to the one it fits best.
        templates = list({_canonical(item): item for item in reference}.values())
        for index, item in enumerate(payload):
            issues.extend(min((_shape(item, t, _item(path, index)) for t in templates), key=len))
    return issues


def _walk(value: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    yield path, value
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, _child(path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, _item(path, index))


def shape_check(
    payload: Any,
    reference_payload: Any,
    enums: Mapping[str, Sequence[Any]] | None = None,
) -> list[ShapeIssue]:
    """How ``payload`` departs from the shape of ``reference_payload`` (a rendered sample).

    Reports missing keys, extra keys, JSON type mismatches and, for paths named in ``enums``
    (``[*]`` wildcards allowed), values outside the allowed list. Differing values are not
    issues: two deliveries of one event always differ in ids and times.
    """
    issues = _shape(payload, reference_payload, "$")
    for pattern_text, allowed in (enums or {}).items():
        pattern = _PathPattern(pattern_text)
        allowed_keys = {_canonical(value) for value in allowed}
        for path, value in _walk(payload):
            if pattern.matches(path, subtree=False) and _canonical(value) not in allowed_keys:
                choices = ", ".join(_canonical(v) for v in allowed)
                issues.append(
                    ShapeIssue(path, "enum", f"{_canonical(value)} is not one of: {choices}")
                )
    return issues
