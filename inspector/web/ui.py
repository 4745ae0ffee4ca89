"""The HTML face: the inspector page. Its data comes from the JSON API and the websocket."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from .. import __version__
from .services import services

bp = Blueprint("ui", __name__, template_folder="../templates", static_folder="../static",
               static_url_path="/static")


@bp.get("/")
def index() -> str:
    svc = services()
    base = request.host_url.rstrip("/")
    return render_template("index.html", bins=svc.store.bins(), capture_base=base + "/in/",
                           version=__version__)
