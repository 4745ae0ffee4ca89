"""Scale benchmark: 1,000,000 stored captures, then page latency and server memory.

    python bench/scale.py [--db /tmp/inspector-1m.db] [--count 1000000] [--runs 200]
                          [--requests 300] [--no-server]

Builds the database through the storage layer (``Database.write`` with large batches, so the
search index triggers run as in production) from a few vendor-like request shapes: ~1 KiB JSON
bodies, 6 to 10 headers with signatures and delivery ids, ~10 bins. The build is deterministic
per capture number and resumable: rerun with the same ``--db`` and it only adds what is missing
(an interrupted build continues where it stopped).

Then it prints
* ``CaptureStore.list(bin, limit=50)``, the newest page of a bin: p50/p95 over ``--runs``
  (target p95 <= 20 ms);
* a real server (``python -m inspector serve --db …``) hit ``--requests`` times with the list
  API and searches: request p50/p95 and VmRSS/VmHWM summed over its process tree
  (target <= 200 MB).
Search latency per query kind: bench/search.py over the same database. Figures only, no asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inspector.storage import CaptureStore, Database, NewCapture

DEFAULT_DB = Path("/tmp/inspector-1m.db")
BATCH = 5000
START = datetime(2026, 10, 24, tzinfo=UTC)
STEP = timedelta(seconds=2.5)  # 1M captures span about 29 days

FIRST = ("Ada Grace Alan Linus Barbara Ken Dennis Margaret Edsger Donald Frances John Radia "
         "Tim Vint Bjarne Guido Yukihiro Rasmus Larry Brendan James Anders Niklaus Sophie "
         "Hedy Katherine Dorothy Mary Annie Evelyn Jean Betty Kathleen Ruth Marlyn Gwendolyn "
         "Ingrid Oskar Mateo Chiara Henrik Priya Aiko Tomasz Lucia").split()
LAST = ("Lovelace Hopper Turing Torvalds Liskov Thompson Ritchie Hamilton Dijkstra Knuth "
        "Allen McCarthy Perlman Berners Cerf Stroustrup Rossum Matsumoto Lerdorf Wall Eich "
        "Gosling Hejlsberg Wirth Wilson Lamarr Johnson Vaughan Jackson Easley Holberton "
        "Bartik Snyder Antonelli Teitelbaum Wescoff Nowak Rossi Lindqvist Sharma Tanaka").split()
CITIES = ("Lisbon Oslo Kyoto Lagos Quito Austin Dublin Krakow Porto Seattle Nairobi Lyon "
          "Hanoi Bergen Tallinn Cusco Perth Denver Leeds Turin").split()
PRODUCTS = ("basic pro team enterprise starter growth scale annual monthly trial addon "
            "seat-pack storage-plus priority-support").split()
DOMAINS = ("example.com example.org mail.test acme.io initech.example globex.test").split()
RARE_WORD = "zanzibar"  # in 1 capture of 100,000: the "rare term" of bench/search.py

# vendor: (weight, bins, method, path)
VENDORS = {
    "audian": (30, ("audian-prod", "audian-dev"), "POST", "/webhooks/audian"),
    "stripe": (25, ("stripe", "payments"), "POST", "/stripe/events"),
    "github": (20, ("github-ci",), "POST", "/github"),
    "atomic": (14, ("atomic",), "POST", "/atomic/v1/events"),
    "alphatouch": (6, ("alpha",), "PUT", "/alphatouch/residents"),
    "apirtc": (5, ("apirtc",), "GET", "/apirtc/tickets"),
}
BINS = sorted({b for _, bins, _, _ in VENDORS.values() for b in bins} | {"demo"})
_CHOICES = [v for v, spec in VENDORS.items() for _ in range(spec[0])]


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _person(rng: random.Random) -> dict:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {"id": f"usr_{_hex(rng, 12)}", "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@{rng.choice(DOMAINS)}",
            "city": rng.choice(CITIES), "phone": f"+1555{rng.randrange(10**7):07d}"}


def _pad(body: dict, rng: random.Random, target: int = 1024) -> bytes:
    """Grow a body to about ``target`` bytes with more realistic fields, not filler."""
    items = body.setdefault("data", {}).setdefault("items", [])
    size = len(json.dumps(body, separators=(",", ":")))
    while size < target - 60:
        item = {"sku": f"{rng.choice(PRODUCTS)}-{rng.randrange(1000)}",
                "qty": rng.randrange(1, 9), "note": rng.choice(CITIES)}
        items.append(item)
        size += len(json.dumps(item, separators=(",", ":"))) + 1
    return json.dumps(body, separators=(",", ":")).encode()


def make_capture(i: int) -> NewCapture:
    """Capture number ``i`` (0-based): the same every time, so builds can resume."""
    rng = random.Random(i)
    vendor = rng.choice(_CHOICES)
    _, bins, method, path = VENDORS[vendor]
    bin_name = "demo" if rng.random() < 0.1 else rng.choice(bins)
    when = START + STEP * i
    ts = int(when.timestamp())
    person = _person(rng)
    event_id = f"evt_{_hex(rng, 24)}"
    headers = [("Host", "127.0.0.1:8787"), ("Accept", "*/*"),
               ("Accept-Encoding", "gzip, deflate")]
    query = ""
    body: dict | None = None
    if vendor == "audian":
        event = rng.choice(("call.completed", "call.started", "call.missed", "sms.received"))
        body = {"event": event, "id": event_id, "created_at": ts,
                "data": {"call": {"id": f"call_{_hex(rng, 16)}", "from": person["phone"],
                                  "to": f"+1555{rng.randrange(10**7):07d}",
                                  "duration": rng.randrange(3600), "agent": person,
                                  "tags": rng.sample(PRODUCTS, 2)}}}
        headers += [("User-Agent", "Audian-Webhooks/2.1"),
                    ("X-Audian-Event", event),
                    ("X-Audian-Signature", f"t={ts},v1={_hex(rng, 64)}")]
    elif vendor == "stripe":
        event = rng.choice(("payment_intent.succeeded", "invoice.paid",
                            "customer.subscription.updated", "charge.refunded"))
        body = {"id": event_id, "object": "event", "type": event, "created": ts,
                "livemode": False, "data": {"object": {
                    "id": f"pi_{_hex(rng, 24)}", "amount": rng.randrange(100, 100000),
                    "currency": rng.choice(("usd", "eur", "gbp")), "customer": person,
                    "description": f"{rng.choice(PRODUCTS)} plan"}}}
        headers += [("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)"),
                    ("Stripe-Signature", f"t={ts},v1={_hex(rng, 64)}")]
    elif vendor == "github":
        body = {"ref": "refs/heads/main", "before": _hex(rng, 40), "after": _hex(rng, 40),
                "repository": {"full_name": f"{person['name'].split()[1].lower()}/app",
                               "private": False},
                "pusher": {"name": person["name"], "email": person["email"]},
                "data": {"head_commit": {
                    "id": _hex(rng, 40),
                    "message": f"Fix {rng.choice(PRODUCTS)} for {person['city']}"}}}
        headers += [("User-Agent", "GitHub-Hookshot/7e1f3a2"),
                    ("X-GitHub-Event", "push"), ("X-GitHub-Delivery", _uuid(rng)),
                    ("X-Hub-Signature-256", f"sha256={_hex(rng, 64)}")]
    elif vendor == "atomic":
        event = rng.choice(("card-completed", "card-dismissed", "card-snoozed"))
        body = {"event": event, "environment": "production", "timestamp": when.isoformat(),
                "data": {"card": {"id": f"crd_{_hex(rng, 10)}", "user": person}}}
        headers += [("User-Agent", "Atomic/3"), ("Webhook-Id", f"msg_{_hex(rng, 20)}"),
                    ("Webhook-Timestamp", str(ts)),
                    ("Webhook-Signature", f"v1,{_hex(rng, 44)}")]
    elif vendor == "alphatouch":
        body = {"object": "resident", "action": rng.choice(("update", "create", "delete")),
                "resident": person, "unit": f"{rng.randrange(1, 40)}{rng.choice('ABCD')}"}
        headers += [("User-Agent", "AlphaTouch-Webhooks"),
                    ("Authorization", f"Bearer {_hex(rng, 32)}")]
    else:  # apirtc: a GET with the record in the query string
        query = (f"object=ticket&action=update&id=tk_{_hex(rng, 12)}"
                 f"&agent={person['email'].replace('@', '%40')}&city={person['city']}")
        headers += [("User-Agent", "ApiRTC-Hooks/1.2")]
    raw = b""
    if body is not None:
        if i % 100_000 == 77_777:
            body["note"] = f"deliver to {RARE_WORD} depot"
        raw = _pad(body, rng)
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(raw)))]
    headers.append(("X-Request-Id", _uuid(rng)))
    if rng.random() < 0.001:
        headers.append(("X-Debug-Trace", _hex(rng, 16)))
    if rng.random() < 0.005:
        method = "DELETE"
    return NewCapture(bin=bin_name, method=method, path=path, query=query, headers=headers,
                      body=raw, remote_addr="127.0.0.1",
                      received_at=when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def status_of(i: int) -> int:
    """The answered status of capture ``i``: mostly 200, some 500 and 404 (bins reconfigured)."""
    k = (i * 2654435761) % 100
    return 500 if k < 2 else 404 if k < 3 else 200


def _row(new: NewCapture, i: int) -> tuple:
    return (new.bin, new.method, new.path, new.query, new.content_type, len(new.body),
            new.remote_addr, new.received_at, new.tls, status_of(i),
            json.dumps(new.headers, ensure_ascii=False, separators=(",", ":")), new.body)


def build(db_path: Path, count: int) -> Database:
    """Add captures until ``count`` are stored; returns the open database."""
    db = Database(db_path)
    have = db.read(lambda c: c.execute("SELECT COALESCE(MAX(id), 0) FROM captures").fetchone()[0])
    if have >= count:
        return db
    print(f"building {db_path}: {have:,} -> {count:,} captures", flush=True)
    started = time.perf_counter()
    i = have
    while i < count:
        rows = [_row(make_capture(k), k) for k in range(i, min(i + BATCH, count))]

        def run(conn, rows=rows) -> None:  # noqa: ANN001
            conn.executemany(
                "INSERT INTO captures (bin, method, path, query, content_type, size,"
                " remote_addr, received_at, tls, status, headers, body)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                rows)
            per_bin: dict[str, tuple[int, str]] = {}
            for r in rows:
                n, _ = per_bin.get(r[0], (0, r[7]))
                per_bin[r[0]] = (n + 1, r[7])
            for name, (n, last) in per_bin.items():
                conn.execute("INSERT INTO bins (name, created_at, count, last_at)"
                             " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE"
                             " SET count = count + excluded.count, last_at = excluded.last_at",
                             (name, last, n, last))

        db.write(run, timeout=None)
        i += len(rows)
        if (i // BATCH) % 20 == 0 or i == count:
            rate = (i - have) / (time.perf_counter() - started)
            print(f"  {i:,} captures ({rate:,.0f}/s)", flush=True)
    print(f"built in {time.perf_counter() - started:,.0f} s, "
          f"{db_path.stat().st_size / 2**20:,.0f} MiB", flush=True)
    return db


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def timed(fn, runs: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def show(label: str, ms: list[float], extra: str = "") -> None:
    print(f"  {label:<44} p50 {statistics.median(ms):7.2f} ms   p95 {pct(ms, 0.95):7.2f} ms"
          f"{extra}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_memory(pid: int) -> tuple[int, int, int]:
    """(VmRSS, VmHWM) in KiB summed over ``pid`` and its descendants, and their number."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    todo, rss, hwm, n = [pid], 0, 0, 0
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        n += 1
        rss += int(fields.get("VmRSS", "0 kB").split()[0])
        hwm += int(fields.get("VmHWM", "0 kB").split()[0])
    return rss, hwm, n


def server_figures(db_path: Path, requests: int) -> None:
    import httpx

    port = free_port()
    # Retention far above the stored count: the server must never prune the bench data.
    cmd = [sys.executable, "-m", "inspector", "serve", "--db", str(db_path), "--port",
           str(port), "--max-captures", str(10**9)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        rss0, _, nproc = tree_memory(proc.pid)
        print(f"server: {' '.join(cmd[1:4])} … ({nproc} processes), "
              f"RSS at start {rss0 / 1024:.0f} MiB", flush=True)
        limits = httpx.Limits(max_connections=16)
        with httpx.Client(base_url=base, timeout=30, limits=limits) as client:
            cases = {
                "GET /api/captures?bin=<bin>": lambda k: {"bin": BINS[k % len(BINS)]},
                "GET /api/captures?bin=<bin>&before=<mid>": lambda k: {
                    "bin": BINS[k % len(BINS)], "before": 500_000 + k},
                "GET /api/captures?q=<first name>": lambda k: {"q": FIRST[k % len(FIRST)]},
                "GET /api/captures?q=method:PUT": lambda k: {"q": "method:PUT"},
                "GET /api/captures?q=header:x-audian-signature&bin=": lambda k: {
                    "q": "header:x-audian-signature", "bin": BINS[k % len(BINS)]},
                "GET /api/captures?q=<common> bin:<bin>": lambda k: {
                    "q": f"completed bin:{BINS[k % len(BINS)]}"},
            }
            for label, params in cases.items():
                ms = []
                for k in range(requests // len(cases) + 1):
                    t = time.perf_counter()
                    r = client.get("/api/captures", params=params(k))
                    ms.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                show(label, ms)
            rss, hwm, nproc = tree_memory(proc.pid)
            print(f"  server memory after {requests} sequential requests: VmRSS "
                  f"{rss / 1024:.0f} MiB, VmHWM {hwm / 1024:.0f} MiB (sum over {nproc} "
                  "processes)", flush=True)
            # Then 16 clients at once, so many threads hold reader connections together.
            mixed = [params(k) for k in range(requests) for params in cases.values()]

            def fetch(p: dict) -> float:
                t = time.perf_counter()
                client.get("/api/captures", params=p).raise_for_status()
                return (time.perf_counter() - t) * 1000

            with ThreadPoolExecutor(16) as pool:
                ms = list(pool.map(fetch, mixed))
            show(f"all of the above, 16 clients ({len(mixed)} requests)", ms)
        rss, hwm, nproc = tree_memory(proc.pid)
        print(f"  server memory after all: VmRSS {rss / 1024:.0f} MiB, VmHWM "
              f"{hwm / 1024:.0f} MiB (sum over {nproc} processes; target <= 200 MB)", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, default=DEFAULT_DB)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--no-server", action="store_true")
    args = ap.parse_args()

    db = build(args.db, args.count)
    store = CaptureStore(db, max_captures=10**9)
    total = store.count()
    print(f"{args.db}: {total:,} captures in {len(BINS)} bins, "
          f"{args.db.stat().st_size / 2**20:,.0f} MiB", flush=True)
    for b in BINS[:3]:
        store.list(b, limit=50)  # warm the cache as a running server would be
    k = iter(range(10**9))
    show("CaptureStore.list(bin, limit=50)",
         timed(lambda: store.list(BINS[next(k) % len(BINS)], limit=50), args.runs),
         "   (target p95 <= 20 ms)")
    show("CaptureStore.list(None, limit=50)", timed(lambda: store.list(None, limit=50), args.runs))
    show("CaptureStore.list(bin, limit=50, before=mid)",
         timed(lambda: store.list(BINS[next(k) % len(BINS)], limit=50,
                                  before=total // 2), args.runs))
    db.close()
    if not args.no_server:
        server_figures(args.db, args.requests)


if __name__ == "__main__":
    main()
