"""`faker.<method>` in templates: which Faker methods are allowed, and how they are called.

Why a whitelist: fixture text must never reach arbitrary attributes, and some Faker methods
would quietly break the promise "same seed, same bytes" (anything relative to today's date) or
produce things a JSON webhook cannot carry (files, images, archives). Allowed are the public
methods of Faker's data providers minus those.

Why `use_weighting=False`: with weighting, Faker walks a cumulative-frequency table of thousands
of names on *every* call (≈ 80-190 µs per name or e-mail); uniform choice is ≈ 30× faster and
just as plausible for a mock. Faker generators are built once per locale and thread, and each
render hands them its own seeded `random.Random` (never the global Faker instance).
"""

from __future__ import annotations

import inspect
import re
import threading
from datetime import date
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faker.generator import Generator

from .errors import TemplateError
from .syntax import Args, CompileEnv, Evaluator, Token, const, literal

_CLOCK_DEPENDENT = re.compile(r"date|time|dob|expire|birth|profile|passport|year|month|century")
_NOT_DATA = {
    "binary", "zip", "tar", "image", "json", "json_bytes", "xml", "csv", "dsv", "tsv", "psv",
    "fixed_width", "enum", "seed", "seed_instance", "seed_locale", "add_provider",
    "get_providers", "set_formatter", "get_formatter", "set_arguments", "get_arguments",
    "del_arguments", "parse", "format", "provider", "random", "pyobject", "pyiterable",
}
_local = threading.local()


def faker_for(locale: str) -> Generator:
    """This thread's Faker generator for `locale` (building one costs ≈ 1 ms).

    Faker is imported here, on first use, not at import time: every server process imports
    the provider, but only one that renders events needs Faker's ~15 MiB of data."""
    from faker import Faker

    cache_ = getattr(_local, "generators", None)
    if cache_ is None:
        cache_ = _local.generators = {}
    gen = cache_.get(locale)
    if gen is None:
        gen = cache_[locale] = Faker(locale, use_weighting=False)._factories[0]
    return gen


@cache
def known_locale(locale: str) -> bool:
    from faker import Faker

    try:
        Faker(locale)
    except AttributeError:
        return False
    return True


@cache
def allowed_methods(locale: str) -> dict[str, inspect.Signature | None]:
    """Public data-provider methods usable in fixtures for `locale`, with their signatures."""
    gen = faker_for(locale)
    banned = _date_time_methods() | _NOT_DATA
    allowed: dict[str, inspect.Signature | None] = {}
    for provider in gen.providers:
        for name in dir(provider):
            if name.startswith("_") or name in banned or _CLOCK_DEPENDENT.search(name):
                continue
            attr = getattr(provider, name, None)
            if callable(attr):
                try:
                    allowed[name] = inspect.signature(attr)
                except (TypeError, ValueError):
                    allowed[name] = None
    return allowed


@cache
def _date_time_methods() -> frozenset[str]:
    """Methods Faker's date/time provider defines itself (not those it inherits)."""
    from faker.providers.date_time import Provider as DateTimeProvider

    return frozenset(n for n in vars(DateTimeProvider) if not n.startswith("_"))


def _why_not(name: str) -> str:
    if name in _date_time_methods() or _CLOCK_DEPENDENT.search(name):
        return ("depends on today's date, so the same seed would not give the same bytes;"
                " use 'time ago 18y..80y as date' instead")
    if name in _NOT_DATA:
        return "is not allowed in fixtures"
    return "is not a Faker method for this locale"


def parse_faker(name: str, args: Args, env: CompileEnv) -> Evaluator:
    """`faker.pyint min_value=1 max_value=9`: keyword arguments only, checked at load time."""
    methods = allowed_methods(env.locale)
    if name not in methods:
        import difflib

        close = difflib.get_close_matches(name, list(methods), n=1)
        hint = f" (did you mean 'faker.{close[0]}'?)" if close else ""
        raise TemplateError(f"unknown generator 'faker.{name}': '{name}' {_why_not(name)}{hint}")
    kwargs: dict[str, Evaluator] = {}
    while not args.at_end():
        tok = args.word("key=value arguments")
        key, eq, rest = tok.partition("=")
        if not eq or not key.isidentifier():
            raise TemplateError(f"faker arguments are written key=value, not {tok!r}")
        if rest:
            kwargs[key] = const(literal(Token("word", rest)))
        else:
            kwargs[key] = args.value(f"a value for {key}", env)
    signature = methods[name]
    if signature is not None:
        try:
            signature.bind(**dict.fromkeys(kwargs))
        except TypeError as exc:
            raise TemplateError(f"faker.{name}: {exc}") from None
    if not kwargs:
        return lambda ctx: _plain(getattr(ctx.faker, name)())

    def call(ctx: Any) -> Any:
        values = {k: v(ctx) for k, v in kwargs.items()}  # first: they may render other fields
        return _plain(getattr(ctx.faker, name)(**values))

    return call


def _plain(value: Any) -> Any:
    """Faker sometimes returns Decimal, date or tuple; a JSON payload needs plain types."""
    if type(value) is str:
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | set):
        return list(value)
    return value
