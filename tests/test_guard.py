"""Host and Origin checks: DNS rebinding and cross-site requests are refused; captures are not."""

from __future__ import annotations

import httpx
import pytest

from inspector.web.guard import HostGuard


def test_guard_unit_rules() -> None:
    g = HostGuard("127.0.0.1", [8787])
    assert g.host_ok("127.0.0.1:8787") and g.host_ok("localhost:8787") and g.host_ok("[::1]:8787")
    assert g.host_ok("LOCALHOST:8787")
    assert not g.host_ok("localhost:8788")
    assert not g.host_ok("evil.example:8787")
    assert not g.host_ok("localhost")
    assert not g.host_ok(None)
    assert g.origin_ok(None) and g.origin_ok("http://localhost:8787")
    assert not g.origin_ok("http://evil.example")
    assert not g.origin_ok("null")
    assert HostGuard("0.0.0.0", [1]).host_ok("0.0.0.0:1")


@pytest.mark.parametrize("path", ["/", "/api/bins", "/api/captures", "/static/app.css"])
def test_foreign_host_refused(server, path: str) -> None:
    r = httpx.get(server.url + path, headers={"Host": f"rebind.example:{server.port}"})
    assert r.status_code == 421
    assert "DNS rebinding" in r.json()["error"]


def test_localhost_names_accepted(server) -> None:
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
        assert httpx.get(server.url + "/api/bins", headers={"Host": host}).status_code == 200


def test_foreign_origin_refused_on_state_changes(server) -> None:
    url = server.url + "/api/bins/x/response"
    r = httpx.put(url, json={"status": 201}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "Origin" in r.json()["error"]
    r = httpx.delete(server.url + "/api/captures?bin=x",
                     headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    ok = httpx.put(url, json={"status": 201}, headers={"Origin": server.url})
    assert ok.status_code == 200
    assert httpx.get(server.url + "/api/bins",
                     headers={"Origin": "https://evil.example"}).status_code == 200


def test_capture_urls_accept_any_host_and_origin(server) -> None:
    r = httpx.post(server.url + "/in/tunnel", content=b"x",
                   headers={"Host": "abc.ngrok.example", "Origin": "https://vendor.example"})
    assert r.status_code == 200
    cap = httpx.get(f"{server.url}/api/captures/{r.json()['id']}").json()
    assert ["Host", "abc.ngrok.example"] in cap["headers"]
