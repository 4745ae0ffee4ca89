"""Delivery benchmark: signed deliveries through the engine vs bare client loops, same run.

    python bench/deliver.py [--rounds 3] [--count 2000] [--concurrency 16] [--vendor audian]
                            [--event call.completed] [--sink-delay-ms 0]

The sink is a minimal keep-alive HTTP/1.1 server (asyncio) in its own process, so it does not
compete with the senders for the GIL; ``--sink-delay-ms`` makes it answer like a real receiver
that does some work. Each round runs four kinds, in rotating order, ``count`` requests each at
``concurrency``:

- engine, render each: ``DeliveryEngine.send()`` per delivery, as ``POST /api/send`` does:
  rendered from the vendor's fixture, recorded, signed with a fresh timestamp, sent, its
  attempt recorded. ``concurrency`` senders and ``concurrency`` workers, one pooled client.
- engine, same body: the same, but with one body rendered beforehand (``rendered=``), as an
  event emitted to many subscriptions is: what the engine itself costs (signing per attempt,
  two writes, the log) on top of the HTTP.
- bare: ``concurrency`` threads sharing one httpx.Client POST the same bytes (one pre-signed
  request, no log): the "bare HTTP client loop" of the target, as an integration's own test
  script would send them.
- pool: the same loop straight on httpcore's connection pool, which is what the engine sends
  through (``inspector/delivery/sender.py``): the ceiling of the engine's HTTP side, printed so
  the engine's own cost (render, sign, record, log) stays visible next to the target's ratio.

After each engine run it checks that every delivery is ``delivered`` with exactly one attempt
row in the database, then prints the rates, the medians and the ratios to the bare loops.

The target (issue 4: signed deliveries, every attempt logged, at least 0.7x a bare client loop
sending the same bytes) is read on "engine, same body" against the httpx loop: both sides send
the same body, the engine signing it afresh per attempt. "Render each" adds a fresh Faker
render per delivery on the sending threads; rendering has its own target, measured by
bench/render.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SINK_BODY = b'{"ok":true}'


# -- the sink (a subprocess: python bench/deliver.py --sink PORT DELAY_MS) -------------------
SINK_DELAY = 0.0


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(SINK_BODY)).encode() + b"\r\n\r\n" + SINK_BODY)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:].strip())
            if length:
                await reader.readexactly(length)
            if SINK_DELAY:
                await asyncio.sleep(SINK_DELAY)
            writer.write(response)
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _sink(port: int) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(delay_ms: float = 0.0) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--sink", str(port), str(delay_ms)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("sink did not start")


# -- the senders ------------------------------------------------------------------------------
def run_engine(url: str, count: int, concurrency: int, vendor: str, event: str,
               db_dir: Path, prerendered: bool = False) -> tuple[float, int, int, int]:
    """(deliveries/s, delivered, attempt rows, deliveries)."""
    from inspector.delivery import DeliveryEngine
    from inspector.provider import default_catalog, render
    from inspector.storage import Database

    once = render(default_catalog().vendor(vendor), event, seed=1) if prerendered else None

    db = Database(db_dir / f"engine-{time.monotonic_ns()}.db")
    engine = DeliveryEngine(db, catalog=default_catalog(), retry_scale=0,
                            workers=concurrency).start()
    all_settled = threading.Event()  # one wake-up at the end, not one per delivery
    settled: set[int] = set()
    lock = threading.Lock()

    def on_change(summary: dict) -> None:
        if summary["status"] != "pending":
            with lock:
                settled.add(summary["id"])
                if len(settled) >= count:
                    all_settled.set()

    engine.listeners.append(on_change)
    try:
        ids: list[int] = []

        def produce(seeds: range) -> None:
            mine = [engine.send(vendor, event, url, seed=i, rendered=once).id for i in seeds]
            with lock:
                ids.extend(mine)

        # Senders in parallel too, as concurrent API clients or emitters would be.
        producers = [threading.Thread(target=produce, args=(range(k, count, concurrency),))
                     for k in range(concurrency)]
        start = time.perf_counter()
        for t in producers:
            t.start()
        for t in producers:
            t.join()
        if not all_settled.wait(timeout=120):
            raise RuntimeError("engine deliveries did not settle")
        elapsed = time.perf_counter() - start
        delivered = sum(1 for d in engine.store.list(limit=count + 1, status="delivered"
                                                     ).deliveries)
        rows = engine.store.count_attempts(ids)
        return count / elapsed, delivered, rows, len(ids)
    finally:
        engine.close()
        db.close()


def run_bare(url: str, count: int, concurrency: int, vendor: str, event: str,
             pool: bool = False) -> tuple[float, int]:
    """(requests/s, 2xx answers). ``pool``: on httpcore's pool instead of httpx.Client."""
    import httpcore
    import httpx

    from inspector.delivery import preview
    from inspector.provider import default_catalog

    v = default_catalog().vendor(vendor)
    _, prepared = preview(v, event, timestamp=int(time.time()), seed=1)
    client: httpx.Client | httpcore.ConnectionPool
    if pool:
        client = httpcore.ConnectionPool(max_connections=concurrency * 2,
                                         max_keepalive_connections=concurrency)
        raw_headers = [(n.encode(), v.encode()) for n, v in prepared.headers]

        def post() -> int:
            return client.request("POST", url, headers=raw_headers,
                                  content=prepared.body).status
    else:
        client = httpx.Client(limits=httpx.Limits(max_connections=concurrency * 2,
                                                  max_keepalive_connections=concurrency))

        def post() -> int:
            return client.post(url, content=prepared.body, headers=prepared.headers).status_code
    remaining = [count]
    ok = [0]
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            if 200 <= post() < 300:
                with lock:
                    ok[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    client.close()
    return count / elapsed, ok[0]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--sink":
        global SINK_DELAY
        SINK_DELAY = float(sys.argv[3]) / 1000
        asyncio.run(_sink(int(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--vendor", default="audian")
    parser.add_argument("--event", default="call.completed")
    parser.add_argument("--sink-delay-ms", type=float, default=0.0,
                        help="How long the sink takes to answer (0: as fast as it can).")
    args = parser.parse_args()

    from inspector.provider import default_catalog

    default_catalog()  # load fixtures before timing
    proc, port = start_sink(args.sink_delay_ms)
    url = f"http://127.0.0.1:{port}/hook"
    kinds = ("send", "signed", "bare", "pool")
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # Warm-up (imports, first connections), not counted.
            run_bare(url, 200, args.concurrency, args.vendor, args.event)
            run_bare(url, 200, args.concurrency, args.vendor, args.event, pool=True)
            run_engine(url, 200, args.concurrency, args.vendor, args.event, Path(tmp))
            for r in range(args.rounds):
                k = r % len(kinds)
                order = kinds[k:] + kinds[:k]  # rotate, so no kind always goes first
                for kind in order:
                    if kind in ("bare", "pool"):
                        rate, ok = run_bare(url, args.count, args.concurrency, args.vendor,
                                            args.event, pool=kind == "pool")
                        assert ok == args.count, ok
                        label = ("bare httpx loop:      " if kind == "bare"
                                 else "bare httpcore loop:   ")
                        print(f"round {r + 1} {label}{rate:7.0f} requests/s"
                              f"     ({ok}/{args.count} 2xx)", flush=True)
                    else:
                        rate, delivered, rows, n = run_engine(
                            url, args.count, args.concurrency, args.vendor, args.event,
                            Path(tmp), prerendered=kind == "signed")
                        assert delivered == n == args.count, (delivered, n)
                        assert rows == n, f"{rows} attempt rows for {n} deliveries"
                        label = ("engine, render each:  " if kind == "send"
                                 else "engine, same body:    ")
                        print(f"round {r + 1} {label}{rate:7.0f} deliveries/s   "
                              f"({delivered}/{n} delivered, {rows} attempt rows logged)",
                              flush=True)
                    rates[kind].append(rate)
    finally:
        proc.terminate()
        proc.wait(5)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\n{args.vendor} {args.event}: {args.count} per run, concurrency "
          f"{args.concurrency}, sink delay {args.sink_delay_ms:g} ms, {os.cpu_count()} CPUs")
    print(f"median bare httpx loop:              {med['bare']:7.0f} requests/s")
    print(f"median engine, same body signed:     {med['signed']:7.0f} deliveries/s  "
          f"ratio {med['signed'] / med['bare']:.2f}   (target >= 0.70)")
    print(f"median engine, rendered per send:    {med['send']:7.0f} deliveries/s  "
          f"ratio {med['send'] / med['bare']:.2f}   (rendering: see bench/render.py)")
    print(f"median bare httpcore loop:           {med['pool']:7.0f} requests/s  "
          f"(the engine's own transport, no engine)")
    print(f"  engine, same body / httpcore loop: ratio {med['signed'] / med['pool']:.2f}   "
          f"(what the engine itself costs on top of its HTTP)")


if __name__ == "__main__":
    main()
