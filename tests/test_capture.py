"""The capture URLs keep every request exactly as it arrived, under both servers."""

from __future__ import annotations

import base64
import time

import httpx
import pytest

from .conftest import Served


def fetch(srv: Served, capture_id: int) -> dict:
    r = srv.get(f"/api/captures/{capture_id}")
    assert r.status_code == 200, r.text
    return r.json()


def raw_body(srv: Served, capture_id: int) -> bytes:
    return srv.get(f"/api/captures/{capture_id}/raw").content


def names_lower(headers: list) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in headers]


def test_all_256_byte_values_round_trip(any_server: Served) -> None:
    body = bytes(range(256)) * 4
    r = httpx.post(any_server.url + "/in/bytes", content=body,
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    cap_id = r.json()["id"]
    assert raw_body(any_server, cap_id) == body
    cap = fetch(any_server, cap_id)
    assert cap["body_encoding"] == "base64"
    assert base64.b64decode(cap["body"]) == body
    assert cap["size"] == len(body)
    raw = any_server.get(f"/api/captures/{cap_id}/raw")
    assert raw.headers["content-type"] == "application/octet-stream"


def test_empty_body_and_utf8_body(any_server: Served) -> None:
    empty = httpx.post(any_server.url + "/in/e", content=b"").json()["id"]
    assert raw_body(any_server, empty) == b""
    text = "héllo ✓ 🚀".encode()
    tid = httpx.put(any_server.url + "/in/e/x", content=text).json()["id"]
    cap = fetch(any_server, tid)
    assert cap["body_encoding"] == "utf-8" and cap["body"].encode() == text


def test_chunked_body_is_reassembled_exactly(any_server: Served) -> None:
    payload = bytes(range(256)) + b"tail"
    parts = [payload[:100], payload[100:101], payload[101:]]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    req = (b"POST /in/chunky/deep/path HTTP/1.1\r\nHost: example.test\r\n"
           b"Transfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n"
           b"Connection: close\r\n\r\n" + chunked)
    resp = any_server.raw(req)
    assert resp.status == 200, resp.body
    cap_id = resp.json()["id"]
    assert raw_body(any_server, cap_id) == payload
    assert fetch(any_server, cap_id)["path"] == "/deep/path"


def test_repeated_headers_kept_in_order(any_server: Served) -> None:
    req = (b"POST /in/hdr HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trace: one\r\nAccept: */*\r\n"
           b"x-trace: two\r\nX-Empty: \r\nX-Trace: three\r\nX_Under: kept\r\n"
           b"Content-Length: 2\r\nConnection: close\r\n\r\nok")
    resp = any_server.raw(req)
    assert resp.status == 200
    headers = names_lower(fetch(any_server, resp.json()["id"])["headers"])
    assert [v for k, v in headers if k == "x-trace"] == ["one", "two", "three"]
    assert headers == [("host", "127.0.0.1"), ("x-trace", "one"), ("accept", "*/*"),
                       ("x-trace", "two"), ("x-empty", ""), ("x-trace", "three"),
                       ("x_under", "kept"), ("content-length", "2"), ("connection", "close")]


def test_original_header_case_kept_under_werkzeug(server: Served) -> None:
    resp = server.raw(b"POST /in/case HTTP/1.1\r\nHost: h\r\nX-Audian-Signature: abc\r\n"
                      b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert ["X-Audian-Signature", "abc"] in fetch(server, resp.json()["id"])["headers"]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD",
                                    "PROPFIND", "MKCOL", "REPORT", "PURGE", "X-CUSTOM-VERB"])
def test_any_method_is_captured(any_server: Served, method: str) -> None:
    body = b"" if method in ("GET", "HEAD") else b"<x/>"
    req = (f"{method} /in/methods/p HTTP/1.1\r\nHost: h\r\nContent-Length: {len(body)}\r\n"
           f"Connection: close\r\n\r\n").encode() + body
    resp = any_server.raw(req)
    assert resp.status == 200
    if method == "HEAD":  # no body in a HEAD answer: find it through the API
        caps = any_server.get("/api/captures?bin=methods").json()["captures"]
        cap = fetch(any_server, caps[0]["id"])
    else:
        cap = fetch(any_server, resp.json()["id"])
    assert cap["method"] == method
    assert raw_body(any_server, cap["id"]) == body


def test_query_string_kept_raw_with_repeats_and_escapes(any_server: Served) -> None:
    query = "a=1&a=2&b=%20x%2By&c=&d&e=%E2%9C%93&f=a+b&%3Ckey%3E=v"
    resp = any_server.raw(f"GET /in/q/p%20ath?{query} HTTP/1.1\r\nHost: h\r\n"
                          f"Connection: close\r\n\r\n".encode())
    cap = fetch(any_server, resp.json()["id"])
    assert cap["query"] == query
    assert cap["path"] == "/p%20ath"


def test_body_over_limit_gets_413_and_nothing_is_stored(make_server) -> None:
    srv = make_server(max_body=1000)
    ok = httpx.post(srv.url + "/in/lim", content=b"x" * 1000)
    assert ok.status_code == 200
    big = httpx.post(srv.url + "/in/lim", content=b"x" * 1001)
    assert big.status_code == 413
    assert "1000" in big.json()["error"]

    def chunks():
        for _ in range(20):
            yield b"y" * 100  # httpx sends a generator chunked, without Content-Length
    chunked = httpx.post(srv.url + "/in/lim", content=chunks())
    assert chunked.status_code == 413
    caps = httpx.get(srv.url + "/api/captures?bin=lim").json()["captures"]
    assert [c["size"] for c in caps] == [1000]


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_body_over_limit_under_cli_servers(tmp_path, kind: str) -> None:
    from .conftest import free_port, start_cli_server, stop_process

    port = free_port()
    proc = start_cli_server(tmp_path / "g.db", port, "--server", kind, "--max-body", "50")
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.post(base + "/in/g", content=b"a" * 51).status_code == 413
        assert httpx.post(base + "/in/g", content=iter([b"a" * 30, b"b" * 30])).status_code == 413
        assert httpx.post(base + "/in/g", content=b"a" * 50).status_code == 200
        assert httpx.get(base + "/api/bins").json()["bins"][0]["count"] == 1
    finally:
        stop_process(proc)


@pytest.mark.parametrize("name", ["bad.name", "a" * 65, "sp%20ace", "%2e%2e"])
def test_invalid_bin_name_is_400(server: Served, name: str) -> None:
    r = httpx.post(f"{server.url}/in/{name}", content=b"x")
    assert r.status_code == 400
    assert "invalid bin name" in r.json()["error"]
    assert httpx.get(server.url + "/api/bins").json()["bins"] == []


def test_default_answer_names_the_capture_and_bin_is_created(server: Served) -> None:
    r = httpx.post(server.url + "/in/new-bin_1", json={"a": 1})
    assert r.status_code == 200
    assert r.json() == {"ok": True, "id": r.json()["id"]}
    bins = httpx.get(server.url + "/api/bins").json()["bins"]
    assert [(b["name"], b["count"]) for b in bins] == [("new-bin_1", 1)]
    assert bins[0]["last_at"].endswith("Z")


def test_configured_response(make_server) -> None:
    srv = make_server(max_response_delay=0.3)
    url = srv.url + "/api/bins/conf/response"
    r = httpx.put(url, json={"status": 418, "headers": {"X-Reply": "yes",
                  "Content-Type": "text/teapot"}, "body": "short and stout", "delay_ms": 5000})
    assert r.status_code == 200 and r.json()["delay_capped"] is True
    ans = httpx.post(srv.url + "/in/conf", content=b"hi", timeout=10)
    assert ans.status_code == 418
    assert ans.headers["x-reply"] == "yes"
    assert ans.headers["content-type"] == "text/teapot"
    assert ans.text == "short and stout"
    assert ans.elapsed.total_seconds() >= 0.25
    assert httpx.get(srv.url + "/api/bins/conf").json()["bin"]["count"] == 1
    (summary,) = httpx.get(srv.url + "/api/captures?bin=conf").json()["captures"]
    assert summary["status"] == 418  # what was answered is kept with the capture
    bad = httpx.put(url, json={"status": 99})
    assert bad.status_code == 422 and "status" in bad.json()["error"]
    bad = httpx.put(url, json={"headers": {"X\r\nInjected": "1"}})
    assert bad.status_code == 422
    httpx.delete(url)
    assert httpx.post(srv.url + "/in/conf", content=b"").json()["ok"] is True


def test_remote_addr_and_timestamp(server: Served) -> None:
    cap_id = httpx.post(server.url + "/in/meta", content=b"").json()["id"]
    cap = fetch(server, cap_id)
    assert cap["remote_addr"] == "127.0.0.1"
    date, _, time_part = cap["received_at"].partition("T")
    assert len(date) == 10 and time_part.endswith("Z") and len(time_part.split(".")[1]) == 7


def test_malformed_header_line_is_refused_not_truncated(any_server: Served) -> None:
    before = len(any_server.get("/api/captures?bin=malformed").json()["captures"])
    resp = any_server.raw(b"POST /in/malformed HTTP/1.1\r\nHost: h\r\nX-Ok: 1\r\n"
                          b"<img src=x onerror=alert(1)>: v\r\nContent-Length: 4\r\n"
                          b"Connection: close\r\n\r\nbody")
    assert resp.status == 400
    assert len(any_server.get("/api/captures?bin=malformed").json()["captures"]) == before


def test_raw_non_ascii_bytes_in_target_are_kept_as_escapes(any_server: Served) -> None:
    resp = any_server.raw(b"GET /in/utf/caf\xc3\xa9?q=\xc3\xa9&r=%C3%A9 HTTP/1.1\r\nHost: h\r\n"
                          b"Connection: close\r\n\r\n")
    if any_server.kind in ("gunicorn", "uvicorn"):
        # gunicorn, llhttp and h11 refuse a request line that isn't ASCII (RFC 9112)
        assert resp.status == 400
        return
    assert resp.status == 200
    cap = fetch(any_server, resp.json()["id"])
    assert cap["path"] == "/caf%C3%A9"
    assert cap["query"] == "q=%C3%A9&r=%C3%A9"


def test_multipart_request_is_captured(any_server: Served) -> None:
    r = httpx.post(any_server.url + "/in/multi", files={"f": ("a.bin", bytes(range(256)))},
                   data={"field": "value"})
    assert r.status_code == 200, r.text
    cap = fetch(any_server, r.json()["id"])
    assert cap["content_type"].startswith("multipart/form-data; boundary=")
    assert bytes(range(256)) in raw_body(any_server, cap["id"])


# -- what a sender cannot make the server believe or lose (found in review of the uvicorn path)
def _captures(srv: Served, bin_name: str) -> list[dict]:
    return srv.get(f"/api/captures?bin={bin_name}").json()["captures"]


def _exchange(port: int, *chunks: bytes, pause: float = 0.3, wait: float = 1.5) -> bytes:
    """Send ``chunks`` with pauses between them; return every byte the server sent back."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        for i, chunk in enumerate(chunks):
            if i:
                time.sleep(pause)
            s.sendall(chunk)
        out = b""
        try:
            while True:
                got = s.recv(65536)
                if not got:
                    break
                out += got
        except OSError:
            pass
    return out


def test_forwarded_headers_are_data_not_the_senders_address(any_server: Served) -> None:
    r = httpx.post(any_server.url + "/in/xff", content=b"x",
                   headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"})
    cap = fetch(any_server, r.json()["id"])
    assert cap["remote_addr"] == "127.0.0.1"
    assert ["x-forwarded-for", "6.6.6.6"] in [[n.lower(), v] for n, v in cap["headers"]]


def test_a_body_sent_with_an_upgrade_header_is_kept(any_server: Served) -> None:
    resp = any_server.raw(b"POST /in/h2c HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings"
                          b"\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
                          b"Content-Length: 5\r\n\r\nhello")
    assert resp.status == 200
    assert raw_body(any_server, resp.json()["id"]) == b"hello"


def test_a_body_cut_short_by_a_disconnect_is_not_stored(any_server: Served) -> None:
    _exchange(any_server.port, b"POST /in/cut HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n"
              b"only twenty-one bytes")
    _exchange(any_server.port, b"POST /in/cut HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked"
              b"\r\n\r\n5\r\nhello\r\n")
    time.sleep(0.3)
    assert _captures(any_server, "cut") == []


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_content_length_with_transfer_encoding_is_refused(request, kind: str) -> None:
    srv = request.getfixturevalue(f"{kind}_server")
    out = _exchange(srv.port, b"POST /in/smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    b"GET /in/smuggle/hidden HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    assert _captures(srv, "smuggle") == []


def test_uvicorn_never_misframes_or_answers_twice(uvicorn_server: Served) -> None:
    srv = uvicorn_server
    # A request whose first bytes came with the previous one is not handed over half-read.
    _exchange(srv.port, b"GET /in/frame/a HTTP/1.1\r\nHost: x\r\n\r\nPROP",
              b"XX /in/frame/b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert "XX" not in [c["method"] for c in _captures(srv, "frame")]
    # A request the app already answered is not run again when its body turns out bad
    # (the parser's own 400 follows, and the connection closes).
    out = _exchange(srv.port, b"POST /in/bad.name HTTP/1.1\r\nHost: x\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n", b"3 \r\nabc\r\n0\r\n\r\n")
    assert out.count(b"invalid bin name") == 1, out
    # Custom methods still reach h11, on fresh and on kept-alive connections.
    out = _exchange(srv.port, b"BREW /in/frame/c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
                    b"tea", b"POST /in/frame/d HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 2, out
    assert {"BREW", "POST"} <= {c["method"] for c in _captures(srv, "frame")}
