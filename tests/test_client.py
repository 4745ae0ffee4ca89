"""inspector.client against the real server (ServerThread over a temporary SQLite file)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from inspector.client import (
    Capture,
    InspectorClient,
    InspectorError,
    _Waiter,
    assert_json_matches,
    assert_request_matches,
)
from inspector.config import Config
from inspector.server import ServerThread


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspectorClient]:
    db = tmp_path_factory.mktemp("client") / "inspector.db"
    srv = ServerThread(Config(host="127.0.0.1", port=0, db=str(db), retry_scale=0)).start()
    with InspectorClient(srv.url) as c:
        yield c
    srv.stop()


_names = iter(range(10_000))


@pytest.fixture
def bin_name() -> str:
    return f"client-{next(_names)}-{time.monotonic_ns() % 10**9}"


def test_capture_roundtrip_keeps_bytes_headers_and_query(client: InspectorClient,
                                                         bin_name: str) -> None:
    url = client.capture_url(bin_name, "/hooks/a")
    body = b"\x00\xffbinary"
    httpx.post(url + "?x=1&x=2", content=body,
               headers=[("X-Rep", "one"), ("X-Rep", "two"), ("Content-Type", "app/x")])
    (cap,) = client.wait_for(bin_name, 1, timeout=5)
    assert isinstance(cap, Capture)
    assert (cap.method, cap.path, cap.query, cap.body) == ("POST", "/hooks/a", "x=1&x=2", body)
    assert cap.header_values("x-rep") == ["one", "two"]
    assert cap.header("X-REP") == "one" and cap.header("missing") is None
    assert client.raw(cap.id) == body
    summaries = client.captures(bin_name)
    assert [s.id for s in summaries] == [cap.id] and summaries[0].size == len(body)
    assert any(b["name"] == bin_name for b in client.bins())
    client.delete(cap.id)
    with pytest.raises(InspectorError) as err:
        client.get(cap.id)
    assert err.value.status == 404


def test_wait_for_returns_oldest_first_and_filters(client: InspectorClient,
                                                   bin_name: str) -> None:
    url = client.capture_url(bin_name)
    for i in range(4):
        httpx.post(url, json={"n": i, "kind": "odd" if i % 2 else "even"})
    caps = client.wait_for(bin_name, 2, where=lambda c: c.json()["kind"] == "odd")
    assert [c.json()["n"] for c in caps] == [1, 3]
    assert [c.json()["n"] for c in client.wait_for(bin_name, 3)] == [0, 1, 2]
    b = client.bin(bin_name)
    assert b.last().json()["n"] == 3 and b.json()["n"] == 3 and len(b) == 4
    assert [c.json()["n"] for c in b.captures()] == [0, 1, 2, 3]
    assert b.clear() == 4 and b.last() is None


def test_wait_for_is_woken_by_a_late_capture(client: InspectorClient, bin_name: str) -> None:
    url = client.capture_url(bin_name)
    timer = threading.Timer(0.3, lambda: httpx.post(url, content=b"late"))
    timer.start()
    started = time.monotonic()
    (cap,) = client.wait_for(bin_name, timeout=5)
    assert cap.body == b"late" and time.monotonic() - started < 2.0
    timer.join()


def test_wait_for_polls_without_websocket(client: InspectorClient, bin_name: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Waiter, "_connect", lambda self: None)
    url = client.capture_url(bin_name)
    threading.Timer(0.2, lambda: httpx.post(url, content=b"polled")).start()
    (cap,) = client.wait_for(bin_name, timeout=5)
    assert cap.body == b"polled"


def test_wait_for_timeout_says_what_arrived(client: InspectorClient, bin_name: str) -> None:
    url = client.capture_url(bin_name, "/orders")
    httpx.post(url + "?page=2", json={"order": 17, "status": "paid"})
    httpx.put(url, content=b"not json")

    def is_refund(c: Capture) -> bool:
        return c.json()["status"] == "refunded"

    started = time.monotonic()
    with pytest.raises(AssertionError) as err:
        client.wait_for(bin_name, 1, timeout=0.4, where=is_refund)
    assert time.monotonic() - started < 2.0
    msg = str(err.value)
    assert "timed out after 0.4 s waiting for 1 capture matching is_refund" in msg
    assert "2 arrived, 0 matching" in msg
    assert """- #""" in msg
    assert """POST /orders?page=2 (application/json, 28 B) '{"order":17,"status":"paid"}'""" in msg
    assert "PUT /orders" in msg and "'not json'" in msg
    assert "where raised ValueError" in msg

    with pytest.raises(AssertionError, match="nothing arrived"):
        client.wait_for(bin_name + "-empty", timeout=0.2)


def test_bin_response_and_delete(client: InspectorClient, bin_name: str) -> None:
    b = client.bin(bin_name)
    b.respond(418, body="teapot", headers={"X-Reply": "yes"})
    resp = httpx.post(b.url, content=b"x")
    assert (resp.status_code, resp.text, resp.headers["x-reply"]) == (418, "teapot", "yes")
    client.reset_response(bin_name)
    assert httpx.post(b.url, content=b"y").status_code == 200
    assert b.delete() is True and b.delete() is False
    assert all(x["name"] != bin_name for x in client.bins())


def test_send_settles_with_attempts(client: InspectorClient, bin_name: str) -> None:
    b = client.bin(bin_name)
    d = client.send("audian", "call.completed", b.url, secret="whsec_t", seed=7,
                    overrides={"data.duration": 42})
    assert d.status == "delivered" and d.delivered and d.settled
    assert [a.status_code for a in d.attempts] == [200] and d.status_code == 200
    assert d.json()["data"]["duration"] == 42
    assert d.attempts[0].response_json()["ok"] is True
    (cap,) = b.wait_for()
    assert cap.body == d.body and cap.header("X-Audian-Signature")
    assert client.delivery(d.id).status == "delivered"
    assert any(x["id"] == d.id for x in client.deliveries(vendor="audian"))
    again = client.sample("audian", "call.completed", seed=7, secret="whsec_t",
                          overrides={"data.duration": 42})
    assert again["method"] == "POST" and '"duration":42' in again["body"]


def test_send_to_a_failing_target_retries_at_once(client: InspectorClient,
                                                  bin_name: str) -> None:
    b = client.bin(bin_name)
    b.respond(503, body="down")
    started = time.monotonic()
    d = client.send("audian", "call.completed", b.url)
    assert d.status == "failed" and time.monotonic() - started < 10
    assert [a.status_code for a in d.attempts] == [503] * 5
    assert d.attempts[0].response_text == "down"
    with pytest.raises(AssertionError, match=r"attempt 5: HTTP 503"):
        d.raise_for_status()


def test_unknown_vendor_is_an_error_naming_it(client: InspectorClient, bin_name: str) -> None:
    with pytest.raises(InspectorError, match="nope"):
        client.send("nope", "x.y", client.capture_url(bin_name))


def test_diff_and_request_assertion(client: InspectorClient, bin_name: str) -> None:
    url = client.capture_url(bin_name)
    httpx.post(url, json={"user": {"email": "a@x"}, "n": 1})
    httpx.post(url, json={"n": 1, "user": {"email": "b@x"}})
    a, b = client.wait_for(bin_name, 2)
    changes = client.diff(a.id, b)
    assert [(c.path, c.kind, c.a, c.b) for c in changes] == [
        ("$.user.email", "changed", "a@x", "b@x")]
    assert_request_matches(b, a, ignore=["header:*", "$.user.email"])
    with pytest.raises(AssertionError) as err:
        assert_request_matches(b, a)
    assert '$.user.email: expected "a@x", captured "b@x"' in str(err.value)


def test_assert_json_matches_messages() -> None:
    body = b'{"event": "call.completed", "data": {"duration": 32, "to": "+1"}, "ts": 5}'
    assert_json_matches(body, {"ts": 9, "data": {"to": "+1", "duration": 32},
                               "event": "call.completed"}, ignore=["$.ts"])
    assert_json_matches(body, {"event": "call.completed"}, partial=True)
    with pytest.raises(AssertionError) as err:
        assert_json_matches(body, {"event": "call.failed", "data": {"duration": "32"},
                                   "extra": [1]}, ignore=["$.ts"])
    msg = str(err.value)
    assert msg.splitlines()[0] == (
        "body JSON does not match expected (4 differences, expected vs captured):")
    assert '  $.event: expected "call.failed", captured "call.completed"' in msg
    assert '  $.data.duration: type differs: expected "32" (str), captured 32 (int)' in msg
    assert '  $.data.to: only in captured: "+1"' in msg
    assert "  $.extra: missing from captured (expected [1])" in msg
    with pytest.raises(AssertionError, match="body is not JSON: 'nope'"):
        assert_json_matches(b"nope", {})

