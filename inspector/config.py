"""Settings, declared once.

Every setting is a :class:`Setting` in :data:`SETTINGS`. The CLI builds its ``serve`` options
from this list, each option also reads ``INSPECTOR_<NAME>`` from the environment, and the
README's settings table is checked against it by a test, so a setting cannot exist in one
place and be missing in another.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

APP_NAME = "webhook-inspector"
MiB = 1024 * 1024


def data_dir() -> Path:
    """The per-user data directory: the default database and the local CA live here."""
    override = os.environ.get("INSPECTOR_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    flag: str | None = None  # defaults to --<name with dashes>
    is_flag: bool = False
    multiple: bool = False
    minimum: float | None = None  # numbers below it are refused (e.g. --max-deliveries 0)

    @property
    def envvar(self) -> str:
        return "INSPECTOR_" + self.name.upper()

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


SETTINGS: list[Setting] = [
    Setting("host", "127.0.0.1", "Interface to bind. Keep the loopback default unless you "
            "know who else can reach this machine."),
    # No port 0 ("any free port"): the host guard, the loop guard and the ready message
    # need the port before the server binds it (tests bind first: server.ServerThread).
    Setting("port", 8787, "Port for the UI, the API, the websocket and the capture URLs.", int,
            minimum=1),
    Setting("db", None, "SQLite database file (default: inspector.db in the user data dir)."),
    Setting("max_body", 10 * MiB, "Largest request body stored, in bytes; larger ones get 413.",
            int, minimum=1),
    Setting("max_captures", 10_000, "Captures kept per bin; the oldest are pruned beyond it.",
            int, minimum=1),
    Setting("max_deliveries", 10_000, "Deliveries kept, with their attempts: settled ones "
            "older than the newest this many are pruned; pending ones, and forwards whose "
            "capture is kept, stay.", int, minimum=1),
    Setting("workers", 1, "Server worker processes; more than one runs gunicorn. Live updates "
            "reach every websocket whichever worker captured the request.", int, minimum=1),
    Setting("threads", 128, "Threads per worker; each open websocket holds one, so keep it "
            "above the number of inspector tabs and live clients.", int, minimum=1),
    Setting("server", "auto", "HTTP server: auto (uvicorn for one worker, gunicorn for "
            "several, Werkzeug where neither is installed), uvicorn, gunicorn or werkzeug."),
    Setting("sync", "normal", "When SQLite calls fsync: normal (at checkpoints: a power loss "
            "cannot corrupt the database) or off (never: a crash or kill of the tool still "
            "loses nothing answered, fsync stalls no capture, but a power loss may damage the "
            "file)."),
    Setting("retry_scale", 1.0, "Multiply every vendor's retry delays (jitter included); "
            "0 retries at once.", float, minimum=0),
    Setting("strict_vendor_rules", False, "Refuse what the vendor would refuse (e.g. http:// "
            "targets for Audian and Audata) instead of warning.", bool, is_flag=True),
    Setting("max_response_delay", 30.0, "Cap, in seconds, on a bin's configured response delay.",
            float, minimum=0),
    Setting("fixtures", None, "Folder of vendor fixtures to use instead of the shipped ones "
            "(copy fixtures/ and edit it)."),
    Setting("open", False, "Open the inspector in the default browser once the server is up.",
            bool, is_flag=True),
    Setting("tls", False, "Also serve everything over HTTPS on --tls-port, with a certificate "
            "from a local CA (see 'webhook-inspector ca').", bool, is_flag=True),
    Setting("tls_port", 8443, "Port for HTTPS (with --tls).", int, minimum=1),
    Setting("tls_name", None, "Extra names (host names or IP addresses, comma-separated) for "
            "the HTTPS certificate, besides localhost, 127.0.0.1 and ::1."),
    Setting("tls_cert", None, "Your own certificate (PEM) for HTTPS instead of one from the "
            "local CA; implies --tls."),
    Setting("tls_key", None, "The private key (PEM, unencrypted) for --tls-cert."),
    Setting("forward", (), "Forward each capture of BIN to URL as well (BIN=URL, repeatable; "
            "added to the bin's saved forwarding rules).", multiple=True),
]

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass
class Config:
    """Resolved settings for one server. Tests build it directly."""

    host: str = "127.0.0.1"
    port: int = 8787
    db: str | None = None
    max_body: int = 10 * MiB
    max_captures: int = 10_000
    max_deliveries: int = 10_000
    workers: int = 1
    threads: int = 128
    server: str = "auto"
    sync: str = "normal"
    retry_scale: float = 1.0
    strict_vendor_rules: bool = False
    max_response_delay: float = 30.0
    fixtures: str | None = None
    open: bool = False
    tls: bool = False
    tls_port: int = 8443
    tls_name: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    forward: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def db_path(self) -> Path:
        return Path(self.db) if self.db else data_dir() / "inspector.db"

    @classmethod
    def from_env(cls, **overrides: Any) -> Config:
        """Settings from INSPECTOR_* variables, then explicit overrides (e.g. from flags)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        values: dict[str, Any] = {}
        for s in SETTINGS:
            raw = os.environ.get(s.envvar)
            # A setting given explicitly is not read from the environment at all: a bad
            # value there must not stop a command that overrides it (or never uses it).
            if raw is not None and raw != "" and s.name not in given:
                values[s.name] = parse_value(s, raw)
        values.update(given)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def parse_value(setting: Setting, raw: str) -> Any:
    """Parse an environment string for a setting, with an error that names the variable."""
    if setting.multiple:  # several values: whitespace-separated, as click reads them
        return tuple(raw.split())
    try:
        if setting.type is bool:
            low = raw.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        value = setting.type(raw)
        if setting.type is float and not math.isfinite(value):
            raise ValueError(raw)
    except ValueError:
        raise ValueError(
            f"{setting.envvar}={raw!r} is not a valid {setting.type.__name__}"
        ) from None
    if setting.minimum is not None and value < setting.minimum:
        raise ValueError(f"{setting.envvar}={raw!r}: must be at least {setting.minimum:g}")
    return value
