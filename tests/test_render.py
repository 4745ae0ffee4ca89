"""Rendering vendor events (inspector.provider.render): bytes, determinism, consistency,
overrides, shared values, GET parameters and per-attempt headers with real signatures."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from inspector import signing
from inspector.provider import (
    MethodNotAllowedError,
    OverrideError,
    RenderError,
    UnknownEventError,
    load_catalog,
    parse_override_value,
    parse_set_args,
    prepare,
    render,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CATALOG = load_catalog(FIXTURES)
ALL_EVENTS = [(v.id, e) for v in CATALOG.vendors.values() for e in v.events]
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
TS = 1_700_000_000


def vendor(vid: str):
    return CATALOG.vendor(vid)


def payload(vid: str, event: str, seed: int = 7, **kw):
    return render(vendor(vid), event, seed=seed, **kw).payload


# --- every event of every vendor ---------------------------------------------------------------

@pytest.mark.parametrize(("vid", "event"), ALL_EVENTS, ids=[f"{v}:{e}" for v, e in ALL_EVENTS])
def test_every_event_renders_valid_bytes_for_every_method(vid: str, event: str) -> None:
    v = vendor(vid)
    for method in v.event(event).methods:
        r = render(v, event, seed=11, method=method)
        assert r.method == method and r.event == event
        if method == "GET":
            assert r.body == b"" and r.content_type is None and r.url_params
            assert all(isinstance(k, str) and isinstance(val, str) for k, val in r.url_params)
            assert not any(n.lower() == "content-type" for n, _ in r.static_headers)
        else:
            assert "json" in r.content_type.lower()
            assert json.loads(r.body) == r.payload
            assert r.url_params == []
            assert ("Content-Type", v.content_type) in r.static_headers
        assert json.loads(json.dumps(r.payload)) == r.payload  # plain JSON data only


@pytest.mark.parametrize(("vid", "event"), ALL_EVENTS, ids=[f"{v}:{e}" for v, e in ALL_EVENTS])
def test_same_seed_same_bytes_other_seed_other_bytes(vid: str, event: str) -> None:
    v = vendor(vid)
    first = render(v, event, seed=42)
    again = render(v, event, seed=42)
    assert first.body == again.body and first.static_headers == again.static_headers
    assert render(v, event, seed=43).body != first.body


@pytest.mark.parametrize(("vid", "event"), ALL_EVENTS, ids=[f"{v}:{e}" for v, e in ALL_EVENTS])
def test_prepared_request_is_signed_as_the_vendor_signs(vid: str, event: str) -> None:
    v = vendor(vid)
    secret = v.demo_secret if v.signing != "atomic-hmac" else "0217309e-test"
    r = render(v, event, seed=3)
    p = prepare(r, secret=secret if v.signing != "none" else None, timestamp=TS)
    assert p.body == r.body and p.method == r.method
    check = signing.verify(v.signing, secret, p.body, p.headers, now=TS)
    assert check.valid, check.reason
    names = [n for n, _ in p.headers]
    assert len(names) == len({n.lower() for n in names}), names  # no header twice


def test_no_seed_gives_fresh_data_and_reports_the_seed_to_reproduce_it() -> None:
    v = vendor("audian")
    a, b = render(v, "call.completed"), render(v, "call.completed")
    assert a.body != b.body
    assert abs((a.now - datetime.now(UTC)).total_seconds()) < 60
    assert render(v, "call.completed", seed=a.seed, now=a.now).body == a.body


def test_seeded_times_do_not_depend_on_the_clock() -> None:
    r = render(vendor("audata"), "Listener.updated", seed=5)
    assert r.now.year == 2024
    assert render(vendor("audata"), "Listener.updated", seed=5, now=r.now).body == r.body


def test_rendering_leaves_the_global_random_state_alone() -> None:
    random.seed(99)
    expected = random.random()
    random.seed(99)
    render(vendor("audata"), "Listener.created", seed=1)
    render(vendor("github"), "push")
    assert random.random() == expected


def test_an_override_changes_only_its_field_and_what_refers_to_it() -> None:
    base = payload("audata", "Listener.updated", seed=8)
    changed = payload("audata", "Listener.updated", seed=8, overrides={"sender.id": 5})
    assert changed["sender"]["id"] == 5 and changed["sender_id"] == 5
    base["sender"]["id"] = base["sender_id"] = 5
    assert changed == base


# --- internal consistency ----------------------------------------------------------------------

@pytest.mark.parametrize("event", sorted(vendor("audata").events))
def test_audata_records_are_self_consistent(event: str) -> None:
    offsets = set()
    for seed in range(40):
        p = payload("audata", event, seed)
        s = p["sender"]
        assert p["event"] == event and p["sender_id"] == s["id"] and isinstance(s["id"], int)
        assert re.fullmatch(r"[0-9a-f-]{36}", p["webhookCallId"])
        assert re.fullmatch(r"[a-z0-9]+", p["station"])
        m = re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(\+1[01]:00)", p["sentAt"])
        assert m, p["sentAt"]
        offsets.add(m.group(1))
        created, updated = (datetime.fromisoformat(s[k]) for k in ("created_at", "updated_at"))
        sent = datetime.fromisoformat(p["sentAt"])
        assert created <= updated <= sent
        if event.endswith("created"):
            assert created == updated
        else:
            assert updated > created
        if event.startswith("Listener"):
            assert s["full_address"] == (f"{s['address1']} {s['suburb']} {s['state']} "
                                         f"{s['postcode']}")
            assert isinstance(s["postcode"], str) and re.fullmatch(r"3\d{3}", s["postcode"])
            assert re.fullmatch(r"04\d{8}", s["phone_number"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", s["dob"])
            assert s["email"].startswith(re.sub(r"[^a-z0-9]", "", s["first_name"].lower()))
            assert s["gender"] in ("male", "female") and s["country"] == "AU"
    assert offsets == {"+10:00", "+11:00"}  # Melbourne standard and daylight-saving time


def test_audata_get_delivery_flattens_the_sender_into_url_parameters() -> None:
    r = render(vendor("audata"), "Listener.updated", seed=4, method="GET")
    params = dict(r.url_params)
    assert [k for k, _ in r.url_params][:4] == ["event", "sentAt", "station", "sender_id"]
    assert params["event"] == "Listener.updated"
    assert params["sender_id"] == params["sender[id]"] == str(r.payload["sender"]["id"])
    assert params["sender[first_name]"] == r.payload["sender"]["first_name"]
    assert params["sender[address2]"] == ""
    assert params["webhookCallId"] == r.payload["webhookCallId"]
    assert r.body == b"" and r.method == "GET"


def test_audian_ids_numbers_and_durations() -> None:
    for seed in range(30):
        for event in vendor("audian").events:
            p = payload("audian", event, seed)
            assert re.fullmatch(r"evt_[0-9a-f]{16}", p["id"]) and p["version"] == "v1"
            assert p["event"] == event
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p["timestamp"])
            d = p["data"]
            assert re.fullmatch(r"call_[0-9a-f]{16}", d["call_id"])
            if event.startswith("call."):
                assert E164.match(d["from"]) and E164.match(d["to"])
                assert d["status"] == event.split(".")[1]
        c = payload("audian", "call.completed", seed)["data"]
        t = {k: datetime.fromisoformat(c[k]) for k in ("started_at", "answered_at", "ended_at")}
        assert t["started_at"] < t["answered_at"] < t["ended_at"]
        assert c["duration"] == int((t["ended_at"] - t["answered_at"]).total_seconds())
        assert re.fullmatch(r"rec_[0-9a-f]{16}",
                            payload("audian", "recording.completed", seed)["data"]
                            ["recording_id"])


def test_alphatouch_data_rules() -> None:
    for seed in range(30):
        for event in ("resident.delete", "building.delete", "installation.activate",
                      "installation.deactivate"):
            p = payload("alphatouch", event, seed)
            assert "data" not in p and isinstance(p["entity_id"], int)
        apt = payload("alphatouch", "apartment.add", seed)
        assert isinstance(apt["data"], list) and 1 <= len(apt["data"]) <= 4
        assert apt["entity_id"] == [a["id"] for a in apt["data"]]
        res = payload("alphatouch", "resident.update", seed)
        assert res["entity_id"] == res["data"]["id"] and res["action"] == "update"
        assert res["entity"] == "resident"
        assert re.fullmatch(r"admin_\d+", res["data"]["created_by"])


def test_apirtc_envelope_and_conversation_uid() -> None:
    for seed in range(20):
        for event in vendor("apirtc").events:
            p = payload("apirtc", event, seed)
            obj, action = event.split(".")
            assert (p["object"], p["event"]) == (obj, action) and isinstance(p["time"], int)
            if obj == "conversation":
                assert isinstance(p["objectId"], str)
                assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                                    r"[0-9a-f]{8}", p["objectId"])
            else:
                assert isinstance(p["objectId"], int)
            if obj == "ticket":
                assert p["props"]["state"] in vendor("apirtc").enums["ticket_state"]
    end = payload("apirtc", "conversation.update")["props"]
    assert list(end) == ["eventType", "name", "finishedAt"]
    assert end["eventType"] == "conversationEnded" and end["finishedAt"].endswith("+00:00")


def test_atomic_events_batches_and_local_time() -> None:
    v = vendor("atomic")
    for event in v.events:
        p = payload("atomic", event)
        assert p["data"]["analyticsEvent"] == event and p["isBatched"] is False
        assert re.fullmatch(r"[A-Za-z0-9]{8}", p["webhookId"])
    d = payload("atomic", "card-completed", seed=9)["data"]
    assert d["cardContext"]["cardInstanceStatus"] == "completed"
    assert d["cardContext"]["previousStatus"] == "active"
    utc = datetime.fromisoformat(d["timestamp"].replace("Z", "+00:00"))
    local = datetime.fromisoformat(d["eventContext"]["userLocalTimestamp"])
    assert timedelta(0) < utc - local < timedelta(seconds=1)
    assert local.utcoffset() == utc.astimezone(ZoneInfo(d["sdkContext"]["sdkTimezone"])
                                               ).utcoffset()
    batched = render(v, "card-dismissed", seed=9, batch=3, method="PUT")
    assert batched.method == "PUT" and batched.payload["isBatched"] is True
    items = batched.payload["data"]
    assert [i["analyticsEvent"] for i in items] == ["card-dismissed"] * 3
    assert len({i["id"] for i in items}) == 3
    assert [i["timestamp"] for i in items] == sorted(i["timestamp"] for i in items)
    with pytest.raises(RenderError):
        render(vendor("audian"), "call.completed", batch=2)


def test_github_headers_and_push_consistency() -> None:
    r = render(vendor("github"), "issues.opened", seed=2)
    headers = dict(r.static_headers)
    assert headers["X-GitHub-Event"] == "issues" and r.payload["action"] == "opened"
    assert headers["X-GitHub-Hook-Installation-Target-ID"] == str(r.payload["repository"]["id"])
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    push = payload("github", "push", seed=2)
    assert push["after"] == push["commits"][-1]["id"] == push["head_commit"]["id"]
    assert push["repository"]["full_name"] == f"{push['sender']['login']}/" \
                                              f"{push['repository']['name']}"


def test_stripe_is_pretty_printed() -> None:
    r = render(vendor("stripe"), "payment_intent.succeeded", seed=1)
    assert r.body.startswith(b'{\n  "id": "evt_') and r.payload["type"] == r.event
    assert r.payload["data"]["object"]["amount_received"] == r.payload["data"]["object"]["amount"]


# --- overrides ---------------------------------------------------------------------------------

def test_overrides_hit_nested_fields_and_list_items() -> None:
    p = payload("audata", "Listener.updated", overrides={"sender.email": "x@example.com"})
    assert p["sender"]["email"] == "x@example.com"
    p = payload("audian", "call.completed", overrides={"data.call_id": "call_mine",
                                                       "$.data.duration": 5})
    assert p["data"]["call_id"] == "call_mine" and p["data"]["duration"] == 5
    p = payload("alphatouch", "apartment.add", overrides={"data[0].id": 77})
    assert p["data"][0]["id"] == 77 and p["entity_id"][0] == 77
    p = payload("github", "push", overrides={"commits[0].message": "hi"})
    assert p["commits"][0]["message"] == "hi"
    p = payload("audata", "Listener.updated", overrides={"sender": {"id": 1}})
    assert p["sender"] == {"id": 1} and p["sender_id"] == 1


@pytest.mark.parametrize(("path", "fragment"), [
    ("sender.emial", "no field 'emial' in 'sender' (did you mean 'email'?)"),
    ("nothing", "no field 'nothing' at the top level"),
    ("sender[0]", "'sender' is an object, not a list"),
    ("sender.email.x", "'sender.email' is a str"),
    ("sender..email", "cannot read path"),
])
def test_an_override_that_misses_names_its_path(path: str, fragment: str) -> None:
    with pytest.raises(OverrideError) as info:
        payload("audata", "Listener.updated", overrides={path: 1})
    assert info.value.path == path and path in str(info.value)
    assert fragment in str(info.value)


def test_override_on_a_list_index_out_of_range() -> None:
    with pytest.raises(OverrideError, match=r"has \d item\(s\), no index 9"):
        payload("github", "push", overrides={"commits[9].id": "x"})


def test_an_override_of_a_field_the_event_leaves_out_misses() -> None:
    with pytest.raises(OverrideError, match="data"):
        payload("alphatouch", "resident.delete", overrides={"data.id": 1})


def test_override_values_from_the_command_line() -> None:
    assert parse_override_value("5") == 5
    assert parse_override_value("true") is True
    assert parse_override_value('"5"') == "5"
    assert parse_override_value('{"a": [1]}') == {"a": [1]}
    assert parse_override_value("null") is None
    assert parse_override_value("hello world") == "hello world"
    assert parse_override_value("NaN") == "NaN"
    assert parse_set_args(["sender.email=a=b@x", "data.duration=5", "x="]) == {
        "sender.email": "a=b@x", "data.duration": 5, "x": ""}
    with pytest.raises(OverrideError, match="expected path=value"):
        parse_set_args(["no-equals-sign"])


# --- shared values, methods, unknown events ----------------------------------------------------

def test_shared_values_carry_one_call_through_a_scenario() -> None:
    v = vendor("audian")
    shared: dict[str, object] = {}
    events = ["call.initiated", "call.ringing", "call.answered", "call.completed",
              "recording.completed"]
    rendered = [render(v, e, seed=i, shared=shared) for i, e in enumerate(events)]
    call_ids = {r.payload["data"]["call_id"] for r in rendered}
    assert call_ids == {shared["call_id"]}
    assert len({r.payload["data"].get("from") for r in rendered[:4]}) == 1
    assert len({r.payload["id"] for r in rendered}) == len(events)  # events stay distinct
    given = render(v, "call.failed", seed=1, shared={"call_id": "call_given"})
    assert given.payload["data"]["call_id"] == "call_given"


def test_methods_and_unknown_events() -> None:
    with pytest.raises(MethodNotAllowedError, match="GET"):
        render(vendor("audian"), "call.completed", method="GET")
    assert render(vendor("audata"), "Prize.created", method="get").method == "GET"
    assert render(vendor("atomic"), "card-error").method == "POST"
    with pytest.raises(UnknownEventError, match="call.complete"):
        render(vendor("audian"), "call.complete")


# --- prepare: one attempt's headers ------------------------------------------------------------

def test_audian_attempt_headers_change_per_attempt_and_verify() -> None:
    v = vendor("audian")
    r = render(v, "call.completed", seed=1)
    first = prepare(r, secret="whsec_test", timestamp=TS, attempt=1)
    second = prepare(r, secret="whsec_test", timestamp=TS + 60, attempt=2)
    h1, h2 = dict(first.headers), dict(second.headers)
    assert [n for n, _ in first.headers] == [
        "Content-Type", "User-Agent", "X-Audian-Event", "X-Audian-Timestamp",
        "X-Audian-Delivery-ID", "X-Audian-Signature"]
    assert h1["X-Audian-Event"] == "call.completed" and h1["X-Audian-Timestamp"] == str(TS)
    assert re.fullmatch(r"delv_[0-9a-f]{16}", h1["X-Audian-Delivery-ID"])
    assert h1["X-Audian-Delivery-ID"] != h2["X-Audian-Delivery-ID"]
    assert first.delivery_id == h1["X-Audian-Delivery-ID"]
    assert re.fullmatch(r"[0-9a-f]{64}", h1["X-Audian-Signature"])
    assert h1["X-Audian-Signature"] != h2["X-Audian-Signature"]
    assert signing.verify("audian", "whsec_test", r.body, second.headers, now=TS + 60).valid
    fixed = prepare(r, secret=None, timestamp=TS, delivery_id="delv_given")
    assert dict(fixed.headers)["X-Audian-Delivery-ID"] == "delv_given"
    assert signing.verify("audian", v.demo_secret, r.body, fixed.headers, now=TS).valid


def test_standard_webhooks_message_id_is_kept_across_attempts() -> None:
    v = vendor("standard-webhooks")
    r = render(v, "user.created", seed=4)
    assert re.fullmatch(r"msg_[A-Za-z0-9]{24}", r.message_id)
    for attempt in (1, 2):
        headers = prepare(r, timestamp=TS + attempt, attempt=attempt).headers
        assert dict(headers)["webhook-id"] == r.message_id
        assert dict(headers)["webhook-timestamp"] == str(TS + attempt)
        assert signing.verify("standard-webhooks", v.demo_secret, r.body, headers,
                              now=TS + attempt).valid


def test_prepare_adds_extra_headers_and_uses_the_sign_callable() -> None:
    calls = []

    def fake_sign(scheme, secret, body, timestamp, msg_id=None):
        calls.append((scheme, secret, body, timestamp, msg_id))
        return [("X-Audian-Signature", "sig"), ("User-Agent", "replaced")]

    r = render(vendor("audian"), "call.failed", seed=2)
    p = prepare(r, secret="s", timestamp=5, attempt=3, sign=fake_sign,
                extra_headers=[("My-Custom-Header", "123")])
    assert calls == [("audian", "s", r.body, 5, r.message_id)]
    assert p.headers[-2:] == [("My-Custom-Header", "123"), ("X-Audian-Signature", "sig")]
    assert p.headers[1] == ("User-Agent", "replaced")  # replaced where it was listed
    assert p.attempt == 3 and p.timestamp == 5


def test_unsigned_vendors_need_no_signing_module() -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("an unsigned vendor must not be signed")

    r = render(vendor("apirtc"), "ticket.update", seed=1)
    p = prepare(r, secret=None, timestamp=TS, sign=refuse)
    assert p.headers == [("Content-Type", "application/JSON"), ("User-Agent", "Cloud Apizee")]
    assert p.to_public()["body"] == r.body.decode()
