"""The HTML face: the inspector page. Its data comes from the JSON API and the websocket.

The page itself carries only what the scripts need to start (the capture base URL, the bin in
``?bin=``) in ``data-*`` attributes: the CSP allows no inline script or style.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .. import __version__
from ..storage.captures import BIN_NAME
from .services import services

bp = Blueprint("ui", __name__, template_folder="../templates", static_folder="../static",
               static_url_path="/static")


@bp.get("/")
def index() -> str:
    svc = services()
    base = request.host_url.rstrip("/")
    selected = request.args.get("bin", "")
    if not BIN_NAME.fullmatch(selected):
        selected = ""
    return render_template("index.html", bins=svc.store.bins(), capture_base=base + "/in/",
                           selected_bin=selected, version=__version__)
