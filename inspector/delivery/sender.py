"""One HTTP attempt: the only place in the project that talks to the network.

Requests go out with exactly the headers the delivery carries, plus ``Host`` and
``Content-Length`` where it has none, placed as httpx places them. No client defaults
(``User-Agent``, ``Accept``, ``Accept-Encoding``), so a vendor's request looks like the
vendor's and a replay like the capture; no cookies kept (a target's ``Set-Cookie`` must not
leak into the next delivery); no environment proxies (vendors do not use your proxy); no
redirects followed (vendors count a 3xx as a failure).

The requests go through httpcore, the connection pool under httpx, rather than
``httpx.Client``: every behaviour above is what a bare pool does anyway, and the client's layers
(its request and response models, auth, redirect and cookie handling) cost a third of a
delivery's CPU at concurrency 16 (``bench/deliver.py`` prints both loops). httpx still parses
the URL (once per distinct URL). Where the bytes differ from what httpx.Client wrote, it is on
purpose: header values go out as latin-1 (a capture's bytes, which httpx refused), the method
as given (methods are case-sensitive), a caller's ``Transfer-Encoding`` without a
``Content-Length`` beside it, and credentials in a URL are refused, not sent as Basic auth.
"""

from __future__ import annotations

import errno
import functools
import socket
import ssl
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

EXCERPT_BYTES = 4096
DRAIN_LIMIT = 1024 * 1024
"""Read at most this much of a response (then drop the connection): enough to reuse the
connection for any normal answer, bounded against a target that streams forever."""
KEEPALIVE_EXPIRY = 5.0
"""Idle pooled connections close after this long (httpx's default)."""

Pairs = list[tuple[str, str]]


def default_ssl_context() -> ssl.SSLContext:
    """The system trust store (not certifi's bundle): what the machine's own clients trust,
    plus the local CA of ``serve --tls`` when it exists (``inspector.tls.client_context``), so
    deliveries to ``https://localhost:<tls_port>/in/…`` verify. Another trust setup can still
    be passed as ``ssl_context=`` to the engine.
    """
    from ..tls import client_context

    return client_context()


class Client:
    """One pool of keep-alive connections per engine, shared by its workers (thread-safe)."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, pool_size: int = 16
                 ) -> None:
        self.pool = httpcore.ConnectionPool(
            ssl_context=ssl_context if ssl_context is not None else default_ssl_context(),
            max_connections=pool_size * 2, max_keepalive_connections=pool_size,
            keepalive_expiry=KEEPALIVE_EXPIRY, http1=True, http2=False, retries=0)
        self.closed = False

    def close(self) -> None:
        self.closed = True  # an attempt that starts after this would open a connection that
        self.pool.close()   # nobody closes


def make_client(*, ssl_context: ssl.SSLContext | None = None, pool_size: int = 16) -> Client:
    return Client(ssl_context=ssl_context, pool_size=pool_size)


@dataclass(frozen=True)
class _Target:
    url: httpcore.URL
    netloc: bytes  # the Host header's value
    text: str      # the URL as recorded on the attempt


CACHED_URL = 2048
"""URLs up to this long are parsed once and kept (most deliveries repeat a few targets);
longer ones (a GET delivery's query string) are parsed each time rather than kept."""


def _target(url: str) -> _Target:
    return _cached_target(url) if len(url) <= CACHED_URL else _parse_target(url)


def _parse_target(url: str) -> _Target:
    """Parsed as httpx parses it (percent-encoding, IDNA host, default port dropped)."""
    u = httpx.URL(url)
    if u.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(
            f"Request URL has an unsupported protocol '{u.scheme}://'." if u.scheme else
            "Request URL is missing an 'http://' or 'https://' protocol.")
    if not u.host:
        raise httpx.InvalidURL("Request URL has no host.")
    if u.userinfo:  # httpx.Client turned these into Basic auth; check_url refuses them now
        raise httpx.InvalidURL("credentials in the URL are not sent; use an Authorization "
                               "header")
    return _Target(httpcore.URL(scheme=u.raw_scheme, host=u.raw_host, port=u.port,
                                target=u.raw_path), u.netloc, str(u))


_cached_target = functools.lru_cache(maxsize=256)(_parse_target)


def request_headers(method: str, target: _Target, headers: Sequence[tuple[str, str]],
                    body: bytes | None) -> list[tuple[bytes, bytes]]:
    """The header block as httpx would write it: ``Host`` first unless given, then
    ``Content-Length: 0`` for an empty POST/PUT/PATCH, the delivery's headers in order, and
    ``Content-Length`` of a body last. Values are latin-1, the bytes a capture recorded."""
    raw = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    names = {n.lower() for n, _ in raw}
    framed = b"content-length" in names or b"transfer-encoding" in names
    head: list[tuple[bytes, bytes]] = []
    if b"host" not in names:
        head.append((b"Host", target.netloc))
    if body:
        if not framed:
            raw.append((b"Content-Length", str(len(body)).encode()))
    elif not framed and method.upper() in ("POST", "PUT", "PATCH"):
        head.append((b"Content-Length", b"0"))
    return head + raw if head else raw


@dataclass
class Outcome:
    """What happened on the wire."""

    url: str
    sent_headers: Pairs
    status: int | None
    headers: Pairs | None
    excerpt: bytes | None
    size: int | None
    duration_ms: float
    error: str | None


def _latin1(pairs: Sequence[tuple[bytes, bytes]]) -> Pairs:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs]


def attempt(client: Client, method: str, url: str, headers: Sequence[tuple[str, str]],
            body: bytes, timeout: float, *, keep: int = EXCERPT_BYTES,
            raw: bool = False) -> Outcome:
    """Send one request; never raises for network trouble (it becomes ``error``).

    ``keep``: bytes of the response body kept in ``excerpt`` (content-decoded); ``raw``: keep
    them as sent (still content-encoded), as a proxy passing the response on needs them."""
    sent: Pairs = [(n, v) for n, v in headers]
    shown = url
    start = time.perf_counter()
    deadline = start + timeout
    try:
        if client.closed:
            raise RuntimeError("the delivery engine's client is closed")
        target = _target(url)
        shown = target.text
        content = body if body or method not in ("GET", "HEAD") else None
        block = request_headers(method, target, sent, content)
        sent = _latin1(block)
        response = client.pool.handle_request(httpcore.Request(
            method.encode("ascii"), target.url, headers=block, content=content or b"",
            extensions={"timeout": dict.fromkeys(("connect", "read", "write", "pool"),
                                                 timeout)}))
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the attempt
        return Outcome(shown, sent, None, None, None, None, _ms(start),
                       describe_error(exc, timeout))
    resp_headers = _latin1(response.headers)
    encoded = not raw and any(k.lower() == b"content-encoding" and v.strip().lower()
                              not in (b"", b"identity") for k, v in response.headers)
    error = None
    excerpt = bytearray()
    size = 0
    try:
        for chunk in (_decoding(response) if encoded else response.iter_stream()):
            size += len(chunk)
            if len(excerpt) < keep:
                excerpt += chunk[:keep - len(excerpt)]
            if size > DRAIN_LIMIT:
                break
            if time.perf_counter() > deadline:
                error = f"timeout after {timeout:g}s (response body too slow)"
                break
    except Exception as exc:  # noqa: BLE001
        error = describe_error(exc, timeout)
    finally:
        response.close()
    if error is None and time.perf_counter() > deadline:
        error = f"timeout after {timeout:g}s (answered in {time.perf_counter() - start:.1f}s)"
    return Outcome(shown, sent, response.status, resp_headers, bytes(excerpt), size,
                   _ms(start), error)


class _Raw(httpx.SyncByteStream):
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._response.iter_stream())


class DecodeError(Exception):
    """A content-encoded body that does not decode."""


INFLATE_STEP = 64 * 1024
"""Most decoded bytes one inflate call makes: with DRAIN_LIMIT, what bounds the memory a
small, highly compressed answer (a gzip bomb) can take."""


def _decoding(response: httpcore.Response) -> Iterator[bytes]:
    """A content-encoded body decoded as it arrives, at most INFLATE_STEP bytes at a time, so
    DRAIN_LIMIT bounds the decoded size too. gzip and deflate here (zlib); anything else
    (br, zstd, several codings) by httpx's decoders, as before."""
    coding = b",".join(v for k, v in response.headers if k.lower() == b"content-encoding")
    codings = [c.strip().lower() for c in coding.split(b",") if c.strip()]
    if codings in ([b"gzip"], [b"x-gzip"], [b"deflate"]):
        return _inflate(response.iter_stream(), codings[0].decode())
    wrapped = httpx.Response(response.status, headers=list(response.headers),
                             stream=_Raw(response))
    return wrapped.iter_bytes()


def _inflate(chunks: Iterator[bytes], coding: str) -> Iterator[bytes]:
    inflater = None
    head = b""  # deflate: the first two bytes say zlib-wrapped (as the RFC says) or raw
    try:
        for chunk in chunks:
            if inflater is None:
                if coding == "deflate":
                    head += chunk
                    if len(head) < 2:
                        continue
                    chunk, head = head, b""
                inflater = _inflater(coding, chunk)
            yield from _inflate_chunk(inflater, chunk)
        if inflater is None and head:  # a one-byte body
            inflater = _inflater(coding, head)
            yield from _inflate_chunk(inflater, head)
        if inflater is not None:
            rest = inflater.flush()
            if rest:
                yield rest
    except zlib.error as exc:
        raise DecodeError(f"the {coding} body does not decode: {exc}") from None


def _inflater(coding: str, first: bytes) -> Any:
    if coding != "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    wrapped = len(first) > 1 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


def _inflate_chunk(inflater: Any, data: bytes) -> Iterator[bytes]:
    while data:
        out = inflater.decompress(data, INFLATE_STEP)
        if out:
            yield out
        data = inflater.unconsumed_tail


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def describe_error(exc: BaseException, timeout: float) -> str:
    """A short, stable description: ``connection refused``, ``timeout after 30s``,
    ``TLS: certificate verify failed: self-signed certificate``, ``DNS: …``."""
    chain = _chain(exc)
    if isinstance(exc, httpx.TimeoutException | httpcore.TimeoutException):
        return f"timeout after {timeout:g}s"
    for e in chain:
        if isinstance(e, ssl.SSLCertVerificationError):
            return f"TLS: {e.verify_message or e.reason or 'certificate verify failed'}"
    for e in chain:
        if isinstance(e, ssl.SSLError):
            return f"TLS: {(e.reason or str(e)).lower().replace('_', ' ')}"
    text = str(exc)
    if "[SSL" in text:
        return "TLS: " + text.split("]", 1)[-1].split("(_ssl", 1)[0].strip()
    for e in chain:
        if isinstance(e, ConnectionRefusedError) or (
                isinstance(e, OSError) and e.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return f"DNS: {e.strerror or e}"
        if isinstance(e, ConnectionResetError):
            return "connection reset by peer"
    lowered = text.lower()
    if "connection refused" in lowered or "errno 111" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return f"DNS: {text}"
    if isinstance(exc, httpx.RemoteProtocolError | httpcore.RemoteProtocolError):
        if "without sending" in lowered or "disconnected" in lowered:
            return "connection closed without a response"
        return f"protocol error: {text}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL
                  | httpcore.UnsupportedProtocol):
        return f"invalid URL: {text}"
    if isinstance(exc, DecodeError):
        return str(exc)
    if isinstance(exc, httpx.NetworkError | httpcore.NetworkError):
        return f"network error: {text or type(exc).__name__}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
