"""The expression language inside `{{ … }}`: tokens, argument reading, and the registry.

An expression is a generator name followed by its arguments, optionally followed by filters:
`{{ shared call_id prefix 'call_' hex 16 }}`, `{{ faker.city | slug }}`. Arguments are bare words
(`16`, `true`, `male`), quoted strings (`'call_'`, always text) or a parenthesised expression
(`tz (ref data.sdkContext.sdkTimezone)`). Nothing here evaluates Python: every name must be in
`GENERATORS`/`FILTERS` (filled by `generators.py`) or be a whitelisted Faker provider method.

Parsing happens once, when the catalog loads; it yields a plain closure `Evaluator(ctx)`, so
rendering does no parsing at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import TemplateError
from .paths import PathError, Segment, parse_path


class Context(Protocol):
    """What an evaluator may use while a payload renders (see engine.Ctx)."""

    path: tuple[Segment, ...]

    @property
    def rng(self) -> Any: ...
    @property
    def faker(self) -> Any: ...
    def ref(self, up: int | None, segments: tuple[Segment, ...]) -> Any: ...


Evaluator = Callable[[Any], Any]
Parser = Callable[["Args", "CompileEnv"], Evaluator]
GENERATORS: dict[str, tuple[Parser, str]] = {}
"""name -> (parser, one-line help); filled by generators.py."""
FILTERS: dict[str, tuple[Callable[[Any], Any], str]] = {}
FAKER_PREFIX = "faker."


def generator(name: str, help_text: str) -> Callable[[Parser], Parser]:
    """Register a generator; `help_text` feeds fixtures/README.md checks and error hints."""

    def deco(fn: Parser) -> Parser:
        GENERATORS[name] = (fn, help_text)
        return fn

    return deco


@dataclass
class RefUse:
    """A reference found while compiling, checked against the whole template afterwards."""

    text: str
    up: int | None
    segments: tuple[Segment, ...]


@dataclass
class CompileEnv:
    """What the compiler knows about the place an expression is written in."""

    enums: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    locale: str = "en_US"
    allow_refs: bool = True
    """False in per-attempt headers, which are built without the payload."""
    allow_attempt: bool = False
    """`attempt.*` only makes sense in headers: a body must be the same on every attempt."""
    refs: list[RefUse] = field(default_factory=list)
    uses_attempt: bool = False


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "word" | "str" | "punct"
    text: str


_TOKEN = re.compile(r"""\s*(?:'([^']*)'|"([^"]*)"|([()|])|([^\s()|'"]+))""")
_INT = re.compile(r"^-?\d+$")
_FLOAT = re.compile(r"^-?\d+\.\d+$")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"cannot read {text[pos:].strip()!r} (unbalanced quote?)")
        sq, dq, punct, word = m.groups()
        if sq is not None or dq is not None:
            tokens.append(Token("str", sq if sq is not None else dq))
        elif punct is not None:
            tokens.append(Token("punct", punct))
        else:
            tokens.append(Token("word", word))
        pos = m.end()
    return tokens


def literal(token: Token) -> Any:
    """A bare word keeps its JSON type (`5`, `2.5`, `true`, `null`); quoted text stays text."""
    if token.kind == "str":
        return token.text
    t = token.text
    if _INT.match(t):
        return int(t)
    if _FLOAT.match(t):
        return float(t)
    return {"true": True, "false": False, "null": None}.get(t, t)


class Args:
    """A cursor over the tokens of one expression, with typed readers that explain mistakes."""

    def __init__(self, tokens: list[Token], name: str = "") -> None:
        self.tokens = tokens
        self.pos = 0
        self.name = name

    def at_end(self) -> bool:
        """No more arguments for the current generator (end, `)` or `|`)."""
        tok = self.tokens[self.pos] if self.pos < len(self.tokens) else None
        return tok is None or (tok.kind == "punct" and tok.text in ")|")

    def peek(self) -> Token | None:
        return None if self.at_end() else self.tokens[self.pos]

    def peek_word(self) -> str | None:
        tok = self.peek()
        return tok.text if tok and tok.kind == "word" else None

    def next(self, what: str) -> Token:
        if self.at_end():
            raise TemplateError(f"'{self.name}' needs {what}")
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def word(self, what: str) -> str:
        tok = self.next(what)
        if tok.kind == "punct":
            raise TemplateError(f"'{self.name}' needs {what}, not '{tok.text}'")
        return tok.text

    def int(self, what: str) -> int:
        text = self.word(what)
        if not _INT.match(text):
            raise TemplateError(f"'{self.name}' needs {what} (a whole number), not {text!r}")
        return int(text)

    def number(self, what: str) -> float:
        text = self.word(what)
        if not (_INT.match(text) or _FLOAT.match(text)):
            raise TemplateError(f"'{self.name}' needs {what} (a number), not {text!r}")
        return float(text)

    def literal(self, what: str) -> Any:
        tok = self.next(what)
        if tok.kind == "punct":
            raise TemplateError(f"'{self.name}' needs {what}, not '{tok.text}'")
        return literal(tok)

    def value(self, what: str, env: CompileEnv) -> Evaluator:
        """A literal, or a `( … )` sub-expression evaluated at render time."""
        tok = self.next(what)
        if tok.kind == "punct" and tok.text == "(":
            inner = parse_expr(self, env)
            closing = self.tokens[self.pos] if self.pos < len(self.tokens) else None
            if closing is None:
                raise TemplateError("'(' without ')'")
            if closing.text != ")" or closing.kind != "punct":
                raise TemplateError(f"unexpected {closing.text!r} before ')'")
            self.pos += 1
            return inner
        if tok.kind == "punct":
            raise TemplateError(f"'{self.name}' needs {what}, not '{tok.text}'")
        return const(literal(tok))

    def path(self, what: str, env: CompileEnv, *, wildcard: bool = False
             ) -> tuple[int | None, tuple[Segment, ...]]:
        """A reference to another field of the same payload; recorded for load-time checks."""
        if not env.allow_refs:
            raise TemplateError(f"'{self.name}' cannot refer to the payload here")
        text = self.word(what)
        try:
            up, segments = parse_path(text, relative=True, wildcard=wildcard)
        except PathError as exc:
            raise TemplateError(str(exc)) from None
        env.refs.append(RefUse(text, up, segments))
        return up, segments

    def remaining_literals(self, what: str) -> list[Any]:
        values = []
        while not self.at_end():
            values.append(self.literal(what))
        return values


def parse_expr(args: Args, env: CompileEnv) -> Evaluator:
    """One generator call, reading exactly the arguments that generator takes."""
    tok = args.next("a generator name")
    if tok.kind == "punct" and tok.text == "(":
        args.pos -= 1
        return args.value("an expression", env)
    if tok.kind != "word":
        raise TemplateError(f"expected a generator name, found {tok.text!r}")
    name = tok.text
    outer, args.name = args.name, name
    try:
        if name.startswith(FAKER_PREFIX):
            from .fakerx import parse_faker  # local: Faker is heavy and only needed here

            return parse_faker(name[len(FAKER_PREFIX):], args, env)
        entry = GENERATORS.get(name)
        if entry is None:
            raise TemplateError(unknown_generator_message(name))
        return entry[0](args, env)
    finally:
        args.name = outer


def unknown_generator_message(name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(GENERATORS) + ["faker.<method>"], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    if "." in name and not name.startswith(FAKER_PREFIX):
        head = name.split(".", 1)[0]
        if difflib.get_close_matches(head, ["faker"], n=1, cutoff=0.6):
            hint = f" (did you mean 'faker.{name.split('.', 1)[1]}'?)"
    return f"unknown generator '{name}'{hint}"


def parse_pipeline(text: str, env: CompileEnv) -> Evaluator:
    """A whole `{{ … }}` body: an expression, then `| filter` steps."""
    tokens = tokenize(text)
    if not tokens:
        raise TemplateError("empty '{{ }}'")
    args = Args(tokens)
    fn = parse_expr(args, env)
    while args.pos < len(args.tokens):
        tok = args.tokens[args.pos]
        if tok.text != "|" or tok.kind != "punct":
            raise TemplateError(f"unexpected {tok.text!r} after the expression"
                                " (too many arguments, or a missing '|')")
        if args.pos + 1 >= len(args.tokens):
            raise TemplateError("'|' must be followed by a filter name")
        name = args.tokens[args.pos + 1].text
        if name not in FILTERS:
            raise TemplateError(f"unknown filter '{name}' (filters: {', '.join(FILTERS)})")
        args.pos += 2
        fn = _chain(fn, FILTERS[name][0])
    return fn


def const(value: Any) -> Evaluator:
    """An evaluator that always gives `value` (a literal argument)."""
    return lambda ctx: value


def _chain(fn: Evaluator, step: Callable[[Any], Any]) -> Evaluator:
    return lambda ctx: step(fn(ctx))
