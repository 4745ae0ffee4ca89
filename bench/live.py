"""Live-push benchmark: capture -> websocket latency, completeness, and ingest with clients open.

    python bench/live.py [--clients 20] [--rate 200] [--seconds 10] [--idle 100]

Starts `webhook-inspector serve` (gunicorn, the defaults) on a fresh database and measures:
1. with N websocket clients on one bin, captures sent at a steady rate: the time from just
   before each POST is sent to its arrival at each client (p50/p99 over all client-messages),
   and whether every client got every capture exactly once, in order;
2. ingest throughput (wrk, or the asyncio client) with those N clients connected vs none,
   interleaved in the same run;
3. with M idle clients connected, whether captures are still served, and at what rate.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import free_port, load  # noqa: E402


def start_server(db: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "inspector", "serve", "--port", str(port),
                             "--db", str(db), "--max-captures", "1000000000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    for _ in range(200):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def _read_frames(buf: bytearray) -> list[bytes]:
    """Complete unmasked server frames at the front of buf (removed from it)."""
    out = []
    while len(buf) >= 2:
        n, off = buf[1] & 0x7F, 2
        if n == 126:
            if len(buf) < 4:
                break
            n, off = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, off = int.from_bytes(buf[2:10], "big"), 10
        if len(buf) < off + n:
            break
        out.append(bytes(buf[off:off + n]))
        del buf[:off + n]
    return out


def client_process(port: int, bin_name: str, n: int, ready, conn,  # noqa: ANN001
                   parse: bool = True) -> None:
    """N websocket clients in their own process and one selector thread, so the timestamps
    measure the server, not this process's threads fighting for the GIL. ``parse=False``
    (the ingest phase) only drains the sockets and counts bytes: on a two-core machine the
    clients' own JSON parsing would otherwise take CPU from the server being measured."""
    import selectors

    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws?bin={bin_name}",
                                         origin=f"http://127.0.0.1:{port}", timeout=30)
        while json.loads(ws.recv())["type"] != "hello":
            pass
        ws.sock.setblocking(False)
        socks.append(ws)
        sel.register(ws.sock, selectors.EVENT_READ, (len(socks) - 1, bytearray()))
    got: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    received = 0
    ready.set()
    while not conn.poll():
        for key, _ in sel.select(timeout=0.2):
            t = time.perf_counter()
            idx, buf = key.data
            try:
                data = key.fileobj.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(key.fileobj)
                continue
            received += len(data)
            if not parse:
                continue
            buf += data
            for frame in _read_frames(buf):
                msg = json.loads(frame)
                if msg.get("type") == "capture":
                    got[idx].append((msg["capture"]["id"], t))
    conn.send((got, received))
    for ws in socks:
        ws.close()


class Clients:
    def __init__(self, port: int, bin_name: str, n: int, parse: bool = True) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.ready = ctx.Event()
        self.parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=client_process,
                                args=(port, bin_name, n, self.ready, child, parse),
                                daemon=True)
        self.proc.start()
        if not self.ready.wait(60):
            raise RuntimeError("clients did not connect")

    def finish(self) -> list[list[tuple[int, float]]]:
        self.parent.send("stop")
        got, self.received = self.parent.recv()
        self.proc.join(10)
        return got


def paced_posts(port: int, bin_name: str, rate: float, seconds: float) -> dict[int, float]:
    """Steady rate from two keep-alive connections; returns id -> time just before sending."""
    sent: dict[int, float] = {}
    lock = threading.Lock()
    n = int(rate * seconds)
    start = time.perf_counter() + 0.2

    def worker(offset: int) -> None:
        with httpx.Client() as client:
            for i in range(offset, n, 2):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.perf_counter()
                r = client.post(f"http://127.0.0.1:{port}/in/{bin_name}",
                                content=b'{"n": %d}' % i)
                with lock:
                    sent[r.json()["id"]] = t0

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load-seconds", type=float, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="live-bench-"))
    port = free_port()
    proc = start_server(work / "live.db", port)
    try:
        # 1. latency and completeness
        clients = Clients(port, "lat", args.clients)
        sent = paced_posts(port, "lat", args.rate, args.seconds)
        time.sleep(1.0)
        lat, missed, dup, disorder = [], 0, 0, 0
        want = sorted(sent)
        for got in clients.finish():
            ids = [i for i, _ in got]
            missed += len(set(want) - set(ids))
            dup += len(ids) - len(set(ids))
            disorder += ids != sorted(ids)
            lat += [(t - sent[i]) * 1000 for i, t in got if i in sent]
        print(f"{args.clients} clients, {args.rate:g} req/s for {args.seconds:g}s: "
              f"{len(want)} captures, {len(lat)} client-messages")
        print(f"  capture->client latency p50 {pct(lat, .5):.2f} ms, p99 {pct(lat, .99):.2f} ms"
              f" (targets 5 / 25)")
        print(f"  missed {missed}, duplicated {dup}, out-of-order clients {disorder}")

        # 2. ingest with and without clients, interleaved
        with_c, without = [], []
        for r in range(args.rounds):
            for mode in (("none", "with") if r % 2 == 0 else ("with", "none")):
                cs = (Clients(port, "bench", args.clients, parse=False) if mode == "with"
                      else None)
                res = load(port, args.load_seconds, 16, work, False)
                (with_c if mode == "with" else without).append(res.rps)
                pushed = ""
                if cs is not None:
                    cs.finish()
                    pushed = f", {cs.received / 2**20:.0f} MiB pushed to the clients"
                print(f"  round {r + 1} {mode:4s} clients: {res.rps:.0f} req/s{pushed}")
        ratio = statistics.median(w / n for w, n in zip(with_c, without, strict=True))
        print(f"ingest with {args.clients} clients / none: x{ratio:.2f} (target >= 0.85)")

        # 3. idle clients
        idle = []
        for _ in range(args.idle):
            ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws?bin=idle",
                                             origin=f"http://127.0.0.1:{port}", timeout=30)
            idle.append(ws)
        res = load(port, args.load_seconds, 16, work, False)
        ok = httpx.post(f"http://127.0.0.1:{port}/in/after-idle", content=b"x", timeout=5)
        print(f"{args.idle} idle clients connected: capture served {ok.status_code}, "
              f"ingest {res.rps:.0f} req/s, errors {res.errors}")
        for ws in idle:
            ws.close()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


if __name__ == "__main__":
    main()
