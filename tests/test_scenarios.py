"""Scenarios: files in fixtures/scenarios, rendered with shared values, run from the API (to a
URL or emitted to subscriptions) and from the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from inspector.provider import default_catalog
from inspector.provider.scenario import (
    ScenarioError,
    load_scenarios,
    parse_duration,
    parse_scenario,
    render_scenario,
)
from tests.test_subscriptions import settle
from tests.test_vendor_emulation import AUDIAN, captures, raw, verify_audian

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def fast(make_server):  # noqa: ANN201
    return make_server(retry_scale=0)


def test_one_realistic_scenario_per_vendor() -> None:
    catalog = default_catalog()
    found = load_scenarios(catalog=catalog)
    assert {"audian", "atomic", "audata", "apirtc", "alphatouch"} <= {
        s.vendor for s in found.values()}
    for sc in found.values():
        assert len(sc.steps) >= 3 and sc.description
        planned, _ = render_scenario(catalog, sc, seed=1)
        assert [p.rendered.event for p in planned] == [s.event for s in sc.steps]


def test_audian_call_shares_one_call_id_and_times_follow_the_delays() -> None:
    catalog = default_catalog()
    sc = load_scenarios(catalog=catalog)["audian-call"]
    planned, shared = render_scenario(catalog, sc, seed=42)
    bodies = [json.loads(p.rendered.body) for p in planned]
    assert [b["event"] for b in bodies] == ["call.initiated", "call.ringing", "call.answered",
                                            "call.completed", "recording.completed"]
    assert {b["data"]["call_id"] for b in bodies} == {shared["call_id"]}
    calls = [b for b in bodies if b["event"].startswith("call.")]
    assert len({(b["data"]["from"], b["data"]["to"]) for b in calls}) == 1
    times = [datetime.fromisoformat(b["timestamp"].replace("Z", "+00:00")) for b in bodies]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len({b["id"] for b in bodies}) == len(bodies)  # distinct events
    again, _ = render_scenario(catalog, sc, seed=42, start=planned[0].now)
    assert [p.rendered.body for p in again] == [p.rendered.body for p in planned]


def test_scenario_file_errors_name_the_step() -> None:
    catalog = default_catalog()
    base = {"name": "x", "vendor": "audian", "steps": [{"event": "call.initiated"}]}
    parse_scenario(base, "x.yaml", catalog)
    bad = [
        ({**base, "vendor": "nope"}, "nope"),
        ({**base, "steps": []}, "steps"),
        ({**base, "steps": [{"event": "call.initiated"}, {"event": "call.boom"}]}, "step 2"),
        ({**base, "steps": [{"event": "call.initiated", "delay": "soon"}]}, "delay"),
        ({**base, "steps": [{"event": "call.initiated", "wait": 1}]}, "wait"),
        ({**base, "name": "Bad Name"}, "name"),
    ]
    for data, word in bad:
        with pytest.raises(ScenarioError, match=word):
            parse_scenario(data, "x.yaml", catalog)
    assert parse_duration("500ms", "") == 0.5 and parse_duration("2m", "") == 120
    assert parse_duration(3, "") == 3.0


def test_api_lists_and_runs_a_scenario_to_a_url(fast) -> None:
    listed = httpx.get(fast.url + "/api/scenarios").json()["scenarios"]
    assert "audian-call" in {s["name"] for s in listed}
    one = httpx.get(fast.url + "/api/scenarios/audian-call").json()["scenario"]
    assert one["vendor"] == "audian" and len(one["steps"]) == 5
    assert httpx.get(fast.url + "/api/scenarios/nope").status_code == 404

    r = httpx.post(fast.url + "/api/scenarios/audian-call/run", timeout=30, json={
        "to": fast.url + "/in/scn", "delay_scale": 0, "secret": "whsec_scenario", "seed": 9})
    assert r.status_code == 201, r.text
    out = r.json()
    assert [s["event"] for s in out["steps"]][0] == "call.initiated"
    settle(fast, [s["deliveries"][0]["delivery"]["id"] for s in out["steps"]])
    caps = captures(fast, "scn", 5)
    bodies = [json.loads(raw(fast, c)) for c in caps]
    assert {b["data"]["call_id"] for b in bodies} == {out["shared"]["call_id"]}
    # In the order they happened, even with no delay between them: each step waits for the
    # previous one's first attempt.
    arrived = [json.loads(raw(fast, c))["event"] for c in sorted(caps, key=lambda c: c["id"])]
    assert arrived == [s["event"] for s in out["steps"]]
    assert all(verify_audian(fast, c, "whsec_scenario") for c in caps)

    r = httpx.post(fast.url + "/api/scenarios/audian-call/run", json={"delay_scale": 1000})
    assert r.status_code == 422 and r.json()["field"] == "delay_scale"


def test_api_runs_a_scenario_to_subscriptions(fast) -> None:
    atomic = httpx.post(fast.url + "/vendors/atomic/v1/envA/webhook",
                        headers={"Authorization": "Bearer t"},
                        json={"types": ["card-published", "card-displayed", "card-completed"],
                              "url": fast.url + "/in/scn-atomic"}).json()["data"]
    wh = httpx.post(fast.url + "/vendors/audian/v2/webhooks", headers=AUDIAN,
                    json={"url": fast.url + "/in/unrelated", "events": ["*"]}).json()
    r = httpx.post(fast.url + "/api/scenarios/atomic-card/run", json={"delay_scale": 0},
                   timeout=30)
    assert r.status_code == 201, r.text
    out = r.json()
    ids = [d["delivery"]["id"] for s in out["steps"] for d in s["deliveries"]]
    assert len(ids) == 3
    settle(fast, ids)
    bodies = [json.loads(raw(fast, c)) for c in captures(fast, "scn-atomic", 3)]
    assert {b["webhookId"] for b in bodies} == {atomic["id"]}
    assert {b["environmentId"] for b in bodies} == {"envA"}
    assert len({b["data"]["cardContext"]["cardInstanceId"] for b in bodies}) == 1
    assert len({b["data"]["endUserId"] for b in bodies}) == 1
    assert httpx.get(fast.url + "/api/captures", params={"bin": "unrelated"}
                     ).json()["captures"] == []
    assert wh["id"]


def test_cli_scenario_sends_every_step(fast, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "inspector", "scenario", "alphatouch-onboarding",
           "--to", fast.url + "/in/cli-scn", "--delay-scale", "0", "--retry-scale", "0",
           "--db", str(tmp_path / "cli.db"), "--seed", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": delivered") == 5
    bodies = [json.loads(raw(fast, c)) for c in captures(fast, "cli-scn", 5)]
    assert len({b["api_key"] for b in bodies}) == 1
    building = [b for b in bodies if b["entity"] == "building"][0]
    residents = [b for b in bodies if b["entity"] == "resident"]
    assert {r["data"]["building_id"] for r in residents} == {building["entity_id"]}

    bad = subprocess.run([sys.executable, "-m", "inspector", "scenario", "nope", "--to",
                          fast.url + "/in/x", "--db", str(tmp_path / "cli.db")],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_ctrl_c_mid_scenario_stops_it_and_answers_what_was_sent(tmp_path: Path) -> None:
    """A run pacing its steps when the server is stopped sends nothing more (it used to send
    every remaining step at once, out of order, or answer 500) and says it was cut short."""
    import os
    import signal
    import threading
    import time

    from tests.conftest import free_port, start_cli_server

    port = free_port()
    proc = start_cli_server(tmp_path / "s.db", port)
    base = f"http://127.0.0.1:{port}"
    answer: list[httpx.Response] = []
    run = threading.Thread(target=lambda: answer.append(httpx.post(
        f"{base}/api/scenarios/alphatouch-onboarding/run", timeout=30,
        json={"to": f"{base}/in/onb", "delay_scale": 0.1})))  # steps at 0, 0.5, 1.5, 4.5 s
    run.start()
    deadline = time.monotonic() + 10
    while len(httpx.get(f"{base}/api/captures", params={"bin": "onb"}).json()["captures"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    run.join(10)
    proc.wait(10)
    assert time.monotonic() - t0 < 1.5
    assert answer and answer[0].status_code == 201, answer
    out = answer[0].json()
    assert out["interrupted"] is True
    assert [s["event"] for s in out["steps"]] == ["installation.activate", "building.add"]
    log = proc.stdout.read().decode()
    assert "Traceback" not in log, log
