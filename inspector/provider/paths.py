"""Dotted JSON paths: `sender.email`, `items[0].id`, `items[-1].id`, `data[*].id`, `.created_at`.

One syntax is shared by overrides (`--set sender.email=x`), template references
(`{{ ref sender.id }}`) and provenance notes (`fields: {sender.dob: …}`), so a fixture author and
a CLI user learn it once. A leading `$` or `$.` is accepted and ignored (the diff API prints
`$.sender.email`). Keys that themselves contain `.`, `[` or `]` cannot be addressed; no vendor
payload we mimic has such keys.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

WILDCARD = "*"
"""Segment meaning "every item of this list" (references and provenance only)."""

Segment = str | int
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(-?\d+|\*)\]")


class PathError(ValueError):
    """A path that does not parse, or that does not lead anywhere in a value."""


def parse_path(text: str, *, relative: bool = False, wildcard: bool = False
               ) -> tuple[int | None, tuple[Segment, ...]]:
    """Split `text` into `(up, segments)`.

    `up` is None for an absolute path; for a relative one (`.x`, `..x`, allowed only when
    `relative`), it counts how many levels above the *containing object* the path starts:
    `.x` is a sibling (0), `..x` a sibling of the parent (1).
    """
    text = text.strip()
    if text in ("$", ""):
        raise PathError("empty path")
    up: int | None = None
    if text.startswith("$."):
        text = text[2:]
    elif text.startswith(".") and relative:
        dots = len(text) - len(text.lstrip("."))
        up, text = dots - 1, text[dots:]
    segments: list[Segment] = []
    pos = 0
    expect_key = True
    while pos < len(text):
        if text[pos] == "." and not expect_key and segments:
            pos += 1
            expect_key = True
            continue
        m = _SEGMENT.match(text, pos)
        if not m or (m.group(1) is not None and not expect_key):
            raise PathError(f"cannot read path {text!r} at character {pos + 1}")
        if m.group(1) is not None:
            segments.append(m.group(1))
        elif m.group(2) == WILDCARD:
            if not wildcard:
                raise PathError(f"'[*]' is not allowed in {text!r}")
            segments.append(WILDCARD)
        else:
            segments.append(int(m.group(2)))
        expect_key = False
        pos = m.end()
    if not segments or expect_key and text.endswith("."):
        raise PathError(f"cannot read path {text!r}")
    return up, tuple(segments)


def format_path(segments: tuple[Segment, ...] | list[Segment]) -> str:
    """The inverse of `parse_path` for absolute paths: `('a', 0, 'b')` -> `a[0].b`."""
    out = ""
    for seg in segments:
        if isinstance(seg, int) or seg == WILDCARD:
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else seg
    return out or "$"


def _describe_miss(container: Any, seg: Segment, where: str) -> str:
    here = f"in '{where}'" if where != "$" else "at the top level"
    if isinstance(container, dict):
        if not isinstance(seg, str):
            return f"'{where}' is an object, not a list"
        close = difflib.get_close_matches(seg, [str(k) for k in container], n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"no field '{seg}' {here}{hint}"
    if isinstance(container, list):
        if not isinstance(seg, int):
            return f"'{where}' is a list: use an index like '{where}[0]'"
        return f"'{where}' has {len(container)} item(s), no index {seg}"
    return f"'{where}' is a {type(container).__name__}, it has no '{seg}'"


def get_at(value: Any, segments: tuple[Segment, ...]) -> Any:
    """The value at `segments`; raises PathError naming the first segment that misses."""
    current = value
    for i, seg in enumerate(segments):
        ok = (isinstance(current, dict) and isinstance(seg, str) and seg in current) or (
            isinstance(current, list) and isinstance(seg, int)
            and -len(current) <= seg < len(current))
        if not ok:
            raise PathError(_describe_miss(current, seg, format_path(segments[:i])))
        current = current[seg]  # type: ignore[index]
    return current


def set_at(value: Any, segments: tuple[Segment, ...], new: Any) -> None:
    """Replace the value at an *existing* path (never creates keys: a typo must not pass)."""
    if not segments:
        raise PathError("cannot replace the whole payload")
    get_at(value, segments)
    get_at(value, segments[:-1])[segments[-1]] = new
