"""Shared fixtures: real servers on 127.0.0.1 over real SQLite files, and raw HTTP helpers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from inspector.config import Config
from inspector.server import ServerThread

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def raw_http(port: int, data: bytes, timeout: float = 10.0) -> RawResponse:
    """Send exactly these bytes on a fresh connection and read one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = [tuple(x.split(": ", 1)) for x in lines[1:] if ": " in x]
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
        while length is not None and len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        return RawResponse(status, headers, rest[:length] if length is not None else rest)


class Served:
    """A running server, in-process (Werkzeug) or as a subprocess (the real CLI)."""

    def __init__(self, url: str, port: int, db: Path, kind: str) -> None:
        self.url, self.port, self.db, self.kind = url, port, db, kind

    def get(self, path: str, **kw):  # noqa: ANN201
        import httpx

        return httpx.get(self.url + path, timeout=10, **kw)

    def raw(self, data: bytes) -> RawResponse:
        return raw_http(self.port, data)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator:
    started: list[ServerThread] = []

    def make(**overrides: object) -> ServerThread:
        cfg = Config(host="127.0.0.1", port=0, db=str(tmp_path / "inspector.db"))
        for k, v in overrides.items():
            setattr(cfg, k, v)
        srv = ServerThread(cfg).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def server(make_server) -> Served:
    srv = make_server()
    return Served(srv.url, srv.port, Path(srv.config.db), "werkzeug")


def start_cli_server(db: Path, port: int, *extra: str, env: dict | None = None
                     ) -> subprocess.Popen:
    """``python -m inspector serve`` as a user would run it; returns once /healthz answers."""
    cmd = [sys.executable, "-m", "inspector", "serve", "--port", str(port), "--db", str(db),
           *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    wait_healthy(port, proc)
    return proc


def wait_healthy(port: int, proc: subprocess.Popen | None = None, timeout: float = 20) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become healthy")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _cli_server(tmp_path_factory: pytest.TempPathFactory, server: str) -> Iterator[Served]:
    port = free_port()
    db = tmp_path_factory.mktemp(server) / f"{server}.db"
    proc = start_cli_server(db, port, "--server", server)
    try:
        yield Served(f"http://127.0.0.1:{port}", port, db, server)
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def gunicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real CLI under gunicorn, shared by the tests of a session (it takes ~1 s to start)."""
    yield from _cli_server(tmp_path_factory, "gunicorn")


@pytest.fixture(scope="session")
def uvicorn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The real CLI under uvicorn (the default server), shared by the tests of a session."""
    yield from _cli_server(tmp_path_factory, "uvicorn")


@pytest.fixture(params=["werkzeug", "gunicorn", "uvicorn"])
def any_server(request: pytest.FixtureRequest, make_server) -> Served:
    """The capture path under every server: they hand bodies and headers over differently."""
    if request.param in ("gunicorn", "uvicorn"):
        return request.getfixturevalue(f"{request.param}_server")
    srv = make_server()
    return Served(srv.url, srv.port, Path(srv.config.db), "werkzeug")
