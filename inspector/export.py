"""Export captures as HAR 1.2, JSON Lines, and curl / HTTPie commands that replay them exactly.

A capture here is the dict the storage layer hands out: ``id, bin, method, path, query`` (raw
string), ``headers`` (ordered ``[name, value]`` pairs, repeats kept), ``body`` (bytes),
``remote_addr``, ``received_at`` (ISO 8601 UTC with microseconds) and ``content_type``. An
optional ``response`` dict (``status``, ``headers``, ``body``, ``duration_ms``) is the bin's
answer when the caller knows it.

Binary bodies:

- HAR 1.2 has a standard ``encoding`` field on ``response.content`` but none on
  ``request.postData``. A request body that is not valid UTF-8 is therefore written to
  ``postData.text`` as base64 with the custom field ``"_encoding": "base64"`` (HAR allows
  ``_``-prefixed custom fields). Readers that ignore it see base64 text, not mojibake.
- JSON Lines carries ``body`` as text with ``"body_encoding": "utf-8"``, or as base64 with
  ``"base64"``, like ``GET /api/captures/<id>``.

The shell commands treat every captured value as hostile: everything that reaches the shell is
single-quoted, ``$'…'``-quoted with only hex escapes, or a ``printf`` format made of octal
escapes, so no quote, ``$()``, backtick or newline in a capture can run anything. Header values
are sent as the bytes they arrived as (servers decode header bytes as Latin-1, so a value is
re-encoded as Latin-1 when it can be, UTF-8 otherwise).
"""

from __future__ import annotations

import base64
import binascii
import http
import json
import shlex
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

__all__ = [
    "UnreproducibleRequestError",
    "capture_url",
    "decode_body",
    "to_curl",
    "to_har",
    "to_httpie",
    "to_jsonl",
]

Capture = Mapping[str, Any]

# Headers the client computes for itself from the URL and the body it sends.
_CLIENT_COMPUTED = frozenset({"host", "content-length", "transfer-encoding"})
# Headers curl adds unless told otherwise; removed with `-H 'Name:'` when the capture lacks them.
_CURL_DEFAULTS = ("User-Agent", "Accept")
# The same for HTTPie 3 (``requests`` adds Accept-Encoding and Connection).
_HTTPIE_DEFAULTS = ("User-Agent", "Accept", "Accept-Encoding", "Connection")
# Characters that separate HTTPie request items (`Name:value`, `a=b`, `a:=1`, `@file`, `Name;`).
_HTTPIE_SPECIAL = frozenset(":;=@")


class UnreproducibleRequestError(ValueError):
    """The capture holds something no client command can send as it was (e.g. CR/LF in a
    header value, which no real HTTP/1.1 server would have accepted)."""


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _body(capture: Capture) -> bytes:
    body = capture.get("body") or b""
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _headers(capture: Capture) -> list[tuple[str, str]]:
    return [(str(name), str(value)) for name, value in capture.get("headers") or ()]


def _has_header(headers: Iterable[tuple[str, str]], name: str) -> bool:
    return any(existing.lower() == name.lower() for existing, _ in headers)


def _utf8_or_none(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text_or_base64(data: bytes) -> tuple[str, str]:
    """``(text, "utf-8")`` when the bytes are UTF-8, else ``(base64, "base64")``."""
    text = _utf8_or_none(data)
    if text is not None:
        return text, "utf-8"
    return base64.b64encode(data).decode("ascii"), "base64"


def capture_url(base_url: str, capture: Capture) -> str:
    """The URL the capture was sent to: ``base_url + /in/<bin> + path [+ ?query]``."""
    query = capture.get("query") or ""
    url = f"{base_url.rstrip('/')}/in/{capture['bin']}{capture.get('path') or ''}"
    return f"{url}?{query}" if query else url


# ---------------------------------------------------------------------------------------------
# HAR 1.2
# ---------------------------------------------------------------------------------------------


def _name_values(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def _cookies(headers: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    cookies = []
    for name, value in headers:
        if name.lower() != "cookie":
            continue
        for piece in value.split(";"):
            cookie_name, separator, cookie_value = piece.strip().partition("=")
            if separator and cookie_name:
                cookies.append({"name": cookie_name, "value": cookie_value})
    return cookies


def _post_data(body: bytes, content_type: str | None) -> dict[str, Any]:
    text, encoding = _text_or_base64(body)
    post: dict[str, Any] = {"mimeType": content_type or "", "text": text}
    if encoding == "base64":
        post["_encoding"] = "base64"
    elif (content_type or "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        post["params"] = _name_values(parse_qsl(text, keep_blank_values=True))
    return post


def _har_response(response: Mapping[str, Any] | None) -> dict[str, Any]:
    if response is None:
        return {
            "status": 0,
            "statusText": "",
            "httpVersion": "",
            "cookies": [],
            "headers": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
            "comment": "The bin's answer was not recorded.",
        }
    status = int(response.get("status", 0))
    headers = [(str(n), str(v)) for n, v in response.get("headers") or ()]
    if isinstance(response.get("headers"), Mapping):
        headers = [(str(n), str(v)) for n, v in response["headers"].items()]
    raw = response.get("body") or b""
    body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    mime = next((v for n, v in headers if n.lower() == "content-type"), "x-unknown")
    content: dict[str, Any] = {"size": len(body), "mimeType": mime}
    if body:
        content["text"], encoding = _text_or_base64(body)
        if encoding == "base64":
            content["encoding"] = "base64"
    try:
        status_text = http.HTTPStatus(status).phrase
    except ValueError:
        status_text = ""
    return {
        "status": status,
        "statusText": status_text,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _name_values(headers),
        "content": content,
        "redirectURL": next((v for n, v in headers if n.lower() == "location"), ""),
        "headersSize": -1,
        "bodySize": len(body),
    }


def _har_entry(capture: Capture, base_url: str) -> dict[str, Any]:
    headers = _headers(capture)
    body = _body(capture)
    content_type = capture.get("content_type")
    request: dict[str, Any] = {
        "method": capture["method"],
        "url": capture_url(base_url, capture),
        "httpVersion": capture.get("http_version") or "HTTP/1.1",
        "cookies": _cookies(headers),
        "headers": _name_values(headers),
        "queryString": _name_values(parse_qsl(capture.get("query") or "", keep_blank_values=True)),
        # The raw header block is not kept, only the parsed list, so its size is unknown.
        "headersSize": -1,
        "bodySize": len(body),
    }
    if body:
        request["postData"] = _post_data(body, content_type)
    response = capture.get("response")
    duration = float(response.get("duration_ms", 0)) if response else 0.0
    return {
        "startedDateTime": capture["received_at"],
        "time": duration,
        "request": request,
        "response": _har_response(response),
        "cache": {},
        "timings": {"send": 0, "wait": duration, "receive": 0},
        "_captureId": capture.get("id"),
        "_bin": capture.get("bin"),
        "_remoteAddr": capture.get("remote_addr"),
    }


def to_har(captures: Iterable[Capture], base_url: str, creator_version: str) -> dict[str, Any]:
    """A HAR 1.2 document with one entry per capture, in the order given.

    Request bodies that are not UTF-8 are base64 in ``postData.text`` with
    ``"_encoding": "base64"`` (see the module docstring). Without a recorded answer the
    response is a placeholder with status 0, as browsers write for requests with no response.
    """
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "webhook-inspector", "version": creator_version},
            "entries": [_har_entry(capture, base_url) for capture in captures],
        }
    }


# ---------------------------------------------------------------------------------------------
# JSON Lines
# ---------------------------------------------------------------------------------------------


def to_jsonl(captures: Iterable[Capture]) -> Iterator[str]:
    """One JSON object per capture, each a line ending in ``\\n`` (ready to write or stream).

    ``body`` is text with ``body_encoding: "utf-8"`` or base64 with ``"base64"``.
    """
    for capture in captures:
        body, encoding = _text_or_base64(_body(capture))
        record = {
            "id": capture.get("id"),
            "bin": capture.get("bin"),
            "method": capture.get("method"),
            "path": capture.get("path"),
            "query": capture.get("query") or "",
            "headers": [[name, value] for name, value in _headers(capture)],
            "body": body,
            "body_encoding": encoding,
            "content_type": capture.get("content_type"),
            "remote_addr": capture.get("remote_addr"),
            "received_at": capture.get("received_at"),
        }
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


# ---------------------------------------------------------------------------------------------
# Shell commands
# ---------------------------------------------------------------------------------------------


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _quote_bytes(data: bytes) -> str:
    """One shell word that expands to exactly ``data`` (which must not contain NUL).

    Printable UTF-8 text is single-quoted (POSIX, readable); anything else uses bash's ``$'…'``
    with ``\\xHH`` escapes, whose only specials (backslash and single quote) are escaped too.
    """
    if b"\x00" in data:
        raise UnreproducibleRequestError("a NUL byte cannot be passed as a shell argument")
    if _is_safe_text(data):
        return shlex.quote(data.decode("utf-8"))
    out = []
    for byte in data:
        char = chr(byte)
        if char in "\\'":
            out.append("\\" + char)
        elif 0x20 <= byte <= 0x7E and char != "!":  # `!` could trigger history expansion
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "$'" + "".join(out) + "'"


def _printf_format(data: bytes) -> str:
    """A single-quoted ``printf`` format that prints exactly ``data``, NUL bytes included.

    Every byte that is not plain printable ASCII, plus ``%``, ``\\``, ``'`` and ``!``, becomes a
    three-digit octal escape, so the word holds no quote and nothing the shell interprets.
    """
    out = []
    for byte in data:
        char = chr(byte)
        if 0x20 <= byte <= 0x7E and char not in "%\\'!":
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return "'" + "".join(out) + "'"


def _is_safe_text(body: bytes) -> bool:
    """Bytes that read well inline: UTF-8 with no control characters but tab and newline."""
    text = _utf8_or_none(body)
    return text is not None and all(ch.isprintable() or ch in "\t\n" for ch in text)


# Linux caps one argument of an exec'd program at 128 KiB; bigger bodies go through the shell's
# builtin printf, which has no such limit.
_INLINE_BODY_LIMIT = 64 * 1024


def _inline_body(body: bytes) -> bool:
    return len(body) <= _INLINE_BODY_LIMIT and _is_safe_text(body)


def _replayable_headers(capture: Capture) -> list[tuple[str, str]]:
    headers = [(n, v) for n, v in _headers(capture) if n.lower() not in _CLIENT_COMPUTED]
    for name, value in headers:
        if any(ch in name + value for ch in "\r\n\x00") or not name:
            raise UnreproducibleRequestError(
                f"header {name!r} holds CR, LF or NUL (or has no name) and cannot be replayed"
            )
    return headers


def _sends_body(capture: Capture, body: bytes) -> bool:
    # An empty body still counts when the sender declared it (`Content-Length: 0` on a POST).
    return bool(body) or _has_header(_headers(capture), "content-length")


def _join(lines: list[str], stdin: str | None = None) -> str:
    """One option per line, continued with backslashes, optionally fed from a ``printf``."""
    command = " \\\n  ".join(lines)
    return f"{stdin} \\\n  | {command}" if stdin else command


def to_curl(capture: Capture, url: str) -> str:
    """A curl command that sends the captured request to ``url`` (used verbatim) byte-exact.

    Method, every header in order with repeats, and the body are reproduced; ``Host``,
    ``Content-Length`` and ``Transfer-Encoding`` are left to curl. Headers curl would add on its
    own (``User-Agent``, ``Accept``, ``Content-Type`` and ``Expect`` with a body) are suppressed
    when the capture did not have them. ``--globoff`` and ``--path-as-is`` keep curl from
    reading ``[]``/``{}`` in the URL as globs or normalising ``/../``. Text bodies are passed
    with ``--data-raw`` (which, unlike ``--data-binary``, never reads ``@file``); other bodies,
    and text over 64 KiB, are piped in from ``printf``. The output assumes bash (or zsh/ksh)
    for ``$'…'``.
    """
    method = str(capture["method"])
    headers = _replayable_headers(capture)
    body = _body(capture)
    sends_body = _sends_body(capture, body)

    lines = ["curl --globoff --path-as-is"]
    if method == "HEAD" and not sends_body:
        lines.append("--head")  # `-X HEAD` would wait for a body that never comes
    else:
        lines.append(f"-X {_quote_bytes(method.encode('utf-8'))}")
    for name, value in headers:
        raw_name = _header_bytes(name)
        line = raw_name + b";" if value == "" else raw_name + b": " + _header_bytes(value)
        lines.append(f"-H {_quote_bytes(line)}")
    suppressed = [*_CURL_DEFAULTS, *(("Content-Type", "Expect") if sends_body else ())]
    for name in suppressed:
        if not _has_header(headers, name):
            lines.append(f"-H '{name}:'")

    stdin = None
    if sends_body and _inline_body(body):
        lines.append(f"--data-raw {_quote_bytes(body)}")
    elif sends_body:
        stdin = f"printf {_printf_format(body)}"
        lines.append("--data-binary @-")
    lines.append(f"--url {_quote_bytes(url.encode('utf-8'))}")
    return _join(lines, stdin)


def _httpie_escape(text: str) -> str:
    """Escape HTTPie's item separators so a value is read literally after ``Name:``.

    HTTPie turns ``\\X`` into ``X`` only when X is one of ``:;=@``; any other backslash pair is
    kept as is. So a run of backslashes directly before a separator character cannot be written
    when it is odd-length (the last backslash would pair with our escape), and we refuse it.
    """
    out = []
    backslashes = 0
    for char in text:
        if char in _HTTPIE_SPECIAL:
            if backslashes % 2:
                raise UnreproducibleRequestError(
                    f"HTTPie cannot send a backslash right before {char!r} in a header value"
                )
            out.append("\\" + char)
        else:
            out.append(char)
        backslashes = backslashes + 1 if char == "\\" else 0
    return "".join(out)


def to_httpie(capture: Capture, url: str) -> str:
    """An HTTPie (3.x) command that sends the captured request to ``url``, as exactly as HTTPie
    allows.

    Method, header names and values, repeats and the body are byte-exact. Header items are
    ``'Name:value'`` with HTTPie's separators escaped, ``'Name;'`` for an empty value, and
    ``'Name:'`` to drop a header HTTPie would add (User-Agent, Accept, Accept-Encoding,
    Connection, Content-Type). What HTTPie cannot do, and :func:`to_curl` can:

    - header order: HTTPie sends the headers it has defaults for first and groups repeats of a
      name together; the order among the others is kept;
    - URLs: urllib3 percent-encodes characters RFC 3986 does not allow (backtick, braces,
      ``|``…) and upper-cases escapes, so only an RFC 3986-clean URL arrives unchanged
      (``--path-as-is`` at least stops ``/../`` from being resolved);
    - header values whose bytes are not UTF-8 (HTTPie encodes header text as UTF-8) and values
      with an odd run of backslashes before ``:;=@`` raise
      :class:`UnreproducibleRequestError`.
    """
    method = str(capture["method"])
    headers = _replayable_headers(capture)
    body = _body(capture)
    sends_body = _sends_body(capture, body)

    lines = ["http --path-as-is"]
    stdin = None
    if sends_body and _inline_body(body):
        lines += ["--ignore-stdin", f"--raw {_quote_bytes(body)}"]
    elif sends_body:
        stdin = f"printf {_printf_format(body)}"
    else:
        lines.append("--ignore-stdin")
    lines.append(f"{_quote_bytes(method.encode('utf-8'))} {_quote_bytes(url.encode('utf-8'))}")
    for name, value in headers:
        # HTTPie encodes header text as UTF-8, so the argument is the wire bytes read as UTF-8.
        text = _utf8_or_none(_header_bytes(value))
        if text is None:
            raise UnreproducibleRequestError(
                f"header {name!r} is not UTF-8 on the wire and HTTPie can only send UTF-8 "
                "header values; use the curl command instead"
            )
        item = f"{name};" if value == "" else f"{name}:{_httpie_escape(text)}"
        lines.append(_quote_bytes(item.encode("utf-8")))
    suppressed = [*_HTTPIE_DEFAULTS, *(("Content-Type",) if sends_body else ())]
    for name in suppressed:
        if not _has_header(headers, name):
            lines.append(f"'{name}:'")
    return _join(lines, stdin)


def decode_body(text: str, encoding: str) -> bytes:
    """Inverse of the ``body``/``body_encoding`` pair written by :func:`to_jsonl`."""
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error as exc:
            raise ValueError("body_encoding is base64 but body is not valid base64") from exc
    return text.encode("utf-8")
