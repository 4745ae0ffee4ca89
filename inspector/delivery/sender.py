"""One HTTP attempt: the only place in the project that talks to the network.

Requests go out with exactly the headers the delivery carries: the HTTP client's own defaults
(``User-Agent: python-httpx``, ``Accept``, ``Accept-Encoding``) are removed so a vendor's request
looks like the vendor's and a replay like the capture; the client adds only ``Host`` and
``Content-Length``. Cookies are never kept (a target's ``Set-Cookie`` must not leak into the
next delivery), environment proxies are ignored (vendors do not use your proxy), and redirects
are not followed (vendors count a 3xx as a failure).
"""

from __future__ import annotations

import errno
import http.cookiejar
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

EXCERPT_BYTES = 4096
DRAIN_LIMIT = 1024 * 1024
"""Read at most this much of a response (then drop the connection): enough to reuse the
connection for any normal answer, bounded against a target that streams forever."""

Pairs = list[tuple[str, str]]


def default_ssl_context() -> ssl.SSLContext:
    """The system trust store (not certifi's bundle): what the machine's own clients trust,
    plus the local CA of ``serve --tls`` when it exists (``inspector.tls.client_context``), so
    deliveries to ``https://localhost:<tls_port>/in/…`` verify. Another trust setup can still
    be passed as ``ssl_context=`` to the engine.
    """
    from ..tls import client_context

    return client_context()


class _RefuseAll(http.cookiejar.DefaultCookiePolicy):
    def set_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False

    def return_ok(self, cookie: http.cookiejar.Cookie, request: object) -> bool:
        return False


class _NoCookies(httpx.Cookies):
    """Skips even parsing ``Set-Cookie`` (httpx builds urllib compatibility objects for every
    response otherwise, a measurable share of a delivery's cost)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def make_client(*, ssl_context: ssl.SSLContext | None = None, pool_size: int = 16,
                transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """One pooled client per engine, shared by its workers (httpx.Client is thread-safe)."""
    client = httpx.Client(
        verify=ssl_context if ssl_context is not None else default_ssl_context(),
        limits=httpx.Limits(max_connections=pool_size * 2, max_keepalive_connections=pool_size),
        follow_redirects=False, trust_env=False, transport=transport,
        cookies=http.cookiejar.CookieJar(policy=_RefuseAll()),
    )
    if isinstance(getattr(client, "_cookies", None), httpx.Cookies):
        client._cookies = _NoCookies(http.cookiejar.CookieJar(policy=_RefuseAll()))
    for name in list(client.headers.keys()):
        del client.headers[name]
    return client


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


def attempt(client: httpx.Client, method: str, url: str, headers: Sequence[tuple[str, str]],
            body: bytes, timeout: float, *, keep: int = EXCERPT_BYTES,
            raw: bool = False) -> Outcome:
    """Send one request; never raises for network trouble (it becomes ``error``).

    ``keep``: bytes of the response body kept in ``excerpt``; ``raw``: keep them as sent
    (still content-encoded), as a proxy passing the response on needs them."""
    sent: Pairs = [(n, v) for n, v in headers]
    start = time.perf_counter()
    deadline = start + timeout
    try:
        request = client.build_request(method, url, headers=sent,
                                       content=body if body or method not in ("GET", "HEAD")
                                       else None, timeout=httpx.Timeout(timeout))
        sent = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        response = client.send(request, stream=True)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded on the attempt
        return Outcome(url, sent, None, None, None, None, _ms(start), describe_error(exc, timeout))
    error = None
    excerpt = bytearray()
    size = 0
    try:
        for chunk in (response.iter_raw() if raw else response.iter_bytes()):
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
    resp_headers = [(k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in response.headers.raw]
    return Outcome(str(request.url), sent, response.status_code, resp_headers, bytes(excerpt),
                   size, _ms(start), error)


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
    if isinstance(exc, httpx.TimeoutException):
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
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending" in lowered or "disconnected" in lowered:
            return "connection closed without a response"
        return f"protocol error: {text}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"invalid URL: {text}"
    if isinstance(exc, httpx.NetworkError):
        return f"network error: {text or type(exc).__name__}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
