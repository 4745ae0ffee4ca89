"""The mock provider's API through a real server: vendors, samples, send, the delivery log,
redeliver, replay, fixture errors, the loop guard and restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from inspector import signing
from inspector.provider import default_catalog
from tests.test_delivery import Sink, fail_then, header


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def fast(make_server):  # noqa: ANN201 - a ServerThread with retries at once
    return make_server(retry_scale=0)


def send(srv, **body) -> httpx.Response:  # noqa: ANN001
    return httpx.post(srv.url + "/api/send", json=body, timeout=30)


def poll(srv, delivery_id: int, until: str = "settled", timeout: float = 10) -> dict:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        d = httpx.get(f"{srv.url}/api/deliveries/{delivery_id}").json()["delivery"]
        if (d["status"] != "pending") if until == "settled" else d["status"] == until:
            return d
        if time.monotonic() > deadline:
            raise AssertionError(f"delivery still {d['status']}: {d}")
        time.sleep(0.05)


# -- vendors and samples -------------------------------------------------------------------------
def test_vendors_listing_shape(fast) -> None:
    data = httpx.get(fast.url + "/api/vendors").json()
    vendors = {v["id"]: v for v in data["vendors"]}
    assert {"audian", "audata", "apirtc"} <= set(vendors)
    audian = vendors["audian"]
    assert set(audian) >= {"id", "name", "events", "methods", "signing"}
    assert audian["signing"] == "audian" and audian["methods"] == ["POST"]
    assert "call.completed" in {e["name"] for e in audian["events"]}


def test_sample_is_deterministic_and_signed(fast) -> None:
    url = fast.url + "/api/vendors/audian/events/call.completed/sample"
    a = httpx.get(url, params={"seed": 42}).json()
    b = httpx.get(url, params={"seed": 42}).json()
    c = httpx.get(url, params={"seed": 43}).json()
    assert set(a) >= {"method", "url_params", "headers", "body"}
    assert a["method"] == "POST" and a["url_params"] == []
    assert a["body"] == b["body"] and a["body"] != c["body"]
    assert json.loads(a["body"])["event"] == "call.completed"
    demo = default_catalog().vendor("audian").demo_secret
    for sample, secret in ((a, demo),
                           (httpx.get(url, params={"seed": 42, "secret": "whsec_mine"}).json(),
                            "whsec_mine")):
        headers = [tuple(h) for h in sample["headers"]]
        ts = int(header(headers, "X-Audian-Timestamp"))
        assert abs(ts - time.time()) < 5  # signed now
        assert signing.verify("audian", secret, sample["body"].encode(), headers, now=ts).valid


def test_sample_overrides_and_get_method(fast) -> None:
    base = fast.url + "/api/vendors/audian/events/call.completed/sample"
    r = httpx.get(base, params=[("seed", "1"), ("set", "data.duration=5"),
                                ("set", 'data.call_id="call_x"')])
    assert r.status_code == 200, r.text
    data = json.loads(r.json()["body"])["data"]
    assert data["duration"] == 5 and data["call_id"] == "call_x"
    bad = httpx.get(base, params={"set": "data.nope.deeper=1"})
    assert bad.status_code == 400 and "data.nope.deeper" in bad.json()["error"]
    get = httpx.get(fast.url + "/api/vendors/audata/events/Listener.updated/sample",
                    params={"seed": 3, "method": "GET"}).json()
    assert get["method"] == "GET" and get["body"] == ""
    assert ["event", "Listener.updated"] in get["url_params"]


def test_unknown_vendor_or_event_is_404_naming_it(fast) -> None:
    r = httpx.get(fast.url + "/api/vendors/nobody/events/x/sample")
    assert r.status_code == 404 and "nobody" in r.json()["error"]
    r = httpx.get(fast.url + "/api/vendors/audian/events/call.teleported/sample")
    assert r.status_code == 404 and "call.teleported" in r.json()["error"]
    r = send(fast, vendor="audian", event="call.teleported", url="http://127.0.0.1:9/x")
    assert r.status_code == 404 and "call.teleported" in r.json()["error"]


def test_fixture_errors_endpoint(fast) -> None:
    errors = httpx.get(fast.url + "/api/fixtures/errors").json()["errors"]
    assert isinstance(errors, list)
    for e in errors:
        assert set(e) >= {"file", "line", "field", "message"}


# -- send and the delivery log -------------------------------------------------------------------
def test_send_wait_retries_and_logs_attempts(fast, sink) -> None:
    sink.plan = fail_then(2)
    r = send(fast, vendor="audian", event="call.completed", url=sink.url(), seed=9, wait=True)
    assert r.status_code == 201, r.text
    d = r.json()["delivery"]
    assert d["status"] == "delivered" and d["attempt_count"] == 3
    assert [a["status_code"] for a in d["attempts"]] == [500, 500, 200]
    for a in d["attempts"]:
        assert a["request"]["body"] == d["body"] and a["duration_ms"] > 0
        assert header(a["request"]["headers"], "X-Audian-Signature")
        assert a["response"]["body"] == sink.body.decode()
    listed = httpx.get(fast.url + "/api/deliveries").json()
    assert listed["deliveries"][0]["id"] == d["id"] and listed["next"] is None
    assert httpx.get(fast.url + "/api/deliveries", params={"status": "failed"}
                     ).json()["deliveries"] == []


def test_send_without_wait_answers_at_once(fast) -> None:
    slow = Sink(plan=lambda n: (1.5, 200))
    try:
        start = time.monotonic()
        r = send(fast, vendor="audian", event="call.completed", url=slow.url())
        assert time.monotonic() - start < 1.3  # the sink takes 1.5 s; we answer after ~0.3 s
        assert r.status_code == 201 and r.json()["delivery"]["status"] == "pending"
        assert poll(fast, r.json()["delivery"]["id"])["status"] == "delivered"
    finally:
        slow.close()


def test_send_validation(fast) -> None:
    r = send(fast, vendor="audian")
    assert r.status_code == 400 and "event" in r.json()["error"] and "url" in r.json()["error"]
    r = send(fast, vendor="audian", event="call.completed", url="ftp://x/")
    assert r.status_code == 400 and "http" in r.json()["error"]
    r = send(fast, vendor="audian", event="call.completed", url="http://127.0.0.1:9/",
             overrides={"data.missing.x": 1})
    assert r.status_code == 400 and "data.missing.x" in r.json()["error"]
    r = send(fast, vendor="audian", event="call.completed", url="http://127.0.0.1:9/",
             method="GET")
    assert r.status_code == 400 and "GET" in r.json()["error"]


def test_send_to_our_own_bin_captures_the_exact_body(fast) -> None:
    r = send(fast, vendor="audian", event="call.completed", url=fast.url + "/in/own",
             seed=5, secret="whsec_abc", wait=True)
    d = r.json()["delivery"]
    assert d["status"] == "delivered", d
    (cap,) = httpx.get(fast.url + "/api/captures", params={"bin": "own"}).json()["captures"]
    raw = httpx.get(f"{fast.url}/api/captures/{cap['id']}/raw").content
    assert raw == d["body"].encode()
    full = httpx.get(f"{fast.url}/api/captures/{cap['id']}").json()
    headers = [tuple(h) for h in full["headers"]]
    ts = int(header(headers, "X-Audian-Timestamp"))
    assert signing.verify("audian", "whsec_abc", raw, headers, now=ts).valid
    assert header(headers, "User-Agent") == "AudianWebhook/1.0"
    assert d["attempts"][0]["response"]["status"] == 200
    assert json.loads(d["attempts"][0]["response"]["body"])["id"] == cap["id"]


def test_loop_guard_refuses_our_api_but_allows_bins(fast) -> None:
    for path in ("/api/send", "/api/deliveries", "/", "/ws", "/in/x/../../api/send"):
        r = send(fast, vendor="audian", event="call.completed", url=fast.url + path)
        assert r.status_code == 400, (path, r.text)
        assert "loop guard" in r.json()["error"]
    local = fast.url.replace("127.0.0.1", "localhost")
    assert send(fast, vendor="audian", event="call.completed",
                url=local + "/api/bins").status_code == 400
    r = send(fast, vendor="audian", event="call.completed", url=fast.url + "/in/bin", wait=True)
    assert r.status_code == 201 and r.json()["delivery"]["status"] == "delivered"
    assert httpx.get(fast.url + "/api/deliveries").json()["deliveries"][0]["url"].endswith(
        "/in/bin")


def test_strict_vendor_rules_setting(make_server, sink) -> None:
    strict = make_server(retry_scale=0, strict_vendor_rules=True)
    d = send(strict, vendor="audian", event="call.completed", url=sink.url()).json()["delivery"]
    assert d["status"] == "failed" and "https://" in d["error"] and d["attempts"] == []
    assert sink.requests == []


def test_redeliver(fast, sink) -> None:
    sink.plan = lambda n: 404 if n == 1 else 200
    first = send(fast, vendor="audian", event="call.completed", url=sink.url(),
                 wait=True).json()["delivery"]
    assert first["status"] == "failed" and first["attempt_count"] == 1  # 404: not retried
    r = httpx.post(f"{fast.url}/api/deliveries/{first['id']}/redeliver?wait=1")
    assert r.status_code == 201, r.text
    again = r.json()["delivery"]
    assert again["id"] != first["id"] and again["redelivery_of"] == first["id"]
    assert again["status"] == "delivered" and again["body"] == first["body"]
    assert httpx.post(f"{fast.url}/api/deliveries/99999/redeliver").status_code == 404
    assert httpx.get(f"{fast.url}/api/deliveries/99999").status_code == 404


# -- replay ------------------------------------------------------------------------------------
def test_replay_is_byte_exact(fast, sink) -> None:
    body = b'{"b": 1,  "a": "\xc3\xa9"}\n'
    httpx.post(fast.url + "/in/rp/sub?q=1&q=2", content=body,
               headers=[("Content-Type", "application/json"), ("X-Custom", "one"),
                        ("X-Custom", "two")])
    (cap,) = httpx.get(fast.url + "/api/captures", params={"bin": "rp"}).json()["captures"]
    r = httpx.post(f"{fast.url}/api/captures/{cap['id']}/replay",
                   json={"url": sink.url("/target"), "wait": True})
    assert r.status_code == 201, r.text
    d = r.json()["delivery"]
    assert d["status"] == "delivered" and d["source"] == "replay" and d["capture_id"] == cap["id"]
    (req,) = sink.requests
    assert req.body == body and req.method == "POST" and req.path == "/target?q=1&q=2"
    assert [v for n, v in req.headers if n.lower() == "x-custom"] == ["one", "two"]


def test_replay_resign_with_fresh_timestamp(fast, sink) -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    old = signing.sign("standard-webhooks", secret, body, 1614265330,
                       "msg_p5jXN8AQM9LWM0D4loKWxJek")
    httpx.post(fast.url + "/in/sw", content=body, headers=old)
    (cap,) = httpx.get(fast.url + "/api/captures", params={"bin": "sw"}).json()["captures"]
    url = f"{fast.url}/api/captures/{cap['id']}/replay"
    r = httpx.post(url, json={"url": sink.url(), "resign": True, "scheme": "nope"})
    assert r.status_code == 400 and "nope" in r.json()["error"]
    plain = httpx.post(url, json={"url": sink.url(), "wait": True}).json()["delivery"]
    assert plain["status"] == "delivered"
    stale = sink.requests[0]
    assert header(stale.headers, "webhook-timestamp") == "1614265330"
    r = httpx.post(url, json={"url": sink.url(), "resign": True, "secret": secret,
                              "wait": True})
    assert r.status_code == 201, r.text
    fresh = sink.requests[1]
    ts = int(header(fresh.headers, "webhook-timestamp"))
    assert abs(ts - time.time()) < 5
    assert header(fresh.headers, "webhook-id") == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    assert signing.verify("standard-webhooks", secret, fresh.body, fresh.headers, now=ts).valid
    assert fresh.body == body
    # No secret: the demo secret of the vendor that signs this way, said so in a warning.
    demo = default_catalog().vendor("standard-webhooks").demo_secret
    d = httpx.post(url, json={"url": sink.url(), "resign": True, "wait": True}
                   ).json()["delivery"]
    assert "demo secret" in d["warnings"][0]
    last = sink.requests[2]
    ts = int(header(last.headers, "webhook-timestamp"))
    assert signing.verify("standard-webhooks", demo, last.body, last.headers, now=ts).valid
    plain_cap = httpx.post(fast.url + "/in/unsigned", content=b"{}").json()["id"]
    r = httpx.post(f"{fast.url}/api/captures/{plain_cap}/replay",
                   json={"url": sink.url(), "resign": True})
    assert r.status_code == 400 and "scheme" in r.json()["error"]


def test_replay_with_edited_body_and_headers(fast, sink) -> None:
    httpx.post(fast.url + "/in/ed", content=b"original", headers={"X-A": "1"})
    (cap,) = httpx.get(fast.url + "/api/captures", params={"bin": "ed"}).json()["captures"]
    r = httpx.post(f"{fast.url}/api/captures/{cap['id']}/replay",
                   json={"url": sink.url(), "body": "edited", "headers": [["X-B", "2"]],
                         "wait": True})
    assert r.json()["delivery"]["status"] == "delivered"
    (req,) = sink.requests
    assert req.body == b"edited" and header(req.headers, "X-B") == "2"
    assert header(req.headers, "X-A") is None


# -- restart -----------------------------------------------------------------------------------
def test_server_restart_resumes_pending_retry(make_server, sink) -> None:
    sink.plan = fail_then(1)
    first = make_server(retry_scale=1 / 60)  # Audian's +60 s (+0-60 s jitter) -> 1-2 s
    d = send(first, vendor="audian", event="call.completed", url=sink.url()).json()["delivery"]
    d = poll(first, d["id"], until="pending")
    deadline = time.monotonic() + 5
    while d["attempt_count"] < 1 and time.monotonic() < deadline:
        d = poll(first, d["id"], until="pending")
    assert d["attempt_count"] == 1 and d["next_attempt_at"] is not None
    first.stop()
    second = make_server(retry_scale=1 / 60)  # same database file
    done = poll(second, d["id"], timeout=10)
    assert done["status"] == "delivered" and done["attempt_count"] == 2
    assert [a["status_code"] for a in done["attempts"]] == [500, 200]
