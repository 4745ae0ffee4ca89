"""Signature schemes against published and independently computed vectors.

The hex vectors below were computed outside this code with
``printf '<signed string>' | openssl dgst -sha256 -hmac '<secret>'`` and hard-coded, so a bug
shared by :mod:`inspector.signing` and Python's ``hmac`` use in these tests cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.signing import (
    SCHEMES,
    InvalidSecretError,
    UnknownSchemeError,
    detect_scheme,
    resign,
    sign,
    verify,
)

# --- Standard Webhooks: the vector published with the specification --------------------------
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# --- GitHub: the vector published in GitHub's "Validating webhook deliveries" docs ------------
GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# --- Stripe / Audian / Atomic: computed with openssl (see module docstring) -------------------
STRIPE_SECRET = "whsec_test_secret"
STRIPE_TS = 1700000000
STRIPE_BODY = b'{"id":"evt_1","object":"event"}'
STRIPE_HEX = "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd"

AUDIAN_SECRET = "whsec_abcdef1234567890"
AUDIAN_TS = 1705314600
AUDIAN_BODY = b'{"id":"evt_123","event":"call.completed"}'
AUDIAN_HEX = "57b0f74fe4d557e141614c419e5d311f50b6b7ed97e2485cb3427a6fe44c3640"

ATOMIC_SECRET = "0217309e-3c74-41b5-82e9-bd60e5db9bdb"
ATOMIC_HEX = "d12d143e661708785a898401f51e9b09ff0631c2ef95e441ba152454ea46b930"


def _hex(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------
# Known vectors
# ---------------------------------------------------------------------------------------------


def test_standard_webhooks_published_vector() -> None:
    headers = sign("standard-webhooks", SW_SECRET, SW_BODY, SW_TS, SW_ID)
    assert headers == [
        ("webhook-id", SW_ID),
        ("webhook-timestamp", str(SW_TS)),
        ("webhook-signature", SW_SIGNATURE),
    ]
    result = verify("standard-webhooks", SW_SECRET, SW_BODY, headers, now=SW_TS)
    assert result.valid and result.reason == "ok"
    assert result.signed_string == f"{SW_ID}.{SW_TS}.{SW_BODY.decode()}"
    assert result.expected == SW_SIGNATURE.removeprefix("v1,")


def test_standard_webhooks_vector_by_hand() -> None:
    key = base64.b64decode(SW_SECRET.removeprefix("whsec_"))
    digest = hmac.new(key, f"{SW_ID}.{SW_TS}.".encode() + SW_BODY, hashlib.sha256).digest()
    assert "v1," + base64.b64encode(digest).decode() == SW_SIGNATURE


def test_github_published_vector() -> None:
    assert sign("github", GH_SECRET, GH_BODY, 0) == [("X-Hub-Signature-256", GH_SIGNATURE)]
    assert _hex(GH_SECRET.encode(), GH_BODY) == GH_SIGNATURE.removeprefix("sha256=")
    result = verify("github", GH_SECRET, GH_BODY, [("x-hub-signature-256", GH_SIGNATURE)], 0)
    assert result.valid
    assert result.timestamp is None and result.tolerance_seconds is None


def test_stripe_vector() -> None:
    assert _hex(STRIPE_SECRET.encode(), f"{STRIPE_TS}.".encode() + STRIPE_BODY) == STRIPE_HEX
    headers = sign("stripe", STRIPE_SECRET, STRIPE_BODY, STRIPE_TS)
    assert headers == [("Stripe-Signature", f"t={STRIPE_TS},v1={STRIPE_HEX}")]
    assert verify("stripe", STRIPE_SECRET, STRIPE_BODY, headers, STRIPE_TS + 299).valid


def test_audian_vector_keys_with_secret_string_not_base64() -> None:
    assert _hex(AUDIAN_SECRET.encode(), f"{AUDIAN_TS}.".encode() + AUDIAN_BODY) == AUDIAN_HEX
    headers = sign("audian", AUDIAN_SECRET, AUDIAN_BODY, AUDIAN_TS)
    assert headers == [("X-Audian-Signature", AUDIAN_HEX), ("X-Audian-Timestamp", str(AUDIAN_TS))]


def test_audian_accepts_bare_hex_and_sha256_prefix() -> None:
    for value in (AUDIAN_HEX, f"sha256={AUDIAN_HEX}"):
        headers = [("x-audian-signature", value), ("x-audian-timestamp", str(AUDIAN_TS))]
        result = verify("audian", AUDIAN_SECRET, AUDIAN_BODY, headers, AUDIAN_TS + 5)
        assert result.valid, value
        assert result.received == AUDIAN_HEX


def test_atomic_is_marked_assumed_and_signs_timestamp_dot_body() -> None:
    scheme = SCHEMES["atomic-hmac"]
    assert scheme.documented is False
    assert "ASSUMED" in scheme.note
    headers = sign("atomic-hmac", ATOMIC_SECRET, AUDIAN_BODY, AUDIAN_TS)
    assert headers == [("X-Atomic-Signature", ATOMIC_HEX), ("X-Atomic-Timestamp", str(AUDIAN_TS))]
    assert verify("atomic-hmac", ATOMIC_SECRET, AUDIAN_BODY, headers, AUDIAN_TS).valid


def test_registry_metadata() -> None:
    assert set(SCHEMES) == {
        "audian",
        "standard-webhooks",
        "stripe",
        "github",
        "atomic-hmac",
        "none",
    }
    for scheme_id, scheme in SCHEMES.items():
        described = scheme.describe()
        assert described["id"] == scheme_id
        assert isinstance(described["documented"], bool)
        assert described["note"]
    assert SCHEMES["github"].tolerance_seconds is None
    assert SCHEMES["stripe"].tolerance_seconds == 300


def test_none_scheme() -> None:
    assert sign("none", "", b"x", 1) == []
    result = verify("none", "", b"x", [], 1)
    assert result.valid and result.reason == "unsigned"


def test_unknown_scheme_raises() -> None:
    with pytest.raises(UnknownSchemeError, match="nope"):
        sign("nope", "s", b"", 0)
    with pytest.raises(UnknownSchemeError):
        verify("nope", "s", b"", [], 0)


# ---------------------------------------------------------------------------------------------
# Failures, each with a reason a user can act on
# ---------------------------------------------------------------------------------------------

CASES = [
    ("audian", AUDIAN_SECRET),
    ("standard-webhooks", SW_SECRET),
    ("stripe", STRIPE_SECRET),
    ("github", GH_SECRET),
    ("atomic-hmac", ATOMIC_SECRET),
]


@pytest.mark.parametrize(("scheme", "secret"), CASES)
def test_tampered_body(scheme: str, secret: str) -> None:
    headers = sign(scheme, secret, b'{"amount": 100}', 1000, "msg_1")
    result = verify(scheme, secret, b'{"amount": 999}', headers, 1000)
    assert not result.valid
    assert result.reason == "signature mismatch"
    assert not result.digest_matches
    assert result.expected != result.received
    assert result.signed_string is not None and '{"amount": 999}' in result.signed_string


@pytest.mark.parametrize(("scheme", "secret"), CASES)
def test_wrong_secret(scheme: str, secret: str) -> None:
    other = "whsec_" + base64.b64encode(b"another key entirely").decode()
    headers = sign(scheme, secret, b"{}", 1000, "msg_1")
    result = verify(scheme, other, b"{}", headers, 1000)
    assert (result.valid, result.reason) == (False, "signature mismatch")


@pytest.mark.parametrize(("scheme", "secret"), [case for case in CASES if case[0] != "github"])
def test_stale_timestamp_still_shows_digest_matched(scheme: str, secret: str) -> None:
    headers = sign(scheme, secret, b"{}", 1000, "msg_1")
    result = verify(scheme, secret, b"{}", headers, now=1000 + 301)
    assert not result.valid
    assert result.reason == "timestamp outside tolerance"
    assert result.digest_matches
    assert result.expected == result.received
    assert (result.timestamp, result.age_seconds, result.tolerance_seconds) == (1000, 301, 300)
    # Exactly at the edge is still accepted, and a future timestamp is clock skew too.
    assert verify(scheme, secret, b"{}", headers, now=1300).valid
    assert verify(scheme, secret, b"{}", headers, now=1000 - 301).reason == (
        "timestamp outside tolerance"
    )


def test_github_has_no_tolerance() -> None:
    headers = sign("github", GH_SECRET, GH_BODY, 0)
    assert verify("github", GH_SECRET, GH_BODY, headers, now=10**10).valid


@pytest.mark.parametrize(
    ("scheme", "headers", "reason"),
    [
        ("audian", [("X-Audian-Timestamp", "1")], "missing header X-Audian-Signature"),
        ("audian", [("X-Audian-Signature", "ab")], "missing header X-Audian-Timestamp"),
        ("stripe", [], "missing header Stripe-Signature"),
        ("github", [], "missing header X-Hub-Signature-256"),
        ("standard-webhooks", [("webhook-id", "m")], "missing header webhook-timestamp"),
        ("atomic-hmac", [], "missing header X-Atomic-Signature"),
    ],
)
def test_missing_headers(scheme: str, headers: list[tuple[str, str]], reason: str) -> None:
    result = verify(scheme, "whsec_AAAA", b"{}", headers, 0)
    assert (result.valid, result.reason) == (False, reason)


def test_malformed_headers() -> None:
    stripe = verify("stripe", "s", b"", [("Stripe-Signature", "v1=abc")], 0)
    assert stripe.reason.startswith("malformed header Stripe-Signature")
    github = verify("github", "s", b"", [("X-Hub-Signature-256", "abc")], 0)
    assert github.reason.startswith("malformed header X-Hub-Signature-256")
    audian = verify(
        "audian", "s", b"", [("X-Audian-Signature", "ab"), ("X-Audian-Timestamp", "soon")], 0
    )
    assert audian.reason == "malformed timestamp"


def test_standard_webhooks_invalid_secret() -> None:
    with pytest.raises(InvalidSecretError):
        sign("standard-webhooks", "whsec_not*base64!", b"", 0, "m")
    headers = sign("standard-webhooks", SW_SECRET, SW_BODY, SW_TS, SW_ID)
    result = verify("standard-webhooks", "whsec_not*base64!", SW_BODY, headers, SW_TS)
    assert not result.valid and result.reason.startswith("invalid secret")


def test_standard_webhooks_secret_without_prefix_or_padding() -> None:
    raw = SW_SECRET.removeprefix("whsec_")
    headers = sign("standard-webhooks", raw, SW_BODY, SW_TS, SW_ID)
    assert headers[2][1] == SW_SIGNATURE
    unpadded = "whsec_" + base64.b64encode(b"sixteen byte key").decode().rstrip("=")
    padded = unpadded + "=" * (-len(unpadded) % 4)
    assert sign("standard-webhooks", unpadded, b"x", 1, "m") == sign(
        "standard-webhooks", padded, b"x", 1, "m"
    )


def test_standard_webhooks_multiple_signatures() -> None:
    """Key rotation sends several signatures; any valid ``v1`` one is enough."""
    good = SW_SIGNATURE
    headers = [
        ("Webhook-Id", SW_ID),
        ("Webhook-Timestamp", str(SW_TS)),
        ("Webhook-Signature", f"v1,Zm9vYmFy v1a,c29tZXRoaW5n {good}"),
    ]
    result = verify("standard-webhooks", SW_SECRET, SW_BODY, headers, SW_TS)
    assert result.valid
    assert result.received == f"Zm9vYmFy {good.removeprefix('v1,')}"
    only_bad = [*headers[:2], ("webhook-signature", "v1,Zm9vYmFy v1,YmFyYmF6")]
    assert verify("standard-webhooks", SW_SECRET, SW_BODY, only_bad, SW_TS).reason == (
        "signature mismatch"
    )


def test_stripe_multiple_v1_and_unknown_versions() -> None:
    header = f"t={STRIPE_TS},v1=deadbeef,v0=ignored,v1={STRIPE_HEX}"
    result = verify("stripe", STRIPE_SECRET, STRIPE_BODY, [("stripe-signature", header)], STRIPE_TS)
    assert result.valid


def test_signed_string_escapes_non_utf8_bytes() -> None:
    body = b"caf\xc3\xa9 \xff\x00"
    headers = sign("stripe", STRIPE_SECRET, body, 5)
    result = verify("stripe", STRIPE_SECRET, body, headers, 5)
    assert result.valid
    assert result.signed_string == "5.café \\xff\x00"


# ---------------------------------------------------------------------------------------------
# Detection and re-signing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("X-Audian-Signature", "x")], "audian"),
        ([("webhook-id", "m"), ("WEBHOOK-SIGNATURE", "v1,x")], "standard-webhooks"),
        ([("stripe-signature", "t=1,v1=x")], "stripe"),
        ([("X-Hub-Signature-256", "sha256=x"), ("X-GitHub-Event", "push")], "github"),
        ([("x-atomic-signature", "x")], "atomic-hmac"),
        ([("Content-Type", "application/json")], None),
        ([("X-Hub-Signature", "sha1=x")], None),
    ],
)
def test_detect_scheme(headers: list[tuple[str, str]], expected: str | None) -> None:
    assert detect_scheme(headers) == expected


def test_resign_replaces_in_place_and_verifies() -> None:
    captured = [
        ("Host", "localhost:8787"),
        ("x-audian-timestamp", "1000"),
        ("User-Agent", "AudianWebhook/1.0"),
        ("x-audian-signature", "stale"),
        ("X-Audian-Delivery-ID", "delv_1"),
        ("x-audian-signature", "a repeat"),
    ]
    fresh = resign("audian", AUDIAN_SECRET, AUDIAN_BODY, captured, timestamp=5000)
    expected_hex = _hex(AUDIAN_SECRET.encode(), b"5000." + AUDIAN_BODY)
    assert fresh == [
        ("Host", "localhost:8787"),
        ("x-audian-timestamp", "5000"),
        ("User-Agent", "AudianWebhook/1.0"),
        ("x-audian-signature", expected_hex),
        ("X-Audian-Delivery-ID", "delv_1"),
    ]
    assert not verify("audian", AUDIAN_SECRET, AUDIAN_BODY, captured, 5000).valid
    assert verify("audian", AUDIAN_SECRET, AUDIAN_BODY, fresh, 5000).valid


def test_resign_standard_webhooks_keeps_message_id() -> None:
    captured = [
        ("content-type", "application/json"),
        *sign("standard-webhooks", SW_SECRET, SW_BODY, SW_TS, SW_ID),
    ]
    fresh = resign("standard-webhooks", SW_SECRET, SW_BODY, captured, timestamp=SW_TS + 3600)
    assert ("webhook-id", SW_ID) in fresh
    assert [name for name, _ in fresh] == [name for name, _ in captured]
    assert verify("standard-webhooks", SW_SECRET, SW_BODY, fresh, SW_TS + 3600).valid
    assert not verify("standard-webhooks", SW_SECRET, SW_BODY, captured, SW_TS + 3600).valid


def test_resign_appends_missing_headers() -> None:
    fresh = resign("stripe", STRIPE_SECRET, STRIPE_BODY, [("Accept", "*/*")], STRIPE_TS)
    assert fresh == [("Accept", "*/*"), ("Stripe-Signature", f"t={STRIPE_TS},v1={STRIPE_HEX}")]


def test_sign_without_msg_id_is_deterministic() -> None:
    first = sign("standard-webhooks", SW_SECRET, b"{}", 10)
    assert first == sign("standard-webhooks", SW_SECRET, b"{}", 10)
    assert first[0][1].startswith("msg_")
    assert verify("standard-webhooks", SW_SECRET, b"{}", first, 10).valid


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

secrets = st.one_of(
    st.binary(min_size=1, max_size=48).map(lambda k: "whsec_" + base64.b64encode(k).decode()),
    st.uuids().map(str),
)


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from([case[0] for case in CASES]),
    secret=secrets,
    body=st.binary(max_size=512),
    timestamp=st.integers(min_value=0, max_value=2**40),
    msg_id=st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40
    ),
)
def test_sign_verify_round_trip(
    scheme: str, secret: str, body: bytes, timestamp: int, msg_id: str
) -> None:
    if scheme == "standard-webhooks" and not secret.startswith("whsec_"):
        secret = "whsec_" + base64.b64encode(secret.encode()).decode()
    headers = sign(scheme, secret, body, timestamp, msg_id)
    result = verify(scheme, secret, body, headers, now=timestamp)
    assert result.valid, result
    tampered = body + b"\x00"
    assert not verify(scheme, secret, tampered, headers, now=timestamp).valid
    resigned = resign(scheme, secret, body, headers, timestamp + 10_000, msg_id)
    assert verify(scheme, secret, body, resigned, now=timestamp + 10_000).valid
