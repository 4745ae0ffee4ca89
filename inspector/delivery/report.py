"""Plain-text views of requests, attempts and deliveries, for the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

from ..storage.deliveries import Attempt, Delivery


def format_request(method: str, url_params: Sequence[tuple[str, str]],
                   headers: Sequence[Sequence[str]], body: bytes, url: str = "") -> str:
    """An HTTP-request-like listing: ``POST <url>?<params>``, the headers, a blank line, the
    body exactly (undecodable bytes shown as ``\\xNN``)."""
    target = url or ""
    if url_params:
        target += ("&" if "?" in target else "?") + urlencode(list(url_params))
    lines = [f"{method} {target}".rstrip()]
    lines += [f"{name}: {value}" for name, value in headers]
    text = body.decode("utf-8", errors="backslashreplace")
    return "\n".join(lines) + "\n\n" + text


def format_attempt(a: Attempt, verbose: bool = False) -> str:
    result = f"HTTP {a.response_status}" if a.response_status is not None else "no response"
    if a.error:
        result = a.error if a.response_status is None else f"{result} ({a.error})"
    line = f"attempt {a.number}  {a.started_at}  {result}  {a.duration_ms:.1f} ms  {a.outcome}"
    if not verbose:
        return line
    out = [line, "  > " + f"{a.method} {a.url}"]
    out += [f"  > {n}: {v}" for n, v in a.request_headers]
    if a.response_status is not None:
        out += [f"  < {n}: {v}" for n, v in a.response_headers or []]
        excerpt = (a.response_body or b"").decode("utf-8", errors="backslashreplace")
        if excerpt:
            out += ["  < " + row for row in excerpt.splitlines()[:20]]
    return "\n".join(out)


def format_outcome(d: Delivery) -> str:
    n = d.attempt_count
    plural = "s" * (n != 1)
    if d.status == "delivered":
        return f"delivered after {n} attempt{plural} (delivery {d.id})"
    if d.status == "failed":
        return f"failed after {n} attempt{plural} (delivery {d.id}): {d.error}"
    return f"still pending after {n} attempt{plural} (delivery {d.id})"
