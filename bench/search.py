"""Search benchmark: query latency over the 1M-capture database, and the index's ingest cost.

    python bench/search.py [--db /tmp/inspector-1m.db] [--runs 200] [--plans]
    python bench/search.py --ingest [--captures 20000] [--rounds 3] [--threads 16]
    python bench/search.py --ingest-http [--seconds 10] [--rounds 3] [--threads 16]

Default: builds (or reuses) the database of bench/scale.py and prints p50/p95 of
``search_captures`` for free text (rare, medium, common, absent words, a phrase), ``method:``,
``header:`` and combinations, newest page (limit 50) and a deeper page; ``--plans`` also prints
each query's EXPLAIN QUERY PLAN. Target: p95 <= 100 ms for free text, method: and header:.

``--ingest``: captures per second through ``CaptureStore.add`` from 16 threads (the capture
path's group commit), on fresh databases with and without the search index (its triggers
dropped), in alternating order per round; also with retention pruning on every insert, where
the index pays for the delete too. ``--ingest-http``: the same comparison through a real
server (``python -m inspector serve``, gunicorn) loaded by wrk with a realistic ~1 KiB capture
at 16 connections. Prints medians and the ratio. Figures only, no asserts.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from scale import (
    DEFAULT_DB,
    RARE_WORD,
    build,
    free_port,
    make_capture,
    pct,
    show,
    timed,
    tree_memory,
)

from inspector.storage import CaptureStore, Database, NewCapture
from inspector.storage.search import explain, search_captures

QUERIES = [
    # (label, q, bin)
    ("free text, rare word (10 hits)", RARE_WORD, None),
    ("free text, rare word in a bin", RARE_WORD, "demo"),
    ("free text, absent word", "quetzalcoatl", None),
    ("free text, medium word (~2%)", "Gwendolyn", None),
    ("free text, common word (~7%)", "completed", None),
    ("free text, very common word (~100%)", "gzip", None),
    ("free text, two words", "Lovelace Kyoto", None),
    ("free text, phrase", '"call completed"', None),
    ("free text, prefix (rare)", "zanz*", None),
    ("free text, prefix (common: app*)", "app*", None),
    ("free text, common word, other bin", "completed", "stripe"),
    ("free text, medium word + -word", "Gwendolyn -Kyoto", None),
    ("-word alone (~7% excluded)", "-completed", None),
    ("method:POST (~85%)", "method:POST", None),
    ("method:PUT (~6%)", "method:PUT", None),
    ("method:DELETE (~0.5%)", "method:DELETE", None),
    ("method:DELETE in a bin", "method:DELETE", "alpha"),
    ("header:x-audian-signature (~30%)", "header:x-audian-signature", None),
    ("header:x-debug-trace (~0.1%)", "header:x-debug-trace", None),
    ("header:x-debug-trace in a bin", "header:x-debug-trace", "apirtc"),
    ("header:x-audian-signature, bin without it", "header:x-audian-signature", "stripe"),
    ("header:x-github-event=push", "header:x-github-event=push", None),
    ("header:user-agent=stripe*", "header:user-agent=stripe*", None),
    ("type:json", "type:json", None),
    ("status:500 (~2%, its own index)", "status:500", None),
    ("status:5xx (scan)", "status:5xx", None),
    ("status:404 Gwendolyn", "status:404 Gwendolyn", None),
    ("path:/apirtc", "path:/apirtc", None),
    ("method:PUT header:authorization Gwendolyn", "method:PUT header:authorization Gwendolyn",
     None),
    ("after:<last day>", "after:2026-11-21", None),
    ("-method:POST (no index: scans)", "-method:POST", None),
    ("before:<first day> (no index: scans)", "before:2026-10-25", None),
]


def query_figures(db_path: Path, runs: int, plans: bool) -> None:
    db = build(db_path, 1_000_000)
    store = CaptureStore(db, max_captures=10**9)
    total = store.count()
    print(f"{db_path}: {total:,} captures; search_captures(limit=50), {runs} runs each",
          flush=True)
    for label, q, bin_name in QUERIES:
        page = search_captures(store, q, bin_name, 50, None)  # warm, and count the page
        ms = timed(lambda q=q, b=bin_name: search_captures(store, q, b, 50, None), runs)
        deep = ""
        if page.next is not None:
            cursor = page.next
            for _ in range(9):  # the 10th page
                nxt = search_captures(store, q, bin_name, 50, cursor).next
                cursor = nxt if nxt is not None else cursor
            d = timed(lambda q=q, b=bin_name, c=cursor: search_captures(store, q, b, 50, c),
                      max(10, runs // 10))
            deep = f"   10th page p95 {pct(d, 0.95):6.2f} ms"
        name = f"{label}{' [bin]' if bin_name else ''}"
        show(f"{name[:40]} ({len(page.captures)})", ms, deep)
        if plans:
            for line in db.read(lambda c, q=q, b=bin_name: explain(c, q, b)):
                print(f"      {line}")
    db.close()


# -- ingest cost --------------------------------------------------------------------------------
def _drop_index(path: Path) -> None:
    conn = sqlite3.connect(path)
    for name in ("captures_fts_insert", "captures_fts_delete", "captures_fts_update_old",
                 "captures_fts_update_new"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DROP TABLE captures_fts")
    conn.commit()
    conn.close()


def ingest_rate(captures: list[NewCapture], threads: int, index: bool, prune: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ingest.db"
        Database(path).close()
        if not index:
            _drop_index(path)
        db = Database(path)
        # Retention: fill every bin to its limit first, so each timed insert also prunes one.
        limit = 1000 if prune else 10**9
        store = CaptureStore(db, max_captures=limit)
        if prune:
            for k in range(len(captures) // 2):
                store.add(make_capture(10**7 + k))
        it = iter(captures)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    new = next(it, None)
                if new is None:
                    return
                store.add(new)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        started = time.perf_counter()
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
        db.close()
        return len(captures) / elapsed


def ingest_figures(count: int, rounds: int, threads: int) -> None:
    captures = [make_capture(k) for k in range(count)]
    size = statistics.mean(len(c.body) for c in captures)
    print(f"ingest: {count:,} captures (~{size:.0f} B JSON bodies) per run through "
          f"CaptureStore.add from {threads} threads, {rounds} rounds", flush=True)
    for prune in (False, True):
        rates: dict[bool, list[float]] = {True: [], False: []}
        for r in range(rounds):
            for index in ((True, False) if r % 2 == 0 else (False, True)):
                rates[index].append(ingest_rate(captures, threads, index, prune))
        with_idx, without = statistics.median(rates[True]), statistics.median(rates[False])
        kind = "with retention pruning" if prune else "insert only"
        print(f"  {kind:<24} without index {without:8,.0f}/s   with index {with_idx:8,.0f}/s"
              f"   ratio {with_idx / without:.2f} (cost {100 * (1 - with_idx / without):.0f}%)"
              f"   runs: {[round(x) for x in rates[False]]} vs {[round(x) for x in rates[True]]}",
              flush=True)


def http_rate(index: bool, seconds: int, conns: int) -> tuple[float, float]:
    """(2xx answers per second, server VmHWM MiB) of a real server loaded by wrk."""
    import httpx

    sample = make_capture(3)
    headers = {k: v for k, v in sample.headers if k.lower() not in ("host", "content-length")}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ingest.db"
        Database(path).close()
        if not index:
            _drop_index(path)
        lua = Path(tmp) / "post.lua"
        lua.write_text(f"wrk.method = {json.dumps(sample.method)}\n"
                       f"wrk.body = {json.dumps(sample.body.decode())}\n"
                       + "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n"
                                 for k, v in headers.items()))
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "inspector", "serve", "--db", str(path), "--port", str(port),
             "--max-captures", str(10**9)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                time.sleep(0.1)
            url = f"http://127.0.0.1:{port}/in/bench{sample.path}"
            subprocess.run(["wrk", "-t", "2", "-c", str(conns), "-d", "2s", "-s", str(lua), url],
                           capture_output=True, check=True)  # warm-up
            out = subprocess.run(["wrk", "-t", "2", "-c", str(conns), "-d", f"{seconds}s",
                                  "-s", str(lua), url],
                                 capture_output=True, text=True, check=True).stdout
            total = int(re.search(r"(\d+) requests in", out).group(1))
            bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            _, hwm, _ = tree_memory(proc.pid)
            return (total - (int(bad.group(1)) if bad else 0)) / seconds, hwm / 1024
        finally:
            proc.terminate()
            proc.wait(15)


def http_figures(seconds: int, rounds: int, conns: int) -> None:
    if not shutil.which("wrk"):
        raise SystemExit("--ingest-http needs wrk")
    print(f"ingest over HTTP: wrk, {conns} connections, {seconds} s per run, {rounds} rounds, "
          "retention off", flush=True)
    rates: dict[bool, list[float]] = {True: [], False: []}
    for r in range(rounds):
        for index in ((True, False) if r % 2 == 0 else (False, True)):
            rate, hwm = http_rate(index, seconds, conns)
            rates[index].append(rate)
            print(f"  round {r + 1} {'with' if index else 'without'} index: {rate:7,.0f}/s "
                  f"(server VmHWM {hwm:.0f} MiB)", flush=True)
    with_idx, without = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"  median: without index {without:,.0f}/s, with index {with_idx:,.0f}/s, ratio "
          f"{with_idx / without:.2f} (cost {100 * (1 - with_idx / without):.0f}%)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, default=DEFAULT_DB)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--plans", action="store_true")
    ap.add_argument("--ingest", action="store_true")
    ap.add_argument("--captures", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--ingest-http", action="store_true")
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    if args.ingest_http:
        http_figures(args.seconds, args.rounds, args.threads)
    elif args.ingest:
        ingest_figures(args.captures, args.rounds, args.threads)
    else:
        query_figures(args.db, args.runs, args.plans)


if __name__ == "__main__":
    main()
