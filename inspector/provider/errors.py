"""Named errors of the mock provider.

`FixtureError` is a *record* of a broken fixture file (the catalog collects them and keeps going);
the other classes are raised to callers of `render`/`prepare` and carry messages meant to be shown
to a user as they are (the CLI prints them, the API returns them).
"""

from __future__ import annotations

from dataclasses import dataclass


class ProviderError(Exception):
    """Base class for every error the mock provider raises at a caller."""


class UnknownVendorError(ProviderError, LookupError):
    """A vendor id that the catalog does not hold."""

    def __init__(self, vendor: str, known: list[str] | None = None) -> None:
        hint = f" (known: {', '.join(known)})" if known else ""
        super().__init__(f"unknown vendor {vendor!r}{hint}")
        self.vendor = vendor


class UnknownEventError(ProviderError, LookupError):
    """An event name that the vendor does not send."""

    def __init__(self, vendor: str, event: str, known: list[str] | None = None) -> None:
        hint = f" (known: {', '.join(known)})" if known else ""
        super().__init__(f"vendor {vendor!r} has no event {event!r}{hint}")
        self.vendor = vendor
        self.event = event


class MethodNotAllowedError(ProviderError, ValueError):
    """An HTTP method the vendor (or this event) never uses."""


class OverrideError(ProviderError, ValueError):
    """An override whose path does not exist in the rendered payload, or a bad `--set` argument."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"override {path!r}: {message}")
        self.path = path


class RenderError(ProviderError):
    """A template could not be evaluated (e.g. a reference to a value an override made invalid)."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class TemplateError(ValueError):
    """A template expression that does not parse; turned into a FixtureError by the catalog."""


@dataclass(eq=True)
class FixtureError(Exception):
    """Where a fixture file is wrong, in the words a fixture author needs to fix it.

    `str()` reads `fixtures/audian/events/call.yaml:14: field 'data.duration': unknown generator
    'fakr.pyint'`; `file` is shown relative to the fixtures folder's parent so the message is
    the same on every machine.
    """

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        field = f" field '{self.field}':" if self.field else ""
        return f"{where}:{field} {self.message}"

    def to_public(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "field": self.field,
                "message": self.message, "text": str(self)}
