"""Building the request of one attempt from a stored delivery, and previews (``sample``).

Three ways a delivery makes its headers (``headers_mode``):

- ``vendor``: the vendor's own, via ``provider.render.prepare`` on the body rendered once:
  fresh timestamp, signature and (Audian) delivery id on every attempt, the same message id
  (Standard Webhooks ``webhook-id``) on every attempt.
- ``fixed``: exactly the stored headers (a byte-exact replay or forward).
- ``resign``: the stored headers with the signature headers replaced by fresh ones
  (``signing.resign``) at each attempt's time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from .. import signing
from ..provider.render import Prepared, Rendered, prepare, render
from ..storage.deliveries import Delivery

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "proxy-connection", "host", "content-length",
    "expect", "http2-settings",
})
"""Not forwarded from a capture: they describe the hop it arrived on, not the message; the
client writes its own Host and Content-Length for the new hop."""


@dataclass
class AttemptRequest:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


def with_params(url: str, params: Sequence[tuple[str, str]] | None) -> str:
    """``url`` with URL parameters appended (form-encoded, as Rails' ``to_query`` does)."""
    if not params:
        return url
    base, _, fragment = url.partition("#")
    sep = "&" if urlsplit(base).query else ("" if base.endswith("?") else "?")
    out = base + sep + urlencode(list(params))
    return out + ("#" + fragment if fragment else "")


def replay_headers(headers: Sequence[Sequence[str]]) -> list[tuple[str, str]]:
    """A capture's headers minus hop-by-hop ones, order and repeats kept."""
    return [(str(n), str(v)) for n, v in headers if str(n).lower() not in HOP_BY_HOP]


def ensure_content_type(headers: list[tuple[str, str]], content_type: str | None
                        ) -> list[tuple[str, str]]:
    if content_type and not any(n.lower() == "content-type" for n, _ in headers):
        headers = [*headers, ("Content-Type", content_type)]
    return headers


def preview(vendor: Any, event: str, *, timestamp: int, seed: int | None = None,
            secret: str | None = None, method: str | None = None,
            overrides: Mapping[str, object] | None = None) -> tuple[Rendered, Prepared]:
    """What the vendor would send now, without sending it (``sample``)."""
    rendered = render(vendor, event, seed=seed, overrides=overrides, method=method)
    prepared = prepare(rendered, secret=secret, timestamp=timestamp)
    headers = ensure_content_type(list(prepared.headers), rendered.content_type)
    return rendered, Prepared(method=prepared.method, url_params=prepared.url_params,
                              headers=headers, body=prepared.body,
                              delivery_id=prepared.delivery_id, timestamp=timestamp,
                              attempt=1)


def rendered_from(d: Delivery, vendor: Any) -> Rendered:
    """The Rendered a stored vendor delivery was made from (same bytes; for prepare)."""
    ctx = d.context or {}
    now = datetime.fromisoformat(ctx["render_now"]) if ctx.get("render_now") else None
    # The payload is not needed to prepare an attempt (the body bytes are), so it is not
    # parsed again here.
    return Rendered(vendor=vendor, event=d.event or "", method=d.method,
                    content_type=d.content_type, body=d.body or b"",
                    url_params=list(d.url_params or []), payload=None,
                    static_headers=list(d.headers or []), seed=d.seed or 0,
                    now=now or datetime.now().astimezone(), message_id=d.msg_id,
                    batch=ctx.get("batch"))


def attempt_request(d: Delivery, *, number: int, timestamp: int, vendor: Any = None
                    ) -> AttemptRequest:
    """The method, URL, headers and body of attempt ``number`` made at ``timestamp``."""
    body = d.body or b""
    url = with_params(d.url, d.url_params)
    if d.headers_mode == "vendor":
        if vendor is None:
            raise LookupError(f"vendor {d.vendor!r} is no longer in the catalog")
        extra = [tuple(h) for h in (d.context or {}).get("extra_headers") or []]
        prepared = prepare(rendered_from(d, vendor), secret=d.secret, timestamp=timestamp,
                           attempt=number, extra_headers=extra)  # type: ignore[arg-type]
        headers = ensure_content_type(list(prepared.headers), d.content_type)
        return AttemptRequest(d.method, url, headers, body)
    headers = list(d.headers or [])
    if d.headers_mode == "resign":
        headers = signing.resign(d.scheme or "none", d.secret or "", body, headers, timestamp)
    return AttemptRequest(d.method, url, headers, body)
