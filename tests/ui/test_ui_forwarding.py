"""Forwarding in a real browser: the bin's rules editor, the list's forward badges and the
detail's Forwarded section, against a real server forwarding to a real app on loopback
(``App`` from tests/test_forwarding.py: a threaded http.server that records what it got).

Every test waits for the page's websocket before sending what it expects to see, and waits on
the page's own state (badge text, data attributes) rather than sleeping.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

pytest.importorskip("pytest_playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from ..test_forwarding import closed_port  # noqa: E402
from .conftest import PageProblems, open_inspector  # noqa: E402

IMG = "<img src=x onerror=alert(1)>"


def answer_202(_got: object) -> tuple[int, list[tuple[str, str]], bytes]:
    return 202, [("Content-Type", "application/json"), ("X-App", "yes")], \
        b'{"received": true, "by": "the app"}'


def allow_http_errors(text: str) -> bool:
    """Chromium logs the 400 the test provokes on purpose (an invalid rule)."""
    return bool(re.search(r"status of 400", text))


def badge(page: Page, cap_id: int):  # noqa: ANN201
    return page.locator(f"#captures > li[data-id='{cap_id}'] .fwd-badge")


def select(page: Page, cap_id: int) -> None:
    page.locator(f"#captures > li[data-id='{cap_id}']").click()
    expect(page.locator(f"#detail article.detail[data-id='{cap_id}']")).to_be_visible()


def open_rules(page: Page) -> None:
    page.locator("#forward-btn").click()
    expect(page.locator("#forward-dialog")).to_be_visible()


def first_target(page: Page):  # noqa: ANN201
    return page.locator("#forward-targets .fwd-edit").first


def test_rules_from_the_ui_then_badge_and_the_apps_answer(server, page: Page, apps,
                                                          problems: PageProblems) -> None:
    app = apps(answer=answer_202)
    open_inspector(page, server.url, "fwd")
    expect(page.locator("#forward-btn")).to_have_attribute("data-on", "false")
    open_rules(page)
    row = first_target(page)
    # The API's validation is shown in the dialog, on the target it is about.
    row.locator(".fwd-url").fill("ftp://127.0.0.1/nope")
    page.locator("#forward-save").click()
    expect(page.locator("#forward-error")).to_be_visible()
    expect(page.locator("#forward-error")).to_contain_text("targets[0]")
    expect(row).to_have_class(re.compile(r"\binvalid\b"))
    row.locator(".fwd-url").fill(app.url("/hooks"))
    row.locator(".fwd-filters > summary").click()
    row.locator(".fwd-f-method").fill("POST")
    row.locator(".fwd-f-json").fill('$.type = "invoice.paid"')
    page.locator("input[name='forward-mode'][value='proxy']").check()
    page.locator("#forward-timeout").fill("5")
    page.locator("#forward-retry").fill("0, 1, 2")
    page.locator("#forward-save").click()
    expect(page.locator("#forward-dialog")).to_be_hidden()
    expect(page.locator("#forward-btn")).to_have_attribute("data-on", "true")
    rules = httpx.get(f"{server.url}/api/bins/fwd/forward").json()
    assert rules["targets"] == [{"url": app.url("/hooks"), "path": True, "filters": {
        "method": "POST", "json": {"$.type": "invoice.paid"}}}]
    assert (rules["mode"], rules["timeout"], rules["retry"]) == ("proxy", 5.0, [0.0, 1.0, 2.0])

    # A request the filters leave out, then one they match (proxy: the sender gets the app's
    # own answer).
    skipped = httpx.post(f"{server.url}/in/fwd", json={"type": "invoice.failed"}).json()["id"]
    r = httpx.post(f"{server.url}/in/fwd/orders?x=1", json={"type": "invoice.paid"},
                   headers={"X-Signature": "sig"})
    assert r.status_code == 202 and r.json() == {"received": True, "by": "the app"}
    assert app.got[0].target == "/hooks/orders?x=1"
    cap_id = httpx.get(f"{server.url}/api/captures", params={"bin": "fwd", "limit": 1}
                       ).json()["captures"][0]["id"]
    assert cap_id > skipped
    expect(badge(page, cap_id)).to_have_text("→ 202")
    expect(badge(page, cap_id)).to_have_attribute("data-state", "delivered")
    expect(badge(page, skipped)).to_be_hidden()

    select(page, cap_id)
    section = page.locator("#d-forwarded")
    expect(section).to_be_visible()
    expect(section.locator("#d-forwarded-badge")).to_have_text("→ 202")
    resp = section.locator(".fwd-resp")
    expect(resp.locator(".status")).to_have_text("202")
    expect(resp.locator("table.kv tr", has_text="X-App")).to_contain_text("yes")
    expect(resp.locator(".fwd-resp-body")).to_have_text('{"received": true, "by": "the app"}')
    req = section.locator(".fwd-req")
    expect(req).to_contain_text(app.url("/hooks/orders?x=1"))
    expect(req.locator("table.kv tr", has_text="X-Signature")).to_contain_text("sig")
    expect(req.locator(".fwd-req-body")).to_have_text('{"type":"invoice.paid"}')
    # The request the filters left out says why there is nothing.
    select(page, skipped)
    expect(page.locator("#d-forwarded .fwd-none")).to_contain_text("no target's filters")

    # Reopening the dialog shows the rules as saved; Stop forwarding removes them.
    open_rules(page)
    expect(first_target(page).locator(".fwd-url")).to_have_value(app.url("/hooks"))
    expect(first_target(page).locator(".fwd-f-json")).to_have_value('$.type = "invoice.paid"')
    expect(page.locator("#forward-retry")).to_have_value("0, 1, 2")
    page.locator("#forward-stop").click()
    expect(page.locator("#forward-btn")).to_have_attribute("data-on", "false")
    assert httpx.get(f"{server.url}/api/bins/fwd/forward").json()["targets"] == []
    problems.assert_none(allow_http_errors)


def test_app_down_then_resend_delivers_in_order(server, page: Page, apps,
                                                problems: PageProblems) -> None:
    port = closed_port()
    open_inspector(page, server.url, "down")
    open_rules(page)
    first_target(page).locator(".fwd-url").fill(f"http://127.0.0.1:{port}/hooks")
    page.locator("#forward-retry").fill("0, 600")  # one try, then a long wait
    page.locator("#forward-save").click()
    expect(page.locator("#forward-btn")).to_have_attribute("data-on", "true")

    first = httpx.post(f"{server.url}/in/down", content=b'{"n": 1}').json()["id"]
    second = httpx.post(f"{server.url}/in/down", content=b'{"n": 2}').json()["id"]
    expect(badge(page, first)).to_have_text("→ retrying")
    expect(badge(page, first)).to_have_attribute("title", re.compile("connection refused"))
    expect(badge(page, second)).to_have_text("→ pending")  # queued behind the first
    select(page, first)
    section = page.locator("#d-forwarded")
    expect(section.locator(".fwd-resp .att-error")).to_contain_text("connection refused")
    expect(section.locator(".fwd-delivery .d-status")).to_have_text("pending")

    app = apps(port=port, answer=answer_202)
    section.locator("#act-resend").click()
    expect(badge(page, first)).to_have_text("→ 202")
    expect(badge(page, second)).to_have_text("→ 202")  # the queue moved on, in order
    assert [g.body for g in app.got] == [b'{"n": 1}', b'{"n": 2}']
    expect(section.locator(".fwd-delivery .d-status")).to_have_text("delivered")
    expect(section.locator(".fwd-resp .status")).to_have_text("202")
    # Two attempts: the failed one can still be read.
    attempts = section.locator(".fwd-attempts tbody tr")
    expect(attempts).to_have_count(2)
    attempts.first.click()
    expect(section.locator(".fwd-resp .att-error")).to_contain_text("connection refused")

    # Delivered already: Re-send makes a new delivery of the same bytes.
    section.locator("#act-resend").click()
    expect(section.locator(".fwd-delivery")).to_have_count(2)
    expect(section.locator(".fwd-delivery").nth(1)).to_contain_text("re-send of #")
    assert app.wait_for(3)[2].body == b'{"n": 1}'
    problems.assert_none()


def test_the_apps_answer_is_shown_as_text(server, page: Page, apps,
                                          problems: PageProblems) -> None:
    app = apps(answer=lambda g: (500 if not app.got[:-1] else 200,
                                 [("Content-Type", "text/html"), ("X-Evil", IMG)],
                                 IMG.encode()))
    httpx.put(f"{server.url}/api/bins/xss/forward",
              json={"targets": [app.url()], "retry": [0, 0.2]})
    open_inspector(page, server.url, "xss")
    cap_id = httpx.post(f"{server.url}/in/xss", content=IMG.encode()).json()["id"]
    expect(badge(page, cap_id)).to_have_text("→ 200")
    select(page, cap_id)
    section = page.locator("#d-forwarded")
    expect(section.locator(".fwd-resp-body")).to_have_text(IMG)
    expect(section.locator(".fwd-resp table.kv tr", has_text="X-Evil")).to_contain_text(IMG)
    expect(section.locator(".fwd-req-body")).to_have_text(IMG)
    section.locator(".fwd-attempts tbody tr").first.click()  # the 500 with the same body
    expect(section.locator(".fwd-resp .status")).to_have_text("500")
    expect(section.locator(".fwd-resp-body")).to_have_text(IMG)
    assert page.locator("#detail img, #captures img").count() == 0
    assert json.loads(httpx.get(f"{server.url}/api/forwards/status",
                                params={"ids": cap_id}).text)["statuses"] == {
        str(cap_id): "delivered"}
    problems.assert_none()
