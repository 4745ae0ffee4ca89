"""What the catalog knows about vendors and their events, as plain immutable dataclasses.

Every behaviour a vendor has (methods, signing, retries, headers, each payload field) carries a
`Provenance`: "documented" (with where it is written) or "assumed" (with why we chose it), so
the UI can tell users which parts of the mock are the vendor's word and which are our guess.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import FixtureError, UnknownEventError, UnknownVendorError
from .paths import Segment, format_path
from .template import TNode

SIGNING_SCHEMES = ("audian", "standard-webhooks", "stripe", "github", "atomic-hmac", "none")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_FORMATS = ("json", "json-pretty")
"""`json`: compact (`{"a":1}`), as JavaScript's JSON.stringify and Rails' to_json send it;
`json-pretty`: two-space indented, as Stripe delivers."""
GET_ENCODINGS = ("brackets", "dots")
"""How a nested payload becomes URL parameters: `sender[first_name]=…` or `sender.first_name=…`."""


@dataclass(frozen=True)
class Provenance:
    """Whether a behaviour is the vendor's documented word or our assumption, and why."""

    status: str  # "documented" | "assumed"
    note: str

    @property
    def documented(self) -> bool:
        return self.status == "documented"

    def to_public(self) -> dict[str, str]:
        return {"status": self.status, "note": self.note}


@dataclass(frozen=True)
class HeaderSpec:
    """One header the vendor sends; `per_attempt` ones change on every retry."""

    name: str
    value: str
    template: TNode = field(repr=False, compare=False)
    per_attempt: bool
    provenance: Provenance

    def to_public(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "per_attempt": self.per_attempt,
                "provenance": self.provenance.to_public()}


@dataclass(frozen=True)
class BatchSpec:
    """How a batched delivery looks: `flag` set to true, `items` holding a list of events."""

    flag: tuple[Segment, ...]
    items: tuple[Segment, ...]
    provenance: Provenance


@dataclass(frozen=True)
class Event:
    """One event a vendor sends, with its merged payload template."""

    name: str
    vendor: str
    description: str
    object: str
    action: str
    methods: tuple[str, ...]
    template: TNode = field(repr=False, compare=False)
    provenance: Provenance
    fields: dict[str, Provenance] = field(repr=False)
    """Every payload field's path (`sender.email`, `data[*].id`) -> its provenance."""
    file: str
    line: int

    def to_public(self, *, fields: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "description": self.description, "object": self.object,
            "action": self.action, "methods": list(self.methods),
            "provenance": self.provenance.to_public()}
        if fields:
            out["fields"] = {path: p.to_public() for path, p in self.fields.items()}
        return out


@dataclass(frozen=True)
class Vendor:
    """A vendor the mock imitates: how it sends, signs and retries, and what events it has."""

    id: str
    name: str
    description: str
    docs: tuple[str, ...]
    methods: tuple[str, ...]
    default_method: str
    content_type: str | None
    body_format: str
    get_encoding: str
    signing: str
    demo_secret: str
    retry_schedule: tuple[float, ...]
    """Seconds to wait before each attempt, counted from the previous one; [0] = no retries."""
    retry_jitter: tuple[float, float]
    """Extra random seconds (min, max) added to every retry's wait (not to the first attempt)."""
    no_retry_statuses: tuple[int, ...]
    timeout: float
    https_only: bool
    locale: str
    timezone: str
    time_format: str
    delivery_id_header: str | None
    headers: tuple[HeaderSpec, ...]
    enums: dict[str, tuple[Any, ...]]
    batch: BatchSpec | None
    events: dict[str, Event]
    provenance: dict[str, Provenance]
    """Setting name (`methods`, `signing`, `retry`, …) -> provenance."""
    file: str
    envelope: TNode = field(repr=False, compare=False)
    message_id_template: TNode | None = field(default=None, repr=False, compare=False)
    delivery_id_template: TNode | None = field(default=None, repr=False, compare=False)

    @property
    def attempts(self) -> int:
        return len(self.retry_schedule)

    def event(self, name: str) -> Event:
        try:
            return self.events[name]
        except KeyError:
            raise UnknownEventError(self.id, name, list(self.events)) from None

    def delay_before(self, attempt: int, *, rng: random.Random | None = None,
                     scale: float = 1.0) -> float | None:
        """Seconds to wait before `attempt` (1-based), jitter included; None: no such attempt.

        `scale` is `--retry-scale`: it multiplies the wait and the jitter alike.
        """
        if not 1 <= attempt <= len(self.retry_schedule):
            return None
        delay = self.retry_schedule[attempt - 1]
        if attempt > 1 and self.retry_jitter[1] > 0:
            delay += (rng or random).uniform(*self.retry_jitter)
        return delay * scale

    def should_retry(self, status: int | None) -> bool:
        """Whether a response (None: no response at all) earns another attempt."""
        if status is None:
            return True
        return not (200 <= status < 300) and status not in self.no_retry_statuses

    def to_public(self, *, fields: bool = False) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "description": self.description,
            "docs": list(self.docs),
            "events": [e.to_public(fields=fields) for e in self.events.values()],
            "methods": list(self.methods), "default_method": self.default_method,
            "signing": self.signing, "demo_secret": self.demo_secret or None,
            "content_type": self.content_type,
            "https_only": self.https_only, "timeout": self.timeout,
            "retry": {"schedule": list(self.retry_schedule), "jitter": list(self.retry_jitter),
                      "no_retry_statuses": list(self.no_retry_statuses)},
            "locale": self.locale, "timezone": self.timezone,
            "delivery_id_header": self.delivery_id_header,
            "batch": None if self.batch is None else {
                "flag": format_path(self.batch.flag), "items": format_path(self.batch.items),
                "provenance": self.batch.provenance.to_public()},
            "headers": [h.to_public() for h in self.headers],
            "provenance": {k: p.to_public() for k, p in self.provenance.items()},
        }


@dataclass
class Catalog:
    """All vendors that loaded, and what was wrong with the files that did not."""

    root: Path
    vendors: dict[str, Vendor]
    errors: list[FixtureError]

    def vendor(self, vendor_id: str) -> Vendor:
        try:
            return self.vendors[vendor_id]
        except KeyError:
            raise UnknownVendorError(vendor_id, list(self.vendors)) from None

    def event(self, vendor_id: str, event: str) -> tuple[Vendor, Event]:
        vendor = self.vendor(vendor_id)
        return vendor, vendor.event(event)

    def to_public(self, *, fields: bool = False) -> dict[str, Any]:
        """The body of `GET /api/vendors` (CONTRACT.md), plus provenance and fixture errors."""
        return {"vendors": [v.to_public(fields=fields) for v in self.vendors.values()],
                "errors": [e.to_public() for e in self.errors]}
