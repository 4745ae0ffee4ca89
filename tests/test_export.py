"""HAR / JSONL export, and curl / HTTPie commands replayed for real against an echo server.

The shell-command tests run the generated command with ``bash -c`` against a recording
``http.server`` on 127.0.0.1 and compare what arrived with the capture, byte for byte.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from inspector.export import (
    UnreproducibleRequestError,
    capture_url,
    decode_body,
    to_curl,
    to_har,
    to_httpie,
    to_jsonl,
)

# ---------------------------------------------------------------------------------------------
# A recording echo server
# ---------------------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]  # as http.server decodes them: Latin-1 text
    body: bytes


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _EchoServer

    def __getattr__(self, name: str) -> Any:
        # Any method at all (PATCH, PURGE, …) is recorded, not answered with 501.
        if name.startswith("do_"):
            return self._record
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _record(self) -> None:
        self.server.received.append(
            Received(self.command, self.path, list(self.headers.items()), self._read_body())
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _EchoServer(ThreadingHTTPServer):
    received: list[Received]


@pytest.fixture(scope="module")
def echo() -> Iterator[_EchoServer]:
    server = _EchoServer(("127.0.0.1", 0), _Recorder)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def replay(command: str, echo: _EchoServer, cwd: Path) -> Received:
    echo.received.clear()
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert len(echo.received) == 1, (echo.received, result.stderr)
    return echo.received[0]


def expected_headers(capture: dict[str, Any]) -> list[tuple[str, str]]:
    skip = {"host", "content-length", "transfer-encoding"}
    return [(n, v) for n, v in capture["headers"] if n.lower() not in skip]


def received_headers(received: Received) -> list[tuple[str, str]]:
    return [(n, v) for n, v in received.headers if n.lower() not in {"host", "content-length"}]


def assert_same_request(received: Received, capture: dict[str, Any]) -> None:
    query = f"?{capture['query']}" if capture["query"] else ""
    assert received.method == capture["method"]
    assert received.target == f"/in/{capture['bin']}{capture['path']}{query}"
    assert received_headers(received) == expected_headers(capture)
    assert received.body == capture["body"]


def url_for(echo: _EchoServer, capture: dict[str, Any]) -> str:
    return capture_url(f"http://127.0.0.1:{echo.server_address[1]}", capture)


# ---------------------------------------------------------------------------------------------
# Hostile captures
# ---------------------------------------------------------------------------------------------

SENTINEL = "pwned"
HOSTILE = (
    f'it\'s "quoted" $(touch {SENTINEL}) `touch {SENTINEL}` ${{HOME}} $HOME; '
    f"touch {SENTINEL} | cat > {SENTINEL} & !! \\ \\' %s %n %% *"
)


def capture(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 7,
        "bin": "stripe-test",
        "method": "POST",
        "path": "/hooks/a'b/$(x)/`y`/[1]{2}",
        "query": "a=%27x%27&b=$(id)&c=`id`&d[0]=1&e={x}&f=&g=%00%ff&h=a;b|c",
        "headers": [
            ["Host", "example.test"],
            ["User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)"],
            ["Content-Type", "application/json; charset=utf-8"],
            ["Content-Length", "999"],
            ["X-Hostile", HOSTILE],
            ["X-Repeat", "first"],
            ["Accept", "*/*; q=0.5"],
            ["X-Repeat", "second"],
            ["X-Empty", ""],
            ["x-lower-case", "v"],
            ["X-Latin1", "caf\u00e9 \u00ff"],  # Latin-1 bytes E9 FF on the wire
            ["X-Utf8", "caf\u00e9 \u4e2d".encode().decode("latin-1")],  # UTF-8 bytes, as servers
            # decode them (Latin-1)
            ["X-Tab", "a\tb"],
            ["X-Separators", "=value:with;httpie@separators\\"],
        ],
        "body": b'{"id": "evt_1"}',
        "remote_addr": "127.0.0.1",
        "received_at": "2024-01-15T10:30:00.123456Z",
        "content_type": "application/json; charset=utf-8",
    }
    base.update(overrides)
    return base


ALL_BYTES = bytes(range(256))

BODIES = {
    "all-256-bytes": ALL_BYTES * 2,
    "text-starting-with-at": f"@/etc/passwd\n{HOSTILE}\n\u00e9\u4e2d\U0001f600\n".encode(),
    "crlf-and-nul": b"line1\r\nline2\x00\r\n\x1b[31m",
    "invalid-utf8": b"\xc3\x28 \xff\xfe",
    "trailing-newlines": b"{}\n\n",
    "percent-and-backslash": b"%s %d %% \\n \\x41 \\101 \\",
}


# ---------------------------------------------------------------------------------------------
# curl
# ---------------------------------------------------------------------------------------------

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@needs_curl
@pytest.mark.parametrize("body_name", sorted(BODIES))
def test_curl_replays_byte_exact(body_name: str, echo: _EchoServer, tmp_path: Path) -> None:
    cap = capture(body=BODIES[body_name])
    received = replay(to_curl(cap, url_for(echo, cap)), echo, tmp_path)
    assert_same_request(received, cap)
    assert not (tmp_path / SENTINEL).exists()


@needs_curl
def test_curl_large_text_body(echo: _EchoServer, tmp_path: Path) -> None:
    """Over 1 MiB: past the 128 KiB argument limit, and curl would add `Expect: 100-continue`."""
    cap = capture(body=("{'line': \"$(x)\"}\n" * 80_000).encode())
    command = to_curl(cap, url_for(echo, cap))
    assert command.startswith("printf ")
    script = tmp_path / "replay.sh"
    script.write_text(command)  # too long for `bash -c` itself
    received = replay(f"bash {script}", echo, tmp_path)
    assert_same_request(received, cap)


@needs_curl
def test_curl_sends_no_defaults_the_capture_lacked(echo: _EchoServer, tmp_path: Path) -> None:
    cap = capture(method="GET", body=b"", query="", headers=[["X-Only", "1"]], path="")
    command = to_curl(cap, url_for(echo, cap))
    received = replay(command, echo, tmp_path)
    assert_same_request(received, cap)
    assert received.headers == [("Host", f"127.0.0.1:{echo.server_address[1]}"), ("X-Only", "1")]


@needs_curl
def test_curl_body_without_content_type(echo: _EchoServer, tmp_path: Path) -> None:
    cap = capture(method="PUT", headers=[["Content-Length", "5"]], body=b"a=b&c")
    received = replay(to_curl(cap, url_for(echo, cap)), echo, tmp_path)
    assert_same_request(received, cap)
    assert "Content-Type" not in dict(received.headers)


@needs_curl
@pytest.mark.parametrize("method", ["DELETE", "PATCH", "PURGE", "OPTIONS", "HEAD"])
def test_curl_methods(method: str, echo: _EchoServer, tmp_path: Path) -> None:
    cap = capture(method=method, body=b"", headers=[["X-M", method]])
    assert_same_request(replay(to_curl(cap, url_for(echo, cap)), echo, tmp_path), cap)


@needs_curl
def test_curl_declared_empty_body(echo: _EchoServer, tmp_path: Path) -> None:
    cap = capture(body=b"", headers=[["Content-Length", "0"], ["Content-Type", "text/plain"]])
    received = replay(to_curl(cap, url_for(echo, cap)), echo, tmp_path)
    assert_same_request(received, cap)
    assert dict(received.headers)["Content-Length"] == "0"


@needs_curl
def test_curl_chunked_capture_is_sent_with_length(echo: _EchoServer, tmp_path: Path) -> None:
    cap = capture(headers=[["Transfer-Encoding", "chunked"], ["Content-Type", "text/plain"]],
                  body=b"chunked once")  # fmt: skip
    received = replay(to_curl(cap, url_for(echo, cap)), echo, tmp_path)
    assert_same_request(received, cap)


def test_curl_command_shape() -> None:
    command = to_curl(capture(body=ALL_BYTES), "http://127.0.0.1:1/in/x")
    assert command.startswith("printf '\\000\\001")
    assert "--data-binary @-" in command and "--globoff" in command
    assert "-H 'X-Empty;'" in command
    text = to_curl(capture(body=b'{"a": 1}'), "http://127.0.0.1:1/in/x")
    assert "--data-raw '{\"a\": 1}'" in text
    assert "printf" not in text


@pytest.mark.parametrize(
    "headers",
    [[["X-Bad", "a\r\nInjected: 1"]], [["X-Bad", "a\nb"]], [["X-Bad", "a\x00b"]], [["", "v"]]],
)
def test_unsendable_headers_are_refused(headers: list[list[str]]) -> None:
    with pytest.raises(UnreproducibleRequestError):
        to_curl(capture(headers=headers), "http://127.0.0.1:1/")
    with pytest.raises(UnreproducibleRequestError):
        to_httpie(capture(headers=headers), "http://127.0.0.1:1/")


# ---------------------------------------------------------------------------------------------
# HTTPie (only where it is installed; it is not a dependency of this project)
# ---------------------------------------------------------------------------------------------

needs_httpie = pytest.mark.skipif(
    shutil.which("http") is None,
    reason="HTTPie's `http` command is not installed (optional; `pip install httpie` to run)",
)


# HTTPie sends URLs through urllib3, which percent-encodes what RFC 3986 does not allow (backtick,
# braces, brackets, `|`) and upper-cases escapes, so its URL is only exact when it is RFC 3986
# clean. Still hostile to a shell, though.
HTTPIE_URL_PARTS = {"path": "/hooks/a'b/$(x)/;&!*", "query": "a=%27x%27&b=$(id)&c='q'&g=%00%FF"}


def by_name(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers grouped by name, repeats in their order: what HTTPie can keep of the order."""
    return sorted(headers, key=lambda header: header[0].lower())


def httpie_capture(**overrides: Any) -> dict[str, Any]:
    cap = capture(**HTTPIE_URL_PARTS, **overrides)
    cap["headers"] = [h for h in cap["headers"] if h[0] != "X-Latin1"]  # HTTPie sends UTF-8
    return cap


@needs_httpie
@pytest.mark.parametrize("body_name", sorted(BODIES))
def test_httpie_replays_byte_exact(body_name: str, echo: _EchoServer, tmp_path: Path) -> None:
    cap = httpie_capture(body=BODIES[body_name])
    received = replay(to_httpie(cap, url_for(echo, cap)), echo, tmp_path)
    assert received.method == cap["method"]
    assert received.target == f"/in/{cap['bin']}{cap['path']}?{cap['query']}"
    assert by_name(received_headers(received)) == by_name(expected_headers(cap))
    assert received.body == cap["body"]
    assert not (tmp_path / SENTINEL).exists()


@needs_httpie
@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_httpie_without_body_or_defaults(method: str, echo: _EchoServer, tmp_path: Path) -> None:
    cap = httpie_capture(method=method, body=b"", headers=[["X-Only", "1"], ["X-Two", "2"]])
    received = replay(to_httpie(cap, url_for(echo, cap)), echo, tmp_path)
    assert_same_request(received, cap)


def test_httpie_refuses_non_utf8_header_values() -> None:
    with pytest.raises(UnreproducibleRequestError, match="UTF-8"):
        to_httpie(capture(headers=[["X", "caf\u00e9"]]), "http://127.0.0.1:1/")


def test_httpie_refuses_backslash_before_separator() -> None:
    with pytest.raises(UnreproducibleRequestError):
        to_httpie(capture(headers=[["X", "a\\=b"]]), "http://127.0.0.1:1/")
    to_httpie(capture(headers=[["X", "a\\\\=b"]]), "http://127.0.0.1:1/")  # even run: fine


# ---------------------------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------------------------


def test_jsonl_round_trip() -> None:
    captures = [capture(id=1, body=b'{"a": "\xc3\xa9"}'), capture(id=2, body=ALL_BYTES)]
    lines = list(to_jsonl(captures))
    assert len(lines) == 2 and all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    first, second = (json.loads(line) for line in lines)
    assert (first["body"], first["body_encoding"]) == ('{"a": "é"}', "utf-8")
    assert second["body_encoding"] == "base64"
    assert decode_body(second["body"], second["body_encoding"]) == ALL_BYTES
    assert second["headers"][0] == ["Host", "example.test"]
    assert set(second) == {
        "id", "bin", "method", "path", "query", "headers", "body", "body_encoding",
        "content_type", "remote_addr", "received_at",
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# HAR 1.2
# ---------------------------------------------------------------------------------------------

_NAME_VALUE = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
}
_NAME_VALUES = {"type": "array", "items": _NAME_VALUE}
_COOKIE = {
    "type": "object",
    "required": ["name", "value"],
    "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
        "path": {"type": "string"},
        "domain": {"type": "string"},
        "expires": {"type": ["string", "null"]},
        "httpOnly": {"type": "boolean"},
        "secure": {"type": "boolean"},
    },
}
_SIZE = {"type": "integer", "minimum": -1}

# A compact transcription of the HAR 1.2 spec (http://www.softwareishard.com/blog/har-12-spec/)
# covering the required fields and their types; custom `_fields` are allowed everywhere.
HAR_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["log"],
    "properties": {
        "log": {
            "type": "object",
            "required": ["version", "creator", "entries"],
            "properties": {
                "version": {"const": "1.2"},
                "creator": {
                    "type": "object",
                    "required": ["name", "version"],
                    "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
                },
                "pages": {"type": "array"},
                "entries": {"type": "array", "items": {"$ref": "#/$defs/entry"}},
            },
        }
    },
    "$defs": {
        "entry": {
            "type": "object",
            "required": ["startedDateTime", "time", "request", "response", "cache", "timings"],
            "properties": {
                "pageref": {"type": "string"},
                "startedDateTime": {
                    "type": "string",
                    "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$",
                },
                "time": {"type": "number", "minimum": 0},
                "request": {"$ref": "#/$defs/request"},
                "response": {"$ref": "#/$defs/response"},
                "cache": {"type": "object"},
                "timings": {
                    "type": "object",
                    "required": ["send", "wait", "receive"],
                    "properties": {
                        name: {"type": "number", "minimum": -1}
                        for name in ("blocked", "dns", "connect", "send", "wait", "receive", "ssl")
                    },
                },
                "serverIPAddress": {"type": "string"},
                "connection": {"type": "string"},
                "comment": {"type": "string"},
            },
        },
        "request": {
            "type": "object",
            "required": [
                "method",
                "url",
                "httpVersion",
                "cookies",
                "headers",
                "queryString",
                "headersSize",
                "bodySize",
            ],  # fmt: skip
            "properties": {
                "method": {"type": "string"},
                "url": {"type": "string", "format": "uri"},
                "httpVersion": {"type": "string"},
                "cookies": {"type": "array", "items": _COOKIE},
                "headers": _NAME_VALUES,
                "queryString": _NAME_VALUES,
                "postData": {
                    "type": "object",
                    "required": ["mimeType"],
                    "properties": {
                        "mimeType": {"type": "string"},
                        "text": {"type": "string"},
                        "params": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "value": {"type": "string"},
                                    "fileName": {"type": "string"},
                                    "contentType": {"type": "string"},
                                },
                            },
                        },
                        "_encoding": {"const": "base64"},
                    },
                },
                "headersSize": _SIZE,
                "bodySize": _SIZE,
            },
        },
        "response": {
            "type": "object",
            "required": [
                "status",
                "statusText",
                "httpVersion",
                "cookies",
                "headers",
                "content",
                "redirectURL",
                "headersSize",
                "bodySize",
            ],  # fmt: skip
            "properties": {
                "status": {"type": "integer"},
                "statusText": {"type": "string"},
                "httpVersion": {"type": "string"},
                "cookies": {"type": "array", "items": _COOKIE},
                "headers": _NAME_VALUES,
                "content": {
                    "type": "object",
                    "required": ["size", "mimeType"],
                    "properties": {
                        "size": {"type": "integer"},
                        "compression": {"type": "integer"},
                        "mimeType": {"type": "string"},
                        "text": {"type": "string"},
                        "encoding": {"type": "string"},
                    },
                },
                "redirectURL": {"type": "string"},
                "headersSize": _SIZE,
                "bodySize": _SIZE,
            },
        },
    },
}


def test_har_validates_and_keeps_everything() -> None:
    form = capture(
        id=3,
        method="POST",
        path="",
        query="",
        headers=[["Content-Type", "application/x-www-form-urlencoded"], ["Cookie", "a=1; b=2"]],
        body=b"name=Ann+Lee&tag=a&tag=b",
        content_type="application/x-www-form-urlencoded",
        response={
            "status": 201,
            "headers": [["Content-Type", "application/json"]],
            "body": b'{"ok": true, "id": 3}',
            "duration_ms": 4.5,
        },
    )
    captures = [capture(id=1), capture(id=2, body=ALL_BYTES, content_type=None), form]
    har = to_har(captures, "http://127.0.0.1:8787/", "0.1.0")
    jsonschema.validate(har, HAR_SCHEMA)
    json.dumps(har)  # serialisable as is

    log = har["log"]
    assert log["version"] == "1.2"
    assert log["creator"] == {"name": "webhook-inspector", "version": "0.1.0"}
    first, binary, posted = log["entries"]

    request = first["request"]
    assert request["url"] == (
        "http://127.0.0.1:8787/in/stripe-test/hooks/a'b/$(x)/`y`/[1]{2}?" + captures[0]["query"]
    )
    assert [h["name"] for h in request["headers"]] == [h[0] for h in captures[0]["headers"]]
    assert {"name": "d[0]", "value": "1"} in request["queryString"]
    assert request["postData"] == {
        "mimeType": "application/json; charset=utf-8",
        "text": '{"id": "evt_1"}',
    }
    assert request["bodySize"] == len(b'{"id": "evt_1"}')
    assert first["startedDateTime"] == "2024-01-15T10:30:00.123456Z"
    assert first["response"]["status"] == 0
    assert first["_captureId"] == 1

    post = binary["request"]["postData"]
    assert post["_encoding"] == "base64" and base64.b64decode(post["text"]) == ALL_BYTES
    assert post["mimeType"] == ""

    assert posted["request"]["postData"]["params"] == [
        {"name": "name", "value": "Ann Lee"},
        {"name": "tag", "value": "a"},
        {"name": "tag", "value": "b"},
    ]
    assert posted["request"]["cookies"] == [
        {"name": "a", "value": "1"},
        {"name": "b", "value": "2"},
    ]
    response = posted["response"]
    assert (response["status"], response["statusText"]) == (201, "Created")
    assert response["content"] == {
        "size": 21,
        "mimeType": "application/json",
        "text": '{"ok": true, "id": 3}',
    }
    assert posted["time"] == 4.5


def test_har_empty_body_has_no_post_data() -> None:
    har = to_har([capture(method="GET", body=b"")], "http://h", "1")
    jsonschema.validate(har, HAR_SCHEMA)
    assert "postData" not in har["log"]["entries"][0]["request"]
    assert to_har([], "http://h", "1")["log"]["entries"] == []


def test_capture_url() -> None:
    assert capture_url("http://h:1/", {"bin": "b", "path": "", "query": ""}) == "http://h:1/in/b"
    assert capture_url("http://h:1", {"bin": "b", "path": "/x", "query": "a=1"}) == (
        "http://h:1/in/b/x?a=1"
    )
