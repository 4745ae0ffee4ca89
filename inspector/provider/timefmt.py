"""Times in templates: durations (`30d..4y`), zones and the output formats vendors use.

While a payload renders, a time is kept as a `Stamp` (an aware datetime plus how to print it) so
that `{{ time after sender.created_at }}` can compare real instants, whatever format the other
field prints in. Stamps become strings or integers only when the payload is finished.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FORMATS = ("iso", "iso_ms", "iso_us", "iso_z", "iso_ms_z", "iso_us_z", "unix", "unix_ms",
           "date", "datetime")
"""`iso*` print the zone's offset (`+11:00`), `*_z` print UTC with `Z`; `unix*` are integers;
`date` is `YYYY-MM-DD`; `datetime` is `YYYY-MM-DD HH:MM:SS` in the zone (no offset)."""

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400,
          "y": 365 * 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")


@dataclass(frozen=True, slots=True)
class Stamp:
    """An instant and the way it prints; `at` is always timezone-aware."""

    at: datetime
    fmt: str
    zone: tzinfo

    def render(self) -> str | int:
        return format_time(self.at, self.fmt, self.zone)

    def __str__(self) -> str:
        return str(self.render())


def parse_duration(text: str) -> float:
    """`90s`, `15m`, `2h`, `30d`, `4y` (365 days), `250ms` -> seconds."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r}: use a number and a unit (ms s m h d w y),"
                         " e.g. 30d")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_range(text: str) -> tuple[float, float]:
    """`1d..30d` -> (86400, 2592000); a single duration is an exact range."""
    lo, sep, hi = text.partition("..")
    a = parse_duration(lo)
    b = parse_duration(hi) if sep else a
    if b < a:
        raise ValueError(f"range {text!r} goes backwards")
    return a, b


@cache
def zone(name: str) -> tzinfo:
    """A zone by IANA name (`Australia/Melbourne`), `UTC`, or a fixed offset (`+10:00`)."""
    if name.upper() in ("UTC", "Z"):
        return UTC
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", name)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-delta if m.group(1) == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def format_time(at: datetime, fmt: str, tz: tzinfo) -> str | int:
    """Print `at` as `fmt` (one of FORMATS)."""
    if fmt == "unix":
        return int(at.timestamp())
    if fmt == "unix_ms":
        return int(at.timestamp() * 1000)
    if fmt.endswith("_z"):
        spec = {"iso_z": "seconds", "iso_ms_z": "milliseconds", "iso_us_z": "microseconds"}[fmt]
        return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec=spec) + "Z"
    local = at.astimezone(tz)
    if fmt == "date":
        return local.date().isoformat()
    if fmt == "datetime":
        return local.strftime("%Y-%m-%d %H:%M:%S")
    spec = {"iso": "seconds", "iso_ms": "milliseconds", "iso_us": "microseconds"}[fmt]
    return local.isoformat(timespec=spec)


def as_instant(value: object) -> datetime | None:
    """Read back a time that may have become plain data (an override, a `shared` value)."""
    if isinstance(value, Stamp):
        return value.at
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        # Unix seconds, or milliseconds when too large to be seconds (year > 5000).
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None
