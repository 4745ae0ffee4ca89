"""pytest plugin: test webhook integrations against an in-process webhook-inspector.

Registered through the ``pytest11`` entry point, so installing the package makes these fixtures
available to every test suite (CONTRACT.md, "Testing"):

- ``webhook_inspector`` (session): the real server on a free loopback port, a temporary database,
  retries at once (``retry_scale=0``). ``.url``, ``.client`` (:class:`~inspector.client.
  InspectorClient`), ``.bin(name=None)``. Bins made with ``.bin()`` during a test are deleted
  after it unless made with ``keep=True``.
- ``webhook_bin``: a fresh, uniquely named bin per test: ``.url``, ``.wait_for(count=1,
  timeout=5.0, where=None)``, ``.last()``, ``.json()``, ``.respond(status, …)``.
- ``send_webhook(vendor, event, to, secret=None, seed=None, overrides=None)``: renders a vendor
  event, delivers it (with the vendor's retries, at once) and returns the settled
  :class:`~inspector.client.Delivery` (``.status``, ``.attempts[i].status_code``, …).
- ``serve_wsgi(app)``: serves a WSGI app (Flask, Django, plain WSGI) on a free loopback port for
  the test and returns its base URL, so the mock provider can deliver to it.

Assertion helpers (``assert_json_matches``, ``assert_request_matches``) are re-exported here from
:mod:`inspector.client`. Nothing is started or imported beyond pytest until a fixture is used:
this module is loaded by every pytest run in an environment where the package is installed.

Set ``WEBHOOK_INSPECTOR_URL`` to use an already running server instead of starting one (its
retry delays are then its own).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .client import Delivery, InspectorClient, WebhookBin

__all__ = ["WebhookInspector", "start_inspector", "unique_bin_name", "wsgi_server"]

_LAZY = {"assert_json_matches", "assert_request_matches", "format_changes"}
_STASH_KEY: pytest.StashKey[WebhookInspector] = pytest.StashKey()


def __getattr__(name: str) -> Any:  # the helpers, without importing httpx at plugin load
    if name in _LAZY:
        from . import client

        return getattr(client, name)
    raise AttributeError(name)


def unique_bin_name(hint: str = "bin") -> str:
    """A valid bin name (``[A-Za-z0-9_-]{1,64}``) from a hint, unique per call."""
    base = re.sub(r"[^A-Za-z0-9_-]+", "-", hint).strip("-_")[:48] or "bin"
    return f"{base}-{uuid.uuid4().hex[:10]}"


class WebhookInspector:
    """A webhook-inspector for tests: its ``url``, its API ``client`` and bins by name."""

    def __init__(self, url: str, stop: Callable[[], None] | None = None,
                 db_path: Path | None = None) -> None:
        from .client import InspectorClient

        self.url = url.rstrip("/")
        self.client: InspectorClient = InspectorClient(self.url)
        self.db_path = db_path
        self._stop = stop
        self._lock = threading.Lock()
        self._temporary: list[str] = []

    def __repr__(self) -> str:
        return f"WebhookInspector({self.url!r})"

    def bin(self, name: str | None = None, *, keep: bool = False) -> WebhookBin:
        """A bin handle; a unique name when ``name`` is None. Unless ``keep``, the bin is
        deleted after the current test (by the plugin) or by :meth:`cleanup`."""
        name = name or unique_bin_name()
        if not keep:
            with self._lock:
                self._temporary.append(name)
        return self.client.bin(name)

    def send(self, vendor: str, event: str, to: str | WebhookBin, **kw: Any) -> Delivery:
        """:meth:`InspectorClient.send` with ``to`` a URL or a bin; waits until settled."""
        return self.client.send(vendor, event, str(to), **kw)

    def cleanup(self) -> None:
        """Delete the bins made with :meth:`bin` (without ``keep``) since the last cleanup."""
        with self._lock:
            names, self._temporary = self._temporary, []
        for name in names:
            with contextlib.suppress(Exception):
                self.client.delete_bin(name)

    def stop(self) -> None:
        self.cleanup()
        self.client.close()
        if self._stop is not None:
            stop, self._stop = self._stop, None
            stop()

    def __enter__(self) -> WebhookInspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_inspector(db_path: str | Path | None = None, *, retry_scale: float = 0.0,
                    **settings: Any) -> WebhookInspector:
    """Start the real app on a free loopback port in this process (outside pytest too).

    Without ``db_path`` the database lives in a temporary directory removed on ``stop()``.
    ``settings`` are :class:`inspector.config.Config` fields (``max_body``, …).
    """
    from .config import Config
    from .server import ServerThread

    tmp: str | None = None
    if db_path is None:
        tmp = tempfile.mkdtemp(prefix="webhook-inspector-")
        db_path = Path(tmp) / "inspector.db"
    config = Config(host="127.0.0.1", port=0, db=str(db_path), retry_scale=retry_scale,
                    server="werkzeug", **settings)
    server = ServerThread(config).start()

    def stop() -> None:
        server.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    return WebhookInspector(server.url, stop, Path(db_path))


@contextlib.contextmanager
def wsgi_server(app: Any, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve a WSGI app on a free port in a thread; yields its base URL (no trailing slash)."""
    from werkzeug.serving import make_server

    server = make_server(host, 0, app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True, name="serve_wsgi")
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- fixtures --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def webhook_inspector(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebhookInspector]:
    """A webhook-inspector for the whole session (see the module docstring)."""
    external = os.environ.get("WEBHOOK_INSPECTOR_URL")
    if external:
        inspector = WebhookInspector(external)
    else:
        db = tmp_path_factory.mktemp("webhook-inspector") / "inspector.db"
        inspector = start_inspector(db)
    request.config.stash[_STASH_KEY] = inspector
    try:
        yield inspector
    finally:
        del request.config.stash[_STASH_KEY]
        inspector.stop()


@pytest.fixture(autouse=True)
def _webhook_inspector_cleanup(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, delete the bins it made, if the inspector was started at all."""
    yield
    inspector = request.config.stash.get(_STASH_KEY, None)
    if inspector is not None:
        inspector.cleanup()


@pytest.fixture
def webhook_bin(webhook_inspector: WebhookInspector,
                request: pytest.FixtureRequest) -> WebhookBin:
    """A fresh bin for this test, named after it; deleted afterwards."""
    return webhook_inspector.bin(unique_bin_name(request.node.name))


@pytest.fixture
def send_webhook(webhook_inspector: WebhookInspector) -> Callable[..., Delivery]:
    """``send_webhook(vendor, event, to, secret=None, seed=None, overrides=None, method=None)``
    delivers a vendor-shaped, signed event to ``to`` (a URL or a bin) and returns the settled
    delivery."""

    def send(vendor: str, event: str, to: str | WebhookBin, secret: str | None = None,
             seed: int | None = None, overrides: dict[str, Any] | None = None,
             method: str | None = None, timeout: float | None = None) -> Delivery:
        return webhook_inspector.client.send(vendor, event, str(to), secret=secret, seed=seed,
                                             overrides=overrides, method=method, wait=True,
                                             timeout=timeout)

    return send


@pytest.fixture
def serve_wsgi() -> Iterator[Callable[[Any], str]]:
    """``serve_wsgi(app)`` serves a WSGI app for this test and returns its base URL."""
    with contextlib.ExitStack() as stack:
        yield lambda app: stack.enter_context(wsgi_server(app))
