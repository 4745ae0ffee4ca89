"""What a delivery records before its first attempt, for each way one is made: a vendor's event
(send, emit), a stored capture (replay), an earlier delivery (redeliver)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx

from .. import signing
from ..storage.captures import Capture
from ..storage.deliveries import Delivery, NewDelivery
from .policy import RetryPolicy
from .requests import replay_headers


class ReplayError(ValueError):
    """A replay request that cannot be made (no secret to re-sign with, unknown scheme, …)."""


def vendor_delivery(vendor: Any, rendered: Any, url: str, *, policy: RetryPolicy,
                    secret: str | None = None, overrides: Mapping[str, object] | None = None,
                    source: str = "send", extra_headers: Sequence[tuple[str, str]] = (),
                    context: Mapping[str, Any] | None = None, batch: int | None = None
                    ) -> NewDelivery:
    """The body rendered once, the vendor's fixed headers; the per-attempt headers and the
    signature are made at each attempt (``headers_mode='vendor'``)."""
    ctx: dict[str, Any] = dict(context or {})
    ctx["render_now"] = rendered.now.isoformat()
    if extra_headers:
        ctx["extra_headers"] = [list(h) for h in extra_headers]
    if batch is not None:
        ctx["batch"] = batch
    return NewDelivery(
        source=source, url=url, method=rendered.method, body=rendered.body,
        policy=policy.to_dict(), headers=list(rendered.static_headers),
        headers_mode="vendor", vendor=vendor.id, event=rendered.event,
        url_params=list(rendered.url_params) or None, scheme=vendor.signing,
        secret=vendor.demo_secret if secret is None else secret, msg_id=rendered.message_id,
        seed=rendered.seed, overrides=dict(overrides) if overrides else None,
        content_type=rendered.content_type, context=ctx,
    )


def replay_delivery(capture: Capture, url: str, *, catalog: Any, policy: RetryPolicy,
                    timestamp: int, resign: bool = False, secret: str | None = None,
                    scheme: str | None = None, body: bytes | None = None,
                    headers: Sequence[Sequence[str]] | None = None, source: str = "replay"
                    ) -> NewDelivery:
    """A capture sent again byte for byte; see ``DeliveryEngine.replay``."""
    if capture.query and not httpx.URL(url).query:
        url = f"{url}?{capture.query}" if not url.endswith("?") else url + capture.query
    hdrs = replay_headers(headers if headers is not None else capture.headers or [])
    payload = (capture.body or b"") if body is None else body
    mode, used_scheme = "fixed", None
    warnings: list[str] = []
    if resign:
        used_scheme = scheme or signing.detect_scheme(hdrs)
        if not used_scheme:
            raise ReplayError("the capture carries no signature header this tool knows; "
                              "give \"scheme\" to re-sign it")
        if used_scheme not in signing.SCHEMES:
            raise ReplayError(f"unknown signing scheme {used_scheme!r} (known: "
                              f"{', '.join(sorted(signing.SCHEMES))})")
        if not secret:
            demo = next((v for v in catalog.vendors.values() if v.signing == used_scheme),
                        None)
            if demo is None:
                raise ReplayError("\"secret\" is required to re-sign")
            secret = demo.demo_secret
            warnings.append(f"re-signed with {demo.name}'s demo secret (no secret given)")
        try:
            signing.sign(used_scheme, secret, payload, timestamp)
        except signing.InvalidSecretError as exc:
            raise ReplayError(str(exc)) from None
        mode = "resign"
    return NewDelivery(
        source=source, url=url, method=capture.method, body=payload, policy=policy.to_dict(),
        headers=hdrs, headers_mode=mode, scheme=used_scheme,
        secret=secret if resign else None,
        content_type=next((v for n, v in hdrs if n.lower() == "content-type"), None),
        capture_id=capture.id, warnings=warnings,
        context={"bin": capture.bin, "path": capture.path},
    )


def redelivery(old: Delivery, *, scale: float) -> NewDelivery:
    """The same request as a new delivery: same body and message id, the current scale."""
    policy = RetryPolicy.from_dict(old.policy or {})
    return NewDelivery(
        source=old.source, url=old.url, method=old.method, body=old.body or b"",
        policy=replace(policy, scale=scale).to_dict(),
        headers=list(old.headers or []), headers_mode=old.headers_mode or "fixed",
        vendor=old.vendor, event=old.event, url_params=old.url_params, scheme=old.scheme,
        secret=old.secret, msg_id=old.msg_id, seed=old.seed, overrides=old.overrides,
        content_type=old.content_type, capture_id=old.capture_id,
        redelivery_of=old.id, context=old.context,
    )
