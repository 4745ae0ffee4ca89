"""With --tls the page shows the https capture URL and offers the local CA for download."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("pytest_playwright")
from playwright.sync_api import Page, expect  # noqa: E402

from inspector.config import Config  # noqa: E402
from inspector.server import ServerThread  # noqa: E402

from .conftest import PageProblems, open_inspector, wait_live  # noqa: E402


def test_https_url_and_ca_download(tmp_path, monkeypatch, page: Page,
                                   problems: PageProblems) -> None:
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(tmp_path / "data"))
    srv = ServerThread(Config(port=0, db=str(tmp_path / "t.db"), tls=True, tls_port=0)).start()
    try:
        httpx.post(srv.url + "/in/secure", content=b"x")
        open_inspector(page, srv.url, "secure")
        wait_live(page)
        expect(page.locator("#tls-row")).to_be_visible()
        expect(page.locator("#tls-url")).to_have_text(
            f"https://127.0.0.1:{srv.tls_port}/in/secure")
        href = page.locator("#ca-download").get_attribute("href")
        pem = httpx.get(srv.url + href).text
        assert pem.startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE" not in pem
        assert "curl" in page.locator("#ca-download").get_attribute("title")
        assert problems.errors == []
    finally:
        srv.stop()


def test_no_https_row_without_tls(server, page: Page) -> None:
    open_inspector(page, server.url)
    wait_live(page)
    expect(page.locator("#tls-row")).to_be_hidden()
