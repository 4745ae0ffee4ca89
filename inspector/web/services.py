"""The objects a request handler needs, built once per app by the factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from ..config import Config
from ..live.hub import LiveHub
from ..storage import CaptureStore, Database
from .guard import HostGuard


@dataclass
class Services:
    config: Config
    db: Database
    store: CaptureStore
    hub: LiveHub
    guard: HostGuard
    extra: dict[str, Any] = field(default_factory=dict)

    def stopping(self) -> None:
        """The server has stopped accepting: requests still waiting (``?wait=`` sends,
        proxy-mode forwards) answer now, inside the graceful-shutdown window."""
        for hook in self.extra.get("stopping", []):
            hook()

    def close(self) -> None:
        self.stopping()
        self.hub.close()
        for closer in self.extra.get("closers", []):
            closer()
        self.db.close()


def services() -> Services:
    return current_app.extensions["inspector"]
