"""Rendering a template tree: lazily, field by field, each field with its own seeded random.

Why lazy: `sender_id` is written before `sender` in Audata's envelope but must equal
`sender.id`; `updated_at` must follow `created_at` even when an override pins `created_at`.
So a field is rendered when it is first needed, by the walk over the tree or by a reference,
and remembered. A field that needs itself (directly or through others) is a reference loop.

Why one random per field: the random of field `sender.email` is seeded from
(seed, vendor, event, "sender.email"), so an override of one field, or a new field in a fixture,
leaves every other value as it was for the same seed.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import cache
from hashlib import blake2b
from typing import Any

from .errors import RenderError
from .fakerx import faker_for
from .generators import OMIT, text
from .paths import WILDCARD, PathError, Segment, format_path, get_at
from .template import Expr, Interp, ListT, Lit, MapT, RepeatT, TNode


@dataclass(frozen=True, slots=True)
class EventInfo:
    """`{{ event.name }}`, `{{ event.object }}`, `{{ event.action }}`."""

    name: str
    object: str
    action: str


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """`{{ attempt.number }}`, `{{ attempt.timestamp }}`, `{{ attempt.delivery_id }}`."""

    number: int
    timestamp: int
    delivery_id: str | None


_MASK = (1 << 64) - 1


class FieldRandom(random.Random):
    """`random.Random` driven by SplitMix64: every method (randint, choice, uniform, …) works.

    Why not the standard Mersenne Twister: each field of each render gets its own generator,
    and seeding a Twister (624 words of state) costs more than most fields' whole rendering.
    SplitMix64 starts from one 64-bit word and passes the usual statistical test suites;
    nothing here needs cryptographic randomness.
    """

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK  # the C base class has allocated (and seeded) its own state
        self.gauss_next = None

    def seed(self, a: object = None, version: int = 2) -> None:
        self._state = a & _MASK if isinstance(a, int) else seed_of(repr(a).encode())

    def _next(self) -> int:
        self._state = s = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = ((s ^ (s >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def random(self) -> float:
        return (self._next() >> 11) * (1.0 / 9007199254740992.0)

    def getrandbits(self, k: int) -> int:
        if k <= 64:
            return self._next() >> (64 - k) if k > 0 else 0
        out, have = 0, 0
        while have < k:
            out, have = (out << 64) | self._next(), have + 64
        return out >> (have - k)

    def getstate(self) -> tuple[int, ...]:
        return (self._state,)

    def setstate(self, state: tuple[int, ...]) -> None:
        self._state = state[0]


def seed_of(key: bytes) -> int:
    """A 64-bit seed from bytes, the same on every machine and Python run (unlike hash())."""
    return int.from_bytes(blake2b(key, digest_size=8).digest(), "big")


def seeded(key: str) -> random.Random:
    """A random generator seeded from text."""
    return FieldRandom(seed_of(key.encode()))


_local = threading.local()


def _pool(depth: int) -> FieldRandom:
    """This thread's generator for fields rendered at nesting `depth`.

    Creating a `random.Random` subclass still initialises a Mersenne Twister state in C, so
    instances are reused and only re-seeded (one integer) per field. One per depth, because
    a field that refers to another pauses while that one renders at depth + 1 with its own.
    """
    pool: list[FieldRandom] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = []
    while len(pool) <= depth:
        pool.append(FieldRandom(0))
    return pool[depth]


@cache
def _path_bytes(path: tuple[Segment, ...]) -> bytes:
    return "/".join(map(str, path)).encode()


@dataclass
class Settings:
    """What one render needs besides the template: who, when, how times print."""

    key: str
    """Seed material: seed, vendor, event and batch item, joined."""
    event: EventInfo
    now: datetime
    zone: tzinfo
    time_format: str
    locale: str
    shared: dict[str, Any]
    pins: dict[tuple[Segment, ...], Any]
    message_node: TNode | None = None


class Run:
    """One payload being rendered."""

    def __init__(self, root: TNode, settings: Settings) -> None:
        self.root = root
        self.s = settings
        self.done: dict[tuple[Segment, ...], Any] = {}
        self.active: set[tuple[Segment, ...]] = set()
        self.depth = 0
        self.counts: dict[tuple[Segment, ...], int] = {}
        self._key = settings.key.encode()

    # The public entry points ---------------------------------------------------------------

    def payload(self) -> Any:
        return self.value(())

    def message_id(self) -> Any:
        node = self.s.message_node
        return None if node is None else self._known(("@message_id",), node)

    def header(self, name: str, node: TNode) -> str:
        return text(self._known(("@header", name), node))

    # Values by path -------------------------------------------------------------------------

    def value(self, path: tuple[Segment, ...]) -> Any:
        """The value at `path`, rendering it (and what it needs) on first use."""
        if path in self.done:
            return self.done[path]
        if self.s.pins:  # inside an overridden object: the override decides
            for depth in range(len(path)):
                if path[:depth] in self.s.pins:
                    return self._inside(path, depth, self.s.pins[path[:depth]])
        node, depth = self._locate(path)
        if depth < len(path):  # inside a value a generator produced as a whole
            return self._inside(path, depth, self.value(path[:depth]))
        return self._known(path, node)

    def _inside(self, path: tuple[Segment, ...], depth: int, container: Any) -> Any:
        try:
            result = get_at(container, path[depth:])
        except PathError as exc:
            raise RenderError(str(exc), format_path(path)) from None
        self.done[path] = result
        return result

    def _known(self, path: tuple[Segment, ...], node: TNode) -> Any:
        """Render `node`, found at `path`, once; overrides pinned at `path` win."""
        done = self.done
        if path in done:
            return done[path]
        pins = self.s.pins
        if pins and path in pins:
            result = done[path] = pins[path]
            return result
        kind = type(node)
        if kind is Lit:
            return node.value  # type: ignore[attr-defined]
        if kind is Expr or kind is Interp:
            result = done[path] = self._generate(path, node)
            return result
        if kind is MapT:
            out = {}
            for key, child in node.items.items():  # type: ignore[attr-defined]
                value = self._known((*path, key), child)
                if value is not OMIT:
                    out[key] = value
            result = out
        elif kind is ListT:
            items = (self._known((*path, i), c) for i, c in enumerate(node.items))  # type: ignore
            result = [v for v in items if v is not OMIT]
        elif kind is RepeatT:
            count = self._count(path, node)  # type: ignore[arg-type]
            items = (self._known((*path, i), node.item) for i in range(count))  # type: ignore
            result = [v for v in items if v is not OMIT]
        else:
            raise RenderError(f"cannot render {kind.__name__}", format_path(path))
        done[path] = result
        return result

    def _generate(self, path: tuple[Segment, ...], node: TNode) -> Any:
        """Run a field's `{{ … }}`; only these can refer to other fields, so only these can
        form a loop, and only these need a random generator (at the next depth)."""
        if path in self.active:
            raise RenderError("reference loop: this field needs itself", format_path(path))
        self.active.add(path)
        self.depth += 1
        try:
            ctx = Ctx(self, path)
            if type(node) is Expr:
                return node.fn(ctx)  # type: ignore[attr-defined]
            return "".join(p if type(p) is str else text(p(ctx))  # type: ignore[operator]
                           for p in node.parts)  # type: ignore[attr-defined]
        except RenderError as exc:
            if exc.path is None:
                raise RenderError(str(exc), format_path(path)) from None
            raise
        finally:
            self.active.discard(path)
            self.depth -= 1

    def _count(self, path: tuple[Segment, ...], node: RepeatT) -> int:
        """How many items a `repeat` list has (asked again by every reference into it)."""
        count = self.counts.get(path)
        if count is None:
            rng = FieldRandom(self.seed_for((*path, "#count")))  # not the pool: may run mid-field
            count = self.counts[path] = rng.randint(node.lo, node.hi)
        return count

    def _locate(self, path: tuple[Segment, ...]) -> tuple[TNode, int]:
        """The template node for `path`, and how many segments of the path it covers."""
        node = self.root
        for i, seg in enumerate(path):
            if isinstance(node, MapT) and isinstance(seg, str) and seg in node.items:
                node = node.items[seg]
            elif isinstance(node, ListT) and isinstance(seg, int) and seg < len(node.items):
                node = node.items[seg]
            elif isinstance(node, RepeatT) and isinstance(seg, int) \
                    and seg < self._count(path[:i], node):
                node = node.item
            elif isinstance(node, Expr):
                return node, i
            else:
                raise RenderError(f"no field '{format_path(path[:i + 1])}'", format_path(path))
        return node, len(path)

    # Randomness ------------------------------------------------------------------------------

    def seed_for(self, path: tuple[Segment, ...]) -> int:
        return seed_of(self._key + _path_bytes(path))

    def rng_for(self, path: tuple[Segment, ...]) -> random.Random:
        """The generator of the field at `path`, valid until that field is rendered."""
        rng = _pool(self.depth)
        rng.seed(self.seed_for(path))
        return rng


class Ctx:
    """What an evaluator sees: its field's path, random, Faker, and the rest of the payload."""

    __slots__ = ("run", "path", "_rng")

    def __init__(self, run: Run, path: tuple[Segment, ...]) -> None:
        self.run = run
        self.path = path
        self._rng: random.Random | None = None

    @property
    def rng(self) -> random.Random:
        if self._rng is None:
            self._rng = self.run.rng_for(self.path)
        return self._rng

    @property
    def faker(self) -> Any:
        gen = faker_for(self.run.s.locale)
        gen.random = self.rng
        return gen

    @property
    def shared(self) -> dict[str, Any]:
        return self.run.s.shared

    @property
    def event(self) -> EventInfo:
        return self.run.s.event

    @property
    def now(self) -> datetime:
        return self.run.s.now

    @property
    def zone(self) -> tzinfo:
        return self.run.s.zone

    @property
    def time_format(self) -> str:
        return self.run.s.time_format

    attempt = None

    def message_id(self) -> Any:
        return self.run.message_id()

    def ref(self, up: int | None, segments: tuple[Segment, ...]) -> Any:
        if up is None:
            target = segments
        else:
            base = self.path[:-1]
            if up > len(base):
                raise RenderError("reference climbs above the top of the payload")
            target = (*base[:len(base) - up], *segments)
        return self._resolve(target)

    def _resolve(self, target: tuple[Segment, ...]) -> Any:
        for i, seg in enumerate(target):
            if isinstance(seg, int) and seg < 0:  # items[-1]: the same field as items[n-1]
                container = self.run.value(target[:i])
                if not isinstance(container, list) or -seg > len(container):
                    raise RenderError(f"'{format_path(target[:i + 1])}' does not exist")
                target = (*target[:i], len(container) + seg, *target[i + 1:])
        if WILDCARD not in target:
            return self.run.value(target)
        i = target.index(WILDCARD)
        container = self.run.value(target[:i])
        if not isinstance(container, list):
            raise RenderError(f"'{format_path(target[:i])}' is not a list, '[*]' needs one")
        return [self._resolve((*target[:i], j, *target[i + 1:])) for j in range(len(container))]


_rngs = threading.local()


def _attempt_rng() -> random.Random:
    """This thread's generator for per-attempt values, seeded once from the OS: a fresh
    ``random.Random()`` per attempt reads ~2.5 KB of urandom, a fifth of an attempt's cost."""
    rng = getattr(_rngs, "rng", None)
    if rng is None:
        rng = _rngs.rng = random.Random()
    return rng


class AttemptCtx:
    """The context of a per-attempt header: no payload, fresh randomness, the attempt's data."""

    __slots__ = ("rng", "event", "attempt", "locale", "_message_id", "now", "zone",
                 "time_format", "path")

    def __init__(self, *, event: EventInfo, attempt: AttemptInfo, locale: str,
                 message_id: str | None, now: datetime, zone: tzinfo, time_format: str) -> None:
        self.rng = _attempt_rng()
        self.event = event
        self.attempt = attempt
        self.locale = locale
        self._message_id = message_id
        self.now = now
        self.zone = zone
        self.time_format = time_format
        self.path: tuple[Segment, ...] = ()

    @property
    def faker(self) -> Any:
        gen = faker_for(self.locale)
        gen.random = self.rng
        return gen

    def message_id(self) -> str | None:
        return self._message_id

    def ref(self, up: int | None, segments: tuple[Segment, ...]) -> Any:
        raise RenderError("per-attempt headers cannot refer to the payload")
