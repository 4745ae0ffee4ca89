"""The delivery engine over real sockets: a local sink that fails, stalls or refuses, and a real
SQLite file. The ``Sink`` here is shared with the API and CLI tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from inspector import signing
from inspector.delivery import DeliveryEngine, OwnServer, RetryPolicy, TargetRefused, check_url
from inspector.delivery.engine import iso
from inspector.provider import default_catalog
from inspector.storage import Database
from inspector.storage.deliveries import NewDelivery

# -- a programmable sink ------------------------------------------------------------------------
Plan = Callable[[int], "int | tuple[float, int]"]
"""Request number (1-based) -> status, or (seconds to sleep first, status)."""


@dataclass
class SinkRequest:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    at: float


class Sink:
    """A tiny HTTP server on 127.0.0.1 that records every request and answers per ``plan``."""

    def __init__(self, plan: Plan | None = None, body: bytes = b'{"received":true}') -> None:
        self.plan: Plan = plan or (lambda n: 200)
        self.body = body
        self.response_headers: list[tuple[str, str]] = []
        self.requests: list[SinkRequest] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with sink._lock:
                    sink.requests.append(SinkRequest(self.command, self.path,
                                                     list(self.headers.items()), body,
                                                     time.time()))
                    n = len(sink.requests)
                action = sink.plan(n)
                delay, status = action if isinstance(action, tuple) else (0.0, action)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Sink", str(n))
                    for name, value in sink.response_headers:
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(sink.body)))
                    self.end_headers()
                    self.wfile.write(sink.body)
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(self, count: int, timeout: float = 10) -> list[SinkRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return self.requests
            time.sleep(0.02)
        raise AssertionError(f"sink got {len(self.requests)} requests, wanted {count}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def fail_then(n_fail: int, fail: int = 500, ok: int = 200) -> Plan:
    return lambda n: fail if n <= n_fail else ok


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "deliveries.db")
    yield database
    database.close()


@pytest.fixture
def make_engine(db: Database) -> Iterator[Callable[..., DeliveryEngine]]:
    engines: list[DeliveryEngine] = []

    def make(**kw: object) -> DeliveryEngine:
        kw.setdefault("catalog", default_catalog())
        eng = DeliveryEngine(db, **kw).start()  # type: ignore[arg-type]
        engines.append(eng)
        return eng

    yield make
    for eng in engines:
        eng.close()


def header(headers: list[tuple[str, str]] | list[list[str]], name: str) -> str | None:
    return next((v for n, v in headers if n.lower() == name.lower()), None)


# -- retries and what each attempt records -------------------------------------------------------
def test_fails_twice_then_succeeds_every_attempt_persisted(make_engine, sink) -> None:
    sink.plan = fail_then(2)
    eng = make_engine(retry_scale=0)
    d = eng.send("audian", "call.completed", sink.url(), seed=7)
    d = eng.wait(d.id, 10)
    assert d.status == "delivered" and d.attempt_count == 3
    assert [a.response_status for a in d.attempts] == [500, 500, 200]
    assert [a.outcome for a in d.attempts] == ["retry", "retry", "delivered"]
    requests = sink.wait_for(3)
    for a, received in zip(d.attempts, requests, strict=True):
        assert a.number == requests.index(received) + 1
        assert a.duration_ms > 0 and a.error is None and a.started_at.endswith("Z")
        assert header(a.response_headers, "X-Sink") == str(a.number)
        assert a.response_body == sink.body and a.response_size == len(sink.body)
        # What we say we sent is what arrived, in order.
        assert [(n.lower(), v) for n, v in a.request_headers] == \
            [(n.lower(), v) for n, v in received.headers]
        assert received.body == d.body  # the body is rendered once
        assert a.request_body is None  # …so it is stored once, on the delivery
    delivery_ids = [header(a.request_headers, "X-Audian-Delivery-ID") for a in d.attempts]
    assert all(i.startswith("delv_") for i in delivery_ids) and len(set(delivery_ids)) == 3
    # Persisted, not just in memory: a fresh read through another store sees the same.
    again = DeliveryEngine(eng.db, catalog=default_catalog()).store.get(d.id)
    assert [a.to_dict() for a in again.attempts] == [a.to_dict() for a in d.attempts]


@pytest.mark.parametrize("vendor,event", [("audian", "call.completed"),
                                          ("standard-webhooks", None)])
def test_each_attempt_signed_fresh_and_verifies(make_engine, sink, vendor, event) -> None:
    v = default_catalog().vendor(vendor)
    event = event or next(iter(v.events))
    sink.plan = fail_then(2)
    eng = make_engine()
    # Just over a second between attempts, so the whole-second timestamps must differ.
    policy = RetryPolicy(schedule=(0, 1.05, 1.05), timeout=5, name=v.name)
    d = eng.send(vendor, event, sink.url(), seed=1, secret=v.demo_secret, policy=policy)
    d = eng.wait(d.id, 15)
    assert d.status == "delivered", d.to_dict()
    stamps = []
    for req in sink.wait_for(3):
        ts = int(header(req.headers, "X-Audian-Timestamp" if vendor == "audian"
                        else "webhook-timestamp"))
        stamps.append(ts)
        result = signing.verify(v.signing, v.demo_secret, req.body, req.headers, now=ts)
        assert result.valid, result
    assert len(set(stamps)) == 3 and stamps == sorted(stamps)
    if vendor == "standard-webhooks":  # one message, one id, across retries (the spec)
        ids = {header(r.headers, "webhook-id") for r in sink.requests}
        assert len(ids) == 1 and None not in ids


def test_non_retried_status_stops_at_once(make_engine, sink) -> None:
    sink.plan = lambda n: 410
    eng = make_engine(retry_scale=0)
    d = eng.wait(eng.send("audian", "call.completed", sink.url()).id, 10)
    assert d.status == "failed" and d.attempt_count == 1
    assert "410" in d.error and "Audian" in d.error
    time.sleep(0.3)
    assert len(sink.requests) == 1


def test_gives_up_after_the_schedule(make_engine, sink) -> None:
    sink.plan = lambda n: 503
    eng = make_engine(retry_scale=0)
    d = eng.wait(eng.send("audian", "call.failed", sink.url()).id, 10)
    assert d.status == "failed" and d.attempt_count == 5  # Audian: five attempts
    assert "gave up after 5 attempts" in d.error and "HTTP 503" in d.error


def test_timeout_recorded_on_the_attempt(make_engine, sink) -> None:
    sink.plan = lambda n: (3.0, 200)
    eng = make_engine(retry_scale=0)
    d = eng.wait(eng.send("apirtc", next(iter(default_catalog().vendor("apirtc").events)),
                          sink.url(), timeout=0.5).id, 10)
    assert d.status == "failed" and d.attempt_count == 1  # ApiRTC documents no retries
    (a,) = d.attempts
    assert a.error == "timeout after 0.5s" and a.response_status is None
    assert 450 <= a.duration_ms < 2500


def test_connection_refused_recorded(make_engine) -> None:
    eng = make_engine(retry_scale=0)
    url = f"http://127.0.0.1:{closed_port()}/hook"
    d = eng.wait(eng.send("audian", "call.ringing", url).id, 10)
    assert d.status == "failed" and d.attempt_count == 5
    assert {a.error for a in d.attempts} == {"connection refused"}
    assert d.last_error == "connection refused"


def test_tls_error_named(make_engine, sink) -> None:
    eng = make_engine(retry_scale=0)
    d = eng.wait(eng.send("apirtc", next(iter(default_catalog().vendor("apirtc").events)),
                          sink.url().replace("http://", "https://")).id, 10)
    assert d.attempts[0].error.startswith("TLS: "), d.attempts[0].error


# -- restarts and several engines -----------------------------------------------------------------
def test_pending_retry_survives_restart(tmp_path: Path, sink) -> None:
    sink.plan = fail_then(1)
    path = tmp_path / "restart.db"
    db1 = Database(path)
    # Audian waits 60 s (+0-60 s jitter) before attempt 2; at 1/60 that is 1-2 s.
    eng1 = DeliveryEngine(db1, catalog=default_catalog(), retry_scale=1 / 60).start()
    d = eng1.send("audian", "call.completed", sink.url())
    sink.wait_for(1)
    deadline = time.monotonic() + 5
    while eng1.store.get(d.id).attempt_count < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    eng1.close()
    db1.close()
    stopped = time.time()
    db2 = Database(path)
    try:
        pending = DeliveryEngine(db2).store.get(d.id)
        assert pending.status == "pending" and pending.attempt_count == 1
        assert pending.claimed_by is None and pending.next_attempt_at > iso(stopped)
        eng2 = DeliveryEngine(db2, catalog=default_catalog(), retry_scale=1 / 60).start()
        try:
            done = eng2.wait(d.id, 10)
        finally:
            eng2.close()
        assert done.status == "delivered" and done.attempt_count == 2
        assert sink.requests[1].at - sink.requests[0].at >= 1.0  # the schedule was kept
    finally:
        db2.close()


def test_two_engines_never_make_the_same_attempt(db: Database, sink) -> None:
    from inspector.storage.deliveries import DeliveryStore

    store = DeliveryStore(db)
    now = iso(time.time())
    policy = RetryPolicy(schedule=(0,), timeout=5).to_dict()
    ids = [store.create(NewDelivery(source="forward", url=sink.url(f"/n{i}"), method="POST",
                                    body=b"x", policy=policy, next_attempt_at=now)).id
           for i in range(40)]
    engines = [DeliveryEngine(db, workers=4).start() for _ in range(3)]
    try:
        for i in ids:
            assert engines[0].wait(i, 10).status == "delivered"
    finally:
        for e in engines:
            e.close()
    paths = sorted(r.path for r in sink.requests)
    assert paths == sorted(f"/n{i}" for i in range(40))  # each exactly once


def test_sixteen_concurrent_deliveries_flow(make_engine) -> None:
    slow = Sink(plan=lambda n: (0.5, 200))
    try:
        eng = make_engine(retry_scale=0)
        start = time.monotonic()
        ds = [eng.send("audian", "call.completed", slow.url()) for _ in range(16)]
        assert all(eng.wait(d.id, 10).status == "delivered" for d in ds)
        assert time.monotonic() - start < 3.0  # 16 × 0.5 s side by side, not 8 s in a row
    finally:
        slow.close()


# -- vendor rules and the loop guard -----------------------------------------------------------
def test_https_rule_warns_by_default(make_engine, sink) -> None:
    eng = make_engine(retry_scale=0)
    d = eng.wait(eng.send("audian", "call.completed", sink.url()).id, 10)
    assert d.status == "delivered"
    (warning,) = d.warnings
    assert "Audian" in warning and "https://" in warning


def test_https_rule_refuses_when_strict(make_engine, sink) -> None:
    eng = make_engine(retry_scale=0, strict_vendor_rules=True)
    d = eng.send("audata", "Listener.updated", sink.url())
    assert d.status == "failed" and "Audata" in d.error and "https://" in d.error
    full = eng.wait(d.id, 1)
    assert full.attempts == [] and full.attempt_count == 0
    time.sleep(0.2)
    assert sink.requests == []
    # A vendor without the rule is not affected by strictness.
    ok = eng.wait(eng.send("apirtc", next(iter(default_catalog().vendor("apirtc").events)),
                           sink.url()).id, 10)
    assert ok.status == "delivered" and ok.warnings == []


def test_loop_guard() -> None:
    own = OwnServer("127.0.0.1", {8787, 8443})
    for url in ("http://127.0.0.1:8787/api/send", "http://localhost:8787/",
                "http://127.0.0.1:8787/ws?bin=x", "http://[::1]:8787/api/deliveries",
                "http://127.0.0.1:8787/in/x/../../api/send", "http://127.1:8787/api/send",
                "http://127.0.0.1:8787/in/%2e%2e/api/send", "https://localhost:8443/api/send",
                "http://0.0.0.0:8787/healthz", "http://app.localhost:8787/api/bins"):
        with pytest.raises(TargetRefused, match="loop guard"):
            check_url(url, own)
    for url in ("http://127.0.0.1:8787/in/bin", "http://localhost:8787/in/bin/sub/path?x=1",
                "http://127.0.0.1:9000/api/send", "https://example.com/api/send"):
        assert check_url(url, own) == url
    for bad in ("ftp://x/y", "not a url", "http:///nohost", "http://u:p@example.com/"):
        with pytest.raises(TargetRefused):
            check_url(bad, own)


def test_engine_applies_loop_guard_before_storing(make_engine, db) -> None:
    eng = make_engine(own=OwnServer("127.0.0.1", {4321}))
    with pytest.raises(TargetRefused):
        eng.send("audian", "call.completed", "http://127.0.0.1:4321/api/send")
    assert eng.list().deliveries == []


def test_listeners_see_every_state_change(make_engine, sink) -> None:
    sink.plan = fail_then(1)
    eng = make_engine(retry_scale=0)
    seen: list[dict] = []
    eng.listeners.append(seen.append)
    eng.listeners.append(lambda s: 1 / 0)  # a broken listener changes nothing
    d = eng.wait(eng.send("audian", "call.completed", sink.url()).id, 10)
    assert d.status == "delivered"
    deadline = time.monotonic() + 2
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(s["status"], s["attempt_count"]) for s in seen] == \
        [("pending", 0), ("pending", 1), ("delivered", 2)]


# -- what goes on the wire ------------------------------------------------------------------------
def test_only_the_vendors_headers_no_client_defaults_no_cookies(make_engine, sink) -> None:
    sink.response_headers = [("Set-Cookie", "session=abc; Path=/")]
    eng = make_engine(retry_scale=0)
    event = next(iter(default_catalog().vendor("apirtc").events))
    for _ in range(2):
        assert eng.wait(eng.send("apirtc", event, sink.url()).id, 10).status == "delivered"
    for req in sink.requests:
        names = {n.lower() for n, _ in req.headers}
        assert header(req.headers, "User-Agent") == "Cloud Apizee"
        assert "cookie" not in names and "accept-encoding" not in names
        assert "python-httpx" not in str(req.headers)


def test_get_delivery_carries_the_payload_in_url_params(make_engine, sink) -> None:
    eng = make_engine(retry_scale=0)
    d = eng.wait(eng.send("audata", "Listener.updated", sink.url("/cb?token=1"), method="GET",
                          seed=3).id, 10)
    assert d.status == "delivered" and d.method == "GET" and d.body == b""
    (req,) = sink.requests
    assert req.method == "GET" and req.body == b""
    assert req.path.startswith("/cb?token=1&event=Listener.updated&")
    assert "sender%5Bfirst_name%5D=" in req.path
    assert d.attempts[0].url == sink.url(req.path)


def test_response_excerpt_is_the_first_4_kib(make_engine) -> None:
    big = Sink(body=b"x" * 10_000)
    try:
        eng = make_engine(retry_scale=0)
        d = eng.wait(eng.send("audian", "call.completed", big.url()).id, 10)
        (a,) = d.attempts
        assert a.response_body == b"x" * 4096 and a.response_size == 10_000
        assert a.to_dict()["response"]["truncated"] is True
    finally:
        big.close()


def test_fixed_headers_replay_sends_exactly_those(make_engine, sink) -> None:
    from inspector.storage.captures import Capture

    cap = Capture(1, "b", "PUT", "/p", "a=1", "text/plain", 3, "t", None, None,
                  headers=[["Host", "elsewhere"], ["X-One", "1"], ["Content-Type", "text/plain"],
                           ["X-One", "2"], ["Content-Length", "3"], ["Connection", "close"]],
                  body=b"abc")
    eng = make_engine(retry_scale=0)
    d = eng.wait(eng.replay(cap, sink.url("/r")).id, 10)
    assert d.status == "delivered"
    (req,) = sink.requests
    assert req.method == "PUT" and req.path == "/r?a=1" and req.body == b"abc"
    assert [(n.lower(), v) for n, v in req.headers] == [
        ("host", f"127.0.0.1:{sink.port}"), ("x-one", "1"), ("content-type", "text/plain"),
        ("x-one", "2"), ("content-length", "3")]
