"""Forwarding benchmark: capture with a forward rule vs capture alone, same server, same run.

    python bench/forward.py [--rounds 3] [--duration 5] [--concurrency 16] [--workers 1]
                            [--server uvicorn]

One server (the setup of `webhook-inspector serve`, bench/_serve.py; uvicorn by default) and
one target app (a small asyncio HTTP server in a subprocess, answering 200 and recording each
body). Bin
``plain`` has no rules; bin ``fwd`` forwards to the app. Each round loads one bin then the
other (alternating order), POSTing a 1 KiB JSON body carrying a unique number at fixed
concurrency, and reports req/s and p50/p99 of the capture answers. After each ``fwd`` phase
it waits until every capture of ``fwd`` has a delivered forward (so the next phase runs
alone). At the end it checks, from the database and the app's log: no capture without a
forward (lost), none delivered twice, and the app received them in capture order. Prints
per-round figures, medians and the ratio fwd/plain.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Result, _py_load, free_port, wait_port  # noqa: E402

HERE = Path(__file__).resolve().parent
PAD = "x" * 980


# -- the target app (subprocess) ------------------------------------------------------------------
def target_main(port: int, log_path: str) -> None:
    received: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                body = await reader.readexactly(int(m.group(1))) if m else b""
                if head.startswith(b"GET /dump"):
                    Path(log_path).write_text(json.dumps(received))
                    out = str(len(received)).encode()
                else:
                    try:
                        received.append(json.loads(body)["n"])
                    except (ValueError, KeyError):
                        received.append(-1)
                    out = b'{"ok":true}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(out)).encode() + b"\r\n\r\n" + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- load -----------------------------------------------------------------------------------------
def load(port: int, bin_name: str, seconds: float, conc: int, start_n: int) -> Result:
    """ingest.py's client with a numbered body per request, so order can be checked."""
    counter = itertools.count(start_n + 1)

    def body() -> bytes:
        return json.dumps({"n": next(counter), "event": "call.completed",
                           "data": {"pad": PAD}}).encode()

    return asyncio.run(_py_load(port, f"/in/{bin_name}", seconds, conc, body))


# -- checks ---------------------------------------------------------------------------------------
def forward_state(db: Path) -> tuple[int, int, int, int]:
    """(captures of fwd, delivered forwards, captures without any forward, duplicates)."""
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        caps = conn.execute("SELECT COUNT(*) FROM captures WHERE bin = 'fwd'").fetchone()[0]
        delivered = conn.execute(
            "SELECT COUNT(DISTINCT capture_id) FROM deliveries WHERE source = 'forward'"
            " AND status = 'delivered'").fetchone()[0]
        missing = conn.execute(
            "SELECT COUNT(*) FROM captures c WHERE c.bin = 'fwd' AND NOT EXISTS (SELECT 1 FROM"
            " deliveries d WHERE d.capture_id = c.id AND d.source = 'forward')").fetchone()[0]
        dupes = conn.execute(
            "SELECT COUNT(*) FROM (SELECT capture_id FROM deliveries WHERE source = 'forward'"
            " GROUP BY capture_id HAVING COUNT(*) > 1)").fetchone()[0]
        return caps, delivered, missing, dupes
    finally:
        conn.close()


def drain_wait(db: Path, timeout: float) -> float:
    """Seconds until every capture of ``fwd`` has a delivered forward (or ``timeout``)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        caps, delivered, _, _ = forward_state(db)
        if delivered >= caps:
            break
        time.sleep(0.1)
    return time.monotonic() - t0


def capture_order(db: Path) -> list[int]:
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        return [json.loads(bytes(b))["n"] for (b,) in conn.execute(
            "SELECT body FROM captures WHERE bin = 'fwd' ORDER BY id")]
    finally:
        conn.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--server", default="uvicorn", choices=("uvicorn", "gunicorn"))
    p.add_argument("--threads", type=int, default=128)
    p.add_argument("--drain-timeout", type=float, default=600.0)
    p.add_argument("--target", nargs=2, metavar=("PORT", "LOG"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.target:
        target_main(int(args.target[0]), args.target[1])
        return

    work = Path(tempfile.mkdtemp(prefix="forward-bench-"))
    db, app_log = work / "inspector.db", work / "app.json"
    port, app_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    app = subprocess.Popen([sys.executable, __file__, "--target", str(app_port), str(app_log)],
                           start_new_session=True, env=env)
    srv = subprocess.Popen([sys.executable, str(HERE / "_serve.py"), "ours", args.server,
                            str(port), str(db), str(args.workers), str(args.threads)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True, env=env)
    import httpx

    try:
        wait_port(port)
        wait_port(app_port)
        r = httpx.put(f"http://127.0.0.1:{port}/api/bins/fwd/forward",
                      json={"targets": [{"url": f"http://127.0.0.1:{app_port}/hooks"}]})
        r.raise_for_status()
        n = 0
        load(port, "plain", args.warmup, args.concurrency, 10**9)  # warm-up, not counted
        results: dict[str, list[Result]] = {"plain": [], "fwd": []}
        drains: list[float] = []
        for rnd in range(args.rounds):
            order = ("plain", "fwd") if rnd % 2 == 0 else ("fwd", "plain")
            for bin_name in order:
                res = load(port, bin_name, args.duration, args.concurrency, n)
                n += res.acked + res.errors + args.concurrency
                results[bin_name].append(res)
                extra = ""
                if bin_name == "fwd":  # let the backlog drain: the next phase runs alone
                    left = forward_state(db)
                    left_n = left[0] - left[1]
                    d = drain_wait(db, args.drain_timeout)
                    drains.append(d)
                    extra = f"  ({left_n} forwards still queued at the end; drained in {d:.1f} s)"
                print(f"round {rnd + 1} {bin_name:5}: {res.rps:7.0f} req/s  p50 {res.p50:6.2f}"
                      f" ms  p99 {res.p99:6.2f} ms  acked {res.acked}  errors {res.errors}"
                      + extra, flush=True)
        drain = sum(drains)
        caps, delivered, missing, dupes = forward_state(db)
        httpx.get(f"http://127.0.0.1:{app_port}/dump", timeout=30)
        received = json.loads(app_log.read_text())
        in_order = received == capture_order(db)
        acked_fwd = sum(r.acked for r in results["fwd"])

        def med(name: str, attr: str) -> float:
            return statistics.median(getattr(r, attr) for r in results[name])

        print()
        print(f"capture alone      : {med('plain', 'rps'):7.0f} req/s  p50 "
              f"{med('plain', 'p50'):.2f} ms  p99 {med('plain', 'p99'):.2f} ms (medians)")
        print(f"capture + forward  : {med('fwd', 'rps'):7.0f} req/s  p50 "
              f"{med('fwd', 'p50'):.2f} ms  p99 {med('fwd', 'p99'):.2f} ms (medians)")
        ratios = [f.rps / p.rps for f, p in zip(results["fwd"], results["plain"], strict=True)]
        print(f"ratio fwd/plain    : {statistics.median(ratios):.2f} req/s (rounds: "
              f"{', '.join(f'{x:.2f}' for x in ratios)}); p99 "
              f"{med('fwd', 'p99') / med('plain', 'p99'):.2f}x")
        print(f"forwards           : {acked_fwd} acknowledged, {caps} captures, {delivered} "
              f"delivered, {missing} without a forward, {dupes} duplicated; app received "
              f"{len(received)}, in capture order: {in_order}; backlog drained in "
              f"{drain:.1f} s in all after the loads; forward throughput "
              f"{delivered / (drain + args.duration * args.rounds):.0f}/s end to end")
        lost = acked_fwd - delivered
        print(f"lost               : {max(lost, 0)}")
        if lost > 0 or missing or not in_order:
            sys.exit(1)
    finally:
        for proc in (srv, app):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
