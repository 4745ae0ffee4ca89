"""The captures API: pagination, retention, deletes, restarts, errors."""

from __future__ import annotations

import threading

import httpx

from inspector.config import Config
from inspector.server import ServerThread


def post(url: str, bin_name: str, body: bytes = b"{}") -> int:
    r = httpx.post(f"{url}/in/{bin_name}", content=body)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_pagination_newest_first_no_gaps_while_inserting(server) -> None:
    for i in range(30):
        post(server.url, "pg", str(i).encode())
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            post(server.url, "pg")

    t = threading.Thread(target=writer)
    t.start()
    try:
        seen, cursor = [], None
        first = httpx.get(server.url + "/api/captures", params={"bin": "pg", "limit": 7}).json()
        top = first["captures"][0]["id"]
        seen += [c["id"] for c in first["captures"]]
        cursor = first["next"]
        while cursor is not None:
            page = httpx.get(server.url + "/api/captures",
                             params={"bin": "pg", "limit": 7, "before": cursor}).json()
            seen += [c["id"] for c in page["captures"]]
            cursor = page["next"]
    finally:
        stop.set()
        t.join()
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == len(set(seen))
    assert seen == list(range(top, 0, -1))  # every id from the first page's top down to 1


def test_summary_shape_and_bin_filter(server) -> None:
    post(server.url, "a", b'{"x":1}')
    httpx.post(server.url + "/in/b", json={"y": 2})
    caps = httpx.get(server.url + "/api/captures", params={"bin": "b"}).json()
    assert caps["next"] is None
    (only,) = caps["captures"]
    assert set(only) >= {"id", "bin", "method", "path", "content_type", "size", "received_at"}
    assert only["bin"] == "b" and only["content_type"] == "application/json"
    assert len(httpx.get(server.url + "/api/captures").json()["captures"]) == 2


def test_unknown_ids_are_json_404(server) -> None:
    for method, path in [("GET", "/api/captures/999"), ("GET", "/api/captures/999/raw"),
                         ("DELETE", "/api/captures/999"), ("GET", "/api/bins/nope"),
                         ("GET", "/api/no-such-route")]:
        r = httpx.request(method, server.url + path)
        assert r.status_code == 404, path
        assert "error" in r.json(), path


def test_bad_arguments_are_400_with_message(server) -> None:
    r = httpx.get(server.url + "/api/captures", params={"limit": "many"})
    assert r.status_code == 400 and "limit" in r.json()["error"]
    r = httpx.get(server.url + "/api/captures", params={"bin": "no/pe"})
    assert r.status_code == 400
    r = httpx.put(server.url + "/api/bins/x/response", content=b"not json")
    assert r.status_code == 400 and "JSON" in r.json()["error"]


def test_delete_one_and_clear_bin(server) -> None:
    ids = [post(server.url, "del") for _ in range(3)]
    post(server.url, "keep")
    assert httpx.delete(f"{server.url}/api/captures/{ids[1]}").status_code == 200
    left = [c["id"] for c in httpx.get(server.url + "/api/captures?bin=del").json()["captures"]]
    assert left == [ids[2], ids[0]]
    assert httpx.get(server.url + "/api/bins/del").json()["bin"]["count"] == 2
    r = httpx.delete(server.url + "/api/captures", params={"bin": "del"})
    assert r.json()["deleted"] == 2
    assert httpx.get(server.url + "/api/captures?bin=del").json()["captures"] == []
    assert len(httpx.get(server.url + "/api/captures?bin=keep").json()["captures"]) == 1
    assert httpx.delete(server.url + "/api/captures").status_code == 400


def test_ids_never_reused_after_delete(server) -> None:
    first = post(server.url, "r")
    httpx.delete(f"{server.url}/api/captures/{first}")
    assert post(server.url, "r") > first


def test_retention_prunes_exactly_the_oldest(make_server) -> None:
    srv = make_server(max_captures=5)
    ids = [post(srv.url, "ret", str(i).encode()) for i in range(12)]
    other = post(srv.url, "other")
    kept = [c["id"] for c in httpx.get(srv.url + "/api/captures?bin=ret").json()["captures"]]
    assert kept == ids[-5:][::-1]
    info = httpx.get(srv.url + "/api/bins/ret").json()["bin"]
    assert (info["count"], info["pruned"]) == (5, 7)
    assert httpx.get(f"{srv.url}/api/captures/{other}").status_code == 200
    assert httpx.get(f"{srv.url}/api/captures/{ids[6]}").status_code == 404


def test_restart_keeps_everything(tmp_path) -> None:
    db = tmp_path / "persist.db"
    body = bytes(range(256))
    with ServerThread(Config(port=0, db=str(db))) as srv:
        cap_id = post(srv.url, "persist", body)
        httpx.put(srv.url + "/api/bins/persist/response", json={"status": 202})
    with ServerThread(Config(port=0, db=str(db))) as srv:
        assert httpx.get(f"{srv.url}/api/captures/{cap_id}/raw").content == body
        assert httpx.post(srv.url + "/in/persist", content=b"").status_code == 202
        assert httpx.get(srv.url + "/api/bins/persist").json()["bin"]["count"] == 2


def test_healthz(server) -> None:
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}


def test_index_page_lists_bins_and_capture_url(server) -> None:
    post(server.url, "shown")
    page = httpx.get(server.url + "/")
    assert page.status_code == 200
    assert "shown" in page.text and f"{server.url}/in/" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    css = httpx.get(server.url + "/static/app.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
