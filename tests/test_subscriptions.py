"""Console subscriptions (/api/subscriptions), emit to every matching active subscription, and
subscriptions surviving a restart."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl

import httpx
import pytest

from inspector import signing
from tests.test_vendor_emulation import AUDIAN, captures, header, raw, verify_audian


@pytest.fixture
def fast(make_server):  # noqa: ANN201
    return make_server(retry_scale=0)


def emit(srv, vendor: str, event: str, **body) -> dict:  # noqa: ANN001
    r = httpx.post(f"{srv.url}/api/vendors/{vendor}/events/{event}/emit", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def settle(srv, delivery_ids: list[int], timeout: float = 10) -> list[dict]:  # noqa: ANN001
    out = []
    for i in delivery_ids:
        deadline = time.monotonic() + timeout
        while True:
            d = httpx.get(f"{srv.url}/api/deliveries/{i}").json()["delivery"]
            if d["status"] != "pending":
                out.append(d)
                break
            assert time.monotonic() < deadline, d
            time.sleep(0.05)
    return out


def audian_sub(srv, bin_name: str, events: list[str], active: bool = True) -> dict:  # noqa: ANN001
    r = httpx.post(srv.url + "/vendors/audian/v2/webhooks", headers=AUDIAN,
                   json={"url": f"{srv.url}/in/{bin_name}", "events": events, "active": active})
    assert r.status_code == 201
    return r.json()


def test_emit_reaches_only_matching_active_subscriptions_with_their_secrets(fast) -> None:
    star = audian_sub(fast, "star", ["*"])
    completed = audian_sub(fast, "completed", ["call.completed"])
    other = audian_sub(fast, "other", ["call.failed"])
    inactive = audian_sub(fast, "inactive", ["*"], active=False)
    # another vendor listening for everything gets nothing either
    httpx.post(fast.url + "/api/subscriptions", json={
        "vendor": "apirtc", "url": fast.url + "/in/apirtc", "events": ["*"]})

    out = emit(fast, "audian", "call.completed", seed=11)
    by_sub = {d["subscription"]: d for d in out["deliveries"]}
    assert set(by_sub) == {star["id"], completed["id"]}
    assert {s["subscription"] for s in out["skipped"]} == {other["id"], inactive["id"]}
    ids = [d["delivery"]["id"] for d in out["deliveries"]]
    assert len(set(ids)) == 2  # each its own delivery
    assert all(d["status"] == "delivered" for d in settle(fast, ids))

    (c1,) = captures(fast, "star", 1)
    (c2,) = captures(fast, "completed", 1)
    assert raw(fast, c1) == raw(fast, c2)  # one event, the same bytes for everyone
    assert verify_audian(fast, c1, star["signing_secret"])
    assert verify_audian(fast, c2, completed["signing_secret"])
    assert not verify_audian(fast, c2, star["signing_secret"])
    for b in ("other", "inactive", "apirtc"):
        assert httpx.get(fast.url + "/api/captures", params={"bin": b}).json()["captures"] == []

    # after a rotation, emitted events are signed with the new secret
    rotated = httpx.post(f"{fast.url}/vendors/audian/v2/webhooks/{star['id']}/rotate-secret",
                         headers=AUDIAN).json()["signing_secret"]
    out = emit(fast, "audian", "recording.completed")
    assert [d["subscription"] for d in out["deliveries"]] == [star["id"]]
    settle(fast, [out["deliveries"][0]["delivery"]["id"]])
    _, c3 = captures(fast, "star", 2)
    assert verify_audian(fast, c3, rotated)
    assert not verify_audian(fast, c3, star["signing_secret"])

    # health and logs of the subscription
    sub = httpx.get(f"{fast.url}/api/subscriptions/{star['id']}").json()["subscription"]
    assert sub["health"]["delivered"] == 2 and sub["health"]["state"] == "active"
    logs = httpx.get(f"{fast.url}/vendors/audian/v2/webhooks/{star['id']}/logs",
                     headers=AUDIAN).json()
    assert [e["event"] for e in logs["data"]] == ["recording.completed", "call.completed"]


def test_emit_unknown_vendor_or_event(fast) -> None:
    r = httpx.post(fast.url + "/api/vendors/nope/events/x/emit", json={})
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = httpx.post(fast.url + "/api/vendors/audian/events/call.exploded/emit", json={})
    assert r.status_code == 404 and "call.exploded" in r.json()["error"]
    r = httpx.post(fast.url + "/api/vendors/audian/events/call.completed/emit",
                   json={"seed": "x"})
    assert r.status_code == 400


def test_console_vendors_and_their_options(fast) -> None:
    api = fast.url + "/api/subscriptions"
    # Audata: GET for one event, POST for the other
    r = httpx.post(api, json={"vendor": "audata", "url": fast.url + "/in/audata",
                              "events": ["Listener.updated", "Prize.created"],
                              "options": {"methods": {"Listener.updated": "GET"}}})
    assert r.status_code == 201, r.text
    audata = r.json()["subscription"]
    assert audata["id"].startswith("sub_") and audata["secret"] is None
    assert audata["warnings"]  # Audata wants https; accepted with a warning
    # ApiRTC: extra headers; the Activate checkbox left unchecked on a second one
    apirtc = httpx.post(api, json={
        "vendor": "apirtc", "url": fast.url + "/in/apirtc", "events": ["ticket.update"],
        "options": {"headers": {"X-Api-Key": "s3cret"}}}).json()["subscription"]
    off = httpx.post(api, json={"vendor": "apirtc", "url": fast.url + "/in/apirtc-off",
                                "events": ["*"], "active": False}).json()["subscription"]
    # AlphaTouch: the installation's api_key goes into every payload
    alpha = httpx.post(api, json={
        "vendor": "alphatouch", "url": fast.url + "/in/alpha", "events": ["resident.delete"],
        "options": {"api_key": "ABCD-1234"}}).json()["subscription"]

    ids = []
    for vendor, event in (("audata", "Listener.updated"), ("audata", "Prize.created"),
                          ("apirtc", "ticket.update"), ("alphatouch", "resident.delete")):
        out = emit(fast, vendor, event)
        ids += [d["delivery"]["id"] for d in out["deliveries"]]
    assert len(ids) == 4
    assert all(d["status"] == "delivered" for d in settle(fast, ids))

    get_cap, post_cap = captures(fast, "audata", 2)
    assert get_cap["method"] == "GET" and post_cap["method"] == "POST"
    query = dict(parse_qsl(get_cap["query"]))
    assert query["event"] == "Listener.updated"  # GET: the data travels as URL parameters
    assert json.loads(raw(fast, post_cap))["event"] == "Prize.created"

    (cap,) = captures(fast, "apirtc", 1)
    headers = [tuple(h) for h in cap["headers"]]
    assert header(headers, "X-Api-Key") == "s3cret"
    assert header(headers, "User-Agent") == "Cloud Apizee"
    assert httpx.get(fast.url + "/api/captures", params={"bin": "apirtc-off"}
                     ).json()["captures"] == []
    (cap,) = captures(fast, "alpha", 1)
    body = json.loads(raw(fast, cap))
    assert body["api_key"] == "ABCD-1234" and body["action"] == "delete"

    # activate the unchecked one: it now receives
    r = httpx.patch(f"{api}/{off['id']}", json={"active": True})
    assert r.json()["subscription"]["active"] is True
    out = emit(fast, "apirtc", "ticket.create")
    assert [d["subscription"] for d in out["deliveries"]] == [off["id"]]

    listed = httpx.get(api, params={"vendor": "apirtc"}).json()["subscriptions"]
    assert {s["id"] for s in listed} == {apirtc["id"], off["id"]}
    assert all("health" in s for s in listed)
    assert httpx.delete(f"{api}/{alpha['id']}").status_code == 200
    assert httpx.get(f"{api}/{alpha['id']}").status_code == 404


@pytest.mark.parametrize("body,status,field", [
    ({"url": "https://e.com/h", "events": ["*"]}, 422, "vendor"),
    ({"vendor": "audian", "url": "https://e.com/h", "events": ["*"]}, 422, "vendor"),
    ({"vendor": "audata", "events": ["*"]}, 422, "url"),
    ({"vendor": "audata", "url": "https://e.com/h", "events": ["Nope.x"]}, 422, "events"),
    ({"vendor": "audata", "url": "https://e.com/h", "events": ["*"],
      "options": {"method": "PUT"}}, 422, "options.method"),
    ({"vendor": "apirtc", "url": "https://e.com/h", "events": ["*"],
      "options": {"api_key": "x"}}, 422, "options.api_key"),
    ({"vendor": "apirtc", "url": "https://e.com/h", "events": ["*"],
      "options": {"headers": {"Bad Name": "x"}}}, 422, "options.headers.Bad Name"),
    ({"vendor": "audata", "url": "https://e.com/h", "events": ["Prize.created"],
      "options": {"methods": {"Listener.updated": "GET"}}}, 422,
     "options.methods.Listener.updated"),
])
def test_console_bad_bodies(fast, body: dict, status: int, field: str) -> None:
    r = httpx.post(fast.url + "/api/subscriptions", json=body)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field


def test_unknown_vendor_is_404(fast) -> None:
    r = httpx.post(fast.url + "/api/subscriptions",
                   json={"vendor": "nope", "url": "https://e.com", "events": ["*"]})
    assert r.status_code == 404


def test_restart_keeps_subscriptions_and_secrets(make_server) -> None:
    first = make_server(retry_scale=0)
    wh = audian_sub(first, "restart", ["call.completed"])
    env_sub = httpx.post(first.url + "/vendors/atomic/v1/e1/webhook",
                         headers={"Authorization": "Bearer t"},
                         json={"types": ["card-completed"], "url": first.url + "/in/r2",
                               "headers": {"X-A": "1"}}).json()["data"]
    console = httpx.post(first.url + "/api/subscriptions", json={
        "vendor": "alphatouch", "url": first.url + "/in/r3", "events": ["*"],
        "options": {"api_key": "K"}}).json()["subscription"]
    first.stop()

    second = make_server(retry_scale=0)
    got = httpx.get(f"{second.url}/vendors/audian/v2/webhooks/{wh['id']}",
                    headers=AUDIAN).json()
    assert got["events"] == ["call.completed"] and got["url"] == wh["url"]
    atomic = httpx.get(second.url + "/vendors/atomic/v1/e1/webhook",
                       headers={"Authorization": "Bearer t"}).json()["data"]
    assert atomic == [env_sub]
    again = httpx.get(f"{second.url}/api/subscriptions/{console['id']}").json()["subscription"]
    assert again["options"] == {"api_key": "K"}
    # the secret persisted: an event emitted after the restart verifies with it (the target
    # is the first server's port, so point the subscription at this one's bin first)
    httpx.patch(f"{second.url}/vendors/audian/v2/webhooks/{wh['id']}", headers=AUDIAN,
                json={"url": second.url + "/in/restart"})
    out = emit(second, "audian", "call.completed")
    settle(second, [d["delivery"]["id"] for d in out["deliveries"]])
    (cap,) = captures(second, "restart", 1)
    assert verify_audian(second, cap, wh["signing_secret"])


def test_signing_verify_for_console_generic_vendor(fast) -> None:
    sub = httpx.post(fast.url + "/api/subscriptions", json={
        "vendor": "standard-webhooks", "url": fast.url + "/in/sw",
        "events": ["*"]}).json()["subscription"]
    assert sub["secret"].startswith("whsec_")
    r = httpx.post(f"{fast.url}/api/subscriptions/{sub['id']}/test", json={})
    assert r.status_code == 201
    settle(fast, [r.json()["delivery"]["id"]])
    (cap,) = captures(fast, "sw", 1)
    headers = [tuple(h) for h in cap["headers"]]
    ts = int(header(headers, "webhook-timestamp"))
    assert signing.verify("standard-webhooks", sub["secret"], raw(fast, cap), headers,
                          now=ts).valid


def test_list_shows_every_subscription_with_recent_delivery_health(fast) -> None:
    """The UI's list: console and vendor-API subscriptions together, each with the newest
    deliveries as they stand (counts, the last one's HTTP status and attempt time)."""
    api = fast.url + "/api/subscriptions"
    good = httpx.post(api, json={"vendor": "audata", "url": fast.url + "/in/h-good",
                                 "events": ["Listener.updated"]}).json()["subscription"]
    bad = httpx.post(api, json={"vendor": "audata", "url": fast.url + "/in/h-bad",
                                "events": ["Listener.updated"]}).json()["subscription"]
    httpx.put(fast.url + "/api/bins/h-bad/response", json={"status": 500})
    wh = audian_sub(fast, "h-audian", ["*"])
    idle = audian_sub(fast, "h-idle", ["*"], active=False)

    listed = httpx.get(api).json()
    assert set(listed["console_vendors"]) >= {"audata", "apirtc", "alphatouch"}
    assert "audian" not in listed["console_vendors"]
    assert listed["console_options"]["audata"] == ["method", "methods"]
    assert listed["console_options"]["apirtc"] == ["headers"]
    assert listed["console_options"]["alphatouch"] == ["api_key"]
    by_id = {s["id"]: s for s in listed["subscriptions"]}
    assert set(by_id) == {good["id"], bad["id"], wh["id"], idle["id"]}
    assert by_id[good["id"]]["managed"] == "console"
    assert by_id[wh["id"]]["managed"] == "vendor_api"
    fresh = by_id[good["id"]]["health"]["recent"]
    assert fresh["count"] == 0 and fresh["last_delivery"] is None and fresh["window"] >= 10

    sent: dict[str, list[int]] = {}
    for vendor, event in (("audata", "Listener.updated"), ("audata", "Listener.updated"),
                          ("audian", "call.completed")):
        for d in emit(fast, vendor, event)["deliveries"]:
            sent.setdefault(d["subscription"], []).append(d["delivery"]["id"])
    assert sorted(len(v) for v in sent.values()) == [1, 2, 2]
    settle(fast, [i for v in sent.values() for i in v])

    deadline = time.monotonic() + 5
    while True:  # the settled counters move just after the delivery settles
        by_id = {s["id"]: s for s in httpx.get(api).json()["subscriptions"]}
        if by_id[bad["id"]]["health"]["failed"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    g, b, a, i = (by_id[k]["health"] for k in (good["id"], bad["id"], wh["id"], idle["id"]))
    assert (g["recent"]["count"], g["recent"]["delivered"], g["recent"]["failed"]) == (2, 2, 0)
    assert g["recent"]["last_delivery"]["status"] == "delivered"
    assert g["recent"]["last_delivery"]["status_code"] == 200
    assert g["recent"]["last_delivery"]["id"] == max(sent[good["id"]])
    assert g["recent"]["last_delivery"]["last_attempt_at"]
    assert g["delivered"] == 2 and g["last_outcome"] == "delivered"
    assert (b["recent"]["delivered"], b["recent"]["failed"]) == (0, 2)
    assert b["recent"]["last_delivery"]["status_code"] == 500
    assert b["failed"] == 2 and b["last_outcome"] == "failed"
    assert a["recent"]["delivered"] == 1 and a["recent"]["last_delivery"]["event"] == (
        "call.completed")
    assert i["recent"]["count"] == 0 and i["state"] == "inactive"
    one = httpx.get(f"{api}/{bad['id']}").json()["subscription"]
    assert one["health"]["recent"] == b["recent"]


def test_recent_health_keeps_its_window_after_deliveries_are_pruned(fast) -> None:
    from inspector.storage.deliveries import DeliveryStore

    api = fast.url + "/api/subscriptions"
    sub = httpx.post(api, json={"vendor": "audata", "url": fast.url + "/in/h-pruned",
                                "events": ["Listener.updated"]}).json()["subscription"]
    ids = [d["delivery"]["id"] for _ in range(3)
           for d in emit(fast, "audata", "Listener.updated")["deliveries"]]
    settle(fast, ids)
    db = fast.app.extensions["inspector"].db
    assert db.write(lambda conn: DeliveryStore.prune(conn, keep=0)) >= 3  # all settled: gone
    # A log row whose delivery is gone and whose outcome was never written (a kill between
    # the two): not counted in any bucket, so not in the window either.
    db.write(lambda conn: conn.execute(
        "INSERT INTO subscription_deliveries (delivery_id, subscription_id, event)"
        " VALUES (?, ?, 'Listener.updated')", (max(ids) + 100, sub["id"])))
    one = httpx.get(f"{api}/{sub['id']}").json()["subscription"]["health"]
    assert (one["recent"]["count"], one["recent"]["delivered"]) == (3, 3)
    last = one["recent"]["last_delivery"]
    assert last["id"] == max(ids) and last["event"] == "Listener.updated" and last["pruned"]
