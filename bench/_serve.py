"""Start one bench target under the exact server setup `webhook-inspector serve` uses.

    python bench/_serve.py ours|ceiling uvicorn|gunicorn PORT DB [WORKERS] [THREADS]

`ceiling` is a bare Flask endpoint that reads the body and answers 200 without storing: what
the same server could do if capturing cost nothing. Under uvicorn it runs the way `serve` runs
every Flask route there (through a2wsgi); `ours` is `serve` itself, whose captures do not go
through Flask at all (inspector/web/asgi.py).
"""

from __future__ import annotations

import sys

from flask import Flask, request

from inspector.config import Config
from inspector.server import gunicorn_options, run_gunicorn
from inspector.storage.db import migrate


def ceiling_app() -> Flask:
    app = Flask("ceiling")

    @app.route("/in/<bin_name>", methods=["POST"])
    def hook(bin_name: str) -> tuple[str, int]:
        request.get_data()
        return '{"ok": true}', 200

    return app


def main() -> None:
    target, server, port, db = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    threads = int(sys.argv[6]) if len(sys.argv) > 6 else 128
    # Retention off: the bench counts rows to prove nothing acknowledged was lost.
    config = Config(port=port, db=db, workers=workers, threads=threads, max_captures=10**12)
    if target == "ours":
        migrate(config.db_path)
    if server == "uvicorn":
        from a2wsgi import WSGIMiddleware

        from inspector.uvicorn_server import run_asgi, serve_uvicorn

        if target == "ours":
            serve_uvicorn(config)
        else:
            run_asgi(WSGIMiddleware(ceiling_app(), workers=threads), config)
        return

    def load():  # noqa: ANN202
        if target != "ours":
            return ceiling_app()
        from inspector.app import create_app

        return create_app(config, multiprocess=workers > 1)

    run_gunicorn(gunicorn_options(config), load)


if __name__ == "__main__":
    main()
