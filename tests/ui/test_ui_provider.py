"""The Send panel, the Deliveries view and the capture tools (verify, shape, diff, edit & replay,
export) in a real browser against a real server whose retries run at once (``retry_scale=0``).

Every test waits for the page's websocket (``body[data-ws=open]``) before anything it expects to
see live, and waits on the page's own state attributes rather than sleeping.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest

pytest.importorskip("pytest_playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from ..conftest import Served, free_port  # noqa: E402
from .conftest import PageProblems, allow_http_errors, open_inspector  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec_uitestsecret0123456789"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


@pytest.fixture
def server(make_server) -> Served:
    srv = make_server(retry_scale=0.0)
    return Served(srv.url, srv.port, Path(srv.config.db), "werkzeug")


def open_send(page: Page, base: str, bin_name: str) -> None:
    open_inspector(page, base, bin_name)
    page.locator("#tab-send").click()
    expect(page.locator("#view-send")).to_be_visible()
    expect(page.locator("#send-vendor option")).not_to_have_count(0)


def pick(page: Page, vendor: str, event: str) -> None:
    page.select_option("#send-vendor", vendor)
    page.select_option("#send-event", event)


def preview_ready(page: Page, seed: str | None = None) -> str:
    """Wait for a preview (with this seed, if given) and return its body text."""
    box = page.locator("#send-preview")
    expect(box).to_have_attribute("data-state", "ready")
    if seed is not None:
        expect(box).to_have_attribute("data-seed", seed)
    return page.locator("#send-preview-body").inner_text()


# -- send ---------------------------------------------------------------------------------------
def test_send_audian_to_the_current_bin_appears_live_and_verifies(
        server, page: Page, problems: PageProblems) -> None:
    open_send(page, server.url, "sendbin")
    expect(page.locator("#send-url")).to_have_value(f"{server.url}/in/sendbin")
    pick(page, "audian", "call.completed")
    page.locator("#send-secret").fill(SECRET)
    page.locator("#send-seed").fill("7")
    body = preview_ready(page, "7")
    assert '"event":"call.completed"' in body
    headers = page.locator("#send-preview-headers").inner_text()
    assert "X-Audian-Signature" in headers and "X-Audian-Timestamp" in headers
    # Audian's https-only rule is shown for an http:// target.
    expect(page.locator("#send-warning")).to_be_visible()
    expect(page.locator("#send-warning")).to_contain_text("https://")
    # The documented/assumed notes are there.
    expect(page.locator("#send-notes")).to_contain_text("documented")

    page.locator("#send-btn").click()
    result = page.locator("#send-delivery")
    expect(result).to_have_attribute("data-status", "delivered")
    expect(result.locator(".attempt")).to_have_count(1)
    expect(result.locator(".attempt .status")).to_have_text("200")
    expect(result.locator(".dd-warnings")).to_contain_text("https")
    link = result.locator(".capture-link")
    expect(link).to_be_visible()
    cap_id = int(link.get_attribute("data-id"))

    # The capture arrived in the live list of the bin, as any request does.
    page.locator("#tab-requests").click()
    row = page.locator(f"#captures > li[data-id='{cap_id}']")
    expect(row).to_be_visible()
    cap = httpx.get(f"{server.url}/api/captures/{cap_id}").json()
    assert json.loads(cap["body"]) == json.loads(body)

    # The verify panel, with the secret that was used, says valid.
    row.click()
    expect(page.locator(f"#detail article.detail[data-id='{cap_id}']")).to_be_visible()
    page.locator("#act-verify").click()
    panel = page.locator("#d-verify")
    panel.locator(".v-secret").fill(SECRET)
    panel.locator(".v-run").click()
    expect(panel.locator(".v-result")).to_have_attribute("data-valid", "true")
    expect(panel).to_contain_text("audian")
    expect(panel.locator(".v-delivery")).to_be_visible()  # the delivery that sent it
    signed = panel.locator(".v-signed").inner_text()
    assert signed.endswith(cap["body"]), signed
    assert panel.locator(".v-expected").inner_text() == panel.locator(".v-received").inner_text()
    # A wrong secret: invalid, and the digests differ.
    panel.locator(".v-secret").fill("whsec_wrong")
    panel.locator(".v-run").click()
    expect(panel.locator(".v-result")).to_have_attribute("data-valid", "false")
    assert panel.locator(".v-expected").inner_text() != panel.locator(".v-received").inner_text()
    # Shape check: a call.completed we sent ourselves has the fixture's shape.
    page.locator("#act-shape").click()
    expect(page.locator("#d-shape .v-verdict")).to_have_attribute("data-issues", "0")
    expect(page.locator("#d-shape")).to_contain_text("call.completed")

    # The deliveries view shows the attempt and links back to the capture.
    page.locator("#tab-deliveries").click()
    first = page.locator("#deliveries > li.dl-row").first
    expect(first).to_contain_text("audian · call.completed")
    expect(first.locator(".d-status")).to_have_text("delivered")
    first.click()
    detail = page.locator("#delivery-detail")
    expect(detail.locator(".attempt")).to_have_count(1)
    expect(detail.locator(".attempt")).to_contain_text("X-Audian-Signature")
    expect(detail.locator(".attempt .att-resp-body")).to_contain_text(f'"id": {cap_id}')
    detail.locator(".capture-link").click()
    expect(page.locator("#view-requests")).to_be_visible()
    expect(page.locator(f"#detail article.detail[data-id='{cap_id}']")).to_be_visible()

    # Redeliver makes a new delivery (and a new capture).
    page.locator("#tab-deliveries").click()
    page.locator("#deliveries > li.dl-row").first.click()
    page.locator("#redeliver-btn").click()
    expect(page.locator("#deliveries > li.dl-row")).to_have_count(2)
    expect(page.locator("#delivery-detail")).to_have_attribute("data-status", "delivered")
    problems.assert_none()


def test_preview_follows_seed_overrides_and_method(server, page: Page,
                                                   problems: PageProblems) -> None:
    open_send(page, server.url, "preview")
    pick(page, "audian", "call.completed")
    page.locator("#send-seed").fill("1")
    one = preview_ready(page, "1")
    page.locator("#send-seed").fill("2")
    two = preview_ready(page, "2")
    assert one != two
    page.locator("#send-seed").fill("1")
    assert preview_ready(page, "1") == one  # same seed, same bytes
    # An override applies to the preview; a path that does not exist says so.
    page.locator("#send-add-override").click()
    page.locator("#send-overrides .ov-path").last.fill("data.call_id")
    page.locator("#send-overrides .ov-value").last.fill("call_from_the_ui")
    expect(page.locator("#send-preview-body")).to_contain_text('"call_id":"call_from_the_ui"')
    page.locator("#send-overrides .ov-path").last.fill("data.no_such_field")
    expect(page.locator("#send-preview-error")).to_contain_text("no_such_field")
    page.locator("#send-overrides .ov-row button").last.click()
    expect(page.locator("#send-preview-body")).to_be_visible()
    # The event search narrows vendors and events.
    page.locator("#send-filter").fill("Listener.upd")
    expect(page.locator("#send-vendor")).to_have_value("audata")
    expect(page.locator("#send-event")).to_have_value("Listener.updated")
    # Audata lets you choose GET: its preview shows URL parameters.
    expect(page.locator("#send-method")).to_be_enabled()
    page.select_option("#send-method", "GET")
    expect(page.locator("#send-preview .pv-line .method")).to_have_text("GET")
    expect(page.locator("#send-preview .pv-url")).to_contain_text("event=Listener.updated")
    # A vendor with one method: the choice is off.
    page.locator("#send-filter").fill("")
    pick(page, "github", "push")
    expect(page.locator("#send-method")).to_be_disabled()
    problems.assert_none(allow_console=allow_http_errors)


def test_failing_target_shows_failed_attempts_with_errors(server, page: Page,
                                                          problems: PageProblems) -> None:
    closed = free_port()  # nothing listens there
    open_send(page, server.url, "fails")
    pick(page, "audian", "call.completed")
    page.locator("#send-url").fill(f"http://127.0.0.1:{closed}/webhook")
    page.locator("#send-btn").click()
    result = page.locator("#send-delivery")
    expect(result).to_have_attribute("data-status", "failed", timeout=20_000)
    attempts = result.locator(".attempt")
    n = attempts.count()
    assert n >= 2, "Audian retries a refused connection"
    expect(attempts.first.locator(".att-error")).to_be_visible()
    expect(result.locator(".capture-link")).to_have_count(0)
    page.locator("#tab-deliveries").click()
    row = page.locator("#deliveries > li.dl-row").first
    expect(row.locator(".d-status")).to_have_text("failed")
    row.click()
    detail = page.locator("#delivery-detail")
    expect(detail.locator(".attempt")).to_have_count(n)
    expect(detail.locator(".attempt[data-outcome]").first).to_be_visible()
    for i in range(n):
        expect(detail.locator(".attempt").nth(i).locator(".att-error")).to_be_visible()
    problems.assert_none()


def test_cancel_a_pending_retry(make_server, page: Page, problems: PageProblems) -> None:
    """A refused delivery waits a minute for Audian's next try; Cancel stops it there."""
    srv = make_server()  # the vendor's real schedule: the retry stays pending
    closed = free_port()
    sent = httpx.post(f"{srv.url}/api/send", json={
        "vendor": "audian", "event": "call.completed",
        "url": f"http://127.0.0.1:{closed}/webhook"}, timeout=10).json()["delivery"]
    open_inspector(page, srv.url, "cancels")
    page.locator("#tab-deliveries").click()
    row = page.locator("#deliveries > li.dl-row").first
    expect(row).to_have_attribute("data-id", str(sent["id"]))
    row.click()
    detail = page.locator("#delivery-detail")
    expect(detail).to_have_attribute("data-status", "pending")
    expect(detail.locator(".attempt")).to_have_count(1, timeout=10_000)
    page.locator("#cancel-delivery-btn").click()
    expect(detail).to_have_attribute("data-status", "failed")
    expect(detail.locator(".att-error").first).to_contain_text("cancelled")
    expect(page.locator("#cancel-delivery-btn")).to_have_count(0)
    expect(row.locator(".d-status")).to_have_text("failed")
    after = httpx.get(f"{srv.url}/api/deliveries/{sent['id']}").json()["delivery"]
    assert after["status"] == "failed" and after["error"] == "cancelled"
    problems.assert_none()


# -- hostile values -----------------------------------------------------------------------------
def test_hostile_values_in_preview_and_deliveries_never_run(server, page: Page,
                                                            problems: PageProblems) -> None:
    hostile = f"{SCRIPT}{IMG}"
    # A target that answers with hostile headers and body.
    httpx.put(f"{server.url}/api/bins/evilresp/response",
              json={"status": 200, "headers": {"X-Evil": IMG, "Content-Type": "text/html"},
                    "body": hostile})
    open_send(page, server.url, "evilresp")
    pick(page, "audian", "call.completed")
    page.locator("#send-add-override").click()
    page.locator("#send-overrides .ov-path").last.fill("data.from")
    page.locator("#send-overrides .ov-value").last.fill(hostile)
    expect(page.locator("#send-preview-body")).to_contain_text(IMG)
    expect(page.locator("#send-preview-body")).to_contain_text(SCRIPT)
    page.locator("#send-btn").click()
    result = page.locator("#send-delivery")
    expect(result).to_have_attribute("data-status", "delivered")
    expect(result.locator(".att-resp-body")).to_have_text(hostile)
    expect(result.locator(".att-req-body")).to_contain_text(IMG)
    expect(result).to_contain_text("X-Evil")
    page.locator("#tab-deliveries").click()
    page.locator("#deliveries > li.dl-row").first.click()
    expect(page.locator("#delivery-detail .att-resp-body")).to_have_text(hostile)
    assert page.locator("img, iframe, object, embed").count() == 0
    scripts = page.evaluate("Array.from(document.scripts, s => s.src)")
    assert scripts == [f"{server.url}/static/app.js"]
    problems.assert_none()


# -- diff ---------------------------------------------------------------------------------------
def test_diff_view_shows_and_jumps_to_changed_paths(server, page: Page,
                                                    problems: PageProblems) -> None:
    a = httpx.post(f"{server.url}/in/cmp", json={
        "event": "order.paid", "sender": {"email": "a@x.io", "name": "Ada"}, "items": [1, 2],
        "sentAt": "2024-01-01T00:00:00Z"}).json()["id"]
    b = httpx.post(f"{server.url}/in/cmp", json={
        "event": "order.paid", "sender": {"email": "b@x.io", "name": "Ada"}, "items": [1, 9, 2],
        "sentAt": "2024-01-02T00:00:00Z", "note": IMG}).json()["id"]
    httpx.put(f"{server.url}/api/bins/cmp/ignore", json={"rules": []})
    open_inspector(page, server.url, "cmp")
    page.locator(f"#captures > li[data-id='{b}']").click()
    page.locator("#act-compare").click()
    dialog = page.locator("#diff-dialog")
    expect(dialog).to_be_visible()
    page.locator("#diff-other").fill(str(a))
    dialog.locator("#diff-pick button[type='submit']").click()
    expect(dialog).to_have_attribute("data-state", "ready")
    changes = page.locator("#diff-changes > li")
    email = changes.filter(has_text="$.sender.email")
    expect(email).to_have_count(1)
    expect(email).to_contain_text('"a@x.io" → "b@x.io"')
    expect(changes.filter(has_text="$.items[1]")).to_contain_text("added")
    # Both sides highlight the changed line; the list jumps to it.
    line_a = page.locator("#diff-col-a .dl[data-key='body|$.sender.email']")
    line_b = page.locator("#diff-col-b .dl[data-key='body|$.sender.email']")
    expect(line_a).to_have_class(re.compile(r"\bchg-changed\b"))
    expect(line_b).to_have_class(re.compile(r"\bchg-changed\b"))
    email.locator("button").click()
    expect(line_a).to_have_class(re.compile(r"\bflash\b"))
    expect(line_b).to_have_class(re.compile(r"\bflash\b"))
    # An insertion is one change, highlighted on B only.
    expect(page.locator("#diff-col-b .dl[data-key='body|$.items[1]']")).to_have_class(
        re.compile(r"\bchg-added\b"))
    expect(page.locator("#diff-col-a .dl[data-key='body|$.items[1]']")).not_to_have_class(
        re.compile(r"\bchg\b"))
    expect(page.locator("#diff-col-b")).to_contain_text(IMG)  # as text
    # The text diff of the raw bodies.
    page.locator("#diff-tabs .seg-btn[data-tab='text']").click()
    expect(page.locator("#diff-text")).to_be_visible()
    expect(page.locator("#diff-text .td-add").first).to_be_visible()
    # Ignore rules, saved per bin, drop the changes they cover.
    page.locator("#diff-tabs .seg-btn[data-tab='side']").click()
    page.locator("#diff-ignore-rules").fill("$.sentAt\nheader:content-length")
    page.locator("#diff-ignore-save").click()
    expect(page.locator("#diff-ignore-note")).to_contain_text("Saved")
    expect(changes.filter(has_text="$.sentAt")).to_have_count(0)
    expect(changes.filter(has_text="$.sender.email")).to_have_count(1)
    saved = httpx.get(f"{server.url}/api/bins/cmp/ignore").json()["rules"]
    assert saved == ["$.sentAt", "header:content-length"]
    page.keyboard.press("Escape")
    assert page.locator("img, iframe").count() == 0
    problems.assert_none()


def test_compare_with_previous_of_the_same_event(server, page: Page,
                                                 problems: PageProblems) -> None:
    for seed in (1, 2):
        httpx.post(f"{server.url}/api/send", json={
            "vendor": "audian", "event": "call.completed", "seed": seed,
            "url": f"{server.url}/in/prev"}).raise_for_status()
    ids = [c["id"] for c in httpx.get(f"{server.url}/api/captures",
                                      params={"bin": "prev"}).json()["captures"]]
    open_inspector(page, server.url, "prev")
    page.locator(f"#captures > li[data-id='{ids[0]}']").click()
    page.locator("#act-compare").click()
    page.locator("#diff-prev").click()
    expect(page.locator("#diff-dialog")).to_have_attribute("data-state", "ready")
    expect(page.locator("#diff-a-id")).to_have_text(f"#{ids[1]}")
    expect(page.locator("#diff-changes")).to_contain_text("$.data.call_id")
    problems.assert_none()


# -- edit & replay, export ----------------------------------------------------------------------
def test_edit_and_replay_resigned(server, page: Page, problems: PageProblems) -> None:
    httpx.post(f"{server.url}/api/send", json={
        "vendor": "audian", "event": "call.completed", "seed": 5, "secret": SECRET,
        "url": f"{server.url}/in/editsrc"}).raise_for_status()
    src = httpx.get(f"{server.url}/api/captures", params={"bin": "editsrc"}).json()
    cap_id = src["captures"][0]["id"]
    open_inspector(page, server.url, "editsrc")
    page.locator(f"#captures > li[data-id='{cap_id}']").click()
    page.locator("#act-edit-replay").click()
    dialog = page.locator("#replay-dialog")
    expect(page.locator("#replay-edit")).to_have_attribute("open", "")
    body = page.locator("#replay-body").input_value()
    edited = body.replace('"status":"completed"', '"status":"edited"')
    assert edited != body
    page.locator("#replay-body").fill(edited)
    page.locator("#replay-url").fill(f"{server.url}/in/editdst")
    page.locator("#replay-resign").check()
    expect(page.locator("#replay-sign-opts")).to_be_visible()
    page.locator("#replay-secret").fill(SECRET)
    dialog.get_by_role("button", name="Replay", exact=True).click()
    expect(page.locator("#replay-result")).to_have_attribute("data-kind", "ok")
    expect(page.locator("#replay-result")).to_contain_text("delivered")
    dst = httpx.get(f"{server.url}/api/captures", params={"bin": "editdst"}).json()["captures"]
    assert len(dst) == 1
    new = httpx.get(f"{server.url}/api/captures/{dst[0]['id']}").json()
    assert new["body"] == edited
    check = httpx.get(f"{server.url}/api/captures/{new['id']}/verify",
                      params={"secret": SECRET}).json()
    assert check["verification"]["valid"] is True, check
    problems.assert_none()


def test_export_links_and_commands(server, page: Page, problems: PageProblems) -> None:
    cap_id = httpx.post(f"{server.url}/in/exp", json={"a": 1}).json()["id"]
    open_inspector(page, server.url, "exp")
    page.locator(f"#captures > li[data-id='{cap_id}']").click()
    har = page.locator("#d-export a[data-format='har']")
    expect(har).to_have_attribute("href", f"/api/captures/{cap_id}/export?format=har")
    with page.expect_download() as dl:
        har.click()
    data = json.loads(Path(dl.value.path()).read_text())
    assert data["log"]["version"] == "1.2"
    expect(page.locator("#d-export a[data-format='jsonl']")).to_have_attribute(
        "href", f"/api/captures/{cap_id}/export?format=jsonl")
    expect(page.locator("#bin-export a[data-format='har']")).to_have_attribute(
        "href", "/api/export?bin=exp&format=har")
    page.locator("#act-httpie").click()
    expect(page.locator("#curl-title")).to_contain_text("HTTPie")
    expect(page.locator("#curl-text")).to_have_value(re.compile(r"\bhttp"))
    page.keyboard.press("Escape")
    page.locator("#act-export-curl").click()
    expect(page.locator("#curl-text")).to_have_value(re.compile(r"^.*curl", re.S))
    problems.assert_none()


# -- the Send panel screenshot ------------------------------------------------------------------
def test_screenshot_send(make_server, page: Page, tmp_path: Path,
                         problems: PageProblems) -> None:
    """``UPDATE_SCREENSHOT=1`` writes docs/screenshot-send.png; otherwise the shot goes to tmp."""
    try:
        srv = make_server(port=8787, retry_scale=0.0)
    except OSError:
        srv = make_server(retry_scale=0.0)
    base = srv.url
    httpx.post(f"{base}/in/audian-dev", json={"hello": "world"})
    open_send(page, base, "audian-dev")
    pick(page, "audian", "call.completed")
    page.locator("#send-seed").fill("42")
    page.locator("#send-add-override").click()
    page.locator("#send-overrides .ov-path").last.fill("data.duration")
    page.locator("#send-overrides .ov-value").last.fill("318")
    expect(page.locator("#send-preview-body")).to_contain_text('"duration":318')
    page.locator("#send-notes details").evaluate("d => { d.open = true; }")
    page.mouse.move(0, 799)
    page.evaluate("document.activeElement && document.activeElement.blur()")
    out = ROOT / "docs" / "screenshot-send.png" if os.environ.get("UPDATE_SCREENSHOT") == "1" \
        else tmp_path / "screenshot-send.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out))
    assert out.stat().st_size > 10_000
    problems.assert_none()
