"""HTTPS helpers for the UI: the local CA's certificate to download, and how to trust it.

Only the public certificate is ever served; the CA's key never leaves ``data_dir()/ca/``.
Registering this blueprint also tells the Host guard about the TLS port, so
``https://localhost:<tls_port>/`` is this server's own origin.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from .services import services

bp = Blueprint("tls", __name__)


@bp.record_once
def _know_tls_port(state: Any) -> None:
    svc = state.app.extensions.get("inspector")
    config = getattr(svc, "config", None)
    if config is not None and getattr(config, "tls", False) and config.tls_port:
        svc.guard.add_port(int(config.tls_port))


@bp.get("/ca.pem")
def ca_pem() -> Any:
    from ..tls import ca_cert_path

    path = ca_cert_path()
    if not path.is_file():
        return jsonify({"error": "no local CA yet: start the server with --tls or run "
                                 "'webhook-inspector ca'"}), 404
    resp = Response(path.read_bytes(), mimetype="application/x-pem-file")
    resp.headers["Content-Disposition"] = 'attachment; filename="webhook-inspector-ca.pem"'
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/api/tls")
def tls_info() -> Any:
    """For the UI: whether HTTPS is on, where, and how to trust the CA."""
    from ..tls import ca_cert_path, describe_ca, trust_instructions

    config = services().config
    enabled = bool(getattr(config, "tls", False))
    host = config.host.strip("[]")
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else (f"[{host}]" if ":" in host
                                                              else host)
    path = ca_cert_path()
    info = describe_ca(path)
    return jsonify({
        "enabled": enabled,
        "port": config.tls_port if enabled else None,
        "url": f"https://{host}:{config.tls_port}/" if enabled else None,
        "own_certificate": bool(getattr(config, "tls_cert", None)),
        "ca": {**info, "download": "/ca.pem" if info.get("exists") else None},
        "instructions": trust_instructions(path, config.tls_port or 8443)
        if info.get("exists") else None,
    })
