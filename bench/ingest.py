"""Ingest benchmark: the real capture path against a bare-Flask ceiling, same server, same run.

    python bench/ingest.py [--rounds 3] [--duration 10] [--concurrency 16] [--workers 1]
                           [--servers uvicorn,gunicorn]

Each target runs under the server setup of `webhook-inspector serve` (bench/_serve.py): for
each server, `ours` (serve itself) and `ceiling` (a bare Flask endpoint that reads the body and
stores nothing), one at a time, in rotating order per round, each from a fresh start. Load:
POST of a 1 KiB JSON body at fixed concurrency, by wrk when installed (else a bounded asyncio
client). After each round of ours it counts the rows in the database and compares them with
the 2xx answers (kept >= acknowledged, else requests were lost). Prints medians and the ratios
of per-round figures: ours/ceiling on each server, and the default server's ours against the
bare Flask app on gunicorn (the peers harness's baseline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
_PAD = 1024 - len(json.dumps({"event": "call.completed", "data": {"pad": ""}}))
BODY = json.dumps({"event": "call.completed", "data": {"pad": "x" * _PAD}}).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


@dataclass
class Result:
    rps: float
    p50: float
    p99: float
    acked: int
    errors: int


def run_wrk(url: str, seconds: float, conc: int, workdir: Path) -> Result:
    body = BODY.decode()
    lua = workdir / "post.lua"
    lua.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    out = subprocess.run(["wrk", "-t", "2", "-c", str(conc), "-d", f"{int(seconds)}s", "--latency",
                          "-s", str(lua), url], capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock_err = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Result(total / seconds, ms("50"), ms("99"), total - non2xx, non2xx + sock_err)


async def _py_load(port: int, path: str, seconds: float, conc: int,
                   body_for: Callable[[], bytes] | None = None) -> Result:
    """A bounded asyncio client on keep-alive connections; ``body_for`` makes each request's
    body (default: the fixed 1 KiB BODY)."""
    head_fmt = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n")
    fixed = head_fmt.format(len(BODY)).encode() + BODY
    lat: list[float] = []
    acked = errors = 0
    end = time.monotonic() + seconds

    async def one() -> None:
        nonlocal acked, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < end:
            if body_for is None:
                req = fixed
            else:
                body = body_for()
                req = head_fmt.format(len(body)).encode() + body
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            n = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
            await reader.readexactly(n)
            lat.append((time.perf_counter() - t0) * 1000)
            if head[9:10] == b"2":
                acked += 1
            else:
                errors += 1
        writer.close()

    await asyncio.gather(*(one() for _ in range(conc)))
    lat.sort()
    return Result(len(lat) / seconds, lat[len(lat) // 2], lat[int(len(lat) * 0.99)], acked,
                  errors)


def load(port: int, seconds: float, conc: int, workdir: Path, python: bool) -> Result:
    if python or not shutil.which("wrk"):
        return asyncio.run(_py_load(port, "/in/bench", seconds, conc))
    return run_wrk(f"http://127.0.0.1:{port}/in/bench", seconds, conc, workdir)


def rss_mib(pid: int) -> float:
    """VmHWM summed over the process tree (master + workers)."""
    total = 0
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                    text=True).stdout.split()]
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
    return total / 1024


def one_round(name: str, args: argparse.Namespace) -> tuple[Result, int | None, float]:
    target, _, server = name.partition("@")
    work = Path(tempfile.mkdtemp(prefix="ingest-"))
    port = free_port()
    db = work / "inspector.db"
    proc = subprocess.Popen([sys.executable, str(HERE / "_serve.py"), target, server, str(port),
                             str(db), str(args.workers), str(args.threads)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "PYTHONPATH":
                                                         str(HERE.parent)})
    try:
        wait_port(port)
        load(port, args.warmup, args.concurrency, work, args.python_load)
        kept_before = _count(db) if target == "ours" else 0
        res = load(port, args.duration, args.concurrency, work, args.python_load)
        kept = None
        if target == "ours":
            time.sleep(0.5)
            kept = _count(db) - kept_before
        peak = rss_mib(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)
    return res, kept, peak


def _count(db: Path) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM captures").fetchone()[0]
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=128)
    ap.add_argument("--python-load", action="store_true", help="asyncio client instead of wrk")
    ap.add_argument("--servers", default="uvicorn,gunicorn",
                    help="servers to run both targets under; the first is serve's default")
    args = ap.parse_args()

    servers = args.servers.split(",")
    targets = [f"{t}@{s}" for s in servers for t in ("ceiling", "ours")]
    results: dict[str, list[Result]] = {t: [] for t in targets}
    pairs = [(f"ours@{s}", f"ceiling@{s}") for s in servers]
    if "gunicorn" in servers and servers[0] != "gunicorn":
        pairs.append((f"ours@{servers[0]}", "ceiling@gunicorn"))
    ratios: dict[tuple[str, str], dict[str, list[float]]] = {p: {"rps": [], "p99": []}
                                                             for p in pairs}
    lost = 0
    kept_total = acked_total = 0
    peaks: dict[str, float] = {}
    for r in range(args.rounds):
        k = r % len(targets)
        order = targets[k:] + targets[:k]  # rotate, so no target always goes first
        got = {}
        for t in order:
            res, kept, peak = one_round(t, args)
            got[t] = res
            results[t].append(res)
            peaks[t] = max(peaks.get(t, 0), peak)
            if kept is not None:
                lost += max(0, res.acked - kept)
                kept_total += kept
                acked_total += res.acked
            print(f"round {r + 1} {t:17s} {res.rps:8.0f} req/s  p50 {res.p50:6.2f} ms  "
                  f"p99 {res.p99:6.2f} ms  errs {res.errors}"
                  + (f"  acked {res.acked} kept {kept}" if kept is not None else ""),
                  flush=True)
        for a, b in pairs:
            ratios[(a, b)]["rps"].append(got[a].rps / got[b].rps)
            ratios[(a, b)]["p99"].append(got[a].p99 / got[b].p99)

    gen = "python" if args.python_load or not shutil.which("wrk") else "wrk"
    print(f"\nload: {gen}, POST {len(BODY)} B JSON, c={args.concurrency}, {args.duration:g}s x "
          f"{args.rounds} rounds, {args.workers} worker(s), fresh start per round")
    print(f"{'target':17s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'peak MiB':>9s}")
    for t in targets:
        rs = results[t]
        print(f"{t:17s} {statistics.median(x.rps for x in rs):8.0f} "
              f"{statistics.median(x.p50 for x in rs):8.2f} "
              f"{statistics.median(x.p99 for x in rs):8.2f} {peaks[t]:9.1f}")
    for (a, b), rr in ratios.items():
        print(f"{a} / {b}: req/s x{statistics.median(rr['rps']):.2f} (target >= 0.90), "
              f"p99 x{statistics.median(rr['p99']):.2f} (target <= 1.5)  "
              f"[median of per-round ratios]")
    print(f"acknowledged {acked_total}, kept {kept_total}, lost {lost} (target 0)")


if __name__ == "__main__":
    main()
