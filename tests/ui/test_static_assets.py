"""The inspector's own assets, without a browser: no HTML sinks, nothing inline for the CSP to
refuse, every module served, and a flat layout that pyproject's ``static/*`` package-data ships."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

PKG = Path(__file__).resolve().parents[2] / "inspector"
STATIC = PKG / "static"
TEMPLATE = PKG / "templates" / "index.html"
SINKS = re.compile(r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write|\beval\s*\("
                   r"|new\s+Function\b|createContextualFragment|DOMParser|srcdoc")


def code_lines(path: Path) -> list[tuple[int, str]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(("//", "*", "/*")):
            continue
        out.append((n, line))
    return out


@pytest.mark.parametrize("js", sorted(p.name for p in STATIC.glob("*.js")))
def test_scripts_never_parse_html(js: str) -> None:
    bad = [f"{js}:{n}: {line.strip()}" for n, line in code_lines(STATIC / js) if SINKS.search(line)]
    assert not bad, "HTML sinks in the UI scripts:\n" + "\n".join(bad)


def test_template_has_nothing_inline() -> None:
    html = TEMPLATE.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    assert "<style" not in html


def test_static_is_flat_so_package_data_ships_it() -> None:
    subdirs = [p.name for p in STATIC.iterdir() if p.is_dir()]
    assert not subdirs, f"pyproject ships static/* only; move these up: {subdirs}"


def test_every_module_and_import_is_served(server) -> None:
    page = httpx.get(server.url + "/")
    entry = re.findall(r'<script type="module" src="([^"]+)"', page.text)
    assert entry == ["/static/app.js"]
    seen: set[str] = set()
    todo = ["app.js"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        resp = httpx.get(f"{server.url}/static/{name}")
        assert resp.status_code == 200, name
        assert "javascript" in resp.headers["content-type"], (name, resp.headers)
        todo += re.findall(r"""from\s+['"]\./([\w.-]+)['"]""", resp.text)
    assert seen == {p.name for p in STATIC.glob("*.js")}, "modules nothing imports"
    for asset in ("app.css", "favicon.svg"):
        assert httpx.get(f"{server.url}/static/{asset}").status_code == 200
