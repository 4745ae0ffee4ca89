"""The Subscriptions view in a real browser against a real server whose retries run at once:
console subscriptions made from the UI with their console options, emit, health that follows
the deliveries, activate/deactivate, delete, subscriptions registered through a vendor's own API,
scenarios, and user data shown as text.

Like test_ui_provider.py, every test waits on the page's own state attributes, never sleeps.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("pytest_playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from ..conftest import Served  # noqa: E402
from .conftest import PageProblems, allow_http_errors, open_inspector  # noqa: E402

IMG = "<img src=x onerror=alert(1)>"
URL_IMG = "<img/src=x/onerror=alert(1)>"  # the same without whitespace, which urls refuse
AUDIAN = {"X-Auth-Token": "ui-test-token"}


@pytest.fixture
def server(make_server) -> Served:
    srv = make_server(retry_scale=0.0)
    return Served(srv.url, srv.port, Path(srv.config.db), "werkzeug")


def open_subs(page: Page, base: str, bin_name: str) -> None:
    open_inspector(page, base, bin_name)
    page.locator("#tab-subscriptions").click()
    expect(page.locator("#view-subscriptions")).to_be_visible()
    expect(page.locator("#view-subscriptions")).to_have_attribute("data-ready", "true")
    expect(page.locator("#subs")).to_have_attribute("data-loaded", "true")


def captures(server: Served, bin_name: str) -> list[dict]:
    return server.get("/api/captures", params={"bin": bin_name}).json()["captures"]


def wait_captures(server: Served, bin_name: str, count: int, timeout: float = 10) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        caps = captures(server, bin_name)
        if len(caps) >= count:
            return caps
        assert time.monotonic() < deadline, f"{len(caps)} captures in {bin_name}, wanted {count}"
        time.sleep(0.05)


def row(page: Page, sub_id: str):  # noqa: ANN201
    return page.locator(f"#subs > li.sub-row[data-id='{sub_id}']")


def emit_from_ui(page: Page, vendor: str, event: str):  # noqa: ANN201
    page.select_option("#emit-vendor", vendor)
    page.select_option("#emit-event", event)
    page.locator("#emit-btn").click()
    return page.locator("#emit-result")


def test_audata_get_subscription_emit_health_deactivate_delete(
        server, page: Page, problems: PageProblems) -> None:
    open_subs(page, server.url, "audata-ui")
    expect(page.locator("#subs-empty")).to_be_visible()
    page.locator("#subs-new-btn").click()
    form = page.locator("#sub-form")
    expect(form).to_be_visible()
    page.select_option("#sub-vendor", "audata")
    # The URL follows the bin picked in the Requests view; Audata's https rule is shown.
    expect(page.locator("#sub-url")).to_have_value(f"{server.url}/in/audata-ui")
    expect(page.locator("#sub-warning")).to_contain_text("https://")
    # Audata's console: GET or POST per event; ApiRTC's header box and AlphaTouch's key are off.
    expect(page.locator("#sub-opt-headers")).to_be_hidden()
    expect(page.locator("#sub-opt-apikey")).to_be_hidden()
    ev = page.locator("#sub-event-list .sub-ev[data-event='Listener.updated']")
    ev.locator(".sub-ev-check").check()
    ev.locator(".sub-ev-method").select_option("GET")
    page.locator("#sub-desc").fill("listener sync")
    page.locator("#sub-create").click()
    expect(form).to_be_hidden()

    subs = server.get("/api/subscriptions").json()["subscriptions"]
    assert len(subs) == 1
    sub = subs[0]
    assert sub["vendor"] == "audata" and sub["events"] == ["Listener.updated"]
    assert sub["options"] == {"methods": {"Listener.updated": "GET"}}
    r = row(page, sub["id"])
    expect(r).to_be_visible()
    expect(r).to_have_attribute("data-state", "active")
    expect(r.locator(".sub-vendor")).to_have_text("Audata")
    expect(r.locator(".sub-url")).to_have_text(f"{server.url}/in/audata-ui")
    expect(r.locator(".sub-evs")).to_have_text("Listener.updated")
    expect(r.locator(".sub-opts")).to_contain_text("GET for Listener.updated")
    expect(r.locator(".sub-desc")).to_have_text("listener sync")
    expect(r.locator(".sub-health")).to_have_attribute("data-last", "none")

    # Emit: it goes to the one subscription, by GET, and the capture arrives in the bin.
    result = emit_from_ui(page, "audata", "Listener.updated")
    expect(result).to_have_attribute("data-count", "1")
    expect(result).to_contain_text("went to 1 subscription")
    item = result.locator(".res-dl")
    expect(item).to_have_attribute("data-status", "delivered")
    expect(item.locator(".capture-link")).to_be_visible()
    (cap,) = wait_captures(server, "audata-ui", 1)
    assert cap["method"] == "GET"
    full = server.get(f"/api/captures/{cap['id']}").json()
    assert "event=Listener.updated" in full["query"]
    # The row's health follows: delivered, 200, one of one.
    health = r.locator(".sub-health")
    expect(health).to_have_attribute("data-last", "delivered")
    expect(health.locator(".status")).to_have_text("200")
    expect(health.locator(".sub-counts")).to_have_attribute("data-delivered", "1")
    expect(health.locator(".sub-counts")).to_have_attribute("data-failed", "0")
    expect(health.locator(".sub-last-at")).to_contain_text("last attempt")
    # The result links to the Deliveries view.
    item.locator(".sub-dl-link").click()
    expect(page.locator("#view-deliveries")).to_be_visible()
    expect(page.locator("#delivery-detail")).to_have_attribute("data-status", "delivered")
    expect(page.locator("#delivery-detail .attempt")).to_contain_text("GET")
    page.locator("#tab-subscriptions").click()

    # An event it does not listen for is skipped, and said so.
    result = emit_from_ui(page, "audata", "Listener.created")
    expect(result).to_have_attribute("data-count", "0")
    expect(result.locator(".res-skipped")).to_contain_text("1 subscription(s) skipped")

    # Deactivate: emit no longer delivers to it.
    r.locator(".sub-toggle").click()
    expect(r).to_have_attribute("data-state", "inactive")
    expect(r.locator(".sub-toggle")).to_have_text("Activate")
    assert server.get(f"/api/subscriptions/{sub['id']}").json()["subscription"]["active"] is False
    result = emit_from_ui(page, "audata", "Listener.updated")
    expect(result).to_have_attribute("data-count", "0")
    expect(result.locator(".res-skipped")).to_contain_text("inactive")
    assert len(captures(server, "audata-ui")) == 1
    # Activate again: it receives.
    r.locator(".sub-toggle").click()
    expect(r).to_have_attribute("data-state", "active")
    result = emit_from_ui(page, "audata", "Listener.updated")
    expect(result).to_have_attribute("data-count", "1")
    wait_captures(server, "audata-ui", 2)
    expect(r.locator(".sub-counts")).to_have_attribute("data-delivered", "2")

    # Delete takes two clicks.
    r.locator(".sub-delete").click()
    expect(r.locator(".sub-delete")).to_have_text("Click again to delete")
    r.locator(".sub-delete").click()
    expect(r).to_have_count(0)
    expect(page.locator("#subs-empty")).to_be_visible()
    assert server.get("/api/subscriptions").json()["subscriptions"] == []
    problems.assert_none()


def test_console_options_apirtc_headers_and_alphatouch_key(
        server, page: Page, problems: PageProblems) -> None:
    open_subs(page, server.url, "opts")
    page.locator("#subs-new-btn").click()
    page.select_option("#sub-vendor", "apirtc")
    expect(page.locator("#sub-active-label")).to_have_text("Activate")
    expect(page.locator("#sub-opt-headers")).to_be_visible()
    expect(page.locator("#sub-event-list .sub-ev-method")).to_have_count(0)
    page.locator("#sub-url").fill(f"{server.url}/in/apirtc-ui")
    page.locator("#sub-all").check()
    page.locator("#sub-headers").fill("X-Api-Key: s3cret\nX-Team: video")
    page.locator("#sub-active").uncheck()
    page.locator("#sub-create").click()
    expect(page.locator("#sub-form")).to_be_hidden()
    (apirtc,) = server.get("/api/subscriptions").json()["subscriptions"]
    assert apirtc["events"] == ["*"] and apirtc["active"] is False
    assert apirtc["options"] == {"headers": {"X-Api-Key": "s3cret", "X-Team": "video"}}
    expect(row(page, apirtc["id"])).to_have_attribute("data-state", "inactive")
    expect(row(page, apirtc["id"]).locator(".sub-evs")).to_have_text("all events (*)")

    page.locator("#subs-new-btn").click()
    page.select_option("#sub-vendor", "alphatouch")
    expect(page.locator("#sub-opt-apikey")).to_be_visible()
    expect(page.locator("#sub-opt-headers")).to_be_hidden()
    page.locator("#sub-url").fill(f"{server.url}/in/alpha-ui")
    page.locator("#sub-event-list .sub-ev[data-event='resident.delete'] .sub-ev-check").check()
    page.locator("#sub-apikey").fill("ABCD-1234")
    page.locator("#sub-create").click()
    expect(page.locator("#subs > li.sub-row")).to_have_count(2)
    result = emit_from_ui(page, "alphatouch", "resident.delete")
    expect(result.locator(".res-dl")).to_have_attribute("data-status", "delivered")
    (cap,) = wait_captures(server, "alpha-ui", 1)
    raw = server.get(f"/api/captures/{cap['id']}/raw").json()
    assert raw["api_key"] == "ABCD-1234"

    # A bad form names the problem instead of sending.
    page.locator("#subs-new-btn").click()
    page.select_option("#sub-vendor", "apirtc")
    page.locator("#sub-create").click()
    expect(page.locator("#sub-error")).to_contain_text("at least one event")
    page.locator("#sub-all").check()
    page.locator("#sub-headers").fill("no colon here")
    page.locator("#sub-create").click()
    expect(page.locator("#sub-error")).to_contain_text("line 1")
    page.locator("#sub-headers").fill("Bad Name: x")
    page.locator("#sub-create").click()
    expect(page.locator("#sub-error")).to_contain_text("invalid header")
    problems.assert_none(allow_console=allow_http_errors)


def test_audian_api_subscription_is_listed_and_receives(
        server, page: Page, problems: PageProblems) -> None:
    created = httpx.post(server.url + "/vendors/audian/v2/webhooks", headers=AUDIAN, json={
        "url": f"{server.url}/in/audian-ui", "events": ["call.completed"], "active": True,
        "description": "registered by the app"})
    assert created.status_code == 201, created.text
    wh = created.json()
    open_subs(page, server.url, "audian-ui")
    r = row(page, wh["id"])
    expect(r).to_be_visible()
    expect(r.locator(".sub-vendor")).to_have_text("Audian")
    expect(r.locator(".sub-vendor")).to_have_attribute("title", "via the vendor's API")
    expect(r.locator(".sub-managed")).to_have_text("vendor API")
    expect(r.locator(".sub-desc")).to_have_text("registered by the app")
    expect(r.locator(".sub-secret")).to_be_visible()  # Audian signs: its secret can be copied
    # The new-subscription form offers only console vendors.
    options = page.locator("#sub-vendor option").all_inner_texts()
    assert "Audata" in options and "Audian" not in options and "Atomic" not in options

    result = emit_from_ui(page, "audian", "call.completed")
    expect(result).to_have_attribute("data-count", "1")
    expect(result.locator(".res-dl")).to_have_attribute("data-status", "delivered")
    wait_captures(server, "audian-ui", 1)
    expect(r.locator(".sub-health")).to_have_attribute("data-last", "delivered")
    # A new registration through the API shows up on refresh.
    atomic = httpx.post(server.url + "/vendors/atomic/v1/prod/webhook",
                        headers={"Authorization": "Bearer t"},
                        json={"types": ["card-completed"], "url": f"{server.url}/in/atomic-ui"})
    assert atomic.status_code in (200, 201), atomic.text
    page.locator("#subs-refresh").click()
    at = row(page, atomic.json()["data"]["id"])
    expect(at).to_be_visible()
    expect(at.locator(".sub-env")).to_have_text("env prod")
    problems.assert_none()


def test_failing_subscription_shows_failed_health(server, page: Page,
                                                  problems: PageProblems) -> None:
    httpx.put(server.url + "/api/bins/down/response", json={"status": 503})
    sub = httpx.post(server.url + "/api/subscriptions", json={
        "vendor": "standard-webhooks", "url": f"{server.url}/in/down",
        "events": ["*"]}).json()["subscription"]
    open_subs(page, server.url, "down")
    result = emit_from_ui(page, "standard-webhooks", "invoice.paid")
    expect(result.locator(".res-dl")).to_have_attribute("data-status", "failed",
                                                        timeout=20_000)
    health = row(page, sub["id"]).locator(".sub-health")
    expect(health).to_have_attribute("data-last", "failed")
    expect(health.locator(".status")).to_have_text("503")
    expect(health.locator(".sub-counts")).to_have_attribute("data-failed", "1")
    expect(health.locator(".sub-streak")).to_have_text("1 failed in a row")
    problems.assert_none()


def test_a_pruned_last_delivery_shows_without_a_dead_link(server, page: Page,
                                                         problems: PageProblems) -> None:
    import sqlite3

    from inspector.storage.deliveries import DeliveryStore

    sub = httpx.post(server.url + "/api/subscriptions", json={
        "vendor": "standard-webhooks", "url": f"{server.url}/in/pruned",
        "events": ["*"]}).json()["subscription"]
    out = httpx.post(f"{server.url}/api/vendors/standard-webhooks/events/invoice.paid/emit",
                     json={}).json()
    (did,) = [d["delivery"]["id"] for d in out["deliveries"]]
    deadline = time.monotonic() + 10  # settled, and its outcome in the subscription's log
    while server.get(f"/api/subscriptions/{sub['id']}").json()["subscription"]["health"][
            "delivered"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with sqlite3.connect(server.db, timeout=10) as conn:  # as --max-deliveries would
        conn.execute("PRAGMA foreign_keys = ON")
        assert DeliveryStore.prune(conn, keep=0) >= 1
    open_subs(page, server.url, "pruned")
    health = row(page, sub["id"]).locator(".sub-health")
    expect(health).to_have_attribute("data-last", "delivered")
    expect(health.locator(".sub-last")).to_contain_text(f"#{did} (pruned)")
    expect(health.locator(".sub-last-link")).to_have_count(0)
    expect(health.locator(".sub-counts")).to_have_attribute("data-delivered", "1")
    expect(health.locator(".sub-last-at")).to_contain_text("sent")
    problems.assert_none()


def test_run_scenario_to_the_current_bin(server, page: Page, problems: PageProblems) -> None:
    open_subs(page, server.url, "scen")
    expect(page.locator("#scenario-url")).to_have_value(f"{server.url}/in/scen")
    page.select_option("#scenario-name", "audian-call")
    expect(page.locator("#scenario-desc")).to_contain_text("call.initiated")
    expect(page.locator("#scenario-scale")).to_have_value("0")
    page.locator("#scenario-btn").click()
    box = page.locator("#scenario-result")
    expect(box).to_have_attribute("data-state", "done")
    expect(box).to_have_attribute("data-count", "5")
    expect(box.locator(".res-step")).to_have_count(5)
    for i in range(5):
        expect(box.locator(".res-dl").nth(i)).to_have_attribute("data-status", "delivered")
    caps = wait_captures(server, "scen", 5)
    events = []
    call_ids = set()
    for c in sorted(caps, key=lambda c: c["id"]):
        body = server.get(f"/api/captures/{c['id']}/raw").json()
        events.append(body["event"])
        call_ids.add(body["data"]["call_id"])
    steps = ["call.initiated", "call.ringing", "call.answered", "call.completed",
             "recording.completed"]
    # With delay_scale 0 each step is its own delivery, all under way at once: they may
    # arrive in any order. The result lists them in the scenario's order.
    assert sorted(events) == sorted(steps)
    assert box.locator(".res-step").evaluate_all(
        "els => els.map(e => e.dataset.event)") == steps
    assert len(call_ids) == 1  # one call across the scenario
    # The captures show in the Requests view.
    box.locator(".capture-link").first.click()
    expect(page.locator("#view-requests")).to_be_visible()
    expect(page.locator("#captures > li")).to_have_count(5)

    # To the vendor's subscriptions instead: only the subscribed one receives.
    httpx.post(server.url + "/vendors/audian/v2/webhooks", headers=AUDIAN, json={
        "url": f"{server.url}/in/scen-subs", "events": ["call.completed"]})
    page.locator("#tab-subscriptions").click()
    page.locator("#scenario-to-subs").check()
    expect(page.locator("#scenario-url-label")).to_be_hidden()
    page.locator("#scenario-btn").click()
    expect(box).to_have_attribute("data-state", "done")
    expect(box).to_have_attribute("data-count", "1")
    wait_captures(server, "scen-subs", 1)
    # A scale that would run too long is refused with the server's reason.
    page.locator("#scenario-scale").fill("10")
    page.locator("#scenario-btn").click()
    expect(page.locator("#scenario-error")).to_contain_text("delay_scale")
    problems.assert_none(allow_console=allow_http_errors)


def test_hostile_url_and_description_render_as_text(server, page: Page,
                                                    problems: PageProblems) -> None:
    url = f"{server.url}/in/hostile?x={URL_IMG}"
    made = httpx.post(server.url + "/api/subscriptions", json={
        "vendor": "apirtc", "url": url, "events": ["*"], "description": IMG,
        "options": {"headers": {"X-Evil": IMG}}})
    assert made.status_code == 201, made.text
    sub = made.json()["subscription"]
    open_subs(page, server.url, "hostile")
    r = row(page, sub["id"])
    expect(r.locator(".sub-desc")).to_have_text(IMG)
    expect(r.locator(".sub-url")).to_have_text(sub["url"])
    assert URL_IMG in sub["url"]
    expect(r.locator(".sub-opts")).to_contain_text(f"X-Evil: {IMG}")
    # And one typed into the form.
    page.locator("#subs-new-btn").click()
    page.select_option("#sub-vendor", "audata")
    page.locator("#sub-all").check()
    page.locator("#sub-desc").fill(IMG + "<script>alert(2)</script>")
    page.locator("#sub-create").click()
    expect(page.locator("#subs > li.sub-row")).to_have_count(2)
    expect(page.locator("#subs .sub-desc").nth(1)).to_have_text(
        IMG + "<script>alert(2)</script>")
    result = emit_from_ui(page, "apirtc", "ticket.update")
    expect(result.locator(".res-dl")).to_have_attribute("data-status", "delivered")
    expect(result.locator(".res-url")).to_contain_text(URL_IMG)
    assert page.locator("#view-subscriptions img").count() == 0
    assert page.locator("#view-subscriptions script").count() == 0
    problems.assert_none()
