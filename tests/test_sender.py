"""The one module that talks to the network, on its own: the request bytes it writes (framed as
httpx frames them), the response it reads (excerpt, content decoding, limits) and how it names
failures. Real sockets on 127.0.0.1 throughout."""

from __future__ import annotations

import gzip
import socket
import threading
import zlib
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.delivery import sender


class RawServer:
    """Keeps each request's bytes and answers every one with ``reply``, keeping the connection
    open for the next (``reply`` empty: closes it without a byte instead)."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            self._exchange(conn)
        except OSError:  # the client hung up first (a response it stopped reading)
            pass

    def _exchange(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                self.requests.append(head + b"\r\n\r\n" + body)
                if not self.reply:
                    return
                conn.sendall(self.reply)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.sock.close()


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture
def client() -> Iterator[sender.Client]:
    c = sender.make_client(pool_size=2)
    yield c
    c.close()


# -- the request: as httpx would write it -------------------------------------------------------
NAMES = st.sampled_from(["X-Sig", "Content-Type", "host", "Content-Length", "User-Agent",
                         "x-sig", "Accept"])
VALUES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12)


@settings(max_examples=300, deadline=None)
@given(method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
       headers=st.lists(st.tuples(NAMES, VALUES), max_size=6),
       body=st.binary(max_size=20),
       url=st.sampled_from(["http://127.0.0.1:8080/in/b?x=1", "https://example.com/a b",
                            "http://[::1]:80/p", "https://bücher.example:443/é?q=ü"]))
def test_header_block_is_the_one_httpx_writes(method, headers, body, url) -> None:
    # What the engine sent through httpx.Client before it went straight to httpcore: any
    # difference would show in captures and byte-exact replays.
    content = body if body or method not in ("GET", "HEAD") else None
    ours = sender.request_headers(method, sender._target(url), headers, content)
    theirs = httpx.Request(method, url, headers=headers, content=content).headers.raw
    assert ours == theirs
    assert sender._target(url).text == str(httpx.URL(url))


def test_the_bytes_on_the_wire(client) -> None:
    srv = RawServer(response(b"ok"))
    try:
        out = sender.attempt(client, "POST", srv.url("/in/b?x=1"),
                             [("X-Name", "caf\xe9"), ("Content-Type", "text/plain")],
                             b"hello", 5)
        assert out.error is None and out.status == 200 and out.excerpt == b"ok"
        # A latin-1 header value (a capture's byte 0xE9) goes out as that byte.
        assert srv.requests == [
            b"POST /in/b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Name: caf\xe9\r\n"
            b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello" % srv.port]
        assert out.sent_headers == [("Host", f"127.0.0.1:{srv.port}"), ("X-Name", "caf\xe9"),
                                    ("Content-Type", "text/plain"), ("Content-Length", "5")]
        assert out.url == srv.url("/in/b?x=1")
    finally:
        srv.close()


def test_one_connection_is_reused(client) -> None:
    srv = RawServer(response(b"ok"))
    try:
        for _ in range(3):
            assert sender.attempt(client, "GET", srv.url(), [], b"", 5).status == 200
        assert len(srv.requests) == 3 and srv.connections == 1
    finally:
        srv.close()


# -- the response -------------------------------------------------------------------------------
def test_gzip_answer_excerpt_is_decoded_and_raw_keeps_it_encoded(client) -> None:
    plain = b'{"received": true, "pad": "' + b"z" * 6000 + b'"}'
    packed = gzip.compress(plain)
    srv = RawServer(response(packed, "Content-Encoding: gzip", "Content-Type: application/json"))
    try:
        out = sender.attempt(client, "POST", srv.url(), [], b"{}", 5)
        assert out.error is None
        assert out.excerpt == plain[:sender.EXCERPT_BYTES] and out.size == len(plain)
        assert ("Content-Encoding", "gzip") in out.headers
        raw = sender.attempt(client, "POST", srv.url(), [], b"{}", 5, keep=1 << 20, raw=True)
        assert raw.excerpt == packed
    finally:
        srv.close()


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_answer_either_way_it_is_framed(client, wbits) -> None:
    plain = b"deflated " * 1000
    packer = zlib.compressobj(wbits=wbits)
    srv = RawServer(response(packer.compress(plain) + packer.flush(),
                             "Content-Encoding: deflate"))
    try:
        out = sender.attempt(client, "POST", srv.url(), [], b"{}", 5)
        assert out.error is None
        assert out.excerpt == plain[:sender.EXCERPT_BYTES] and out.size == len(plain)
    finally:
        srv.close()


@pytest.mark.parametrize("parts", [[1, 1, 99], [2, 99], [1]], ids=["1+1+rest", "2+rest", "1"])
def test_deflate_whose_first_bytes_arrive_alone(client, parts) -> None:
    # Which deflate it is (zlib-wrapped or raw) shows in the first two bytes: a first chunk
    # of one byte must not decide it.
    plain = b"split deflate body"
    packed = zlib.compress(plain) if parts != [1] else b"\x03\x00"  # raw deflate of b""
    pieces, at = [], 0
    for n in parts:
        pieces.append(packed[at:at + n])
        at += n
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    srv = RawServer(b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    try:
        out = sender.attempt(client, "GET", srv.url(), [], b"", 5)
        assert out.error is None
        assert out.excerpt == (plain if parts != [1] else b"")
    finally:
        srv.close()


def test_a_gzip_bomb_is_read_only_up_to_the_drain_limit(client) -> None:
    packed = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # ~64 KiB on the wire
    srv = RawServer(response(packed, "Content-Encoding: gzip"))
    try:
        out = sender.attempt(client, "POST", srv.url(), [], b"{}", 10)
        assert out.status == 200 and out.error is None
        assert out.excerpt == b"\0" * sender.EXCERPT_BYTES
        # Decoding stops at the first decoded chunk past the limit, not at 64 MiB.
        assert sender.DRAIN_LIMIT < out.size < 64 * 1024 * 1024
    finally:
        srv.close()


def test_a_body_that_does_not_decode_is_an_error_not_a_crash(client) -> None:
    srv = RawServer(response(b"not gzip at all", "Content-Encoding: gzip"))
    try:
        out = sender.attempt(client, "POST", srv.url(), [], b"{}", 5)
        assert out.status == 200
        assert out.error and out.error.startswith("the gzip body does not decode: ")
    finally:
        srv.close()


def test_head_answer_has_no_body(client) -> None:
    srv = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")
    try:
        out = sender.attempt(client, "HEAD", srv.url(), [], b"", 5)
        assert out.error is None and out.status == 200 and out.excerpt == b""
        assert srv.requests[0].startswith(b"HEAD /hook HTTP/1.1\r\nHost: ")
        assert b"Content-Length" not in srv.requests[0]
    finally:
        srv.close()


def test_what_differs_from_httpx_on_purpose(client) -> None:
    srv = RawServer(response(b"ok"))
    try:
        # The method as given (methods are case-sensitive; httpx upper-cased them), still
        # framed like httpx frames an empty POST.
        sender.attempt(client, "post", srv.url(), [], b"", 5)
        # A Transfer-Encoding the caller gives frames the body alone: no Content-Length
        # next to it (httpx added one: a request RFC 9112 forbids).
        sender.attempt(client, "POST", srv.url(), [("Transfer-Encoding", "chunked")],
                       b"hello", 5)
        host = f"127.0.0.1:{srv.port}".encode()
        assert srv.requests[0] == b"post /hook HTTP/1.1\r\nHost: %s\r\n" \
            b"Content-Length: 0\r\n\r\n" % host
        assert srv.requests[1].startswith(b"POST /hook HTTP/1.1\r\nHost: %s\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n" % host)
        assert b"Content-Length" not in srv.requests[1]
    finally:
        srv.close()


# -- failures, named ----------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "expected"), [
    ("ftp://127.0.0.1/x", "invalid URL: Request URL has an unsupported protocol 'ftp://'."),
    ("http://", "invalid URL"),
    # Refused by check_url before anything is stored; a delivery stored before that rule
    # gets this rather than httpx.Client's silent Basic auth.
    ("http://user:pw@127.0.0.1:9/", "invalid URL: credentials in the URL are not sent"),
])
def test_bad_urls_are_named(client, url, expected) -> None:
    out = sender.attempt(client, "POST", url, [("X-A", "1")], b"{}", 5)
    assert out.status is None and out.error.startswith(expected)
    assert out.sent_headers == [("X-A", "1")]


def test_a_header_that_cannot_be_sent_is_an_error(client) -> None:
    srv = RawServer(response(b"ok"))
    try:
        out = sender.attempt(client, "POST", srv.url(), [("X-Emoji", "\U0001F600")], b"{}", 5)
        assert out.status is None and "UnicodeEncodeError" in out.error
        bad = sender.attempt(client, "POST", srv.url(), [("X-Bad", "a\r\nInjected: 1")],
                             b"{}", 5)
        assert bad.status is None and bad.error
        assert srv.requests == []  # nothing half-written reached the target
    finally:
        srv.close()


def test_silent_target_times_out(client) -> None:
    srv = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    try:
        out = sender.attempt(client, "POST", f"http://127.0.0.1:{srv.getsockname()[1]}/",
                             [], b"{}", 0.3)
        assert out.status is None and out.error == "timeout after 0.3s"
    finally:
        srv.close()


def test_closed_without_an_answer(client) -> None:
    srv = RawServer(b"")  # reads the request, closes without a byte
    try:
        out = sender.attempt(client, "POST", srv.url(), [], b"{}", 5)
        assert out.status is None and out.error == "connection closed without a response"
    finally:
        srv.close()


def test_a_closed_client_sends_nothing() -> None:
    srv = RawServer(response(b"ok"))
    c = sender.make_client(pool_size=1)
    c.close()
    try:
        out = sender.attempt(c, "POST", srv.url(), [], b"{}", 5)
        assert out.status is None and "client is closed" in out.error and srv.requests == []
    finally:
        srv.close()


def test_long_urls_are_parsed_each_time_not_kept() -> None:
    before = sender._cached_target.cache_info().currsize
    long_url = "http://127.0.0.1:9/x?" + "a=1&" * sender.CACHED_URL
    assert sender._target(long_url).text == str(httpx.URL(long_url))
    assert sender._cached_target.cache_info().currsize == before
    sender._target("http://127.0.0.1:9/short-and-new")
    assert sender._cached_target.cache_info().currsize == before + 1
