"""Where a delivery may go: URL sanity, the loop guard, and vendors' https-only rule.

The loop guard exists because the mock provider can send to any URL, including this server.
Sending to one of our own capture URLs (``/in/<bin>``) is the point of the tool; sending to our
own API, UI or websocket would let a delivery (or a replayed capture) call ``/api/send`` or
``/api/captures/<id>/replay`` and loop forever, or act with the server's authority. So a target
on our own host and port must be a capture URL, after the same path normalisation the HTTP
client applies (``/in/x/../../api/send`` is ``/api/send``).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

CAPTURE_PATH = re.compile(r"/in/[A-Za-z0-9_-]{1,64}(/.*)?")
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost",
                         "ip6-loopback"})


class TargetRefused(ValueError):
    """A target URL the engine will not send to; the message says why, for the user."""


@dataclass
class OwnServer:
    """This server's own addresses: the bind host and every port it listens on."""

    host: str = "127.0.0.1"
    ports: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.names = set(LOCAL_NAMES)
        for name in (self.host.strip("[]").lower(), socket.gethostname().lower()):
            if name:
                self.names.add(name)

    def add_port(self, port: int | None) -> None:
        if port:
            self.ports.add(int(port))

    def _is_own_host(self, host: str) -> bool:
        host = host.strip("[]").lower().rstrip(".")
        if host in self.names or host.endswith(".localhost"):
            return True
        ip = _parse_ip(host)
        if ip is None:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback or ip.is_unspecified:
            return True
        bind = _parse_ip(self.host.strip("[]"))
        return bind is not None and (bind == ip or bind.is_unspecified and _is_local_ip(ip))

    def is_own(self, host: str, port: int) -> bool:
        return port in self.ports and self._is_own_host(host)


def _parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:  # the legacy forms resolvers accept: 127.1, 2130706433, 0x7f.1
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _is_local_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        return False
    return any(ipaddress.ip_address(str(info[4][0]).split("%")[0]) == ip for info in infos)


def normalised_path(path: str) -> str:
    """The path as it will reach a server: percent-decoded, dot segments removed."""
    decoded = unquote(path or "/")
    norm = posixpath.normpath(decoded)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    if decoded.endswith("/") and norm != "/":
        norm += "/"
    return norm


def check_url(url: str, own: OwnServer | None = None) -> str:
    """Validate a target URL; returns it stripped. Raises :class:`TargetRefused`."""
    url = (url or "").strip()
    if not url:
        raise TargetRefused("a target url is required")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetRefused(f"invalid target url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"target url must start with http:// or https://, got {url!r}")
    if not parts.hostname:
        raise TargetRefused(f"target url {url!r} has no host")
    if parts.username or parts.password:
        raise TargetRefused("target url must not carry credentials; use a header instead")
    if any(c in url for c in " \r\n\t"):
        raise TargetRefused(f"target url {url!r} contains whitespace")
    if own is not None:
        port = port or (443 if parts.scheme == "https" else 80)
        if own.is_own(parts.hostname, port):
            path = normalised_path(parts.path)
            if not CAPTURE_PATH.fullmatch(path):
                raise TargetRefused(
                    f"refusing to deliver to {url}: it is this server's own "
                    f"{'API' if path.startswith('/api') else 'UI, API or websocket'} route "
                    f"({path}); on this server only capture URLs /in/<bin>[/…] may be targets "
                    "(loop guard)")
    return url


def https_rule(vendor_name: str, https_only: bool, url: str) -> str | None:
    """The message when ``url`` breaks the vendor's https-only rule, else None."""
    if https_only and urlsplit(url).scheme != "https":
        return (f"{vendor_name} only delivers to https:// endpoints; this http:// target "
                "would be refused by the real vendor")
    return None


def own_ports(config: object, extra: Iterable[int] = ()) -> set[int]:
    """Every port the server listens on, from its config (``port``, and ``tls_port`` when TLS
    is on)."""
    ports = {int(p) for p in extra if p}
    if getattr(config, "port", None):
        ports.add(int(config.port))  # type: ignore[attr-defined]
    if getattr(config, "tls", False) and getattr(config, "tls_port", None):
        ports.add(int(config.tls_port))  # type: ignore[attr-defined]
    return ports
