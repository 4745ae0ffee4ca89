"""The vendors' own subscription APIs (/vendors/audian/v2/webhooks, /vendors/atomic/v1/<env>/
webhook), driven with a plain HTTP client the way the seeds' curl commands are; deliveries land
in a bin of the same server and are verified as the integration would verify them."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest

from inspector import signing

AUDIAN = {"X-Auth-Token": "YOUR_API_KEY"}
ATOMIC = {"Authorization": "Bearer test-token"}


@pytest.fixture
def fast(make_server):  # noqa: ANN201 - a ServerThread with retries at once
    return make_server(retry_scale=0)


def header(headers: list, name: str) -> str | None:
    return next((v for n, v in headers if n.lower() == name.lower()), None)


def captures(srv, bin_name: str, count: int, timeout: float = 10) -> list[dict]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        caps = httpx.get(srv.url + "/api/captures", params={"bin": bin_name}).json()["captures"]
        if len(caps) >= count:
            full = [httpx.get(f"{srv.url}/api/captures/{c['id']}").json() for c in caps]
            return sorted(full, key=lambda c: c["id"])
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(caps)} captures in {bin_name}, wanted {count}")
        time.sleep(0.05)


def raw(srv, cap: dict) -> bytes:  # noqa: ANN001
    return httpx.get(f"{srv.url}/api/captures/{cap['id']}/raw").content


def verify_audian(srv, cap: dict, secret: str) -> bool:  # noqa: ANN001
    headers = [tuple(h) for h in cap["headers"]]
    ts = int(header(headers, "X-Audian-Timestamp"))
    return signing.verify("audian", secret, raw(srv, cap), headers, now=ts).valid


# == Audian ======================================================================================
def test_audian_create_test_logs_rotate_delete(fast) -> None:
    base = fast.url + "/vendors/audian/v2/webhooks"
    target = fast.url + "/in/audian-app"
    r = httpx.post(base, headers=AUDIAN, json={"url": target, "events": ["*"], "active": True,
                                               "description": "my app"})
    assert r.status_code == 201, r.text
    wh = r.json()
    assert re.fullmatch(r"wh_[0-9a-f]{16}", wh["id"])
    assert re.fullmatch(r"whsec_[0-9a-f]{32}", wh["signing_secret"])
    assert wh["events"] == ["*"] and wh["active"] is True and wh["version"] == "v1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", wh["created_at"])
    assert wh["warnings"]  # http:// accepted with a warning (strict vendor rules off)
    secret = wh["signing_secret"]

    # list and get (the secret is only shown on create and rotate)
    listed = httpx.get(base, headers=AUDIAN).json()
    assert [w["id"] for w in listed["data"]] == [wh["id"]]
    assert listed["pagination"]["total"] == 1
    got = httpx.get(f"{base}/{wh['id']}", headers=AUDIAN).json()
    assert got["url"] == target and "signing_secret" not in got

    # test: the named event, signed with the subscription's secret
    r = httpx.post(f"{base}/{wh['id']}/test", headers=AUDIAN, json={"event": "call.completed"},
                   params={"wait": "1"})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "delivered" and r.json()["webhook_id"] == wh["id"]
    (cap,) = captures(fast, "audian-app", 1)
    body = json.loads(raw(fast, cap))
    assert body["event"] == "call.completed" and body["id"] == r.json()["id"]
    assert verify_audian(fast, cap, secret)

    # logs, in the seed's shape
    logs = httpx.get(f"{base}/{wh['id']}/logs", headers=AUDIAN).json()
    assert logs["pagination"] == {"page": 1, "limit": 50, "total": 1}
    (entry,) = logs["data"]
    assert entry["id"] == body["id"] and entry["webhook_id"] == wh["id"]
    assert entry["event"] == "call.completed" and entry["status"] == "delivered"
    assert entry["response_status"] == 200 and entry["attempts"] == 1

    # rotate: the next test is signed with the new secret only
    r = httpx.post(f"{base}/{wh['id']}/rotate-secret", headers=AUDIAN)
    assert r.status_code == 200
    new_secret = r.json()["signing_secret"]
    assert r.json()["id"] == wh["id"] and new_secret != secret
    assert new_secret.startswith("whsec_")
    httpx.post(f"{base}/{wh['id']}/test", headers=AUDIAN, json={"event": "call.failed"},
               params={"wait": "1"})
    _, cap2 = captures(fast, "audian-app", 2)
    assert verify_audian(fast, cap2, new_secret) and not verify_audian(fast, cap2, secret)

    # PATCH, paginated logs
    r = httpx.patch(f"{base}/{wh['id']}", headers=AUDIAN,
                    json={"events": ["call.completed", "call.failed", "recording.completed"],
                          "active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert r.json()["events"] == ["call.completed", "call.failed", "recording.completed"]
    page2 = httpx.get(f"{base}/{wh['id']}/logs", headers=AUDIAN,
                      params={"page": 2, "limit": 1}).json()
    assert page2["pagination"] == {"page": 2, "limit": 1, "total": 2}
    assert page2["data"][0]["event"] == "call.completed"  # newest first

    # DELETE
    assert httpx.delete(f"{base}/{wh['id']}", headers=AUDIAN).status_code == 204
    assert httpx.get(f"{base}/{wh['id']}", headers=AUDIAN).status_code == 404
    assert httpx.get(base, headers=AUDIAN).json()["data"] == []


@pytest.mark.parametrize("method,path", [
    ("POST", ""), ("GET", ""), ("GET", "/wh_0123456789abcdef"),
    ("PATCH", "/wh_0123456789abcdef"), ("DELETE", "/wh_0123456789abcdef"),
    ("POST", "/wh_0123456789abcdef/test"), ("GET", "/wh_0123456789abcdef/logs"),
    ("POST", "/wh_0123456789abcdef/rotate-secret"),
])
def test_audian_requires_the_auth_token(fast, method: str, path: str) -> None:
    r = httpx.request(method, fast.url + "/vendors/audian/v2/webhooks" + path,
                      json={"url": "https://example.com/h", "events": ["*"]})
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized" and "X-Auth-Token" in r.json()["error"]
    r = httpx.request(method, fast.url + "/vendors/audian/v2/webhooks" + path,
                      headers={"X-Auth-Token": ""})
    assert r.status_code == 401


@pytest.mark.parametrize("body,status,field", [
    (None, 400, "body"),
    ([1, 2], 400, "body"),
    ({"events": ["*"]}, 422, "url"),
    ({"url": 5, "events": ["*"]}, 400, "url"),
    ({"url": "ftp://example.com/x", "events": ["*"]}, 422, "url"),
    ({"url": "https://example.com/h"}, 422, "events"),
    ({"url": "https://example.com/h", "events": "call.completed"}, 400, "events"),
    ({"url": "https://example.com/h", "events": []}, 422, "events"),
    ({"url": "https://example.com/h", "events": ["call.exploded"]}, 422, "events"),
    ({"url": "https://example.com/h", "events": ["*"], "active": "yes"}, 400, "active"),
    ({"url": "https://example.com/h", "events": ["*"], "version": "v9"}, 422, "version"),
    ({"url": "https://example.com/h", "events": ["*"], "description": 3}, 400, "description"),
])
def test_audian_bad_bodies_name_the_field(fast, body, status: int, field: str) -> None:  # noqa: ANN001
    kw = {"content": b"not json"} if body is None else {"json": body}
    r = httpx.post(fast.url + "/vendors/audian/v2/webhooks", headers=AUDIAN, **kw)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and field in r.json()["error"]


def test_audian_bad_patch_and_test_event(fast) -> None:
    base = fast.url + "/vendors/audian/v2/webhooks"
    wh = httpx.post(base, headers=AUDIAN, json={"url": "https://example.com/h",
                                                "events": ["call.completed"]}).json()
    assert "warnings" not in wh
    r = httpx.patch(f"{base}/{wh['id']}", headers=AUDIAN, json={"events": ["nope"]})
    assert r.status_code == 422 and r.json()["field"] == "events"
    r = httpx.post(f"{base}/{wh['id']}/test", headers=AUDIAN, json={"event": "nope"})
    assert r.status_code == 422 and r.json()["field"] == "event"
    r = httpx.get(f"{base}/{wh['id']}/logs", headers=AUDIAN, params={"page": 0})
    assert r.status_code == 400 and r.json()["field"] == "page"


def test_audian_strict_vendor_rules_refuse_http(make_server) -> None:
    srv = make_server(retry_scale=0, strict_vendor_rules=True)
    r = httpx.post(srv.url + "/vendors/audian/v2/webhooks", headers=AUDIAN,
                   json={"url": "http://example.com/h", "events": ["*"]})
    assert r.status_code == 422 and r.json()["field"] == "url"
    assert "https" in r.json()["error"]


def test_audian_url_to_this_servers_api_is_refused(fast) -> None:
    r = httpx.post(fast.url + "/vendors/audian/v2/webhooks", headers=AUDIAN,
                   json={"url": fast.url + "/api/bins", "events": ["*"]})
    assert r.status_code == 422 and r.json()["field"] == "url"


# == Atomic ======================================================================================
def test_atomic_subscribe_list_test_disable(fast) -> None:
    env = "env-123"
    base = f"{fast.url}/vendors/atomic/v1/{env}/webhook"
    payload = {"types": ["card-published", "card-completed"], "url": fast.url + "/in/atomic",
               "headers": {"My-Custom-Header": "123"}}
    r = httpx.post(base, headers={**ATOMIC, "Content-Type": "application/json"},
                   content=json.dumps(payload))
    assert r.status_code == 201, r.text
    sub = r.json()["data"]
    assert re.fullmatch(r"[A-Za-z0-9]{8}", sub["id"])
    assert str(uuid.UUID(sub["secret"])) == sub["secret"]
    assert sub["types"] == payload["types"] and sub["headers"] == {"My-Custom-Header": "123"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sub["created"])
    assert sub["method"] == "POST" and sub["enabled"] is True

    listed = httpx.get(base, headers=ATOMIC).json()
    assert [s["id"] for s in listed["data"]] == [sub["id"]]
    other_env = httpx.get(f"{fast.url}/vendors/atomic/v1/other/webhook", headers=ATOMIC)
    assert other_env.json() == {"data": []}

    r = httpx.post(f"{base}/{sub['id']}/test", headers=ATOMIC, params={"wait": "1"})
    assert r.status_code == 200 and r.json()["data"]["status"] == "delivered", r.text
    (cap,) = captures(fast, "atomic", 1)
    body = json.loads(raw(fast, cap))
    assert body["environmentId"] == env and body["webhookId"] == sub["id"]
    assert body["data"]["analyticsEvent"] == "card-published"
    headers = [tuple(h) for h in cap["headers"]]
    assert header(headers, "My-Custom-Header") == "123"
    assert cap["method"] == "POST"
    ts = header(headers, "X-Atomic-Timestamp")
    assert signing.verify("atomic-hmac", sub["secret"], raw(fast, cap), headers,
                          now=int(ts) if ts else int(time.time())).valid

    r = httpx.delete(f"{base}/{sub['id']}", headers={**ATOMIC,
                                                     "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["data"]["enabled"] is False
    # disabled, not gone: still listed; emitted events no longer reach it
    assert httpx.get(base, headers=ATOMIC).json()["data"][0]["enabled"] is False
    out = httpx.post(fast.url + "/api/vendors/atomic/events/card-published/emit", json={})
    assert out.json()["deliveries"] == []
    assert out.json()["skipped"] == [{"subscription": sub["id"], "reason": "inactive"}]


def test_atomic_put_and_card_template_filter(fast) -> None:
    base = f"{fast.url}/vendors/atomic/v1/env1/webhook"
    put = httpx.post(base, headers=ATOMIC, json={
        "types": ["card-completed"], "url": fast.url + "/in/put", "method": "PUT",
        "cardTemplateId": "1", "actionFlowConfigId": "2"}).json()["data"]
    assert put["method"] == "PUT" and put["cardTemplateId"] == "1"
    anyt = httpx.post(base, headers=ATOMIC, json={
        "types": ["card-completed"], "url": fast.url + "/in/any"}).json()["data"]

    emit = fast.url + "/api/vendors/atomic/events/card-completed/emit"
    r = httpx.post(emit, json={"seed": 3})  # a random template: only the unfiltered one
    assert [d["subscription"] for d in r.json()["deliveries"]] == [anyt["id"]]
    assert r.json()["skipped"][0]["subscription"] == put["id"]
    r = httpx.post(emit, json={"seed": 4, "overrides": {
        "data.cardContext.cardTemplateId": "1", "data.platformContext.flowConfigId": "2"}})
    assert sorted(d["subscription"] for d in r.json()["deliveries"]) == sorted(
        [anyt["id"], put["id"]])
    (cap,) = captures(fast, "put", 1)
    assert cap["method"] == "PUT"
    body = json.loads(raw(fast, cap))
    assert body["webhookId"] == put["id"] and body["environmentId"] == "env1"
    assert body["data"]["cardContext"]["cardTemplateId"] == "1"
    # the test event of a filtered subscription is one its filter lets through
    httpx.post(f"{base}/{put['id']}/test", headers=ATOMIC, params={"wait": "1"})
    _, cap2 = captures(fast, "put", 2)
    assert json.loads(raw(fast, cap2))["data"]["cardContext"]["cardTemplateId"] == "1"


def test_atomic_pauses_after_repeated_undeliverable_events(fast) -> None:
    httpx.put(fast.url + "/api/bins/down/response", json={"status": 500})
    base = f"{fast.url}/vendors/atomic/v1/env/webhook"
    sub = httpx.post(base, headers=ATOMIC, json={"types": ["card-dismissed"],
                                                 "url": fast.url + "/in/down"}).json()["data"]
    emit = fast.url + "/api/vendors/atomic/events/card-dismissed/emit"
    ids = []
    for _ in range(3):
        r = httpx.post(emit, json={})
        ids += [d["delivery"]["id"] for d in r.json()["deliveries"]]
    assert len(ids) == 3
    deadline = time.monotonic() + 20
    while True:
        state = httpx.get(f"{base}/{sub['id']}", headers=ATOMIC).json()["data"]
        if state["paused"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert state["paused"] is True
    for i in ids:
        d = httpx.get(f"{fast.url}/api/deliveries/{i}").json()["delivery"]
        assert d["status"] == "failed" and d["attempt_count"] > 1
    r = httpx.post(emit, json={})
    assert r.json()["deliveries"] == []
    assert "paused" in r.json()["skipped"][0]["reason"]
    health = httpx.get(f"{fast.url}/api/subscriptions/{sub['id']}").json()["subscription"]
    assert health["health"]["state"] == "paused" and health["health"]["failed"] == 3


def test_cancelled_deliveries_do_not_pause_a_subscription(make_server) -> None:
    """Cancelling is the user's doing, not the target's failure: three cancels in a row do
    not trip Atomic's pause-after-3, and count as neither delivered nor failed."""
    srv = make_server()  # the real schedule: a 500 waits minutes for its retry
    httpx.put(srv.url + "/api/bins/down/response", json={"status": 500})
    base = f"{srv.url}/vendors/atomic/v1/env/webhook"
    sub = httpx.post(base, headers=ATOMIC, json={"types": ["card-dismissed"],
                                                 "url": srv.url + "/in/down"}).json()["data"]
    emit = srv.url + "/api/vendors/atomic/events/card-dismissed/emit"
    for _ in range(3):
        [d] = [x["delivery"] for x in httpx.post(emit, json={}).json()["deliveries"]]
        deadline = time.monotonic() + 10
        while httpx.get(f"{srv.url}/api/deliveries/{d['id']}").json()["delivery"][
                "attempt_count"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = httpx.post(f"{srv.url}/api/deliveries/{d['id']}/cancel")
        assert r.status_code == 200 and r.json()["delivery"]["error"] == "cancelled"
    time.sleep(0.5)
    state = httpx.get(f"{base}/{sub['id']}", headers=ATOMIC).json()["data"]
    assert state["paused"] is False
    health = httpx.get(f"{srv.url}/api/subscriptions/{sub['id']}").json()["subscription"]
    assert health["health"]["failed"] == 0 and health["health"]["delivered"] == 0
    assert httpx.post(emit, json={}).json()["deliveries"] != []  # still receiving


def test_atomic_auth_and_bad_bodies(fast) -> None:
    base = f"{fast.url}/vendors/atomic/v1/env/webhook"
    for hdrs in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        r = httpx.post(base, headers=hdrs, json={"types": ["card-published"],
                                                 "url": "https://example.com/h"})
        assert r.status_code == 401, hdrs
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert httpx.get(base).status_code == 401
    assert httpx.delete(base + "/abcdefgh").status_code == 401
    assert httpx.post(base + "/abcdefgh/test").status_code == 401
    cases = [
        ({"url": "https://example.com/h"}, 422, "types"),
        ({"types": ["*"], "url": "https://example.com/h"}, 422, "types"),
        ({"types": ["card-published"]}, 422, "url"),
        ({"types": ["card-published"], "url": "https://e.com", "headers": "x"}, 400,
         "headers"),
        ({"types": ["card-published"], "url": "https://e.com", "method": "PATCH"}, 422,
         "method"),
        ({"types": ["card-published"], "url": "https://e.com", "cardTemplateId": {}}, 400,
         "cardTemplateId"),
    ]
    for body, status, field in cases:
        r = httpx.post(base, headers=ATOMIC, json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())
    assert httpx.post(base, headers=ATOMIC, content=b"{").status_code == 400
    assert httpx.delete(base + "/nosuchid", headers=ATOMIC).status_code == 404


def test_audian_api_under_gunicorn_workers(gunicorn_server) -> None:
    """Several worker processes share the subscriptions (the database), not memory."""
    srv = gunicorn_server
    base = srv.url + "/vendors/audian/v2/webhooks"
    wh = httpx.post(base, headers=AUDIAN, json={"url": srv.url + "/in/guni-audian",
                                                "events": ["call.answered"]}).json()
    for _ in range(4):  # likely spread over the workers
        assert httpx.get(f"{base}/{wh['id']}", headers=AUDIAN).status_code == 200
    r = httpx.post(f"{base}/{wh['id']}/test", headers=AUDIAN, json={"event": "call.answered"},
                   params={"wait": "1"})
    assert r.json()["status"] == "delivered", r.text
    (cap,) = captures(srv, "guni-audian", 1)
    assert verify_audian(srv, cap, wh["signing_secret"])
    deadline = time.monotonic() + 10
    while True:
        logs = httpx.get(f"{base}/{wh['id']}/logs", headers=AUDIAN).json()["data"]
        if logs and logs[0]["status"] == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert logs[0]["attempts"] == 1 and logs[0]["response_status"] == 200
    httpx.delete(f"{base}/{wh['id']}", headers=AUDIAN)
