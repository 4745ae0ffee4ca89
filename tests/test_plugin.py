"""The pytest plugin, tested with pytest's own pytester: generated test files use the fixtures.

Each generated suite runs in a fresh pytest process, as a user's run would: the plugin is
auto-loaded from its ``pytest11`` entry point and the app's modules are imported anew (an
in-process run would share module state with this session). Starting a process costs seconds,
so each run below checks several things at once.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:playwright",
                                         "-rA", *args)


def test_import_is_cheap_and_starts_nothing() -> None:
    code = ("import sys, threading, inspector.pytest_plugin as p; "
            "print(sorted(m for m in ('flask', 'httpx', 'werkzeug', 'inspector.app') "
            "if m in sys.modules), threading.active_count(), callable(p.assert_json_matches))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["[]", "1", "True"]


def test_fixtures_start_share_clean_up_and_keep_bins_apart(pytester: pytest.Pytester,
                                                           tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    pytester.makepyfile(test_lifecycle=f"""
        import json
        import threading

        import httpx
        import pytest

        RECORD = {str(record)!r}
        seen = {{}}

        def test_plain_test_starts_nothing(request):
            from inspector import pytest_plugin
            assert request.config.stash.get(pytest_plugin._STASH_KEY, None) is None

        def test_first(webhook_inspector, webhook_bin):
            assert webhook_inspector.url.startswith("http://127.0.0.1:")
            assert webhook_bin.url.startswith(webhook_inspector.url + "/in/test_first-")
            assert webhook_bin.last() is None
            httpx.post(webhook_bin.url + "/hook", json={{"n": 1}})
            (cap,) = webhook_bin.wait_for()
            assert (cap.method, cap.path, cap.json()) == ("POST", "/hook", {{"n": 1}})
            assert webhook_bin.last().id == cap.id and webhook_bin.json() == {{"n": 1}}
            for b in (webhook_inspector.bin("made-in-test"),
                      webhook_inspector.bin("kept-bin", keep=True)):
                httpx.post(b.url, content=b"x")
            seen.update(url=webhook_inspector.url, first=webhook_bin.name)

        def test_second(webhook_inspector, webhook_bin):
            assert webhook_inspector.url == seen["url"]        # one server per session
            names = {{b["name"] for b in webhook_inspector.client.bins()}}
            assert seen["first"] not in names and "made-in-test" not in names  # cleaned up
            assert "kept-bin" in names
            assert webhook_bin.name != seen["first"] and webhook_bin.last() is None
            with open(RECORD, "w") as f:
                json.dump({{"url": webhook_inspector.url,
                           "db": str(webhook_inspector.db_path)}}, f)

        @pytest.mark.parametrize("n", range(3))
        def test_own_bin_despite_noisy_neighbours(webhook_bin, webhook_inspector, n):
            other = webhook_inspector.bin()
            noise = threading.Thread(target=lambda: [httpx.post(other.url, json={{"noise": i}})
                                                     for i in range(5)])
            noise.start()
            for i in range(3):
                httpx.post(webhook_bin.url, json={{"n": n, "i": i}})
            noise.join()
            caps = webhook_bin.wait_for(3)
            assert [c.json() for c in caps] == [{{"n": n, "i": i}} for i in range(3)]
            assert len(webhook_bin) == 3 and len(other.wait_for(5)) == 5

        def test_send_webhook_delivered(send_webhook, webhook_bin):
            d = send_webhook("audian", "call.completed", to=webhook_bin.url, secret="whsec_t",
                             seed=3, overrides={{"data.duration": 7}})
            assert d.status == "delivered"
            assert [a.status_code for a in d.attempts] == [200]
            assert d.attempts[0].error is None and b'"ok"' in d.attempts[0].response_body
            (cap,) = webhook_bin.wait_for()
            assert cap.json()["data"]["duration"] == 7 and cap.body == d.body
            assert cap.header("x-audian-signature")

        def test_send_webhook_failed_after_retries_at_once(send_webhook, webhook_bin):
            webhook_bin.respond(500, body="boom")
            d = send_webhook("audian", "call.completed", to=webhook_bin)
            assert d.status == "failed"
            assert [a.status_code for a in d.attempts] == [500] * 5
            assert d.attempts[-1].response_text == "boom"
            assert len(webhook_bin.wait_for(5)) == 5
    """)
    result = run(pytester)
    result.assert_outcomes(passed=8)
    data = json.loads(record.read_text())
    with pytest.raises(httpx.TransportError):  # stopped at the end of the session
        httpx.get(data["url"] + "/healthz", timeout=2)
    assert Path(data["db"]).name == "inspector.db"


def test_failures_are_readable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_failures="""
        import httpx
        from inspector.pytest_plugin import assert_json_matches

        def test_waits(webhook_bin):
            httpx.post(webhook_bin.url + "/hello?x=1", content=b"ping")
            httpx.delete(webhook_bin.url + "/bye")
            webhook_bin.wait_for(3, timeout=0.3)

        def test_shape(webhook_bin):
            httpx.post(webhook_bin.url, json={"event": "call.completed",
                                              "data": {"duration": 32, "to": "+1"}})
            (cap,) = webhook_bin.wait_for()
            assert_json_matches(cap, {"event": "call.failed", "data": {"duration": "32"}},
                                ignore=["$.data.to"])
    """)
    result = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([
        "*_ test_waits _*",
        ">*webhook_bin.wait_for(3, timeout=0.3)",  # the test's own line, not the client's
        "E*AssertionError: timed out after 0.3 s waiting for 3 captures in bin "
        "'test_waits-*' (http://127.0.0.1:*/in/test_waits-*): 2 arrived:",
        "E*#* POST /hello?x=1 (no content-type, 4 B) 'ping'",
        "E*#* DELETE /bye (no content-type, 0 B) (empty body)",
        "*_ test_shape _*",
        ">*assert_json_matches(cap, *",
        "E*AssertionError: capture #* JSON does not match expected (2 differences, "
        "expected vs captured):",
        'E*  $.event: expected "call.failed", captured "call.completed"',
        'E*  $.data.duration: type differs: expected "32" (str), captured 32 (int)',
    ])
    assert "inspector/client.py" not in result.stdout.str()


def test_examples_pass(pytester: pytest.Pytester) -> None:
    for path in (ROOT / "examples").glob("*.py"):
        shutil.copy(path, pytester.path / path.name)
    result = run(pytester)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) >= 4 and not outcomes.get("failed"), result.stdout.str()
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        result.stdout.fnmatch_lines(["SKIPPED*test_fastapi_receiver.py*"])


def test_readme_example_is_the_tested_one() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Testing your integration with pytest", 1)[1].split("\n## ", 1)[0]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(snippet.strip().splitlines()) <= 10
    example = (ROOT / "examples" / "test_flask_receiver.py").read_text()
    body = snippet[snippet.index("def test_"):]
    assert body in example
    for line in snippet[:snippet.index("def test_")].strip().splitlines():
        assert line in example
