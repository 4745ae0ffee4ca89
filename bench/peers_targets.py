"""webhook-inspector as targets of the shared peers harness (../shared/bench/ingest_bench.py).

    OURS_DIR=$PWD OURS_PYTHON=$(which python) python3 ../shared/bench/ingest_bench.py run \\
        --targets-file bench/peers_targets.py \\
        --targets flask-bare,flask-sqlite-wal,ours,ours-gunicorn,ours-2w,fasthook,mockoon

`ours` is exactly what a user runs (`webhook-inspector serve`, defaults: uvicorn, one process);
`ours-gunicorn` is the same on gunicorn's gthread worker and `ours-2w` two gunicorn workers.
Retention is raised so the harness's row count can prove that nothing acknowledged was lost.
"""

import os
import sys

from ingest_bench import Target, sqlite_count

OURS = os.environ.get("OURS_DIR", os.getcwd())
PY = os.environ.get("OURS_PYTHON", sys.executable)


def _target(name: str, *extra: str) -> Target:
    return Target(
        name=name,
        cmd=[PY, "-m", "inspector", "serve", "--port", "{port}", "--db",
             "{workdir}/inspector.db", "--max-captures", "1000000000", *extra],
        env={"PYTHONPATH": OURS, "INSPECTOR_DATA_DIR": "{workdir}/data"},
        capture_path="/in/bench",
        count=sqlite_count("{workdir}/inspector.db", "SELECT count(*) FROM captures"),
        ready_path="/healthz",
        requires=[PY],
        notes="webhook-inspector serve (commits before answering)",
    )


TARGETS = [_target("ours"), _target("ours-gunicorn", "--server", "gunicorn"),
           _target("ours-2w", "--workers", "2")]
