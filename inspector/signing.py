"""Webhook signature schemes: sign, verify, detect and re-sign.

Everything here is pure: no clock, no network, no I/O. The caller passes the timestamp to sign
with and the "now" to verify against, so the same code serves the mock provider (signing what it
sends), the inspector (explaining why a captured signature does or does not verify) and replay
(re-signing a capture with a fresh timestamp).

Each scheme is a small object in :data:`SCHEMES` that knows its key derivation, the exact bytes
it signs, the headers it writes and how to read them back. ``documented`` says whether the scheme
follows the vendor's public documentation or is our assumption (Atomic's real scheme is not
public); the UI shows that flag. :func:`register_scheme` replaces an entry, so an assumed scheme
can be swapped for the real one without touching callers.

Header values are compared in constant time (:func:`hmac.compare_digest`): this module is also the
reference users copy into their own receivers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace

Headers = Sequence[tuple[str, str]]

__all__ = [
    "SCHEMES",
    "InvalidSecretError",
    "Scheme",
    "UnknownSchemeError",
    "Verification",
    "detect_scheme",
    "register_scheme",
    "resign",
    "sign",
    "verify",
]


class UnknownSchemeError(ValueError):
    """Raised for a scheme id that is not in :data:`SCHEMES`."""


class InvalidSecretError(ValueError):
    """Raised when a secret cannot be turned into a key (e.g. not base64 where base64 is due)."""


class _HeaderProblem(Exception):
    """A signature header is missing or unreadable; its message becomes the verification reason."""


@dataclass(frozen=True)
class Verification:
    """The outcome of :func:`verify`, detailed enough to show a user *why* it failed.

    ``valid`` is the verdict a strict receiver would reach. ``digest_matches`` is reported on its
    own because the most common replay failure is a correct signature with a stale timestamp, and
    the user needs to see that the secret and body were right.

    ``signed_string`` is the exact input to the HMAC (invalid UTF-8 shown as ``\\xNN``);
    ``expected`` is our digest and ``received`` the sender's, both in the scheme's own encoding
    (hex or base64) without prefixes such as ``sha256=`` or ``v1,``; several received digests
    (Standard Webhooks or Stripe during key rotation) are joined with spaces. ``age_seconds`` is
    ``now - timestamp`` (negative when the sender's clock is ahead); the tolerance applies both
    ways.
    """

    scheme: str
    valid: bool
    reason: str
    digest_matches: bool = False
    signed_string: str | None = None
    expected: str | None = None
    received: str | None = None
    timestamp: int | None = None
    age_seconds: int | None = None
    tolerance_seconds: int | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Received:
    """What a scheme read from the headers: candidate digests plus the signed-over metadata.

    ``timestamp_text`` is kept as sent because the sender signed those exact characters.
    """

    digests: tuple[str, ...]
    timestamp_text: str | None = None
    msg_id: str | None = None


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def _escaped_text(data: bytes) -> str:
    """Render signed bytes as text; invalid UTF-8 becomes ``\\xNN`` so nothing is hidden."""
    return data.decode("utf-8", errors="backslashreplace")


class _HeaderLookup:
    """Case-insensitive access to an ordered header list (HTTP/2 lower-cases names)."""

    def __init__(self, headers: Iterable[Sequence[str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in headers:
            self._values.setdefault(name.lower(), []).append(value)

    def first(self, name: str) -> str | None:
        values = self._values.get(name.lower())
        return values[0] if values else None

    def require(self, name: str) -> str:
        value = self.first(name)
        if value is None:
            raise _HeaderProblem(f"missing header {name}")
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values


class Scheme:
    """Base class of a signature scheme; subclasses fill in the scheme-specific parts.

    ``owned_headers`` lists every header the scheme writes; :func:`resign` replaces exactly those.
    ``tolerance_seconds`` is ``None`` when the scheme carries no timestamp.
    """

    id: str = ""
    name: str = ""
    documented: bool = True
    note: str = ""
    owned_headers: tuple[str, ...] = ()
    tolerance_seconds: int | None = None

    # -- what subclasses implement -------------------------------------------------------------
    def key(self, secret: str) -> bytes:
        return secret.encode("utf-8")

    def signed_bytes(self, body: bytes, timestamp: str | None, msg_id: str | None) -> bytes:
        raise NotImplementedError

    def encode_digest(self, digest: bytes) -> str:
        return digest.hex()

    def render(self, digest: str, timestamp: int, msg_id: str | None) -> list[tuple[str, str]]:
        raise NotImplementedError

    def read(self, headers: _HeaderLookup) -> _Received:
        raise NotImplementedError

    # -- shared behaviour ----------------------------------------------------------------------
    def compute(self, secret: str, body: bytes, timestamp: str | None, msg_id: str | None) -> str:
        return self.encode_digest(
            _hmac_sha256(self.key(secret), self.signed_bytes(body, timestamp, msg_id))
        )

    def describe(self) -> dict[str, object]:
        """Metadata for the API and UI (``/api/vendors`` ``signing``)."""
        return {
            "id": self.id,
            "name": self.name,
            "documented": self.documented,
            "note": self.note,
            "headers": list(self.owned_headers),
            "tolerance_seconds": self.tolerance_seconds,
        }


def _timestamped(body: bytes, timestamp: str | None) -> bytes:
    """``"{timestamp}.{body}"``, the signed string shared by Stripe, Audian and Atomic."""
    return f"{timestamp}.".encode() + body


class AudianScheme(Scheme):
    id = "audian"
    name = "Audian"
    documented = True
    note = (
        "Lowercase hex HMAC-SHA256 keyed with the whsec_ string's UTF-8 bytes over "
        "'{timestamp}.{body}'. Sent as bare hex; a 'sha256=' prefix (shown on one docs page) is "
        "accepted when verifying. The 300 s tolerance is assumed: Audian documents none."
    )
    owned_headers = ("X-Audian-Signature", "X-Audian-Timestamp")
    tolerance_seconds = 300

    def signed_bytes(self, body: bytes, timestamp: str | None, msg_id: str | None) -> bytes:
        return _timestamped(body, timestamp)

    def render(self, digest: str, timestamp: int, msg_id: str | None) -> list[tuple[str, str]]:
        return [("X-Audian-Signature", digest), ("X-Audian-Timestamp", str(timestamp))]

    def read(self, headers: _HeaderLookup) -> _Received:
        signature = headers.require("X-Audian-Signature").strip()
        timestamp = headers.require("X-Audian-Timestamp").strip()
        if signature.startswith("sha256="):
            signature = signature[len("sha256=") :]
        return _Received(digests=(signature,), timestamp_text=timestamp)


class AtomicScheme(Scheme):
    id = "atomic-hmac"
    name = "Atomic (assumed HMAC)"
    documented = False
    note = (
        "ASSUMED: Atomic signs its requests but its scheme is not public. This mock uses "
        "hex HMAC-SHA256 keyed with the subscription's UUID secret over '{timestamp}.{body}', "
        "in X-Atomic-Signature and X-Atomic-Timestamp, with 300 s tolerance. Replace it with "
        "register_scheme() once the real scheme is known."
    )
    owned_headers = ("X-Atomic-Signature", "X-Atomic-Timestamp")
    tolerance_seconds = 300

    def signed_bytes(self, body: bytes, timestamp: str | None, msg_id: str | None) -> bytes:
        return _timestamped(body, timestamp)

    def render(self, digest: str, timestamp: int, msg_id: str | None) -> list[tuple[str, str]]:
        return [("X-Atomic-Signature", digest), ("X-Atomic-Timestamp", str(timestamp))]

    def read(self, headers: _HeaderLookup) -> _Received:
        signature = headers.require("X-Atomic-Signature").strip()
        timestamp = headers.require("X-Atomic-Timestamp").strip()
        return _Received(digests=(signature,), timestamp_text=timestamp)


class StandardWebhooksScheme(Scheme):
    id = "standard-webhooks"
    name = "Standard Webhooks 1.0"
    documented = True
    note = (
        "HMAC-SHA256 over '{id}.{timestamp}.{body}' keyed with the base64-decoded part after "
        "'whsec_'; 'webhook-signature' is a space-separated list of 'v1,<base64>'. "
        "Tolerance 300 s either way, as in the reference libraries."
    )
    owned_headers = ("webhook-id", "webhook-timestamp", "webhook-signature")
    tolerance_seconds = 300

    def key(self, secret: str) -> bytes:
        encoded = secret.removeprefix("whsec_")
        try:
            # Secrets are sometimes pasted without padding; restoring it costs nothing.
            return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidSecretError(
                "a Standard Webhooks secret must be 'whsec_' followed by base64"
            ) from exc

    def signed_bytes(self, body: bytes, timestamp: str | None, msg_id: str | None) -> bytes:
        return f"{msg_id}.{timestamp}.".encode() + body

    def encode_digest(self, digest: bytes) -> str:
        return base64.b64encode(digest).decode("ascii")

    def render(self, digest: str, timestamp: int, msg_id: str | None) -> list[tuple[str, str]]:
        return [
            ("webhook-id", msg_id or ""),
            ("webhook-timestamp", str(timestamp)),
            ("webhook-signature", f"v1,{digest}"),
        ]

    def read(self, headers: _HeaderLookup) -> _Received:
        msg_id = headers.require("webhook-id")
        timestamp = headers.require("webhook-timestamp").strip()
        value = headers.require("webhook-signature")
        # Other versions (e.g. asymmetric 'v1a,') may sit in the list; only 'v1,' is HMAC.
        digests = tuple(item.partition(",")[2] for item in value.split() if item.startswith("v1,"))
        if not digests:
            raise _HeaderProblem("malformed header webhook-signature: no 'v1,' signature")
        return _Received(digests=digests, timestamp_text=timestamp, msg_id=msg_id)


class StripeScheme(Scheme):
    id = "stripe"
    name = "Stripe"
    documented = True
    note = (
        "'Stripe-Signature: t=<ts>,v1=<hex>'; hex HMAC-SHA256 over '{t}.{body}' keyed with the "
        "whole 'whsec_' string. Tolerance 300 s."
    )
    owned_headers = ("Stripe-Signature",)
    tolerance_seconds = 300

    def signed_bytes(self, body: bytes, timestamp: str | None, msg_id: str | None) -> bytes:
        return _timestamped(body, timestamp)

    def render(self, digest: str, timestamp: int, msg_id: str | None) -> list[tuple[str, str]]:
        return [("Stripe-Signature", f"t={timestamp},v1={digest}")]

    def read(self, headers: _HeaderLookup) -> _Received:
        value = headers.require("Stripe-Signature")
        timestamp: str | None = None
        digests: list[str] = []
        for item in value.split(","):
            key, _, item_value = item.strip().partition("=")
            if key == "t":
                timestamp = item_value
            elif key == "v1":
                digests.append(item_value)
        if timestamp is None:
            raise _HeaderProblem("malformed header Stripe-Signature: no 't=' timestamp")
        if not digests:
            raise _HeaderProblem("malformed header Stripe-Signature: no 'v1=' signature")
        return _Received(digests=tuple(digests), timestamp_text=timestamp)


class GitHubScheme(Scheme):
    id = "github"
    name = "GitHub"
    documented = True
    note = "'X-Hub-Signature-256: sha256=<hex>' over the raw body; no timestamp, no tolerance."
    owned_headers = ("X-Hub-Signature-256",)
    tolerance_seconds = None

    def signed_bytes(self, body: bytes, timestamp: str | None, msg_id: str | None) -> bytes:
        return body

    def render(self, digest: str, timestamp: int, msg_id: str | None) -> list[tuple[str, str]]:
        return [("X-Hub-Signature-256", f"sha256={digest}")]

    def read(self, headers: _HeaderLookup) -> _Received:
        value = headers.require("X-Hub-Signature-256").strip()
        if not value.startswith("sha256="):
            raise _HeaderProblem("malformed header X-Hub-Signature-256: no 'sha256=' prefix")
        return _Received(digests=(value[len("sha256=") :],))


class NoScheme(Scheme):
    """Unsigned deliveries (Audata, ApiRTC, AlphaTouch document no signature)."""

    id = "none"
    name = "Unsigned"
    documented = True
    note = "The vendor documents no signature; nothing is added and nothing can be verified."


SCHEMES: dict[str, Scheme] = {}


def register_scheme(scheme: Scheme) -> None:
    """Add or replace a scheme by id, e.g. to swap the assumed Atomic scheme for the real one."""
    SCHEMES[scheme.id] = scheme


for _scheme in (
    AudianScheme(),
    StandardWebhooksScheme(),
    StripeScheme(),
    GitHubScheme(),
    AtomicScheme(),
    NoScheme(),
):
    register_scheme(_scheme)


def _get(scheme: str) -> Scheme:
    try:
        return SCHEMES[scheme]
    except KeyError:
        known = ", ".join(sorted(SCHEMES))
        raise UnknownSchemeError(f"unknown signing scheme {scheme!r} (known: {known})") from None


def _default_msg_id(body: bytes, timestamp: int) -> str:
    """A deterministic ``msg_…`` id, so signing stays pure when the caller has no id to give."""
    return "msg_" + hashlib.sha256(f"{timestamp}.".encode() + body).hexdigest()[:24]


def sign(
    scheme: str, secret: str, body: bytes, timestamp: int, msg_id: str | None = None
) -> list[tuple[str, str]]:
    """Return the signature-related headers to add to a request, in the order to send them.

    ``msg_id`` is only used by Standard Webhooks; when omitted, a deterministic id derived from
    the body and timestamp is used. Raises :class:`UnknownSchemeError` or
    :class:`InvalidSecretError`.
    """
    impl = _get(scheme)
    if isinstance(impl, NoScheme):
        return []
    if isinstance(impl, StandardWebhooksScheme) and msg_id is None:
        msg_id = _default_msg_id(body, timestamp)
    digest = impl.compute(secret, body, str(timestamp), msg_id)
    return impl.render(digest, timestamp, msg_id)


def verify(scheme: str, secret: str, body: bytes, headers: Headers, now: int) -> Verification:
    """Check a received request's signature as a strict receiver of ``scheme`` would.

    Never raises for bad input from the request or a bad secret: every failure is a
    :class:`Verification` with ``valid=False`` and a ``reason`` such as ``'signature mismatch'``,
    ``'missing header X-Audian-Signature'``, ``'malformed timestamp'``, ``'invalid secret'`` or
    ``'timestamp outside tolerance'``. Only an unknown scheme id raises.
    """
    impl = _get(scheme)
    tolerance = impl.tolerance_seconds
    if isinstance(impl, NoScheme):
        return Verification(scheme=scheme, valid=True, reason="unsigned", digest_matches=True)

    try:
        received = impl.read(_HeaderLookup(headers))
    except _HeaderProblem as problem:
        return Verification(
            scheme=scheme, valid=False, reason=str(problem), tolerance_seconds=tolerance
        )

    result = Verification(
        scheme=scheme,
        valid=False,
        reason="",
        signed_string=_escaped_text(
            impl.signed_bytes(body, received.timestamp_text, received.msg_id)
        ),
        received=" ".join(received.digests),
        tolerance_seconds=tolerance,
    )

    if received.timestamp_text is not None:
        try:
            timestamp = int(received.timestamp_text)
        except ValueError:
            return replace(result, reason="malformed timestamp")
        result = replace(result, timestamp=timestamp, age_seconds=now - timestamp)

    try:
        expected = impl.compute(secret, body, received.timestamp_text, received.msg_id)
    except InvalidSecretError as exc:
        return replace(result, reason=f"invalid secret: {exc}")

    matches = any(hmac.compare_digest(expected, digest) for digest in received.digests)
    result = replace(result, expected=expected, digest_matches=matches)
    if not matches:
        return replace(result, reason="signature mismatch")
    age = result.age_seconds
    if tolerance is not None and age is not None and abs(age) > tolerance:
        return replace(result, reason="timestamp outside tolerance")
    return replace(result, valid=True, reason="ok")


# Checked in this order; the first scheme whose header is present wins. Standard Webhooks and
# Stripe come first because proxies and SDKs sometimes add GitHub-style headers alongside.
_DETECTION: tuple[tuple[str, str], ...] = (
    ("webhook-signature", "standard-webhooks"),
    ("stripe-signature", "stripe"),
    ("x-audian-signature", "audian"),
    ("x-atomic-signature", "atomic-hmac"),
    ("x-hub-signature-256", "github"),
)


def detect_scheme(headers: Headers) -> str | None:
    """Guess the scheme from header names alone (case-insensitive); ``None`` when unsigned."""
    lookup = _HeaderLookup(headers)
    for header, scheme in _DETECTION:
        if header in lookup:
            return scheme
    return None


def resign(
    scheme: str,
    secret: str,
    body: bytes,
    headers: Headers,
    timestamp: int,
    msg_id: str | None = None,
) -> list[tuple[str, str]]:
    """Return ``headers`` with the scheme's signature headers replaced by fresh ones.

    Used to replay a captured webhook past the receiver's timestamp tolerance. Every other
    header keeps its name, value and position; a replaced header keeps its position and its
    original spelling of the name (HTTP/2 captures are lower-case). Repeats of an owned header
    are dropped, and owned headers the capture lacked are appended. For Standard Webhooks the
    captured ``webhook-id`` is reused unless ``msg_id`` is given, because retries of one message
    keep their id. Other per-attempt headers (e.g. ``X-Audian-Delivery-ID``) are left alone.
    """
    impl = _get(scheme)
    if msg_id is None and isinstance(impl, StandardWebhooksScheme):
        msg_id = _HeaderLookup(headers).first("webhook-id")
    signed = sign(scheme, secret, body, timestamp, msg_id)
    fresh = {name.lower(): (name, value) for name, value in signed}
    owned = {name.lower() for name in impl.owned_headers}
    result: list[tuple[str, str]] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in fresh:
            result.append((name, fresh.pop(lowered)[1]))
        elif lowered in owned:
            continue  # a repeat of a header already replaced, or one this signing left out
        else:
            result.append((name, value))
    result.extend(fresh.values())
    return result
