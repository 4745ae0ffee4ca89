"""The generator vocabulary of fixture templates (documented in fixtures/README.md).

Each `@generator` reads its arguments at load time and returns a closure run at render time.
Randomness always comes from `ctx.rng`, a `random.Random` seeded for this render and this field
alone, so overriding or adding one field never reshuffles the others.
"""

from __future__ import annotations

import re
import string
from datetime import timedelta
from typing import Any

from .errors import RenderError, TemplateError
from .paths import format_path
from .syntax import (
    FILTERS,
    Args,
    CompileEnv,
    Evaluator,
    const,
    generator,
    parse_expr,
)
from .timefmt import FORMATS, Stamp, as_instant, format_time, parse_range, zone


class _Omit:
    """The value of `{{ omit }}`: the key (or list item) is left out of the payload."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT = _Omit()
_ALNUM = string.ascii_letters + string.digits


def plain(value: Any) -> Any:
    """Finished payload data: Stamps printed, containers copied, everything JSON-ready."""
    kind = type(value)
    if kind is str or kind is int or value is None:  # most values: nothing to do
        return value
    if kind is Stamp:
        return value.render()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not OMIT}
    if isinstance(value, list):
        return [plain(v) for v in value if v is not OMIT]
    return value


def text(value: Any) -> str:
    """How a value reads inside a sentence: `"{{ ref .id }}-x"`; JSON spelling for literals."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _count(args: Args) -> int:
    n = args.int("a length")
    if not 0 < n <= 4096:
        raise TemplateError(f"'{args.name}' length must be between 1 and 4096, not {n}")
    return n


# --- identifiers and random text -------------------------------------------------------------

_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def random_uuid(rng: Any) -> str:
    """A version 4 UUID from `rng` (what uuid.UUID(int=…, version=4) gives, without its cost)."""
    h = f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@generator("uuid", "a random UUID v4, e.g. 34c16742-b5a3-444f-954e-cc245564f86b")
def _uuid(args: Args, env: CompileEnv) -> Evaluator:
    return lambda ctx: random_uuid(ctx.rng)


def _chars(alphabet: str) -> Any:
    def parse(args: Args, env: CompileEnv) -> Evaluator:
        n = _count(args)
        return lambda ctx: "".join(ctx.rng.choices(alphabet, k=n))

    return parse


@generator("hex", "N lowercase hex digits: hex 16")
def _hex(args: Args, env: CompileEnv) -> Evaluator:
    n = _count(args)
    return lambda ctx: f"{ctx.rng.getrandbits(4 * n):0{n}x}"  # one draw, not n


@generator("digits", "N decimal digits as text (keeps leading zeros): digits 4")
def _digits(args: Args, env: CompileEnv) -> Evaluator:
    n = _count(args)
    top = 10 ** n
    return lambda ctx: f"{ctx.rng.randrange(top):0{n}d}"


generator("alnum", "N letters and digits, mixed case: alnum 8")(_chars(_ALNUM))
generator("letters", "N lowercase letters: letters 6")(_chars(string.ascii_lowercase))


_PATTERN = {"#": string.digits, "?": string.ascii_lowercase, "*": "0123456789abcdef"}


@generator("pattern", "text with # a digit, ? a letter, * a hex digit: pattern 'AB-####'")
def _pattern(args: Args, env: CompileEnv) -> Evaluator:
    template = str(args.literal("a pattern such as '3###'"))

    def run(ctx: Any) -> str:
        rng = ctx.rng
        return "".join(rng.choice(_PATTERN[c]) if c in _PATTERN else c for c in template)

    return run


@generator("prefix", "text put before another generator: prefix 'call_' hex 16")
def _prefix(args: Args, env: CompileEnv) -> Evaluator:
    head = str(args.literal("the prefix text"))
    inner = parse_expr(args, env)
    return lambda ctx: head + text(inner(ctx))


# --- numbers and choices ---------------------------------------------------------------------

@generator("int", "a whole number between MIN and MAX inclusive: int 1 9999")
def _int(args: Args, env: CompileEnv) -> Evaluator:
    lo, hi = args.int("a minimum"), args.int("a maximum")
    if hi < lo:
        raise TemplateError(f"int {lo} {hi}: the maximum is below the minimum")
    return lambda ctx: ctx.rng.randint(lo, hi)


@generator("float", "a decimal number between MIN and MAX, rounded: float -90 90 6")
def _float(args: Args, env: CompileEnv) -> Evaluator:
    lo, hi = args.number("a minimum"), args.number("a maximum")
    places = args.int("decimal places") if not args.at_end() else 2
    return lambda ctx: round(ctx.rng.uniform(lo, hi), places)


@generator("bool", "true or false; optional chance of true: bool 0.2")
def _bool(args: Args, env: CompileEnv) -> Evaluator:
    chance = args.number("the chance of true (0 to 1)") if not args.at_end() else 0.5
    return lambda ctx: ctx.rng.random() < chance


@generator("choice", "one of the listed values, types kept: choice male female")
def _choice(args: Args, env: CompileEnv) -> Evaluator:
    values = args.remaining_literals("values to choose from")
    if not values:
        raise TemplateError("'choice' needs at least one value")
    return lambda ctx: ctx.rng.choice(values)


@generator("enum", "one value of a set listed under `enums:` in vendor.yaml: enum ticket_state")
def _enum(args: Args, env: CompileEnv) -> Evaluator:
    name = args.word("the name of an enum")
    if name not in env.enums:
        known = ", ".join(env.enums) or "none defined"
        raise TemplateError(f"unknown enum '{name}' (enums: {known})")
    values = list(env.enums[name])
    return lambda ctx: ctx.rng.choice(values)


def _case_key(value: Any) -> str:
    value = plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


@generator("by", "pick by another field's value: by .gender male=(faker.first_name_male) "
                 "female=(faker.first_name_female) else=x")
def _by(args: Args, env: CompileEnv) -> Evaluator:
    up, segments = args.path("the field to look at", env)
    cases: dict[str, Evaluator] = {}
    while not args.at_end():
        tok = args.word("cases written value=result")
        key, eq, rest = tok.partition("=")
        if not eq or not key:
            raise TemplateError(f"'by' cases are written value=result, not {tok!r}")
        cases[key] = const(_literal_word(rest)) if rest else args.value(f"a result for {key}",
                                                                          env)
    if not cases:
        raise TemplateError("'by' needs at least one value=result case")
    fallback = cases.pop("else", None)

    def run(ctx: Any) -> Any:
        key = _case_key(ctx.ref(up, segments))
        chosen = cases.get(key, fallback)
        if chosen is None:
            raise RenderError(f"'by {format_path(segments)}': no case for {key!r}"
                              f" (cases: {', '.join(cases)})")
        return chosen(ctx)

    return run


def _literal_word(word: str) -> Any:
    from .syntax import Token, literal

    return literal(Token("word", word))


@generator("e164", "a phone number in E.164 form for a country (US, CA, AU, GB, FR): e164 US")
def _e164(args: Args, env: CompileEnv) -> Evaluator:
    formats = {"US": "+1{a}##{a}######", "CA": "+1{a}##{a}######", "AU": "+614########",
               "GB": "+447#########", "FR": "+336########"}
    country = args.word("a country code") if not args.at_end() else "US"
    if country.upper() not in formats:
        raise TemplateError(f"e164: unknown country {country!r} (known: {', '.join(formats)})")
    fmt = formats[country.upper()]

    def run(ctx: Any) -> str:
        rng = ctx.rng
        # North American area and exchange codes never start with 0 or 1.
        out = fmt.replace("{a}", "%")
        return "".join(str(rng.randint(2, 9)) if c == "%" else
                       str(rng.randint(0, 9)) if c == "#" else c for c in out)

    return run


# --- structure: references, sharing, leaving out ---------------------------------------------

@generator("ref", "the value of another field: ref sender.id, ref .created_at, ref data[*].id")
def _ref(args: Args, env: CompileEnv) -> Evaluator:
    up, segments = args.path("a field path", env, wildcard=True)
    return lambda ctx: ctx.ref(up, segments)


@generator("shared", "reuse a value across events of a scenario: shared call_id prefix 'call_' "
                     "hex 16")
def _shared(args: Args, env: CompileEnv) -> Evaluator:
    if not env.allow_refs:
        raise TemplateError("'shared' cannot be used here")
    name = args.word("a name for the shared value")
    inner = parse_expr(args, env)

    def run(ctx: Any) -> Any:
        shared = ctx.shared
        if name in shared:
            return shared[name]
        value = inner(ctx)
        shared[name] = plain(value)
        return value

    return run


@generator("omit", "leave this key out of the payload")
def _omit(args: Args, env: CompileEnv) -> Evaluator:
    return const(OMIT)


@generator("repeat", "first item of a list: repeat the next item N times: repeat 1..4")
def _repeat(args: Args, env: CompileEnv) -> Evaluator:
    raise TemplateError("'repeat' can only be the first item of a list, followed by one item")


# --- the event and the delivery attempt ------------------------------------------------------

def _field(scope: str, names: tuple[str, ...], attempt: bool = False) -> None:
    for name in names:
        def parse(args: Args, env: CompileEnv, name: str = name) -> Evaluator:
            if attempt:
                if not env.allow_attempt:
                    raise TemplateError(f"'{scope}.{name}' is only known per delivery attempt:"
                                        " use it in headers, not in the payload")
                env.uses_attempt = True
            return lambda ctx: getattr(getattr(ctx, scope), name)

        generator(f"{scope}.{name}", f"the {scope}'s {name}")(parse)


_field("event", ("name", "object", "action"))
_field("attempt", ("number", "timestamp", "delivery_id"), attempt=True)


@generator("message_id", "this render's message id (vendor.yaml `message_id:`), same on retries")
def _message_id(args: Args, env: CompileEnv) -> Evaluator:
    return lambda ctx: ctx.message_id()


# --- time ------------------------------------------------------------------------------------

@generator("time", "a time: time [now | ago 1d..30d | after PATH [by R] | before PATH [by R]]"
                   " [as FORMAT] [tz ZONE]")
def _time(args: Args, env: CompileEnv) -> Evaluator:
    anchor: Evaluator = lambda ctx: ctx.now  # noqa: E731
    fmt: str | None = None
    tz: Evaluator | None = None
    while not args.at_end():
        word = args.word("now, ago, after, before, as or tz")
        if word == "now":
            continue
        if word == "ago":
            lo, hi = _range(args, "a range such as 1d..30d")
            anchor = _shift(lambda ctx: ctx.now, -1, lo, hi)
        elif word in ("after", "before"):
            anchor = _relative(args, env, word)
        elif word == "as":
            fmt = args.word("a format")
            if fmt not in FORMATS:
                raise TemplateError(f"unknown time format {fmt!r} (formats: {', '.join(FORMATS)})")
        elif word == "tz":
            tok = args.peek()
            if tok is not None and tok.text == "(" and tok.kind == "punct":
                tz = args.value("a time zone expression", env)  # checked when it renders
            else:
                name = str(args.literal("a time zone such as Australia/Melbourne"))
                try:
                    zone(name)
                except ValueError as exc:
                    raise TemplateError(str(exc)) from None
                tz = const(name)
        else:
            raise TemplateError(f"'time' does not understand {word!r}"
                                " (use now, ago, after, before, as, tz)")

    def run(ctx: Any) -> Stamp:
        where = zone_of(tz(ctx)) if tz else ctx.zone
        return Stamp(anchor(ctx), fmt or ctx.time_format, where)

    return run


def zone_of(name: Any) -> Any:
    try:
        return zone(str(name))
    except ValueError as exc:
        raise RenderError(str(exc)) from None


def _range(args: Args, what: str) -> tuple[float, float]:
    try:
        return parse_range(args.word(what))
    except ValueError as exc:
        raise TemplateError(str(exc)) from None


def _shift(base: Evaluator, sign: int, lo: float, hi: float) -> Evaluator:
    return lambda ctx: base(ctx) + timedelta(seconds=sign * ctx.rng.uniform(lo, hi))


def _instant(ctx: Any, up: int | None, segments: tuple[Any, ...]) -> Any:
    value = ctx.ref(up, segments)
    at = as_instant(value)
    if at is None:
        raise RenderError(f"expected a time at '{format_path(segments)}', found {value!r}")
    return at


def _relative(args: Args, env: CompileEnv, word: str) -> Evaluator:
    up, segments = args.path("the field holding a time", env)
    sign = 1 if word == "after" else -1
    if args.peek_word() == "by":
        args.word("by")
        lo, hi = _range(args, "a range such as 2s..40s")
        return _shift(lambda ctx: _instant(ctx, up, segments), sign, lo, hi)

    def default(ctx: Any) -> Any:
        at = _instant(ctx, up, segments)
        if word == "before":
            return at - timedelta(seconds=ctx.rng.uniform(1, 86400))
        gap = (ctx.now - at).total_seconds()
        # Somewhere between that time and now; if it is already in the future, a bit later.
        span = (0.001, gap) if gap > 0.001 else (1, 3600)
        return at + timedelta(seconds=ctx.rng.uniform(*span))

    return default


@generator("seconds", "whole seconds from one time field to another: seconds .answered_at "
                      ".ended_at")
def _seconds(args: Args, env: CompileEnv) -> Evaluator:
    start = args.path("the earlier time field", env)
    end = args.path("the later time field", env)
    # Whole-second floors first, so the figure matches times printed without fractions.
    return lambda ctx: (int(_instant(ctx, *end).timestamp())
                        - int(_instant(ctx, *start).timestamp()))


# --- filters ---------------------------------------------------------------------------------

def _filter(name: str, help_text: str) -> Any:
    def deco(fn: Any) -> Any:
        FILTERS[name] = (fn, help_text)
        return fn

    return deco


_filter("str", "as text: 42 -> \"42\"")(text)
_filter("lower", "lowercase text")(lambda v: text(v).lower())
_filter("upper", "uppercase text")(lambda v: text(v).upper())
_filter("title", "Title Case text")(lambda v: text(v).title())
_filter("slug", "lowercase letters and digits only: \"St. Kilda\" -> \"stkilda\"")(
    lambda v: re.sub(r"[^a-z0-9]+", "", text(v).lower()))


@_filter("int", "as a whole number: \"42\" -> 42")
def _to_int(value: Any) -> int:
    value = plain(value)
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise RenderError(f"'| int' cannot turn {value!r} into a number") from None


__all__ = ["OMIT", "plain", "text", "format_time"]
