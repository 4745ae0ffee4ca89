"""A Python client for a running webhook-inspector's API, and assertion helpers for tests.

Talks HTTP only (httpx), so it works against ``webhook-inspector serve`` on another port or
machine as well as against the in-process server of the pytest plugin. No Flask imports here.

    from inspector.client import InspectorClient

    with InspectorClient("http://127.0.0.1:8787") as ic:
        bin = ic.bin("orders")                      # a handle on /in/orders
        ...                                         # let the app under test post to bin.url
        first, = bin.wait_for(1, timeout=5)         # oldest first; AssertionError on timeout
        assert first.json()["event"] == "order.paid"
        d = ic.send("audian", "call.completed", "http://127.0.0.1:5000/hooks", secret="whsec_x")
        assert d.status == "delivered", d.describe()
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from .diffing import Change, RequestParts, diff_requests

__all__ = [
    "Attempt",
    "Capture",
    "CaptureSummary",
    "Delivery",
    "InspectorClient",
    "InspectorError",
    "WebhookBin",
    "assert_json_matches",
    "assert_request_matches",
    "format_changes",
]

Where = Callable[["Capture"], Any]


class InspectorError(RuntimeError):
    """The server answered an API call with an error (``.status`` and the server's message)."""

    def __init__(self, status: int, message: str, url: str = "") -> None:
        super().__init__(f"{status} from {url}: {message}" if url else f"{status}: {message}")
        self.status = status
        self.message = message


def _decode(text: str | None, encoding: str | None) -> bytes:
    if text is None:
        return b""
    if encoding == "base64":
        return base64.b64decode(text)
    return text.encode("utf-8")


def _pairs(raw: Iterable[Sequence[str]] | None) -> list[tuple[str, str]]:
    return [(str(n), str(v)) for n, v in raw or ()]


def _excerpt(body: bytes, limit: int = 120) -> str:
    if not body:
        return "(empty body)"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes of binary)"
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


# -- data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaptureSummary:
    """One row of ``GET /api/captures``: everything but headers and body."""

    id: int
    bin: str
    method: str
    path: str
    query: str
    content_type: str | None
    size: int
    received_at: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> CaptureSummary:
        return cls(id=int(data["id"]), bin=data["bin"], method=data["method"],
                   path=data.get("path") or "", query=data.get("query") or "",
                   content_type=data.get("content_type"), size=int(data.get("size") or 0),
                   received_at=data.get("received_at") or "")


@dataclass(frozen=True)
class Capture:
    """A captured request, whole: ``.body`` is the bytes exactly as received."""

    id: int
    bin: str
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    content_type: str | None = None
    remote_addr: str | None = None
    received_at: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Capture:
        return cls(id=int(data["id"]), bin=data["bin"], method=data["method"],
                   path=data.get("path") or "", query=data.get("query") or "",
                   headers=_pairs(data.get("headers")),
                   body=_decode(data.get("body"), data.get("body_encoding")),
                   content_type=data.get("content_type"), remote_addr=data.get("remote_addr"),
                   received_at=data.get("received_at") or "")

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (case-insensitive), else ``default``."""
        low = name.lower()
        return next((v for n, v in self.headers if n.lower() == low), default)

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` in the order received (repeats kept)."""
        low = name.lower()
        return [v for n, v in self.headers if n.lower() == low]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` with an excerpt when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ValueError(f"capture #{self.id} body is not JSON ({exc}): "
                             f"{_excerpt(self.body)}") from None

    def form(self) -> dict[str, str]:
        """An url-encoded body as a dict (last value wins for repeated fields)."""
        from urllib.parse import parse_qsl

        return dict(parse_qsl(self.text, keep_blank_values=True))

    def parts(self) -> RequestParts:
        """The request as :mod:`inspector.diffing` compares it."""
        return RequestParts(method=self.method, path=self.path, query=self.query,
                            headers=self.headers, body=self.body, content_type=self.content_type)

    def describe(self) -> str:
        """One line: ``#12 POST /hooks?x=1 (application/json, 42 B) '{"a": 1}'``."""
        target = (self.path or "/") + (f"?{self.query}" if self.query else "")
        ctype = self.content_type or "no content-type"
        return f"#{self.id} {self.method} {target} ({ctype}, {len(self.body)} B) " + \
            _excerpt(self.body)


@dataclass(frozen=True)
class Attempt:
    """One try of a delivery: the target's answer (or the error that stood in for it)."""

    number: int
    status_code: int | None
    error: str | None
    duration_ms: float
    outcome: str | None
    request_headers: list[tuple[str, str]]
    request_body: bytes
    response_headers: list[tuple[str, str]]
    response_body: bytes

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Attempt:
        req = data.get("request") or {}
        resp = data.get("response") or {}
        return cls(number=int(data.get("number") or 0), status_code=data.get("status_code"),
                   error=data.get("error"), duration_ms=float(data.get("duration_ms") or 0),
                   outcome=data.get("outcome"), request_headers=_pairs(req.get("headers")),
                   request_body=_decode(req.get("body"), req.get("body_encoding")),
                   response_headers=_pairs(resp.get("headers")),
                   response_body=_decode(resp.get("body"), resp.get("body_encoding")))

    @property
    def response_text(self) -> str:
        return self.response_body.decode("utf-8", errors="replace")

    def response_json(self) -> Any:
        return json.loads(self.response_body)

    def describe(self) -> str:
        got = f"HTTP {self.status_code}" if self.status_code is not None else "no response"
        err = f" error={self.error!r}" if self.error else ""
        return f"attempt {self.number}: {got}{err} {_excerpt(self.response_body, 80)}"


@dataclass(frozen=True)
class Delivery:
    """A mock-provider delivery: ``status`` is ``pending``, ``delivered`` or ``failed``."""

    id: int
    status: str
    vendor: str | None
    event: str | None
    url: str
    method: str
    error: str | None
    warnings: list[str]
    body: bytes
    headers: list[tuple[str, str]]
    attempts: list[Attempt]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Delivery:
        return cls(id=int(data["id"]), status=data["status"], vendor=data.get("vendor"),
                   event=data.get("event"), url=data.get("url") or "",
                   method=data.get("method") or "", error=data.get("error"),
                   warnings=list(data.get("warnings") or []),
                   body=_decode(data.get("body"), data.get("body_encoding")),
                   headers=_pairs(data.get("headers")),
                   attempts=[Attempt.from_api(a) for a in data.get("attempts") or []],
                   raw=dict(data))

    @property
    def delivered(self) -> bool:
        return self.status == "delivered"

    @property
    def settled(self) -> bool:
        return self.status in ("delivered", "failed")

    @property
    def last_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def status_code(self) -> int | None:
        """The last attempt's HTTP status (None when it got no response)."""
        return self.last_attempt.status_code if self.last_attempt else None

    def json(self) -> Any:
        """The event body that was sent, parsed."""
        return json.loads(self.body)

    def sent_headers(self) -> list[tuple[str, str]]:
        """The headers of the last attempt as sent (signature headers included)."""
        return self.last_attempt.request_headers if self.last_attempt else list(self.headers)

    def describe(self) -> str:
        lines = [f"delivery #{self.id} {self.vendor or ''} {self.event or ''} -> {self.url}: "
                 f"{self.status}" + (f" ({self.error})" if self.error else "")]
        lines += ["  " + a.describe() for a in self.attempts]
        return "\n".join(lines)

    def raise_for_status(self) -> Delivery:
        """Raise AssertionError (with every attempt) unless the delivery was delivered."""
        __tracebackhide__ = True
        if not self.delivered:
            raise AssertionError(self.describe())
        return self


# -- the client ----------------------------------------------------------------------------------
class InspectorClient:
    """The API of one running inspector at ``base_url`` (e.g. ``http://127.0.0.1:8787``)."""

    def __init__(self, base_url: str, *, timeout: float = 30.0,
                 http: httpx.Client | None = None) -> None:
        self.url = base_url.rstrip("/")
        self._http = http or httpx.Client(base_url=self.url, timeout=timeout, trust_env=False)
        self._owns_http = http is None

    # plumbing
    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> InspectorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, timeout: float | None = None,
              **kw: Any) -> httpx.Response:
        if timeout is not None:
            kw["timeout"] = timeout
        resp = self._http.request(method, path, **kw)
        if resp.status_code >= 400:
            try:
                message = resp.json().get("error") or resp.text
            except ValueError:
                message = resp.text
            raise InspectorError(resp.status_code, str(message)[:500], f"{method} {path}")
        return resp

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._call(method, path, **kw).json()

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # bins
    def capture_url(self, bin_name: str, path: str = "") -> str:
        """The absolute capture URL of a bin, optionally with a sub-path."""
        sub = "/" + path.lstrip("/") if path else ""
        return f"{self.url}/in/{quote(bin_name, safe='')}{sub}"

    def bin(self, name: str) -> WebhookBin:
        """A handle on bin ``name`` (nothing is created until the first request arrives)."""
        return WebhookBin(self, name)

    def bins(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/bins")["bins"])

    def create_bin(self, name: str) -> dict[str, Any]:
        return dict(self._json("POST", f"/api/bins/{quote(name, safe='')}")["bin"])

    def delete_bin(self, name: str, missing_ok: bool = True) -> bool:
        """Delete a bin and its captures; False when there was no such bin (and missing_ok)."""
        try:
            self._call("DELETE", f"/api/bins/{quote(name, safe='')}")
        except InspectorError as exc:
            if exc.status == 404 and missing_ok:
                return False
            raise
        return True

    def set_response(self, bin_name: str, status: int = 200, body: str | None = None,
                     headers: Mapping[str, str] | None = None, delay_ms: int = 0
                     ) -> dict[str, Any]:
        """Set what the bin answers (CONTRACT.md, ``PUT /api/bins/<bin>/response``)."""
        payload = {"status": status, "headers": dict(headers or {}), "body": body,
                   "delay_ms": delay_ms}
        return dict(self._json("PUT", f"/api/bins/{quote(bin_name, safe='')}/response",
                               json=payload))

    def reset_response(self, bin_name: str) -> None:
        self._call("DELETE", f"/api/bins/{quote(bin_name, safe='')}/response")

    # captures
    def captures(self, bin: str | None = None, *, q: str | None = None, limit: int = 50,
                 before: int | None = None) -> list[CaptureSummary]:
        """One page of summaries, newest first (the API's order)."""
        params: dict[str, Any] = {"limit": limit}
        if bin:
            params["bin"] = bin
        if q:
            params["q"] = q
        if before is not None:
            params["before"] = before
        data = self._json("GET", "/api/captures", params=params)
        return [CaptureSummary.from_api(c) for c in data["captures"]]

    def all_captures(self, bin: str | None = None, *, after: int = 0) -> list[CaptureSummary]:
        """Every summary with an id above ``after``, oldest first (pages through the API)."""
        out: list[CaptureSummary] = []
        before: int | None = None
        while True:
            params: dict[str, Any] = {"limit": 500}
            if bin:
                params["bin"] = bin
            if before is not None:
                params["before"] = before
            data = self._json("GET", "/api/captures", params=params)
            page = [CaptureSummary.from_api(c) for c in data["captures"]]
            fresh = [c for c in page if c.id > after]
            out.extend(fresh)
            if len(fresh) < len(page) or not data.get("next"):
                break
            before = data["next"]
        out.sort(key=lambda c: c.id)
        return out

    def get(self, capture_id: int) -> Capture:
        return Capture.from_api(self._json("GET", f"/api/captures/{int(capture_id)}"))

    def raw(self, capture_id: int) -> bytes:
        return self._call("GET", f"/api/captures/{int(capture_id)}/raw").content

    def delete(self, capture_id: int) -> None:
        self._call("DELETE", f"/api/captures/{int(capture_id)}")

    def clear(self, bin_name: str) -> int:
        """Delete every capture of a bin; returns how many went."""
        data = self._json("DELETE", "/api/captures", params={"bin": bin_name})
        return int(data.get("deleted") or 0)

    def wait_for(self, bin_name: str, count: int = 1, timeout: float = 5.0,
                 where: Where | None = None, *, after: int = 0) -> list[Capture]:
        """Wait until ``count`` captures of the bin (with an id above ``after``, matching
        ``where(capture)`` if given) have arrived; return the first ``count``, oldest first.

        Raises AssertionError naming what did arrive when ``timeout`` seconds pass first.
        Woken by the live websocket; falls back to polling every 50 ms without it.
        """
        __tracebackhide__ = True
        return _Waiter(self, bin_name, count, where, after).run(timeout)

    def diff(self, a: int | Capture, b: int | Capture, ignore: Iterable[str] = ()
             ) -> list[Change]:
        """Structural differences from capture ``a`` to capture ``b`` (ids or captures)."""
        ca = a if isinstance(a, Capture) else self.get(a)
        cb = b if isinstance(b, Capture) else self.get(b)
        return diff_requests(ca.parts(), cb.parts(), ignore)

    # mock provider
    def vendors(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/vendors")["vendors"])

    def sample(self, vendor: str, event: str, *, seed: int | None = None,
               secret: str | None = None, method: str | None = None,
               overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The request the vendor would send, rendered but not sent (``method``,
        ``headers`` as pairs, ``body`` text, …)."""
        params: list[tuple[str, str]] = []
        if seed is not None:
            params.append(("seed", str(seed)))
        if secret:
            params.append(("secret", secret))
        if method:
            params.append(("method", method))
        for path, value in (overrides or {}).items():
            params.append(("set", f"{path}={_set_value(value)}"))
        v, e = quote(vendor, safe=""), quote(event, safe="")
        return dict(self._json("GET", f"/api/vendors/{v}/events/{e}/sample", params=params))

    def send(self, vendor: str, event: str, url: str, *, secret: str | None = None,
             seed: int | None = None, method: str | None = None,
             overrides: Mapping[str, Any] | None = None, wait: bool | float = True,
             timeout: float | None = None) -> Delivery:
        """Render and deliver an event to ``url``. With ``wait`` (the default) the answer comes
        once the delivery is settled (all retries done); ``wait=<seconds>`` waits at most that.
        ``timeout`` is the per-attempt HTTP timeout (default: the vendor's)."""
        payload: dict[str, Any] = {"vendor": vendor, "event": event, "url": url, "wait": wait}
        for key, value in (("secret", secret), ("seed", seed), ("method", method),
                           ("overrides", dict(overrides) if overrides else None),
                           ("timeout", timeout)):
            if value is not None:
                payload[key] = value
        data = self._json("POST", "/api/send", json=payload, timeout=None)
        return Delivery.from_api(data["delivery"])

    def delivery(self, delivery_id: int) -> Delivery:
        return Delivery.from_api(self._json("GET", f"/api/deliveries/{int(delivery_id)}")
                                 ["delivery"])

    def deliveries(self, *, status: str | None = None, vendor: str | None = None,
                   limit: int = 50) -> list[dict[str, Any]]:
        """Delivery summaries, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if vendor:
            params["vendor"] = vendor
        return list(self._json("GET", "/api/deliveries", params=params)["deliveries"])

    def wait_delivery(self, delivery_id: int, timeout: float = 30.0) -> Delivery:
        """Poll until a delivery is settled; AssertionError with its attempts on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.delivery(delivery_id)
            if d.settled:
                return d
            if time.monotonic() >= deadline:
                raise AssertionError(f"not settled within {timeout:g} s:\n{d.describe()}")
            time.sleep(0.05)

    def redeliver(self, delivery_id: int, wait: bool | float = True) -> Delivery:
        data = self._json("POST", f"/api/deliveries/{int(delivery_id)}/redeliver",
                          json={"wait": wait}, timeout=None)
        return Delivery.from_api(data["delivery"])

    def replay(self, capture_id: int, url: str, *, resign: bool = False,
               secret: str | None = None, wait: bool | float = True) -> Delivery:
        """Send a capture again to ``url`` as a delivery."""
        payload: dict[str, Any] = {"url": url, "resign": resign, "wait": wait}
        if secret:
            payload["secret"] = secret
        data = self._json("POST", f"/api/captures/{int(capture_id)}/replay", json=payload,
                          timeout=None)
        return Delivery.from_api(data["delivery"])

    def subscriptions(self) -> list[dict[str, Any]]:
        """Console-configured subscriptions (``GET /api/subscriptions``), where served."""
        data = self._json("GET", "/api/subscriptions")
        return list(data.get("subscriptions") or [])


def _set_value(value: Any) -> str:
    """An override value as the ``set`` query syntax takes it (JSON for non-strings)."""
    return value if isinstance(value, str) else json.dumps(value)


# -- waiting -------------------------------------------------------------------------------------
class _Waiter:
    """Collects a bin's captures until enough match; woken by the websocket when it can be."""

    def __init__(self, client: InspectorClient, bin_name: str, count: int,
                 where: Where | None, after: int) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        self.client, self.bin, self.count, self.where, self.after = (
            client, bin_name, count, where, after)
        self.seen: dict[int, Capture] = {}
        self.where_error: BaseException | None = None

    def matching(self) -> list[Capture]:
        for summary in self.client.all_captures(self.bin, after=self.after):
            if summary.id not in self.seen:
                try:
                    self.seen[summary.id] = self.client.get(summary.id)
                except InspectorError as exc:  # deleted between list and get
                    if exc.status != 404:
                        raise
        out = []
        for cap in sorted(self.seen.values(), key=lambda c: c.id):
            if self.where is None:
                out.append(cap)
                continue
            try:
                ok = self.where(cap)
            except Exception as exc:  # a predicate that chokes on one capture: not a match
                self.where_error = self.where_error or exc
                ok = False
            if ok:
                out.append(cap)
        return out

    def run(self, timeout: float) -> list[Capture]:
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        ws = self._connect()
        try:
            while True:
                found = self.matching()
                if len(found) >= self.count:
                    return found[: self.count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(self.failure(timeout, found))
                ws = self._pause(ws, min(remaining, 1.0))
        finally:
            if ws is not None:
                _close_quietly(ws)

    def _connect(self) -> Any:
        try:
            import simple_websocket
        except ImportError:  # pragma: no cover - a dependency of the package
            return None
        parts = urlsplit(self.client.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}{parts.path}/ws?bin={quote(self.bin)}"
        class HostWithPort(simple_websocket.Client):  # type: ignore[misc]
            """simple-websocket sends ``Host: 127.0.0.1``; the server's DNS-rebinding guard
            wants the port too, as browsers and HTTP clients send it."""

            def handshake(self) -> None:
                host = f"[{self.host}]" if ":" in self.host else self.host
                self.host = f"{host}:{self.port}"
                super().handshake()

        try:
            return HostWithPort(url)
        except Exception:  # no websocket (e.g. a proxy in between): poll instead
            return None

    @staticmethod
    def _pause(ws: Any, seconds: float) -> Any:
        """Sleep until a live message arrives (or ``seconds``); None once the socket is gone."""
        if ws is None:
            time.sleep(min(seconds, 0.05))
            return None
        try:
            ws.receive(timeout=seconds)
            while ws.receive(timeout=0) is not None:  # drain a burst: one re-read covers it
                pass
        except Exception:
            _close_quietly(ws)
            return None
        return ws

    def failure(self, timeout: float, found: list[Capture]) -> str:
        wanted = f"{self.count} capture{'s' if self.count != 1 else ''}"
        if self.where is not None:
            wanted += f" matching {getattr(self.where, '__name__', 'where')}"
        arrived = sorted(self.seen.values(), key=lambda c: c.id)
        head = (f"timed out after {timeout:g} s waiting for {wanted} in bin {self.bin!r} "
                f"({self.client.capture_url(self.bin)}): ")
        if not arrived:
            return head + "nothing arrived."
        lines = [head + f"{len(arrived)} arrived"
                 + (f", {len(found)} matching:" if self.where is not None else ":")]
        shown = arrived[-20:]
        if len(arrived) > len(shown):
            lines.append(f"  … {len(arrived) - len(shown)} earlier not shown")
        for cap in shown:
            mark = "  + " if self.where is not None and cap in found else "  - "
            lines.append((mark if self.where is not None else "  ") + cap.describe())
        if self.where_error is not None:
            lines.append(f"  (where raised {type(self.where_error).__name__}: "
                         f"{self.where_error} on at least one capture; counted as no match)")
        return "\n".join(lines)


def _close_quietly(ws: Any) -> None:
    try:
        ws.close()
    except Exception:
        pass


# -- a bin handle ----------------------------------------------------------------------------------
class WebhookBin:
    """One capture bin: give ``.url`` to the app under test, then wait for what it sends."""

    def __init__(self, client: InspectorClient, name: str) -> None:
        self.client = client
        self.name = name
        self.url = client.capture_url(name)

    def __repr__(self) -> str:
        return f"WebhookBin({self.name!r}, url={self.url!r})"

    def __str__(self) -> str:
        return self.url

    def url_for(self, path: str = "") -> str:
        """The capture URL with a sub-path, e.g. ``bin.url_for("/hooks/orders")``."""
        return self.client.capture_url(self.name, path)

    def wait_for(self, count: int = 1, timeout: float = 5.0,
                 where: Where | None = None) -> list[Capture]:
        """See :meth:`InspectorClient.wait_for`."""
        __tracebackhide__ = True
        return self.client.wait_for(self.name, count, timeout, where)

    def captures(self) -> list[Capture]:
        """Everything captured so far, oldest first."""
        return [self.client.get(s.id) for s in self.client.all_captures(self.name)]

    def last(self) -> Capture | None:
        """The newest capture, or None when nothing has arrived."""
        page = self.client.captures(self.name, limit=1)
        return self.client.get(page[0].id) if page else None

    def json(self) -> Any:
        """The newest capture's JSON body (AssertionError when nothing has arrived)."""
        cap = self.last()
        if cap is None:
            raise AssertionError(f"nothing has arrived in bin {self.name!r} ({self.url})")
        return cap.json()

    def __len__(self) -> int:
        return len(self.client.all_captures(self.name))

    def clear(self) -> int:
        return self.client.clear(self.name)

    def delete(self) -> bool:
        return self.client.delete_bin(self.name)

    def respond(self, status: int = 200, body: str | None = None,
                headers: Mapping[str, str] | None = None, delay_ms: int = 0) -> None:
        """Make the bin answer with this (e.g. ``respond(500)`` to exercise retries)."""
        self.client.set_response(self.name, status=status, body=body, headers=headers,
                                 delay_ms=delay_ms)


# -- assertions ------------------------------------------------------------------------------------
def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if value is not None else "—"
    return text if len(text) <= 200 else text[:199] + "…"


def format_changes(changes: Sequence[Change], a_label: str = "expected",
                   b_label: str = "captured") -> str:
    """Changes as readable lines: ``$.data.status: expected "completed", captured "failed"``."""
    lines = []
    for ch in changes:
        if ch.kind == "added":
            lines.append(f"  {ch.path}: only in {b_label}: {_show(ch.b)}")
        elif ch.kind == "removed":
            lines.append(f"  {ch.path}: missing from {b_label} ({a_label} {_show(ch.a)})")
        elif ch.kind == "type_changed":
            lines.append(f"  {ch.path}: type differs: {a_label} {_show(ch.a)} "
                         f"({type(ch.a).__name__}), {b_label} {_show(ch.b)} "
                         f"({type(ch.b).__name__})")
        else:
            lines.append(f"  {ch.path}: {a_label} {_show(ch.a)}, {b_label} {_show(ch.b)}")
    return "\n".join(lines)


def _body_of(actual: Any) -> tuple[Any, str]:
    """(parsed JSON, label) from a Capture, Delivery, bytes, str or already-parsed data."""
    if isinstance(actual, Capture):
        try:
            return json.loads(actual.body), f"capture #{actual.id}"
        except ValueError:
            raise AssertionError(f"capture #{actual.id} body is not JSON: "
                                 f"{_excerpt(actual.body)}") from None
    if isinstance(actual, Delivery):
        return json.loads(actual.body), f"delivery #{actual.id}"
    if isinstance(actual, bytes | bytearray | str):
        raw = actual.encode("utf-8") if isinstance(actual, str) else bytes(actual)
        try:
            return json.loads(raw), "body"
        except ValueError:
            raise AssertionError(f"body is not JSON: {_excerpt(raw)}") from None
    return actual, "value"


def _json_parts(value: Any) -> RequestParts:
    body = json.dumps(value).encode()
    return RequestParts(method="", path="", query="", headers=(), body=body,
                        content_type="application/json")


def assert_json_matches(actual: Any, expected: Any, ignore: Iterable[str] = (),
                        partial: bool = False) -> None:
    """Assert a captured JSON body equals ``expected`` structurally (key order and whitespace
    never count). ``ignore``: paths such as ``"$.timestamp"`` or ``"$.items[*].id"``.
    ``partial=True``: keys and list items only in the captured body are allowed.

    ``actual`` is a :class:`Capture`, a :class:`Delivery`, body bytes/text or parsed data.
    The failure message lists each difference by path, expected vs captured.
    """
    __tracebackhide__ = True
    value, label = _body_of(actual)
    changes = diff_requests(_json_parts(expected), _json_parts(value),
                            [f"body:{r}" if r.startswith("$") else r for r in ignore])
    if partial:
        changes = [c for c in changes if c.kind != "added"]
    if changes:
        n = len(changes)
        raise AssertionError(
            f"{label} JSON does not match expected ({n} difference{'s' if n != 1 else ''}, "
            f"expected vs captured):\n" + format_changes(changes))


def assert_request_matches(actual: Capture, expected: Capture | RequestParts,
                           ignore: Iterable[str] = ("header:date", "header:host",
                                                    "header:content-length")) -> None:
    """Assert two requests are the same structurally: method, path, query, headers and body
    (see :func:`inspector.diffing.diff_requests` for ``ignore`` rules)."""
    __tracebackhide__ = True
    exp = expected.parts() if isinstance(expected, Capture) else expected
    changes = diff_requests(exp, actual.parts(), ignore)
    if changes:
        n = len(changes)
        raise AssertionError(
            f"capture #{actual.id} differs from the expected request ({n} "
            f"difference{'s' if n != 1 else ''}, expected vs captured):\n"
            + format_changes(changes))
