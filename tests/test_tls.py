"""Local HTTPS with a real TLS server on 127.0.0.1: the local CA and its files, capture over
https with that CA as the only trust anchor, wss live updates, an https-only vendor delivering
under strict rules, a wrong CA recorded on the attempt, the Host guard, ``ca --path``, and the
same under gunicorn."""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import time
from pathlib import Path

import httpx
import pytest
import websocket  # websocket-client
from click.testing import CliRunner
from cryptography import x509

from inspector import tls
from inspector.cli import main
from inspector.config import Config, data_dir

from .conftest import free_port, start_cli_server, stop_process


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user data dir: the real one is never touched."""
    home = tmp_path / "data"
    monkeypatch.setenv("INSPECTOR_DATA_DIR", str(home))
    return home


def only_ca(pem: Path) -> ssl.SSLContext:
    """A client context that trusts this CA and nothing else (no system store)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile=str(pem))
    return ctx


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def san(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return tls._cert_names(cert)


@pytest.fixture
def tls_server(make_server):  # noqa: ANN201 - a ServerThread with HTTPS on a free port
    return make_server(tls=True, tls_port=0, retry_scale=0)


# -- the CA and the leaf ---------------------------------------------------------------------------
@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_ca_files_live_in_data_dir_with_owner_only_keys(data_home: Path, tmp_path: Path) -> None:
    cert, key = tls.ensure_leaf()
    files = tls.ca_files()
    assert files.dir == data_home / "ca" == data_dir() / "ca"
    assert mode(files.dir) == 0o700
    assert mode(files.key_path) == 0o600 and mode(key) == 0o600
    assert mode(files.cert_path) & 0o077 == 0o044  # public certificates stay readable
    assert b"PRIVATE KEY" not in files.cert_path.read_bytes() + cert.read_bytes()
    assert san(cert) == {"localhost", "127.0.0.1", "::1"}
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    ca = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # a loosened key is tightened again; the CA is reused, not replaced
    os.chmod(files.key_path, 0o644)
    os.chmod(files.dir, 0o755)
    before = files.cert_path.read_bytes()
    tls.ensure_ca()
    assert mode(files.key_path) == 0o600 and mode(files.dir) == 0o700
    assert files.cert_path.read_bytes() == before


def test_ca_is_not_beside_the_database(make_server, data_home: Path, tmp_path: Path) -> None:
    srv = make_server(tls=True, tls_port=0, db=str(tmp_path / "db" / "x.db"))
    assert srv.tls is not None and srv.tls.material.ca_path == data_home / "ca" / "ca.pem"
    assert not list((tmp_path / "db").glob("*.pem"))


def test_leaf_is_renewed_on_name_change_expiry_and_new_ca(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    cert, _ = tls.ensure_leaf(tls.DEFAULT_NAMES)
    first = cert.read_bytes()
    tls.ensure_leaf(tls.DEFAULT_NAMES)
    assert cert.read_bytes() == first  # fresh and same names: kept

    tls.ensure_leaf([*tls.DEFAULT_NAMES, "myhost.test", "10.1.2.3"])
    assert san(cert) == {"localhost", "127.0.0.1", "::1", "myhost.test", "10.1.2.3"}
    second = cert.read_bytes()

    renew = tls.RENEW_BEFORE
    monkeypatch.setattr(tls, "RENEW_BEFORE", tls.dt.timedelta(days=tls.LEAF_DAYS + 1))
    tls.ensure_leaf([*tls.DEFAULT_NAMES, "myhost.test", "10.1.2.3"])  # "about to expire"
    assert cert.read_bytes() != second
    monkeypatch.setattr(tls, "RENEW_BEFORE", renew)

    third = cert.read_bytes()
    files = tls.ca_files()
    files.key_path.unlink()  # an unusable CA is replaced, and the leaf re-issued from it
    tls.ensure_leaf([*tls.DEFAULT_NAMES, "myhost.test", "10.1.2.3"])
    assert cert.read_bytes() != third
    x509.load_pem_x509_certificate(cert.read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(files.cert_path.read_bytes()))


def test_tls_name_setting_adds_names() -> None:
    config = Config(host="127.0.0.1", tls_name="dev.example.test, 192.168.7.7 ,::1")
    assert tls.wanted_names(config) == ["localhost", "127.0.0.1", "::1", "dev.example.test",
                                        "192.168.7.7"]


# -- serving ---------------------------------------------------------------------------------------
def test_https_capture_with_the_local_ca_as_only_trust_anchor(tls_server) -> None:
    pem = tls.ca_cert_path()
    assert tls_server.tls_url == f"https://127.0.0.1:{tls_server.tls_port}"
    for host in ("127.0.0.1", "localhost"):
        with httpx.Client(verify=only_ca(pem), timeout=10) as client:
            r = client.post(f"https://{host}:{tls_server.tls_port}/in/secure/p?q=1",
                            content=b'{"over":"tls"}', headers={"X-A": "1"})
            assert r.status_code == 200, r.text
            cap_id = r.json()["id"]
            full = client.get(f"https://{host}:{tls_server.tls_port}/api/captures/{cap_id}"
                              ).json()
        assert full["tls"] in ("TLSv1.2", "TLSv1.3"), full["tls"]
        assert full["body"] == '{"over":"tls"}' and full["path"] == "/p" and full["query"] == "q=1"
        assert ["X-A", "1"] in full["headers"]
    # the plain port serves the same app and records no TLS
    plain = httpx.post(tls_server.url + "/in/secure", content=b"x").json()["id"]
    assert httpx.get(f"{tls_server.url}/api/captures/{plain}").json()["tls"] is None
    # the IPv6 loopback name is in the certificate too (served here only on 127.0.0.1)
    assert "::1" in san(tls_server.tls.material.cert_path)


def test_wss_live_updates(tls_server) -> None:
    pem = str(tls.ca_cert_path())
    base = f"https://localhost:{tls_server.tls_port}"
    ws = websocket.create_connection(base.replace("https://", "wss://") + "/ws?bin=live",
                                     timeout=10, origin=base,
                                     sslopt={"ca_certs": pem, "cert_reqs": ssl.CERT_REQUIRED})
    try:
        while json.loads(ws.recv())["type"] != "hello":
            pass
        cap_id = httpx.post(base + "/in/live", content=b"{}", verify=only_ca(Path(pem))
                            ).json()["id"]
        deadline = time.monotonic() + 10
        while True:
            ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(ws.recv())
            if msg["type"] == "capture":
                break
        assert msg["capture"]["id"] == cap_id and msg["capture"]["bin"] == "live"
    finally:
        ws.close()


def test_host_guard_knows_the_tls_port(tls_server) -> None:
    ctx = only_ca(tls.ca_cert_path())
    port = tls_server.tls_port
    assert httpx.get(f"https://localhost:{port}/api/bins", verify=ctx).status_code == 200
    r = httpx.get(f"https://127.0.0.1:{port}/api/bins", verify=ctx,
                  headers={"Host": f"evil.example:{port}"})
    assert r.status_code == 421
    r = httpx.delete(f"https://localhost:{port}/api/captures?bin=x", verify=ctx,
                     headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    r = httpx.delete(f"https://localhost:{port}/api/captures?bin=x", verify=ctx,
                     headers={"Origin": f"https://localhost:{port}"})
    assert r.status_code < 400
    guard = tls_server.app.extensions["inspector"].guard
    assert guard.host_ok(f"localhost:{port}") and guard.host_ok(f"localhost:{tls_server.port}")


def test_ca_pem_download_is_the_public_certificate_only(tls_server) -> None:
    r = httpx.get(tls_server.url + "/ca.pem")
    assert r.status_code == 200
    assert r.content == tls.ca_cert_path().read_bytes()
    assert b"BEGIN CERTIFICATE" in r.content and b"PRIVATE KEY" not in r.content
    assert "attachment" in r.headers["content-disposition"]
    info = httpx.get(tls_server.url + "/api/tls").json()
    assert info["enabled"] and info["port"] == tls_server.tls_port
    assert info["ca"]["download"] == "/ca.pem" and "NODE_EXTRA_CA_CERTS" in info["instructions"]


def test_plain_http_on_the_tls_port_gets_a_hint(tls_server) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.tls_port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = s.recv(4096)
    assert data.startswith(b"HTTP/1.1 400") and b"https://" in data


def test_untrusted_client_fails_the_handshake_and_server_keeps_serving(tls_server) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{tls_server.tls_port}/healthz",
                  verify=ssl.create_default_context())  # system store only: unknown CA
    r = httpx.get(f"https://127.0.0.1:{tls_server.tls_port}/healthz",
                  verify=only_ca(tls.ca_cert_path()))
    assert r.json() == {"status": "ok"}


def test_own_certificate_and_bad_one(make_server, tmp_path: Path) -> None:
    from inspector.server import TLSSetupError

    other = tmp_path / "other"
    cert, key = tls.ensure_leaf(base=other)
    srv = make_server(tls_port=0, tls_cert=str(cert), tls_key=str(key))  # implies --tls
    assert srv.config.tls and srv.tls.material.ca_path is None
    r = httpx.get(f"{srv.tls_url}/healthz", verify=only_ca(other / "ca" / "ca.pem"))
    assert r.status_code == 200
    assert not tls.ca_files().key_path.exists()  # no local CA was made for it
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(TLSSetupError, match="--tls-cert"):
        make_server(tls_port=0, tls_cert=str(bad), tls_key=str(key))


# -- the mock provider delivering over https -------------------------------------------------------
def _send(srv, **body) -> dict:  # noqa: ANN001
    r = httpx.post(srv.url + "/api/send", json={**body, "wait": True}, timeout=60)
    assert r.status_code in (200, 201), r.text
    return r.json()["delivery"]


def test_https_only_vendor_delivers_to_local_https_bin_under_strict_rules(make_server) -> None:
    srv = make_server(tls=True, tls_port=0, retry_scale=0, strict_vendor_rules=True)
    url = f"https://localhost:{srv.tls_port}/in/audian-secure"
    d = _send(srv, vendor="audian", event="call.completed", url=url, seed=3)
    assert d["status"] == "delivered", d
    assert d["attempts"][0]["response"]["status"] == 200
    (cap,) = httpx.get(srv.url + "/api/captures", params={"bin": "audian-secure"}
                       ).json()["captures"]
    full = httpx.get(f"{srv.url}/api/captures/{cap['id']}").json()
    assert full["tls"].startswith("TLSv1.")
    # and the same vendor's http:// target is refused under strict rules
    d = _send(srv, vendor="audian", event="call.completed", url=srv.url + "/in/plain")
    assert d["status"] == "failed" and d["attempts"] == []


def test_wrong_ca_gives_a_recorded_tls_error_attempt(make_server, tmp_path: Path) -> None:
    tls.ensure_ca()  # the CA the engine trusts: not the one that issued the server's cert
    cert, key = tls.ensure_leaf(base=tmp_path / "stranger")
    srv = make_server(tls_port=0, tls_cert=str(cert), tls_key=str(key), retry_scale=0)
    d = _send(srv, vendor="audian", event="call.completed",
              url=f"https://localhost:{srv.tls_port}/in/never")
    assert d["status"] == "failed" and d["attempts"], d
    err = d["attempts"][0]["error"]
    assert err.startswith("TLS:") and "certificate" in err.lower(), err
    assert "issuer" in err.lower() or "verify" in err.lower(), err
    assert httpx.get(srv.url + "/api/captures", params={"bin": "never"}
                     ).json()["captures"] == []


# -- CLI -------------------------------------------------------------------------------------------
def test_ca_path_prints_only_the_path_and_creates_the_ca(data_home: Path) -> None:
    result = CliRunner().invoke(main, ["ca", "--path"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{data_home / 'ca' / 'ca.pem'}\n"
    assert (data_home / "ca" / "ca.pem").is_file()
    again = CliRunner().invoke(main, ["ca", "--path"])
    assert again.output == result.output
    info = CliRunner().invoke(main, ["ca"])
    assert info.exit_code == 0
    for needle in ("--cacert", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS",
                   "update-ca-certificates", str(data_home / "ca" / "ca.pem")):
        assert needle in info.output


def test_ready_message_lists_https(make_server) -> None:
    from inspector.server import ready_message

    srv = make_server(tls=True, tls_port=0)
    text = ready_message(srv.config, srv.port)
    assert f"https://127.0.0.1:{srv.tls_port}/in/<bin>" in text
    assert str(tls.ca_cert_path()) in text
    assert "https://" not in ready_message(Config(port=1), 1)


# -- under gunicorn (the default server) -----------------------------------------------------------
def test_gunicorn_serves_https_beside_http(tmp_path: Path, data_home: Path) -> None:
    port, tls_port = free_port(), free_port()
    proc = start_cli_server(tmp_path / "g.db", port, "--server", "gunicorn", "--workers", "2",
                            "--tls", "--tls-port", str(tls_port),
                            env={"INSPECTOR_DATA_DIR": str(data_home)})
    try:
        ctx = only_ca(data_home / "ca" / "ca.pem")
        ids = []
        for _ in range(6):  # spread over both workers
            with httpx.Client(verify=ctx, timeout=10) as client:
                ids.append(client.post(f"https://localhost:{tls_port}/in/g",
                                       content=b"x").json()["id"])
        full = httpx.get(f"http://127.0.0.1:{port}/api/captures/{ids[-1]}").json()
        assert full["tls"].startswith("TLSv1.")
        assert httpx.get(f"https://localhost:{tls_port}/api/bins", verify=ctx).status_code == 200
        assert mode(data_home / "ca" / "server-key.pem") == 0o600
    finally:
        stop_process(proc)
    assert proc.returncode == 0
    out = proc.stdout.read().decode()
    assert f"https://127.0.0.1:{tls_port}/" in out
