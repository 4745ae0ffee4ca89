"""Who may talk to the UI, the API and the websocket.

A server on 127.0.0.1 is reachable from every web page the developer has open. Two attacks
matter: DNS rebinding (a foreign name that resolves to 127.0.0.1, so the browser sends that
name as Host) and cross-site requests (a page elsewhere posting to us; the Origin header names
it). The capture URLs are exempt: tunnels and vendors send their own Host and Origin.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class HostGuard:
    """Decides whether a Host and an Origin belong to this server."""

    def __init__(self, bind_host: str, ports: Iterable[int]) -> None:
        self.names = {n.lower() for n in LOCAL_NAMES} | {_bracket(bind_host).lower()}
        self.ports = set(ports)

    def add_port(self, port: int) -> None:
        self.ports.add(port)

    def host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        host = host.strip().lower()
        if host.startswith("["):
            name, _, rest = host.partition("]")
            name += "]"
            port = rest[1:] if rest.startswith(":") else ""
        else:
            name, _, port = host.partition(":")
        if name not in self.names:
            return False
        if not port:
            return False  # we never listen on 80/443, so a portless Host is someone else's name
        return port.isdigit() and int(port) in self.ports

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin (curl, scripts, same-origin GETs) is fine; a foreign one is not."""
        if origin is None or origin == "":
            return True
        if origin == "null":
            return False
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        return self.host_ok(parts.netloc)

    def check(self, method: str, host: str | None, origin: str | None,
              fetch_site: str | None = None, websocket: bool = False) -> tuple[int, str] | None:
        """None when allowed, else (status, message)."""
        if not self.host_ok(host):
            return 421, (f"Host {host!r} is not this server's own name; refusing it "
                         "(DNS rebinding protection). Use http://127.0.0.1:<port>/ or "
                         "http://localhost:<port>/.")
        if websocket or method.upper() not in SAFE_METHODS:
            if not self.origin_ok(origin):
                return 403, f"cross-site request from Origin {origin!r} refused"
            if fetch_site == "cross-site":
                return 403, "cross-site request refused (Sec-Fetch-Site)"
        return None
