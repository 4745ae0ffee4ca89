"""The domain modules stay free of Flask: storage, live, signing, provider, delivery, …"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "inspector"
WEB_FREE = ["storage", "live", "provider", "delivery", "signing.py", "diffing.py", "export.py",
            "config.py", "tls.py", "search.py", "client.py"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_modules_import_no_flask() -> None:
    checked = 0
    for entry in WEB_FREE:
        target = PKG / entry
        files = list(target.rglob("*.py")) if target.is_dir() else [target]
        for f in files:
            if f.exists():
                checked += 1
                bad = imported_modules(f) & {"flask", "flask_sock", "werkzeug"}
                assert not bad, f"{f.relative_to(PKG)} imports {bad}"
    assert checked >= 5
