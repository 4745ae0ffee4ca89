"""Start one bench target under the exact gunicorn setup `webhook-inspector serve` uses.

    python bench/_serve.py ours|ceiling PORT DB [WORKERS] [THREADS]

`ceiling` is a bare Flask endpoint that reads the body and answers 200 without storing: what
the same server could do if capturing cost nothing.
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
    target, port, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    workers = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 128
    # Retention off: the bench counts rows to prove nothing acknowledged was lost.
    config = Config(port=port, db=db, workers=workers, threads=threads, max_captures=10**12)
    if target == "ours":
        migrate(config.db_path)

        def load():  # noqa: ANN202
            from inspector.app import create_app

            return create_app(config, multiprocess=workers > 1)
    else:
        load = ceiling_app
    run_gunicorn(gunicorn_options(config), load)


if __name__ == "__main__":
    main()
