"""Webhook subscriptions of the mock provider: the vendors' "register an endpoint" side.

No Flask here: the web layer (web/vendor_emulation.py, web/subscriptions_api.py) parses and
shapes; this module checks a subscription's fields, makes ids and secrets the vendor's way,
decides which subscriptions an event reaches, and hands each one its own delivery to the
delivery engine (signed with the subscription's secret, with its custom headers, method and
envelope ids). Health (consecutive failures, pause) follows the engine's settled deliveries.

Vendor rules, documented or assumed (see VENDORS.md):

- Audian: ``wh_`` + 16 hex ids, ``whsec_`` + 32 hex secrets; https only (``strict_vendor_rules``
  refuses http, otherwise it is accepted with a warning); events may be ``["*"]``.
- Atomic: 8 alphanumeric ids, UUID secrets, one environment per subscription (its id and the
  subscription id go in the envelope's ``environmentId``/``webhookId``), the subscription's
  ``headers`` on every request, POST or PUT, optional ``cardTemplateId``/``actionFlowConfigId``
  filters; pauses itself after ``ATOMIC_PAUSE_AFTER`` deliveries in a row that never succeed
  (the number is assumed: the docs only say "deliveries that never succeed").
- Console vendors (Audata, ApiRTC, AlphaTouch, and the generic signing schemes): ``sub_`` ids;
  options: Audata ``method`` (GET or POST) or ``methods`` per event, ApiRTC ``headers``,
  AlphaTouch ``api_key`` (put in each payload's ``api_key``).
"""

from __future__ import annotations

import base64
import logging
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .delivery import DeliveryEngine, TargetRefused, check_url
from .provider.errors import ProviderError
from .provider.render import Rendered, render
from .storage.db import Database
from .storage.deliveries import Delivery, DeliveryStore
from .storage.subscriptions import Subscription, SubscriptionStore

log = logging.getLogger(__name__)

API_VENDORS = ("audian", "atomic")
"""Vendors whose subscriptions are made through their own API (/vendors/…)."""
CONSOLE_VENDORS = ("audata", "apirtc", "alphatouch", "standard-webhooks", "stripe", "github")
"""Vendors whose subscriptions are set up in a console: /api/subscriptions."""
ATOMIC_PAUSE_AFTER = 3
SOURCE = "emit"
_ALNUM = string.ascii_letters + string.digits
MAX_EVENTS = 200


class SubscriptionError(ValueError):
    """A bad field: ``status`` 400 (not the right type/shape) or 422 (a value refused)."""

    def __init__(self, field_: str | None, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field_
        self.message = message
        self.status = status


class NotFound(LookupError):
    pass


@dataclass
class Sent:
    """One delivery made to one subscription."""

    subscription: Subscription
    delivery: Delivery
    event_id: str | None


@dataclass
class EmitResult:
    vendor: str
    event: str
    seed: int
    sent: list[Sent] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)


def _new_id(vendor: str) -> str:
    if vendor == "audian":
        return "wh_" + secrets.token_hex(8)
    if vendor == "atomic":
        return "".join(secrets.choice(_ALNUM) for _ in range(8))
    return "sub_" + secrets.token_hex(6)


def new_secret(vendor_id: str, scheme: str) -> str | None:
    """A secret in the format the vendor hands out; None for unsigned vendors."""
    if vendor_id == "atomic" or scheme == "atomic-hmac":
        return str(uuid.uuid4())
    if scheme == "audian":
        return "whsec_" + secrets.token_hex(16)
    if scheme == "standard-webhooks":
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")
    if scheme == "stripe":
        return "whsec_" + "".join(secrets.choice(_ALNUM) for _ in range(32))
    if scheme == "github":
        return secrets.token_hex(20)
    return None


def _get_path(payload: Any, path: str) -> Any:
    cur = payload
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SubscriptionService:
    """Subscriptions of one database, delivered through one engine."""

    def __init__(self, db: Database, engine: DeliveryEngine, *,
                 strict_vendor_rules: bool | None = None) -> None:
        self.db = db
        self.engine = engine
        self.store = SubscriptionStore(db)
        self.deliveries = DeliveryStore(db)
        self.strict = (engine.strict_vendor_rules if strict_vendor_rules is None
                       else strict_vendor_rules)
        self._hooked = False
        self._lock = threading.Lock()

    @property
    def catalog(self) -> Any:
        return self.engine.catalog

    def attach(self) -> SubscriptionService:
        """Listen to the engine's settled deliveries (health, auto-pause). Idempotent."""
        with self._lock:
            if not self._hooked:
                self.engine.listeners.append(self.on_delivery)
                self._hooked = True
        return self

    def on_delivery(self, summary: Mapping[str, Any]) -> None:
        """The engine's listener; may run on the database's writer thread, so it only queues
        a write and never waits for one."""
        if summary.get("source") != SOURCE or summary.get("status") not in ("delivered",
                                                                            "failed"):
            return
        outcome = str(summary["status"])
        if outcome == "failed" and summary.get("error") == "cancelled":
            outcome = "cancelled"  # the user's doing, not the target's: no auto-pause
        self.store.settle_later(int(summary["id"]), outcome, summary.get("settled_at"))

    # -- validation --------------------------------------------------------------------------
    def check_url(self, vendor_id: str, raw: Any, field_: str = "url") -> tuple[str, list[str]]:
        """The url, stripped, and any warning; SubscriptionError naming ``field_``."""
        if raw is None or raw == "":
            raise SubscriptionError(field_, f"{field_} is required")
        if not isinstance(raw, str):
            raise SubscriptionError(field_, f"{field_} must be a string", 400)
        url = raw.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise SubscriptionError(field_, f"{field_} must be an absolute http(s) URL, "
                                            f"got {url[:200]!r}")
        try:
            url = check_url(url, self.engine.own)
        except TargetRefused as exc:
            raise SubscriptionError(field_, f"{field_}: {exc}") from None
        warnings = []
        v = self.catalog.vendor(vendor_id)
        if v.https_only and parts.scheme != "https":
            msg = f"{v.name} only delivers to https:// endpoints (HTTP is not supported)"
            if self.strict:
                raise SubscriptionError(field_, f"{field_} must use https: {msg}")
            warnings.append(f"{field_}: {msg}; accepted because --strict-vendor-rules is off")
        return url, warnings

    def check_events(self, vendor_id: str, raw: Any, field_: str = "events",
                     allow_star: bool = True) -> list[str]:
        if raw is None:
            raise SubscriptionError(field_, f"{field_} is required")
        if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
            raise SubscriptionError(field_, f"{field_} must be a list of event names", 400)
        if not raw:
            raise SubscriptionError(field_, f"{field_} must name at least one event")
        if len(raw) > MAX_EVENTS:
            raise SubscriptionError(field_, f"{field_}: at most {MAX_EVENTS} events")
        v = self.catalog.vendor(vendor_id)
        out: list[str] = []
        for name in raw:
            if name == "*" and allow_star:
                pass
            elif name not in v.events:
                known = ", ".join(sorted(v.events))
                raise SubscriptionError(field_, f"{field_}: unknown event {name!r} "
                                                f"(known: {known}{', *' * allow_star})")
            if name not in out:
                out.append(name)
        return out

    @staticmethod
    def check_bool(raw: Any, field_: str) -> bool:
        if not isinstance(raw, bool):
            raise SubscriptionError(field_, f"{field_} must be true or false", 400)
        return raw

    @staticmethod
    def check_str(raw: Any, field_: str, max_len: int = 1000) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise SubscriptionError(field_, f"{field_} must be a string", 400)
        if len(raw) > max_len:
            raise SubscriptionError(field_, f"{field_} is longer than {max_len} characters")
        return raw

    @staticmethod
    def check_headers(raw: Any, field_: str = "headers") -> dict[str, str]:
        if raw is None:
            return {}
        if isinstance(raw, list):  # [[name, value], …] as the rest of the API writes headers
            if not all(isinstance(p, list | tuple) and len(p) == 2 for p in raw):
                raise SubscriptionError(field_, f"{field_} must be an object of name: value",
                                        400)
            raw = {str(n): v for n, v in raw}
        if not isinstance(raw, dict):
            raise SubscriptionError(field_, f"{field_} must be an object of name: value", 400)
        out = {}
        for name, value in raw.items():
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                raise SubscriptionError(f"{field_}.{name}", f"{field_}.{name} must be a string",
                                        400)
            value = str(value)
            if (not name or any(c in name for c in " :\r\n\t")
                    or any(c in value for c in "\r\n")):
                raise SubscriptionError(f"{field_}.{name}", f"{field_}: invalid header "
                                                            f"{name!r}")
            if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
                raise SubscriptionError(f"{field_}.{name}", f"{field_}: {name} cannot be set")
            out[name] = value
        return out

    def check_method(self, vendor_id: str, raw: Any, field_: str = "method") -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise SubscriptionError(field_, f"{field_} must be a string", 400)
        v = self.catalog.vendor(vendor_id)
        m = raw.upper()
        if m not in v.methods:
            raise SubscriptionError(field_, f"{field_}: {v.name} sends with "
                                            f"{' or '.join(v.methods)}, not {raw!r}")
        return m

    # -- CRUD --------------------------------------------------------------------------------
    def create(self, vendor_id: str, *, url: Any, events: Any, active: Any = True,
               description: Any = None, options: Mapping[str, Any] | None = None,
               scope: str = "", allow_star: bool = True) -> Subscription:
        v = self.catalog.vendor(vendor_id)
        url, warnings = self.check_url(v.id, url)
        evs = self.check_events(v.id, events, allow_star=allow_star)
        sub = Subscription(
            id=_new_id(v.id), vendor=v.id, scope=scope, url=url, events=evs,
            active=self.check_bool(active, "active"),
            description=self.check_str(description, "description"),
            secret=new_secret(v.id, v.signing), options=dict(options or {}),
            warnings=warnings,
            pause_after=ATOMIC_PAUSE_AFTER if v.id == "atomic" else None)
        return self.store.create(sub)

    def get(self, sub_id: str, vendor: str | None = None, scope: str | None = None
            ) -> Subscription:
        sub = self.store.get(sub_id)
        if sub is None or (vendor is not None and sub.vendor != vendor) or (
                scope is not None and sub.scope != scope):
            raise NotFound(f"no webhook subscription with id {sub_id!r}")
        return sub

    def list(self, vendor: str | None = None, scope: str | None = None) -> list[Subscription]:
        return self.store.list(vendor, scope)

    def update(self, sub: Subscription, **changes: Any) -> Subscription:
        """Changes already checked by the caller (check_* above); a new url re-checks its
        warnings; re-activating clears a pause."""
        if "url" in changes:
            url, warnings = self.check_url(sub.vendor, changes["url"])
            changes["url"] = url
            changes["warnings"] = warnings
        if changes.get("active") is True:
            changes.setdefault("paused_at", None)
            changes.setdefault("consecutive_failures", 0)
        updated = self.store.update(sub.id, **changes)
        if updated is None:
            raise NotFound(f"no webhook subscription with id {sub.id!r}")
        return updated

    def delete(self, sub: Subscription) -> None:
        self.store.delete(sub.id)

    def disable(self, sub: Subscription) -> Subscription:
        return self.update(sub, active=False)

    def rotate_secret(self, sub: Subscription) -> Subscription:
        v = self.catalog.vendor(sub.vendor)
        return self.update(sub, secret=new_secret(v.id, v.signing))

    # -- delivering --------------------------------------------------------------------------
    def listens(self, sub: Subscription, event: str) -> bool:
        return "*" in sub.events or event in sub.events

    def filter_reason(self, sub: Subscription, payload: Any) -> str | None:
        """Why an event's payload does not reach ``sub`` (Atomic's card filters), or None."""
        if sub.vendor != "atomic":
            return None
        for opt, path in (("cardTemplateId", "data.cardContext.cardTemplateId"),
                          ("actionFlowConfigId", "data.platformContext.flowConfigId")):
            want = sub.options.get(opt)
            if want is not None and str(_get_path(payload, path)) != str(want):
                return f"{opt} filter {want!r} does not match {path}"
        return None

    def _sub_overrides(self, sub: Subscription, test: bool = False) -> dict[str, Any]:
        """What the subscription puts in the payload itself."""
        out: dict[str, Any] = {}
        if sub.vendor == "atomic":
            out["webhookId"] = sub.id
            if sub.scope:
                out["environmentId"] = sub.scope
            if test:  # a test event is one the subscription's filters let through
                if sub.options.get("cardTemplateId") is not None:
                    out["data.cardContext.cardTemplateId"] = str(sub.options["cardTemplateId"])
                if sub.options.get("actionFlowConfigId") is not None:
                    out["data.platformContext.flowConfigId"] = str(
                        sub.options["actionFlowConfigId"])
        if sub.vendor == "alphatouch" and sub.options.get("api_key"):
            out["api_key"] = sub.options["api_key"]
        return out

    def _method(self, sub: Subscription, event: str) -> str | None:
        per_event = sub.options.get("methods") or {}
        return per_event.get(event) or sub.options.get("method")

    def deliver(self, sub: Subscription, event: str, *, seed: int | None = None,
                overrides: Mapping[str, Any] | None = None, shared: dict[str, Any] | None
                = None, now: datetime | None = None, kind: str = "emit",
                base: Rendered | None = None) -> Sent:
        """Render ``event`` for ``sub`` and hand it to the engine as its own delivery."""
        v = self.catalog.vendor(sub.vendor)
        merged = {**(overrides or {}), **self._sub_overrides(sub, test=kind == "test")}
        method = self._method(sub, event)
        if base is not None and not merged and method in (None, base.method):
            rendered = base
        else:
            if base is not None:
                seed, now = base.seed, base.now
            rendered = render(v, event, seed=seed, overrides=merged or None, method=method,
                              shared=shared, now=now)
        headers = [(k, str(val)) for k, val in (sub.options.get("headers") or {}).items()]
        d = self.engine.send(
            v.id, event, sub.url, rendered=rendered, secret=sub.secret or "",
            overrides=merged or None, source=SOURCE, extra_headers=headers,
            context={"subscription": sub.id, "kind": kind, "scope": sub.scope or None})
        event_id = _get_path(rendered.payload, "id") if sub.vendor == "audian" else None
        if event_id is None:
            event_id = rendered.message_id
        self.store.link(d.id, sub.id, rendered.event, str(event_id) if event_id else None, kind)
        if d.settled:  # refused before any attempt (strict vendor rules): count it now
            self.store.settle_later(d.id, d.status, d.settled_at)
        return Sent(sub, d, str(event_id) if event_id else None)

    def send_test(self, sub: Subscription, event: str | None = None) -> Sent:
        """The vendor's test button: one event to this subscription, active or not."""
        v = self.catalog.vendor(sub.vendor)
        if event is None:
            event = next((e for e in sub.events if e != "*"), None) or next(iter(v.events))
        v.event(event)
        return self.deliver(sub, event, kind="test")

    def emit(self, vendor_id: str, event: str, *, seed: int | None = None,
             overrides: Mapping[str, Any] | None = None, shared: dict[str, Any] | None = None,
             now: datetime | None = None, scope: str | None = None, kind: str = "emit"
             ) -> EmitResult:
        """Send ``event`` to every receiving subscription of the vendor that listens for it;
        each gets its own delivery. The event is rendered once (one seed, one clock) so every
        subscription gets the same data; per-subscription parts (Atomic ids, AlphaTouch
        api_key, method) are pinned on top."""
        v = self.catalog.vendor(vendor_id)
        v.event(event)
        seed = seed if seed is not None else secrets.randbits(53)  # JS-safe
        shared = {} if shared is None else shared
        base = render(v, event, seed=seed, overrides=overrides or None, shared=shared, now=now)
        result = EmitResult(v.id, base.event, seed, shared=shared)
        for sub in self.store.list(v.id, scope):
            reason = None
            if not sub.active:
                reason = "inactive"
            elif sub.paused:
                reason = "paused after repeated failed deliveries"
            elif not self.listens(sub, base.event):
                reason = "not subscribed to this event"
            else:
                reason = self.filter_reason(sub, base.payload)
            if reason:
                result.skipped.append({"subscription": sub.id, "reason": reason})
                continue
            try:
                result.sent.append(self.deliver(sub, base.event, overrides=overrides,
                                                shared=shared, kind=kind, base=base))
            except (ProviderError, TargetRefused) as exc:
                result.skipped.append({"subscription": sub.id, "reason": str(exc)})
        return result

    # -- reading back ------------------------------------------------------------------------
    def logs(self, sub: Subscription, page: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        entries, total = self.store.logs(sub.id, page, limit)
        out = []
        for e in entries:
            d = self.deliveries.get(e.delivery_id, attempts=False)
            out.append({
                "entry": e,
                "delivery": d,
            })
        return out, total

    def wait(self, delivery_id: int, timeout: float) -> Delivery | None:
        return self.engine.wait(delivery_id, timeout)


def run_steps(planned: list[Any], send: Callable[[Any], Any], *, delay_scale: float = 1.0,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic,
              stop: threading.Event | None = None) -> list[Any]:
    """Call ``send(step)`` for each planned scenario step at its time (delays × scale).

    ``stop``: once set (the server is stopping), no further step is sent, and a wait for
    the next one ends at once; the steps sent so far are returned."""
    start = clock()
    out = []
    for p in planned:
        due = start + p.at * max(0.0, delay_scale)
        left = due - clock()
        if stop is not None:
            if stop.wait(max(0.0, left)):
                break
        elif left > 0:
            sleep(left)
        out.append(send(p))
    return out


__all__ = ["API_VENDORS", "ATOMIC_PAUSE_AFTER", "CONSOLE_VENDORS", "EmitResult", "NotFound",
           "Sent", "SubscriptionError", "SubscriptionService", "new_secret", "run_steps"]
