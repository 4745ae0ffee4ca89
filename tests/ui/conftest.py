"""Browser fixtures: pytest-playwright driving Debian's Chromium against a real server.

``playwright install`` cannot download browsers here, so the launch points at the system
Chromium (see ENVIRONMENT.md). ``CHROMIUM`` overrides the path. The browser tests skip, rather
than fail, where no Chromium or no Playwright is installed.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:
    from playwright.sync_api import ConsoleMessage, Dialog, Page
except ImportError:  # the browser tests skip themselves (test_ui_browser.py)
    ConsoleMessage = Dialog = Page = object  # type: ignore[assignment,misc]

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1280, "height": 800},
            "color_scheme": "light", "timezone_id": "UTC"}


class PageProblems:
    """Everything a page did that it must not: dialogs (alert/confirm/prompt), uncaught errors,
    console errors (a CSP violation is reported there)."""

    def __init__(self, page: Page) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda err: self.errors.append(str(err)))
        page.on("console", self._console)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.console.append(msg.text)

    def assert_none(self, allow_console: Callable[[str], bool] = lambda _t: False) -> None:
        console = [c for c in self.console if not allow_console(c)]
        assert not self.dialogs, f"the page opened dialogs: {self.dialogs}"
        assert not self.errors, f"uncaught page errors: {self.errors}"
        assert not console, f"console errors: {console}"


@pytest.fixture
def problems(page: Page) -> Iterator[PageProblems]:
    yield PageProblems(page)


def open_inspector(page: Page, base_url: str, bin_name: str | None = None) -> None:
    """Load the page for a bin and wait until its websocket is open."""
    page.goto(f"{base_url}/" + (f"?bin={bin_name}" if bin_name else ""))
    wait_live(page)


def wait_live(page: Page, timeout: float = 10_000) -> None:
    page.wait_for_selector("body[data-ws='open']", state="attached", timeout=timeout)




def allow_http_errors(text: str) -> bool:
    """Console lines Chromium writes for API answers the test provokes on purpose."""
    return bool(re.search(r"status of (400|404|422)", text))


# The loopback "developer's app" the forwarding tests forward to, shared with tests/ui.
from ..test_forwarding import apps  # noqa: E402, F401
