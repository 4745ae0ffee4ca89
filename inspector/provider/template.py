"""Fixture payload templates: YAML nodes compiled into a tree the engine can render.

A template tree mirrors the payload: `MapT` for objects (key order kept), `ListT` for lists,
`RepeatT` for "N copies of this item", `Lit` for plain values (an int stays an int, `"3205"`
stays text) and `Expr`/`Interp` for strings holding `{{ … }}`. Every node remembers the file
and line it came from, so problems found later (a reference into a field the event leaves out)
still point at a line a fixture author can open.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from . import generators  # noqa: F401  - registers the vocabulary
from .errors import FixtureError, TemplateError
from .paths import WILDCARD, Segment, format_path
from .syntax import CompileEnv, Evaluator, RefUse, parse_pipeline
from .yamlread import Problems, line_of, mapping_items, scalar_value

_INTERP = re.compile(r"\{\{(.*?)\}\}", re.S)
_REPEAT = re.compile(r"^\{\{\s*repeat\s+(\d+)(?:\.\.(\d+))?\s*\}\}$")


@dataclass(eq=False)
class TNode:
    file: str
    line: int


@dataclass(eq=False)
class Lit(TNode):
    value: Any


@dataclass(eq=False)
class Expr(TNode):
    """A string that is exactly one `{{ … }}`: its value keeps its own type (int, list, …)."""

    text: str
    fn: Evaluator
    refs: list[RefUse] = field(default_factory=list)
    uses_attempt: bool = False

    @property
    def is_omit(self) -> bool:
        return self.text.strip("{} \t") == "omit"


@dataclass(eq=False)
class Interp(TNode):
    """Text with expressions inside: always renders to a string."""

    text: str
    parts: tuple[str | Evaluator, ...]
    refs: list[RefUse] = field(default_factory=list)
    uses_attempt: bool = False


@dataclass(eq=False)
class MapT(TNode):
    items: dict[str, TNode]


@dataclass(eq=False)
class ListT(TNode):
    items: list[TNode]


@dataclass(eq=False)
class RepeatT(TNode):
    lo: int
    hi: int
    item: TNode


def compile_text(text: str, env: CompileEnv, file: str, line: int) -> TNode:
    """A YAML string -> `Lit`, `Expr` or `Interp`; raises TemplateError."""
    if "{{" not in text:
        return Lit(file, line, text)
    local = replace(env, refs=[], uses_attempt=False)
    parts: list[str | Evaluator] = []
    pos = 0
    for m in _INTERP.finditer(text):
        if "{{" in text[pos:m.start()]:
            break
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        parts.append(parse_pipeline(m.group(1), local))
        pos = m.end()
    if "{{" in text[pos:]:
        raise TemplateError("'{{' without a matching '}}'")
    if pos < len(text):
        parts.append(text[pos:])
    if len(parts) == 1 and not isinstance(parts[0], str):
        return Expr(file, line, text, parts[0], local.refs, local.uses_attempt)
    return Interp(file, line, text, tuple(parts), local.refs, local.uses_attempt)


def compile_node(node: yaml.Node, env: CompileEnv, file: str, path: tuple[Segment, ...],
                 problems: Problems) -> TNode | None:
    """Compile one YAML value; errors are added to `problems` (None is returned then)."""
    line = line_of(node)
    where = format_path(path) if path else None
    if isinstance(node, yaml.MappingNode):
        items: dict[str, TNode] = {}
        ok = True
        for key_node, value_node in mapping_items(node, problems, where):
            key = scalar_value(key_node)
            if not isinstance(key, str):
                problems.add(line_of(key_node), where, f"keys must be text, not {key!r}")
                ok = False
                continue
            child = compile_node(value_node, env, file, (*path, key), problems)
            if child is None:
                ok = False
            else:
                items[key] = child
        return MapT(file, line, items) if ok else None
    if isinstance(node, yaml.SequenceNode):
        return _compile_list(node, env, file, path, problems)
    try:
        value = scalar_value(node)
    except ValueError as exc:
        problems.add(line, where, str(exc))
        return None
    if not isinstance(value, str):
        return Lit(file, line, value)
    try:
        return compile_text(value, env, file, line)
    except TemplateError as exc:
        problems.add(line, where, str(exc))
        return None


def _compile_list(node: yaml.SequenceNode, env: CompileEnv, file: str,
                  path: tuple[Segment, ...], problems: Problems) -> TNode | None:
    line = line_of(node)
    first = node.value[0] if node.value else None
    if isinstance(first, yaml.ScalarNode) and re.match(r"^\{\{\s*repeat\b", str(first.value)):
        m = _REPEAT.match(str(first.value).strip())
        where = format_path(path) if path else None
        if not m or len(node.value) != 2:
            problems.add(line, where, "a repeated list is written as two items:"
                                      " '{{ repeat 1..4 }}' then the item to repeat")
            return None
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) else lo
        if hi < lo or hi > 1000:
            problems.add(line, where, f"repeat {lo}..{hi}: need 0 <= min <= max <= 1000")
            return None
        item = compile_node(node.value[1], env, file, (*path, WILDCARD), problems)
        return RepeatT(file, line, lo, hi, item) if item is not None else None
    items = [compile_node(child, env, file, (*path, i), problems)
             for i, child in enumerate(node.value)]
    if any(item is None for item in items):
        return None
    return ListT(file, line, [i for i in items if i is not None])


def merge(base: TNode | None, over: TNode | None) -> TNode | None:
    """Lay `over` on `base`: objects merge key by key (base order first), anything else replaces.

    This is how an event file only lists what differs from the vendor's envelope and from the
    `common:` part of its own file.
    """
    if base is None:
        return over
    if over is None:
        return base
    if isinstance(base, MapT) and isinstance(over, MapT):
        items = dict(base.items)
        for key, node in over.items.items():
            items[key] = merge(items.get(key), node)  # type: ignore[assignment]
        return MapT(over.file, over.line, items)
    return over


def walk(node: TNode, path: tuple[Segment, ...] = ()) -> Iterator[tuple[tuple[Segment, ...],
                                                                       TNode]]:
    """Every node with its static path (`[*]` for a repeated item)."""
    yield path, node
    if isinstance(node, MapT):
        for key, child in node.items.items():
            yield from walk(child, (*path, key))
    elif isinstance(node, ListT):
        for i, child in enumerate(node.items):
            yield from walk(child, (*path, i))
    elif isinstance(node, RepeatT):
        yield from walk(node.item, (*path, WILDCARD))


def leaf_paths(node: TNode) -> list[tuple[Segment, ...]]:
    """Paths of the fields a payload will carry (for provenance); omitted keys excluded."""
    out = []
    for path, child in walk(node):
        if isinstance(child, MapT | ListT | RepeatT):
            continue
        if isinstance(child, Expr) and child.is_omit:
            continue
        out.append(path)
    return out


def static_target(root: TNode, path: tuple[Segment, ...], *, omitted_ok: bool = False
                  ) -> tuple[TNode | None, str | None]:
    """Follow `path` through the template; (node, None) or (None, why not).

    A path that goes *into* a generated value (an `{{ … }}` that yields an object) cannot be
    checked before rendering and is accepted. `omitted_ok`: a field left out by `{{ omit }}`
    counts as found (a provenance note may describe it for the events that fill it in).
    """
    node: TNode = root
    for i, seg in enumerate(path):
        here = format_path(path[:i])
        if isinstance(node, MapT):
            if not isinstance(seg, str) or seg == WILDCARD:
                return None, f"'{here}' is an object, not a list"
            if seg not in node.items:
                return None, f"there is no field '{format_path(path[:i + 1])}'"
            node = node.items[seg]
        elif isinstance(node, ListT):
            if seg == WILDCARD:
                if not node.items:
                    return None, f"'{here}' is an empty list"
                node = node.items[0]
            elif not isinstance(seg, int) or not -len(node.items) <= seg < len(node.items):
                return None, f"'{here}' has no item {seg}"
            else:
                node = node.items[seg]
        elif isinstance(node, RepeatT):
            if not (seg == WILDCARD or (isinstance(seg, int) and seg < max(node.lo, 1))):
                return None, f"'{here}' repeats {node.lo}..{node.hi} times; item {seg} may" \
                             " not exist"
            node = node.item
        elif isinstance(node, Expr) and not node.is_omit:
            return node, None
        elif isinstance(node, Expr):
            return None, f"'{here}' is left out ({{{{ omit }}}}) in this event"
        else:
            return None, f"'{here}' is a plain value, it has no '{seg}'"
    if isinstance(node, Expr) and node.is_omit and not omitted_ok:
        return None, f"'{format_path(path)}' is left out ({{{{ omit }}}}) in this event"
    return node, None


def resolve_static(here: tuple[Segment, ...], ref: RefUse) -> tuple[Segment, ...] | None:
    """The absolute (static) path a reference written at `here` points to."""
    if ref.up is None:
        return ref.segments
    base = here[:-1]
    if ref.up > len(base):
        return None
    return (*base[:len(base) - ref.up], *ref.segments)


def check_refs(root: TNode) -> list[FixtureError]:
    """Every `ref`/`after`/`by` path must lead to a field of this merged template."""
    errors = []
    for path, node in walk(root):
        for ref in getattr(node, "refs", ()):
            target = resolve_static(path, ref)
            why = "it climbs above the top of the payload" if target is None else \
                static_target(root, target)[1]
            if why:
                errors.append(FixtureError(node.file, node.line, format_path(path),
                                           f"reference '{ref.text}' leads nowhere: {why}"))
    return errors
