"""The serve command as a user runs it: ready message, settings, port clash, Ctrl-C, SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import websocket

from inspector.config import SETTINGS, Config

from .conftest import free_port, start_cli_server, stop_process


def test_help_lists_every_setting_with_its_env_var() -> None:
    out = subprocess.run([sys.executable, "-m", "inspector", "serve", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for s in SETTINGS:
        assert s.option in out, s.name
        assert s.envvar in out, s.name


def test_readme_documents_every_setting() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for s in SETTINGS:
        assert f"`{s.option}`" in readme and f"`{s.envvar}`" in readme, s.name


def test_config_from_env_and_overrides(monkeypatch) -> None:
    monkeypatch.setenv("INSPECTOR_PORT", "9999")
    monkeypatch.setenv("INSPECTOR_STRICT_VENDOR_RULES", "yes")
    monkeypatch.setenv("INSPECTOR_RETRY_SCALE", "0")
    cfg = Config.from_env(max_body=5)
    assert (cfg.port, cfg.strict_vendor_rules, cfg.retry_scale, cfg.max_body) == (
        9999, True, 0.0, 5)
    assert Config.from_env(port=1234).port == 1234  # a flag beats the environment
    monkeypatch.setenv("INSPECTOR_PORT", "eighty")
    try:
        Config.from_env()
    except ValueError as exc:
        assert "INSPECTOR_PORT" in str(exc)
    else:
        raise AssertionError("bad env value accepted")


@pytest.mark.parametrize(("args", "env", "named"), [
    (["--max-deliveries", "0"], {}, "--max-deliveries"),
    (["--threads", "-4"], {}, "--threads"),
    ([], {"INSPECTOR_MAX_CAPTURES": "0"}, "INSPECTOR_MAX_CAPTURES"),
    ([], {"INSPECTOR_RETRY_SCALE": "-1"}, "INSPECTOR_RETRY_SCALE"),
    (["--max-response-delay", "nan"], {}, "--max-response-delay"),  # nan passes any range
    # Port 0 served under uvicorn with every API call refused (421: the host guard knew only
    # port 0) and ":0" in the ready message.
    (["--port", "0"], {}, "--port"),
])
def test_counts_below_their_minimum_are_refused(tmp_path, args, env, named) -> None:
    # --max-deliveries 0 once started a server that pruned every settled delivery.
    r = subprocess.run([sys.executable, "-m", "inspector", "serve", "--port", str(free_port()),
                        "--db", str(tmp_path / "x.db"), *args],
                       capture_output=True, text=True, timeout=30, env={**os.environ, **env})
    assert r.returncode == 2, r.stdout + r.stderr
    assert named in r.stderr and ("range" in r.stderr or "finite" in r.stderr)
    assert not (tmp_path / "x.db").exists()


def test_a_flag_overrides_a_bad_environment_value_and_send_checks_its_own(tmp_path) -> None:
    env = {**os.environ, "INSPECTOR_MAX_DELIVERIES": "0", "INSPECTOR_DATA_DIR": str(tmp_path)}
    port = free_port()
    proc = start_cli_server(tmp_path / "f.db", port, "--max-deliveries", "50", env=env)
    stop_process(proc)
    assert proc.returncode == 0
    send = [sys.executable, "-m", "inspector", "send", "audian", "call.completed",
            "--to", "http://127.0.0.1:9/x", "--db", str(tmp_path / "s.db")]
    for extra, named in ((["--retry-scale", "-5"], "--retry-scale"),
                         (["--timeout", "0"], "--timeout")):
        r = subprocess.run([*send, *extra], capture_output=True, text=True, timeout=30,
                           env=env)
        assert r.returncode == 2 and named in r.stderr, r.stderr
    # A bad value of a setting the command reads from the environment: one line, exit 2.
    r = subprocess.run(send, capture_output=True, text=True, timeout=30,
                       env={**env, "INSPECTOR_MAX_CAPTURES": "0"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip() == "error: INSPECTOR_MAX_CAPTURES='0': must be at least 1"


def test_env_minimum_applies_without_the_cli(monkeypatch) -> None:
    monkeypatch.setenv("INSPECTOR_MAX_DELIVERIES", "0")
    with pytest.raises(ValueError, match="INSPECTOR_MAX_DELIVERIES='0': must be at least 1"):
        Config.from_env()
    assert Config.from_env(max_deliveries=5).max_deliveries == 5  # overridden: not parsed
    monkeypatch.setenv("INSPECTOR_RETRY_SCALE", "nan")
    with pytest.raises(ValueError, match="INSPECTOR_RETRY_SCALE='nan' is not a valid float"):
        Config.from_env(max_deliveries=5)


def test_ready_message_env_settings_and_persistence(tmp_path) -> None:
    port = free_port()
    db = tmp_path / "env.db"
    env = {"INSPECTOR_MAX_BODY": "10", "INSPECTOR_DB": str(db)}
    cmd = [sys.executable, "-m", "inspector", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **env}, start_new_session=True)
    try:
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "ready" in lines[0]
        assert f"http://127.0.0.1:{port}/" in lines[1]
        assert f"http://127.0.0.1:{port}/in/" in lines[2]
        assert httpx.post(f"http://127.0.0.1:{port}/in/e", content=b"x" * 11).status_code == 413
        assert httpx.post(f"http://127.0.0.1:{port}/in/e", content=b"x" * 10).status_code == 200
    finally:
        stop_process(proc)
    assert db.exists()
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM captures").fetchone()[0]
    assert rows == 1


def test_port_in_use_is_one_clear_line(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "inspector", "serve", "--port", str(port),
                            "--db", str(tmp_path / "x.db")], capture_output=True, text=True,
                           timeout=30)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert str(port) in err[0] and "--port" in err[0]


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_ctrl_c_stops_within_two_seconds_with_websocket_open(tmp_path, kind: str) -> None:
    port = free_port()
    proc = start_cli_server(tmp_path / "c.db", port, "--server", kind)
    ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=5,
                                     origin=f"http://127.0.0.1:{port}")
    ws.recv()
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=10)
    assert time.monotonic() - t0 < 2.0
    ws.close()


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_ctrl_c_answers_a_waiting_send_with_its_pending_delivery(tmp_path, kind) -> None:
    # POST /api/send?wait=30 to a target that is down: Ctrl-C used to hold that client for
    # the whole graceful timeout and then cut it off with a 500 (uvicorn).
    port = free_port()
    proc = start_cli_server(tmp_path / "w.db", port, "--server", kind)
    answer: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answer.append(httpx.post(
        f"http://127.0.0.1:{port}/api/send?wait=30", timeout=30,
        json={"vendor": "audian", "event": "call.completed",
              "url": f"http://127.0.0.1:{free_port()}/down"})))
    sender.start()
    deadline = time.monotonic() + 10
    while not sqlite3.connect(tmp_path / "w.db").execute(
            "SELECT COUNT(*) FROM delivery_attempts").fetchone()[0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    sender.join(10)
    proc.wait(timeout=10)
    assert time.monotonic() - t0 < 1.0
    assert answer and answer[0].status_code == 201, answer
    d = answer[0].json()["delivery"]
    assert d["status"] == "pending" and d["attempts"][0]["error"] == "connection refused"
    out = proc.stdout.read().decode()
    assert "Traceback" not in out and "ERROR" not in out, out


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_sigkill_mid_load_loses_no_acknowledged_request(tmp_path, kind: str) -> None:
    """Every request answered 2xx is in the database after a SIGKILL and a restart."""
    port = free_port()
    db = tmp_path / "crash.db"
    proc = start_cli_server(db, port, "--server", kind)
    acked: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(timeout=5) as client:
            n = 0
            while not stop.is_set():
                body = f"w{worker}-{n}".encode()
                n += 1
                try:
                    r = client.post(f"http://127.0.0.1:{port}/in/crash", content=body)
                except httpx.HTTPError:
                    continue
                if r.status_code == 200:
                    with lock:
                        acked.append(body)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20  # a loaded machine answers slower: wait for real load
    while time.monotonic() < deadline and len(acked) < 200:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # master and worker, mid-load
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 200
    proc = start_cli_server(db, port, "--server", kind)
    try:
        stop_process(proc)
    finally:
        pass
    con = sqlite3.connect(db)
    kept = {bytes(r[0]) for r in con.execute("SELECT body FROM captures WHERE bin = 'crash'")}
    missing = [b for b in acked if b not in kept]
    assert not missing, f"{len(missing)} acknowledged requests lost, e.g. {missing[:3]}"


def test_broken_fixture_is_reported_at_start_and_never_stops_the_server(tmp_path) -> None:
    import shutil

    root = tmp_path / "fixtures"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures", root)
    (root / "github" / "vendor.yaml").write_text("name: [unclosed\n")
    port = free_port()
    cmd = [sys.executable, "-m", "inspector", "serve", "--port", str(port), "--db",
           str(tmp_path / "f.db"), "--fixtures", str(root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        seen = ""
        deadline = time.monotonic() + 60
        # The check runs beside the server: its report may come before or after "ready".
        while not ("vendor.yaml" in seen and "ready" in seen) and time.monotonic() < deadline:
            seen += proc.stdout.readline()
        assert "fixtures have problems" in seen, seen
        assert "github/vendor.yaml:2: YAML syntax error" in seen, seen
        vendors = httpx.get(f"http://127.0.0.1:{port}/api/vendors").json()["vendors"]
        ids = {v["id"] for v in vendors}
        assert "audian" in ids and "github" not in ids
    finally:
        stop_process(proc)


def test_sync_setting_reaches_the_writer_and_bad_values_are_one_line(tmp_path) -> None:
    from inspector.storage import Database

    for mode, pragma in (("off", 0), ("normal", 1)):
        db = Database(tmp_path / f"{mode}.db", sync=mode)
        try:
            assert db.write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]) \
                == pragma
        finally:
            db.close()
    r = subprocess.run([sys.executable, "-m", "inspector", "serve", "--port", str(free_port()),
                        "--db", str(tmp_path / "x.db"), "--sync", "sometimes"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --sync must be one of normal, off, not 'sometimes'"
