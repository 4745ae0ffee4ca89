"""Reading fixture YAML as *nodes*, so every value keeps the line it was written on.

`yaml.safe_load` would hand back plain dicts and forget where things were; a fixture author
needs "call.yaml:14: field 'data.duration'", so the catalog composes node trees instead and
builds values from them here. Only YAML's safe scalar types are understood (text, numbers,
booleans, null); dates stay text so `dob: 1990-07-29` is not silently turned into a date object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from .errors import FixtureError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_PLAIN_TAGS = {"tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool",
               "tag:yaml.org,2002:null"}
_AS_TEXT = {"tag:yaml.org,2002:timestamp"}


@dataclass
class Problems:
    """The errors found in one file; a file with any is skipped by the catalog."""

    file: str
    errors: list[FixtureError] = field(default_factory=list)

    def add(self, line: int | None, field_: str | None, message: str) -> None:
        self.errors.append(FixtureError(self.file, line, field_, message))

    def __bool__(self) -> bool:
        return bool(self.errors)


def compose(text: str, problems: Problems) -> yaml.Node | None:
    """Parse YAML into nodes; a syntax error is reported with the parser's own line."""
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        problems.add(mark.line + 1 if mark else None, None, f"YAML syntax error: {what}")
    except yaml.YAMLError as exc:
        problems.add(None, None, f"YAML syntax error: {exc}")
    return None


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def scalar_value(node: yaml.Node) -> Any:
    """A scalar's value with its YAML type (`5` int, `"5"` text); raises ValueError otherwise."""
    if not isinstance(node, yaml.ScalarNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else "an object"
        raise ValueError(f"expected a single value, found {kind}")
    if node.tag == _STR or node.tag in _AS_TEXT:
        return node.value
    if node.tag in _PLAIN_TAGS:
        try:
            return SafeConstructor().construct_object(node)
        except ConstructorError as exc:
            raise ValueError(str(exc.problem)) from None
    raise ValueError(f"unsupported YAML tag {node.tag!r}")


def mapping_items(node: yaml.MappingNode, problems: Problems, where: str | None
                  ) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """Key/value node pairs, with `<<:` merges applied and duplicate keys reported.

    Duplicates are looked for among the keys written in this mapping only (a key that
    overrides one brought in by `<<:` is fine); a later key wins, as in PyYAML.
    """
    if not getattr(node, "_checked", False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            try:
                key = scalar_value(key_node)
            except ValueError as exc:
                problems.add(line_of(key_node), where, f"bad key: {exc}")
                continue
            if key in seen:
                prefix = f"{where}." if where else ""
                problems.add(line_of(key_node), f"{prefix}{key}",
                             f"duplicate key (first written on line {seen[key]})")
            seen.setdefault(key, line_of(key_node))
        try:
            SafeConstructor().flatten_mapping(node)
        except ConstructorError as exc:
            problems.add(line_of(node), where, f"bad '<<' merge: {exc.problem}")
        node._checked = True  # type: ignore[attr-defined]  # aliases reuse this node
    pairs: dict[Any, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        try:
            pairs[scalar_value(key_node)] = (key_node, value_node)
        except ValueError:
            continue
    yield from pairs.values()


def to_python(node: yaml.Node, problems: Problems, where: str | None) -> Any:
    """Plain data from a node (used for settings, not templates)."""
    if isinstance(node, yaml.MappingNode):
        return {scalar_value(k): to_python(v, problems, where)
                for k, v in mapping_items(node, problems, where)}
    if isinstance(node, yaml.SequenceNode):
        return [to_python(v, problems, where) for v in node.value]
    return scalar_value(node)


_TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
               list: "a list", dict: "an object"}


class Section:
    """A YAML mapping read key by key, each problem reported with its line and dotted field.

    Readers return None after reporting a problem, so one pass over a file finds all of its
    mistakes instead of the first one only.
    """

    def __init__(self, node: yaml.Node, problems: Problems, where: str | None = None) -> None:
        self.problems = problems
        self.where = where
        self.line = line_of(node)
        self.nodes: dict[str, yaml.Node] = {}
        self.key_lines: dict[str, int] = {}
        if not isinstance(node, yaml.MappingNode):
            problems.add(self.line, where, "expected an object (key: value lines)")
            return
        for key_node, value_node in mapping_items(node, problems, where):
            key = str(scalar_value(key_node))
            self.nodes[key] = value_node
            self.key_lines[key] = line_of(key_node)

    def field(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def line_at(self, key: str) -> int:
        return self.line_of_value(key) or self.line

    def line_of_value(self, key: str) -> int | None:
        node = self.nodes.get(key)
        return line_of(node) if node is not None else None

    def allow(self, *keys: str) -> None:
        """Report keys this section does not know (a typo would otherwise be ignored)."""
        for key in self.nodes:
            if key not in keys:
                import difflib

                close = difflib.get_close_matches(key, keys, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else \
                    f" (known: {', '.join(keys)})"
                self.problems.add(self.key_lines[key], self.field(key), f"unknown key{hint}")

    def section(self, key: str, *, required: bool = True) -> Section | None:
        node = self.nodes.get(key)
        if node is None:
            if required:
                self.problems.add(self.line, self.field(key), "missing")
            return None
        return Section(node, self.problems, self.field(key))

    def get(self, key: str, kind: type | tuple[type, ...], *, required: bool = True,
            default: Any = None, choices: tuple[Any, ...] | None = None) -> Any:
        """The plain value at `key`, checked against `kind` (and `choices`)."""
        node = self.nodes.get(key)
        if node is None:
            if required:
                self.problems.add(self.line, self.field(key), "missing")
            return default
        try:
            value = to_python(node, self.problems, self.field(key))
        except ValueError as exc:
            self.problems.add(line_of(node), self.field(key), str(exc))
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            words = " or ".join(_TYPE_WORDS.get(k, k.__name__) for k in kinds)
            self.problems.add(line_of(node), self.field(key), f"expected {words}, found"
                                                              f" {value!r}")
            return default
        if choices is not None and value not in choices:
            self.problems.add(line_of(node), self.field(key),
                              f"unknown value {value!r} (one of: {', '.join(map(str, choices))})")
            return default
        return value

    def text(self, key: str, *, required: bool = True, default: str | None = None) -> str | None:
        value = self.get(key, str, required=required, default=default)
        if required and value is not None and not value.strip():
            self.problems.add(self.line_at(key), self.field(key), "must not be empty")
        return value
