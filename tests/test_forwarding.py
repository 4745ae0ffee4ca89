"""Forwarding (issue 8): real apps on loopback receive each capture byte-exact, in order."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from inspector import signing
from inspector.forwarding import (
    ForwardError,
    forward_headers,
    parse_json_path,
    parse_rules,
    target_url,
)

from .conftest import free_port, raw_http, start_cli_server, stop_process


@dataclass
class Got:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class App:
    """The developer's app: records every request; ``answer`` decides the response."""

    def __init__(self, port: int = 0,
                 answer: Callable[[Got], tuple[int, list[tuple[str, str]], bytes]] | None = None
                 ) -> None:
        self.got: list[Got] = []
        self.answer = answer or (lambda g: (200, [("Content-Type", "text/plain")], b"ok"))
        self._lock = threading.Lock()
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                got = Got(self.command, self.path, list(self.headers.items()), body)
                with app._lock:
                    app.got.append(got)
                status, headers, payload = app.answer(got)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 15) -> list[Got]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.got) >= count:
                return list(self.got)
            time.sleep(0.02)
        raise AssertionError(f"app got {len(self.got)} requests, wanted {count}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def apps() -> Iterator[Callable[..., App]]:
    made: list[App] = []

    def make(**kw: object) -> App:
        a = App(**kw)  # type: ignore[arg-type]
        made.append(a)
        return a
    yield make
    for a in made:
        a.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for n, v in headers if n.lower() == name.lower()), None)


def put_rules(base: str, bin_name: str, rules: dict) -> httpx.Response:
    return httpx.put(f"{base}/api/bins/{bin_name}/forward", json=rules, timeout=10)


def forwards_of(base: str, capture_id: int) -> dict:
    return httpx.get(f"{base}/api/captures/{capture_id}/forwards", timeout=10).json()


def wait_forward_status(base: str, capture_id: int, want: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = forwards_of(base, capture_id)
        if data["status"] == want or time.monotonic() > deadline:
            assert data["status"] == want, data
            return data
        time.sleep(0.05)


# -- domain units ---------------------------------------------------------------------------------
def test_target_url_appends_sub_path_and_raw_query() -> None:
    assert target_url("http://a:1/hooks", "/x/y%20z", "b=2&a=1") == \
        "http://a:1/hooks/x/y%20z?b=2&a=1"
    assert target_url("http://a:1/hooks/", "/x", "") == "http://a:1/hooks/x"
    assert target_url("http://a:1/hooks?k=v", "", "q=1") == "http://a:1/hooks?k=v&q=1"
    assert target_url("http://a:1", "/x", "", pass_path=False) == "http://a:1"


def test_hop_by_hop_headers_per_rfc_9110() -> None:
    got = forward_headers([
        ("Host", "inspector:8787"), ("Connection", "keep-alive, X-Hop-Custom"),
        ("Keep-Alive", "timeout=5"), ("TE", "trailers"), ("Trailer", "X-T"),
        ("Transfer-Encoding", "chunked"), ("Upgrade", "h2c"), ("Proxy-Authorization", "x"),
        ("Proxy-Connection", "keep-alive"), ("X-Hop-Custom", "drop me"),
        ("Content-Length", "3"), ("X-Keep", "1"), ("X-Keep", "2"), ("Authorization", "a"),
    ], remote_addr="10.0.0.9", tls=False)
    assert got == [("X-Keep", "1"), ("X-Keep", "2"), ("Authorization", "a"),
                   ("X-Forwarded-For", "10.0.0.9"), ("X-Forwarded-Proto", "http"),
                   ("X-Forwarded-Host", "inspector:8787")]
    # A tunnel in front (ngrok, cloudflared) already said who the client was: kept, appended.
    got = forward_headers([("host", "x.ngrok.app"), ("x-forwarded-for", "1.2.3.4"),
                           ("x-forwarded-proto", "https")], remote_addr="127.0.0.1", tls=False)
    assert got == [("x-forwarded-for", "1.2.3.4, 127.0.0.1"), ("x-forwarded-proto", "https"),
                   ("X-Forwarded-Host", "x.ngrok.app")]


def test_rules_validation() -> None:
    r = parse_rules({"targets": [{"url": "http://127.0.0.1:9/x",
                                  "filters": {"method": ["post"], "json": {"$.a[0].b": 1}}}]})
    assert r.mode == "respond" and r.targets[0].filters.methods == ["POST"]
    assert parse_json_path("$.data.items[2].id") == ["data", "items", 2, "id"]
    for bad in ({"targets": "x"}, {"targets": [{"url": "ftp://x"}]},
                {"targets": [{"url": "http://x"}], "mode": "mirror"},
                {"targets": [{"url": "http://x", "filters": {"colour": "red"}}]},
                {"targets": [], "mode": "proxy"}, {"targets": [{"url": "http://x"}],
                                                   "retry": []}):
        with pytest.raises(ForwardError):
            parse_rules(bad)


# -- real servers ---------------------------------------------------------------------------------
def test_signature_verifies_at_the_target_bytes_identical(make_server, apps) -> None:
    srv = make_server()
    app = apps()
    assert put_rules(srv.url, "sig", {"targets": [{"url": app.url("/hooks")}]}).status_code == 200
    # Odd spacing, key order and a non-ASCII character: any re-serialisation would show.
    body = '{"type":"call.ended",  "id" : 7, "z":1, "a":"caf\u00e9"}\n'.encode()
    secret = "whsec_forwarding-test"
    ts = int(time.time())
    sig = signing.sign("audian", secret, body, ts)
    r = httpx.post(f"{srv.url}/in/sig/calls/ended?b=2&a=1&a=0", content=body,
                   headers=[("Content-Type", "application/json"), *sig,
                            ("X-Repeat", "one"), ("X-Repeat", "two")], timeout=10)
    assert r.status_code == 200
    capture_id = r.json()["id"]
    [got] = app.wait_for(1)
    assert got.method == "POST"
    assert got.target == "/hooks/calls/ended?b=2&a=1&a=0"
    assert got.body == body
    assert signing.verify("audian", secret, got.body, got.headers, int(time.time())).valid
    assert header(got.headers, "Host") == f"127.0.0.1:{app.port}"
    assert header(got.headers, "X-Forwarded-Host") == f"127.0.0.1:{srv.port}"
    assert header(got.headers, "X-Forwarded-Proto") == "http"
    assert header(got.headers, "X-Forwarded-For") == "127.0.0.1"
    assert [v for n, v in got.headers if n.lower() == "x-repeat"] == ["one", "two"]
    names = [n.lower() for n, _ in got.headers]
    assert names.index("x-audian-signature") < names.index("x-repeat")
    data = wait_forward_status(srv.url, capture_id, "delivered")
    [d] = data["deliveries"]
    assert d["source"] == "forward" and d["capture_id"] == capture_id
    full = httpx.get(f"{srv.url}/api/deliveries/{d['id']}", timeout=10).json()["delivery"]
    assert full["attempts"][0]["response"]["status"] == 200
    # Re-send from the API: the same bytes again.
    r = httpx.post(f"{srv.url}/api/deliveries/{d['id']}/redeliver", timeout=10)
    assert r.status_code == 201, r.text
    assert app.wait_for(2)[1].body == body


def test_target_down_for_first_captures_gets_them_all_in_order(make_server, apps) -> None:
    srv = make_server(retry_scale=0.05)  # forward schedule 0, 1, 2, 5 … s × 0.05
    port = closed_port()
    put_rules(srv.url, "down", {"targets": [{"url": f"http://127.0.0.1:{port}/in"}]})
    ids = []
    for i in range(8):
        r = httpx.post(f"{srv.url}/in/down", content=f'{{"n":{i}}}', timeout=10)
        assert r.status_code == 200  # respond mode: the sender never waits for the app
        ids.append(r.json()["id"])
    time.sleep(0.4)
    first = forwards_of(srv.url, ids[0])
    assert first["status"] == "pending"
    assert first["deliveries"][0]["attempt_count"] >= 2  # retried while down
    assert first["deliveries"][0]["last_error"] == "connection refused"
    # Only the head of the queue is tried while the app is down.
    assert forwards_of(srv.url, ids[-1])["deliveries"][0]["attempt_count"] == 0
    app = apps(port=port)
    got = app.wait_for(8)
    time.sleep(0.3)
    assert [json.loads(g.body)["n"] for g in app.got] == list(range(8))
    assert len(got) == 8
    for cid in ids:
        wait_forward_status(srv.url, cid, "delivered")
    statuses = httpx.get(f"{srv.url}/api/forwards/status",
                         params={"ids": ",".join(map(str, ids))}, timeout=10).json()
    assert statuses["statuses"] == {str(i): "delivered" for i in ids}


def test_non_2xx_is_retried_until_delivered(make_server, apps) -> None:
    srv = make_server(retry_scale=0.02)
    app = apps(answer=lambda g: (500 if len(app.got) <= 3 else 204, [], b""))
    put_rules(srv.url, "flaky", {"targets": [app.url()]})
    cid = httpx.post(f"{srv.url}/in/flaky", content=b"x", timeout=10).json()["id"]
    data = wait_forward_status(srv.url, cid, "delivered")
    assert data["deliveries"][0]["attempt_count"] == 4
    assert data["deliveries"][0]["last_status"] == 204


def test_filters_route_events_to_different_targets(make_server, apps) -> None:
    srv = make_server()
    paid, failed, gets, signed = apps(), apps(), apps(), apps()
    r = put_rules(srv.url, "route", {"targets": [
        {"url": paid.url(), "filters": {"json": {"$.type": "invoice.paid"}}},
        {"url": failed.url(), "filters": {"json": {"type": "invoice.failed"},
                                          "path": "/billing/*"}},
        {"url": gets.url(), "filters": {"method": "GET"}},
        {"url": signed.url(), "filters": {"header": "X-Signature", "method": ["POST", "PUT"]}},
    ]})
    assert r.status_code == 200, r.text
    post = lambda path, doc, **kw: httpx.post(  # noqa: E731
        f"{srv.url}/in/route{path}", content=json.dumps(doc), timeout=10, **kw)
    post("/billing/x", {"type": "invoice.paid"})
    post("/billing/x", {"type": "invoice.failed"})
    post("/other", {"type": "invoice.failed"})  # path glob does not match
    post("/", {"type": "invoice.created"}, headers={"X-Signature": "s"})
    httpx.get(f"{srv.url}/in/route?x=1", timeout=10)
    httpx.post(f"{srv.url}/in/route", content=b"not json", timeout=10)
    assert [json.loads(g.body)["type"] for g in paid.wait_for(1)] == ["invoice.paid"]
    assert [g.target for g in failed.wait_for(1)] == ["/hooks/billing/x"]
    assert [g.target for g in gets.wait_for(1)] == ["/hooks?x=1"]
    assert [json.loads(g.body)["type"] for g in signed.wait_for(1)] == ["invoice.created"]
    time.sleep(0.5)
    assert (len(paid.got), len(failed.got), len(gets.got), len(signed.got)) == (1, 1, 1, 1)


def test_proxy_mode_answers_with_the_apps_response(make_server, apps) -> None:
    srv = make_server(retry_scale=0.05)
    app = apps(answer=lambda g: (201, [("Content-Type", "application/json"),
                                       ("X-App", "yes"), ("Connection", "keep-alive")],
                                 b'{"handled":' + g.body + b"}"))
    assert put_rules(srv.url, "px", {"targets": [app.url()], "mode": "proxy",
                                     "timeout": 5}).status_code == 200
    r = httpx.post(f"{srv.url}/in/px/a", content=b"42", timeout=10)
    assert r.status_code == 201
    assert r.content == b'{"handled":42}'
    assert r.headers["x-app"] == "yes"
    assert r.headers["content-type"] == "application/json"
    [got] = app.got
    assert got.target == "/hooks/a" and got.body == b"42"
    cid = httpx.get(f"{srv.url}/api/captures", params={"bin": "px"}, timeout=10).json()
    cid = cid["captures"][0]["id"]
    wait_forward_status(srv.url, cid, "delivered")


def test_proxy_mode_502_when_down_then_queued(make_server, apps) -> None:
    srv = make_server(retry_scale=0.05)
    port = closed_port()
    put_rules(srv.url, "px2", {"targets": [f"http://127.0.0.1:{port}/x"], "mode": "proxy"})
    r = httpx.post(f"{srv.url}/in/px2", content=b"first", timeout=10)
    assert r.status_code == 502
    err = r.json()
    assert "connection refused" in err["error"]
    app = apps(port=port)
    assert app.wait_for(1)[0].body == b"first"
    wait_forward_status(srv.url, err["capture_id"], "delivered")
    r = httpx.post(f"{srv.url}/in/px2", content=b"second", timeout=10)
    assert r.status_code == 200 and r.content == b"ok"


def test_proxy_mode_waiting_forward_cancelled_is_not_promised_a_retry(make_server) -> None:
    srv = make_server(retry_scale=1)  # the first forward's retry is a minute away
    port = closed_port()
    put_rules(srv.url, "px3", {"targets": [f"http://127.0.0.1:{port}/x"], "mode": "proxy",
                               "timeout": 20})
    assert httpx.post(f"{srv.url}/in/px3", content=b"first", timeout=10).status_code == 502
    answer: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answer.append(
        httpx.post(f"{srv.url}/in/px3", content=b"second", timeout=30)))
    sender.start()  # queued behind the first: its sender waits for its turn
    deadline = time.monotonic() + 10
    while True:
        pending = httpx.get(f"{srv.url}/api/deliveries", params={"status": "pending"},
                            timeout=10).json()["deliveries"]
        if len(pending) == 2:
            break
        assert time.monotonic() < deadline, pending
        time.sleep(0.05)
    second = max(d["id"] for d in pending)
    assert httpx.post(f"{srv.url}/api/deliveries/{second}/cancel",
                      timeout=10).status_code == 200
    sender.join(15)
    assert answer and answer[0].status_code == 502
    assert answer[0].json()["error"] == (
        f"the forward to http://127.0.0.1:{port}/x failed and will not be retried (cancelled)")


def test_hop_by_hop_headers_not_forwarded_from_the_wire(make_server, apps) -> None:
    srv = make_server()
    app = apps()
    put_rules(srv.url, "hop", {"targets": [app.url()]})
    raw = (b"POST /in/hop HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           b"Connection: close, X-Private-Hop\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
           b"Upgrade: websocket-ish\r\nProxy-Authorization: Basic eA==\r\n"
           b"Proxy-Foo: bar\r\nX-Private-Hop: secret\r\nX-End-To-End: kept\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert raw_http(srv.port, raw).status == 200
    [got] = app.wait_for(1)
    names = {n.lower() for n, _ in got.headers}
    assert got.body == b"hello"
    assert header(got.headers, "X-End-To-End") == "kept"
    for hop in ("keep-alive", "te", "upgrade", "proxy-authorization", "proxy-foo",
                "x-private-hop", "transfer-encoding"):
        assert hop not in names, hop
    assert header(got.headers, "Connection") in (None, "keep-alive")  # the client's own hop
    assert header(got.headers, "Content-Length") == "5"


def test_rules_api_and_persistence(make_server, tmp_path: Path) -> None:
    srv = make_server()
    base = srv.url
    assert httpx.get(f"{base}/api/bins/p/forward").json() == {
        "bin": "p", "targets": [], "mode": "respond"}
    r = put_rules(base, "p", {"targets": [{"url": "http://127.0.0.1:9/a",
                                           "filters": {"method": "post"}}]})
    assert r.status_code == 200
    assert r.json()["targets"] == [{"url": "http://127.0.0.1:9/a", "path": True,
                                    "filters": {"method": "POST"}}]
    bad = put_rules(base, "p", {"targets": [{"url": f"{base}/api/send"}]})
    assert bad.status_code == 400 and "own" in bad.json()["error"]
    loop = put_rules(base, "p", {"targets": [{"url": f"{base}/in/p"}]})
    assert loop.status_code == 400 and "loop" in loop.json()["error"]
    srv.stop()
    again = make_server()
    assert httpx.get(f"{again.url}/api/bins/p/forward").json()["targets"][0]["url"] == \
        "http://127.0.0.1:9/a"
    r = httpx.delete(f"{again.url}/api/bins/p/forward")
    assert r.json() == {"bin": "p", "deleted": True}
    assert httpx.get(f"{again.url}/api/bins/p/forward").json()["targets"] == []
    cid = httpx.post(f"{again.url}/in/p", content=b"x").json()["id"]
    assert forwards_of(again.url, cid) == {"capture_id": cid, "status": "none",
                                           "deliveries": []}


def test_serve_forward_flag_from_the_cli(tmp_path: Path, apps) -> None:
    app = apps()
    port = free_port()
    proc = start_cli_server(tmp_path / "cli.db", port, "--server", "werkzeug",
                            "--forward", f"clibin={app.url('/wh')}",
                            "--forward", f"other={app.url('/other')}")
    try:
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(f"{base}/in/clibin/x?y=1", content=b'{"a":1}', timeout=10)
        assert r.status_code == 200
        [got] = app.wait_for(1)
        assert got.target == "/wh/x?y=1" and got.body == b'{"a":1}'
        rules = httpx.get(f"{base}/api/bins/other/forward", timeout=10).json()
        assert [t["url"] for t in rules["targets"]] == [app.url("/other")]
    finally:
        stop_process(proc)


def test_queued_forwards_survive_a_restart(make_server, apps) -> None:
    srv = make_server(retry_scale=0.05)
    port = closed_port()
    put_rules(srv.url, "rs", {"targets": [f"http://127.0.0.1:{port}/x"]})
    for i in range(4):
        assert httpx.post(f"{srv.url}/in/rs", content=f'{{"n":{i}}}').status_code == 200
    time.sleep(0.2)
    srv.stop()
    app = apps(port=port)
    again = make_server(retry_scale=0.05)
    app.wait_for(4)
    time.sleep(0.3)
    assert [json.loads(g.body)["n"] for g in app.got] == [0, 1, 2, 3]
    assert httpx.get(f"{again.url}/api/deliveries", params={"status": "pending"}
                     ).json()["deliveries"] == []


def badges_of(base: str, *ids: int) -> dict:
    return httpx.get(f"{base}/api/forwards/status", params={"ids": ",".join(map(str, ids))},
                     timeout=10).json()["badges"]


def test_resend_retries_now_then_redelivers(make_server, apps) -> None:
    """POST /api/captures/<id>/forward: a pending forward (waiting on a long retry) is tried
    at once, in queue order; a delivered one is sent again as a new delivery."""
    srv = make_server()
    port = closed_port()
    r = put_rules(srv.url, "resend", {"targets": [f"http://127.0.0.1:{port}/hooks"],
                                      "retry": [0, 0, 600]})
    assert r.status_code == 200, r.text
    first = httpx.post(f"{srv.url}/in/resend/a?q=1", content=b'{"n":1}', timeout=10).json()["id"]
    second = httpx.post(f"{srv.url}/in/resend", content=b'{"n":2}', timeout=10).json()["id"]
    deadline = time.monotonic() + 10
    while forwards_of(srv.url, first)["deliveries"][0]["attempt_count"] < 2:
        assert time.monotonic() < deadline, forwards_of(srv.url, first)
        time.sleep(0.05)
    badges = badges_of(srv.url, first, second)
    assert badges[str(first)]["state"] == "retrying"  # next try in 10 minutes
    assert badges[str(first)]["error"] == "connection refused"
    assert badges[str(first)]["code"] is None
    assert badges[str(second)]["state"] == "pending"  # queued behind the first, untried
    assert badges[str(second)]["attempts"] == 0
    app = apps(port=port, answer=lambda g: (202, [("X-App", "yes")], b'{"ok":1}'))
    # Re-send the second: the head of the queue (the first) goes now, then the second.
    r = httpx.post(f"{srv.url}/api/captures/{second}/forward", timeout=10)
    assert r.status_code == 202, r.text
    (entry,) = r.json()["resent"]
    assert entry["action"] == "retry_now" and entry["attempting"] == entry["delivery"]["id"] - 1
    got = app.wait_for(2)
    assert [g.body for g in got] == [b'{"n":1}', b'{"n":2}']
    assert got[0].target == "/hooks/a?q=1"
    wait_forward_status(srv.url, second, "delivered")
    badge = badges_of(srv.url, first)[str(first)]
    assert badge == {"status": "delivered", "state": "delivered", "code": 202, "error": None,
                     "attempts": 3, "targets": 1}
    # Delivered already: a new delivery of the same request.
    r = httpx.post(f"{srv.url}/api/captures/{first}/forward", timeout=10)
    assert r.status_code == 202, r.text
    (entry,) = r.json()["resent"]
    assert entry["action"] == "resent"
    assert entry["delivery"]["redelivery_of"] == forwards_of(srv.url, first)["deliveries"][0]["id"]
    assert app.wait_for(3)[2].body == b'{"n":1}' and app.got[2].target == "/hooks/a?q=1"
    data = forwards_of(srv.url, first)
    assert len(data["deliveries"]) == 2
    # The full form: the app's answer per attempt, the request without its body.
    full = httpx.get(f"{srv.url}/api/captures/{first}/forwards", params={"attempts": 1},
                     timeout=10).json()
    last = full["deliveries"][0]["attempts"][-1]
    assert last["response"]["status"] == 202 and last["response"]["body"] == '{"ok":1}'
    assert ["X-App", "yes"] in last["response"]["headers"]
    assert "body" not in last["request"] and last["request"]["method"] == "POST"
    assert full["deliveries"][0]["attempts"][0]["error"] == "connection refused"


def test_resend_without_a_target_is_400(make_server, apps) -> None:
    srv = make_server()
    app = apps()
    cid = httpx.post(f"{srv.url}/in/plain", content=b"x", timeout=10).json()["id"]
    r = httpx.post(f"{srv.url}/api/captures/{cid}/forward", timeout=10)
    assert r.status_code == 400 and "no forwarding rules" in r.json()["error"]
    put_rules(srv.url, "plain", {"targets": [{"url": app.url(), "filters": {"method": "PUT"}}]})
    r = httpx.post(f"{srv.url}/api/captures/{cid}/forward", timeout=10)
    assert r.status_code == 400 and "matches" in r.json()["error"]
    assert httpx.post(f"{srv.url}/api/captures/999999/forward", timeout=10).status_code == 404
    # Rules removed after a forward: re-send goes to where it went before.
    put_rules(srv.url, "plain", {"targets": [app.url()]})
    cid = httpx.post(f"{srv.url}/in/plain", content=b"y", timeout=10).json()["id"]
    wait_forward_status(srv.url, cid, "delivered")
    httpx.delete(f"{srv.url}/api/bins/plain/forward", timeout=10)
    r = httpx.post(f"{srv.url}/api/captures/{cid}/forward", timeout=10)
    assert r.status_code == 202 and r.json()["resent"][0]["action"] == "resent", r.text
    assert [g.body for g in app.wait_for(2)] == [b"y", b"y"]


def test_forwarding_through_the_default_server(tmp_path: Path, apps) -> None:
    """uvicorn writes a forwarding bin's captures without blocking (asgi.py) and takes proxy
    mode on a thread: the same bytes, order and answers as the WSGI path."""
    port = free_port()
    proc = start_cli_server(tmp_path / "uv.db", port, "--server", "uvicorn",
                            "--retry-scale", "0.05")
    base = f"http://127.0.0.1:{port}"
    try:
        app = apps()
        put_rules(base, "sig", {"targets": [{"url": app.url("/hooks")}]})
        body = '{"type":"call.ended",  "id" : 7, "a":"caf\u00e9"}\n'.encode()
        sig = signing.sign("audian", "whsec_uv", body, int(time.time()))
        r = httpx.post(f"{base}/in/sig/calls?b=2&a=1", content=body, timeout=10,
                       headers=[("Content-Type", "application/json"), *sig])
        assert r.status_code == 200, r.text
        [got] = app.wait_for(1)
        assert got.target == "/hooks/calls?b=2&a=1" and got.body == body
        assert signing.verify("audian", "whsec_uv", got.body, got.headers,
                              int(time.time())).valid
        wait_forward_status(base, r.json()["id"], "delivered")

        down = closed_port()
        put_rules(base, "down", {"targets": [f"http://127.0.0.1:{down}/in"]})
        ids = [httpx.post(f"{base}/in/down", content=f'{{"n":{i}}}', timeout=10).json()["id"]
               for i in range(6)]
        time.sleep(0.3)
        late = apps(port=down)
        late.wait_for(6)
        assert [json.loads(g.body)["n"] for g in late.got] == list(range(6))
        for cid in ids:
            wait_forward_status(base, cid, "delivered")

        proxied = apps(answer=lambda g: (201, [("X-App", "yes")], b"handled:" + g.body))
        put_rules(base, "px", {"targets": [proxied.url()], "mode": "proxy", "timeout": 5})
        r = httpx.post(f"{base}/in/px", content=b"42", timeout=10)
        assert (r.status_code, r.content, r.headers["x-app"]) == (201, b"handled:42", "yes")
    finally:
        stop_process(proc)


def test_cancel_a_forward_that_keeps_failing_lets_the_queue_go_on(make_server, apps) -> None:
    """A target that stays down would hold its queue for ever: cancelling the head settles it
    as failed, and the next forward goes (here to a target that came up)."""
    srv = make_server()
    port = closed_port()
    put_rules(srv.url, "stuck", {"targets": [f"http://127.0.0.1:{port}/hooks"],
                                 "retry": [0, 600]})
    first = httpx.post(f"{srv.url}/in/stuck", content=b'{"n":1}', timeout=10).json()["id"]
    second = httpx.post(f"{srv.url}/in/stuck", content=b'{"n":2}', timeout=10).json()["id"]
    deadline = time.monotonic() + 10
    while forwards_of(srv.url, first)["deliveries"][0]["attempt_count"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    head = forwards_of(srv.url, first)["deliveries"][0]["id"]
    app = apps(port=port)
    r = httpx.post(f"{srv.url}/api/deliveries/{head}/cancel", timeout=10)
    assert r.status_code == 200, r.text
    d = r.json()["delivery"]
    assert d["status"] == "failed" and d["error"] == "cancelled" and d["attempt_count"] == 1
    got = app.wait_for(1)
    assert [json.loads(g.body)["n"] for g in got] == [2]  # the head was never sent again
    deadline = time.monotonic() + 10
    while forwards_of(srv.url, second)["deliveries"][0]["status"] != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    again = httpx.post(f"{srv.url}/api/deliveries/{head}/cancel", timeout=10)
    assert again.status_code == 409 and "already failed" in again.json()["error"]
    assert httpx.post(f"{srv.url}/api/deliveries/999999/cancel").status_code == 404
