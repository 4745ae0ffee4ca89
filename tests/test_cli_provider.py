"""The provider's CLI: vendors, sample, send (exit codes, printed attempts), fixtures check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from inspector import signing
from inspector.cli import main
from inspector.provider import default_catalog, default_root
from inspector.storage import Database
from inspector.storage.deliveries import DeliveryStore
from tests.test_delivery import Sink, closed_port, fail_then, header


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Invoke the CLI in-process, never touching the user's data directory."""
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    for name in ("INSPECTOR_RETRY_SCALE", "INSPECTOR_STRICT_VENDOR_RULES", "INSPECTOR_DB"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str):  # noqa: ANN202
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_vendors_lists_vendors_and_events(run) -> None:
    r = run("vendors")
    assert r.exit_code == 0
    assert "audian" in r.output and "call.completed" in r.output
    data = json.loads(run("vendors", "--json").output)
    assert "audian" in {v["id"] for v in data["vendors"]}


def test_sample_prints_the_request_deterministically(run) -> None:
    a = run("sample", "audian", "call.completed", "--seed", "4", "--set", "data.duration=77")
    b = run("sample", "audian", "call.completed", "--seed", "4", "--set", "data.duration=77")
    assert a.exit_code == 0, a.output
    head, _, body = a.output.partition("\n\n")
    assert head.splitlines()[0] == "POST"
    assert "X-Audian-Signature: " in head and "User-Agent: AudianWebhook/1.0" in head
    assert json.loads(body)["data"]["duration"] == 77
    assert body == b.output.partition("\n\n")[2]
    as_json = json.loads(run("sample", "audian", "call.completed", "--seed", "4", "--json",
                             "--secret", "whsec_x").output)
    headers = [tuple(h) for h in as_json["headers"]]
    ts = int(header(headers, "X-Audian-Timestamp"))
    assert signing.verify("audian", "whsec_x", as_json["body"].encode(), headers, now=ts).valid
    get = run("sample", "audata", "Listener.updated", "--method", "GET", "--seed", "1")
    assert get.output.startswith("GET ?") and "event=Listener.updated" in get.output


@pytest.mark.parametrize("args,named", [
    (["sample", "nobody", "x"], "nobody"),
    (["sample", "audian", "call.teleported"], "call.teleported"),
    (["send", "nobody", "x", "--to", "http://127.0.0.1:9/"], "nobody"),
    (["send", "audian", "call.teleported", "--to", "http://127.0.0.1:9/"], "call.teleported"),
    (["sample", "audian", "call.completed", "--set", "data.nope.x=1"], "data.nope.x"),
])
def test_unknown_names_exit_nonzero_naming_them(run, args, named) -> None:
    r = run(*args)
    assert r.exit_code == 2 and named in r.output


def test_send_retries_prints_attempts_and_exits_0(run, sink, tmp_path: Path) -> None:
    sink.plan = fail_then(2)
    db = tmp_path / "cli.db"
    r = run("send", "audian", "call.completed", "--to", sink.url(), "--retry-scale", "0",
            "--db", str(db), "--seed", "2")
    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("attempt ")]
    assert len(lines) == 3
    assert "HTTP 500" in lines[0] and "retry" in lines[0]
    assert "HTTP 200" in lines[2] and "delivered" in lines[2]
    assert "delivered after 3 attempts" in r.output
    assert "https://" in r.output  # Audian's https-only rule, as a warning
    database = Database(db)
    try:
        (d,) = DeliveryStore(database).list().deliveries
        assert d.status == "delivered" and d.attempt_count == 3
    finally:
        database.close()


def test_send_failure_exits_1(run, sink, tmp_path: Path) -> None:
    sink.plan = lambda n: 410
    r = run("send", "audian", "call.completed", "--to", sink.url(), "--retry-scale", "0",
            "--db", str(tmp_path / "x.db"))
    assert r.exit_code == 1
    assert "HTTP 410" in r.output and "failed after 1 attempt" in r.output
    r = run("send", "apirtc", next(iter(default_catalog().vendor("apirtc").events)), "--to",
            f"http://127.0.0.1:{closed_port()}/", "--db", str(tmp_path / "x.db"))
    assert r.exit_code == 1 and "connection refused" in r.output


def test_send_strict_vendor_rules_refuses_http(run, sink, tmp_path: Path) -> None:
    r = run("send", "audian", "call.completed", "--to", sink.url(), "--strict-vendor-rules",
            "--db", str(tmp_path / "s.db"))
    assert r.exit_code == 1 and "https://" in r.output
    assert sink.requests == []


def test_send_as_a_real_process(sink, tmp_path: Path) -> None:
    env = {**os.environ, "INSPECTOR_DATA_DIR": str(tmp_path / "data"),
           "INSPECTOR_RETRY_SCALE": "0"}
    sink.plan = fail_then(1)
    proc = subprocess.run(
        [sys.executable, "-m", "inspector", "send", "standard-webhooks",
         next(iter(default_catalog().vendor("standard-webhooks").events)), "--to",
         sink.url()], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("\nattempt ") + proc.stdout.startswith("attempt ") == 2
    assert (tmp_path / "data" / "inspector.db").exists()  # logged in the default database


def test_fixtures_check(run, tmp_path: Path) -> None:
    root = tmp_path / "fixtures"
    shutil.copytree(default_root() / "audian", root / "audian")
    ok = run("fixtures", "check", "--root", str(root))
    assert ok.exit_code == 0, ok.output
    assert "ok: 1 vendors" in ok.output
    vendor_yaml = root / "audian" / "vendor.yaml"
    text = vendor_yaml.read_text()
    assert "timeout:\n  value: 30\n" in text
    vendor_yaml.write_text(text.replace("timeout:\n  value: 30\n", "timeout:\n  value: soon\n"))
    line = text.splitlines().index("timeout:") + 2
    bad = run("fixtures", "check", "--root", str(root))
    assert bad.exit_code == 1
    first = bad.output.splitlines()[0]
    assert first.startswith(f"fixtures/audian/vendor.yaml:{line}: "), bad.output
    assert "timeout" in first


@pytest.mark.parametrize("command", [["vendors"], ["sample"], ["send"], ["fixtures"],
                                     ["fixtures", "check"]])
def test_every_provider_command_has_help(run, command) -> None:
    r = run(*command, "--help")
    assert r.exit_code == 0 and "Usage:" in r.output
    doc = r.output.split("\n\n")[1].strip()
    assert len(doc) > 20, r.output
