"""The live websocket without a browser: resume, order, refusal, slow clients, many workers."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest
import websocket  # websocket-client

from .conftest import free_port, start_cli_server, stop_process


class LiveClient:
    """A websocket client that has seen the server's "hello" (sent once the backlog is out),
    so captures made after connecting are guaranteed to be streamed to it."""

    def __init__(self, base: str, query: str = "") -> None:
        url = base.replace("http://", "ws://") + "/ws" + (f"?{query}" if query else "")
        self.ws = websocket.create_connection(url, timeout=10, origin=base)
        self.sock = self.ws.sock
        self.backlog: list[dict] = []
        while True:
            msg = json.loads(self.ws.recv())
            if msg["type"] == "hello":
                break
            self.backlog.append(msg["capture"])

    def recv(self) -> str:
        if self.backlog:
            return json.dumps({"type": "capture", "capture": self.backlog.pop(0)})
        return self.ws.recv()

    def settimeout(self, t: float) -> None:
        self.ws.settimeout(t)

    def close(self) -> None:
        self.ws.close()


def ws_connect(base: str, query: str = "") -> LiveClient:
    return LiveClient(base, query)


def recv_captures(ws: LiveClient, n: int, timeout: float = 10) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        ws.settimeout(max(0.1, deadline - time.monotonic()))
        msg = json.loads(ws.recv())
        if msg["type"] == "capture":
            out.append(msg["capture"])
    return out


def post(url: str, bin_name: str, body: bytes = b"{}") -> int:
    return httpx.post(f"{url}/in/{bin_name}", content=body).json()["id"]


def test_new_capture_is_pushed(server) -> None:
    ws = ws_connect(server.url, "bin=live")
    post(server.url, "other")
    cap_id = post(server.url, "live", b'{"a":1}')
    (cap,) = recv_captures(ws, 1)
    assert cap["id"] == cap_id and cap["bin"] == "live" and cap["method"] == "POST"
    assert set(cap) >= {"id", "bin", "method", "path", "content_type", "size", "received_at"}
    ws.close()


def test_resume_with_after_sends_missed_then_live_without_gap_or_duplicate(server) -> None:
    ids = [post(server.url, "res") for _ in range(5)]
    ws = ws_connect(server.url, f"bin=res&after={ids[1]}")
    later = [post(server.url, "res") for _ in range(3)]
    got = [c["id"] for c in recv_captures(ws, 6)]
    assert got == ids[2:] + later
    ws.close()


def test_every_bin_without_bin_param(server) -> None:
    ws = ws_connect(server.url)
    a, b = post(server.url, "x1"), post(server.url, "x2")
    assert [c["id"] for c in recv_captures(ws, 2)] == [a, b]


def test_order_under_concurrent_captures(server) -> None:
    ws = ws_connect(server.url, "bin=conc")
    results: list[int] = []

    def fire() -> None:
        with httpx.Client() as client:
            for _ in range(25):
                results.append(client.post(server.url + "/in/conc", content=b"x").json()["id"])

    threads = [threading.Thread(target=fire) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = [c["id"] for c in recv_captures(ws, 200)]
    assert got == sorted(results)  # commit order, each exactly once
    ws.close()


def test_foreign_origin_is_refused(server) -> None:
    url = server.url.replace("http://", "ws://") + "/ws"
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(url, timeout=5, origin="https://evil.example")
    assert err.value.status_code == 403
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(url, timeout=5, host=f"evil.example:{server.port}")
    assert err.value.status_code == 421


def test_bad_bin_is_refused_before_the_handshake(any_server) -> None:
    srv = any_server
    url = srv.url.replace("http://", "ws://") + "/ws?bin=bad$name"
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(url, timeout=5, origin=srv.url)
    assert err.value.status_code == 400
    ws_connect(srv.url, "?bin=good-name").ws.close()  # a good one still opens


def test_stalled_client_does_not_slow_capture_and_resyncs(server) -> None:
    # A client that never reads: its socket buffers fill, its queue overflows.
    stalled = ws_connect(server.url, "bin=stall")
    stalled.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = b"z" * 2000
    with httpx.Client() as client:
        t0 = time.monotonic()
        ids = [client.post(server.url + "/in/stall", content=body).json()["id"]
               for _ in range(1500)]
        elapsed = time.monotonic() - t0
    assert elapsed < 30  # generous: the point is it finishes at all while a client stalls
    # It eventually gets every capture once it reads again (queue overflow -> DB resync).
    got = [c["id"] for c in recv_captures(stalled, len(ids), timeout=30)]
    assert got == ids


def test_multiple_workers_every_client_sees_every_capture_once(tmp_path) -> None:
    port = free_port()
    proc = start_cli_server(tmp_path / "mw.db", port, "--server", "gunicorn", "--workers", "2")
    base = f"http://127.0.0.1:{port}"
    try:
        clients = [ws_connect(base, "bin=mw") for _ in range(6)]  # spread over both workers
        ids = []
        for _ in range(60):  # a new connection each time: they land on either worker
            ids.append(httpx.post(base + "/in/mw", content=b"x").json()["id"])
        for ws in clients:
            assert [c["id"] for c in recv_captures(ws, len(ids))] == sorted(ids)
            ws.close()
    finally:
        stop_process(proc)


def test_stopping_the_server_closes_live_connections(make_server) -> None:
    srv = make_server()
    client = ws_connect(srv.url, "bin=bye")
    srv.stop()
    client.settimeout(5)
    with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
        while True:
            if client.ws.recv() == "":
                raise websocket.WebSocketConnectionClosedException("closed")


def test_delivery_updates_are_pushed_to_live_clients(server) -> None:
    client = ws_connect(server.url)
    r = httpx.post(server.url + "/api/send", json={
        "vendor": "audian", "event": "call.completed", "url": server.url + "/in/pushed",
        "wait": True})
    assert r.status_code in (200, 201), r.text
    delivery_id = r.json()["delivery"]["id"]
    seen, captures = [], []
    client.settimeout(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "delivered" not in seen:
        msg = json.loads(client.recv())
        if msg["type"] == "delivery" and msg["delivery"]["id"] == delivery_id:
            seen.append(msg["delivery"]["status"])
        elif msg["type"] == "capture":
            captures.append(msg["capture"])
    assert seen[-1] == "delivered"
    assert any(c["bin"] == "pushed" for c in captures)
