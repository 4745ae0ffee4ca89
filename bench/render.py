"""Mock-provider render benchmark: events rendered per second, per vendor, on one core.

    python bench/render.py [--runs 5] [--events 2000] [--prepare] [--vendor audian ...]

For each vendor it renders `--events` events per run, cycling through all of the vendor's
events with a different seed each time (the realistic case: no two bodies alike), and reports
the median rate over `--runs` runs, with the slowest event of the vendor. `--prepare` also
builds one attempt's headers and signature per event (what a delivery costs end to end).
The catalog is loaded once, outside the timing; Faker is warmed up by a first render.
Target: at least 1,000 events/s per vendor.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inspector.provider import load_catalog, prepare, render  # noqa: E402
from inspector.provider.model import Vendor  # noqa: E402

TARGET = 1000.0


def rate(vendor: Vendor, events: list[str], count: int, *, with_prepare: bool,
         seed0: int) -> float:
    """Events per CPU second for `count` renders cycling through `events`.

    CPU time of this process, not wall time: on a shared machine other processes' load would
    otherwise count against us; one process on one core is what the target is about.
    """
    start = time.process_time()
    for i in range(count):
        rendered = render(vendor, events[i % len(events)], seed=seed0 + i)
        if with_prepare:
            prepare(rendered, timestamp=1_700_000_000 + i, attempt=1)
    return count / max(time.process_time() - start, 1e-9)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=2000, help="renders per run and vendor")
    parser.add_argument("--prepare", action="store_true", help="also prepare and sign")
    parser.add_argument("--vendor", action="append", help="only these vendors")
    args = parser.parse_args(argv)

    catalog = load_catalog(ROOT / "fixtures")
    for err in catalog.errors:
        print(f"fixture problem: {err}", file=sys.stderr)
    vendors = [catalog.vendor(v) for v in args.vendor] if args.vendor else \
        list(catalog.vendors.values())

    mode = "render + prepare/sign" if args.prepare else "render"
    print(f"{mode}: {args.events} events per run, median of {args.runs} runs, events per CPU"
          " second of one process")
    print(f"{'vendor':<18} {'events':>6} {'events/s':>10} {'min/s':>8} {'max/s':>8} "
          f"{'slowest event':<28} {'its /s':>8}")
    worst = float("inf")
    for vendor in vendors:
        events = list(vendor.events)
        for name in events:  # warm-up: Faker generators, zone data, first-call caches
            render(vendor, name, seed=0)
        rates = [rate(vendor, events, args.events, with_prepare=args.prepare, seed0=r * 10**6)
                 for r in range(args.runs)]
        per_event = {name: rate(vendor, [name], max(50, args.events // 10),
                                with_prepare=args.prepare, seed0=7) for name in events}
        slowest = min(per_event, key=per_event.__getitem__)
        median = statistics.median(rates)
        worst = min(worst, median)
        print(f"{vendor.id:<18} {len(events):>6} {median:>10,.0f} {min(rates):>8,.0f} "
              f"{max(rates):>8,.0f} {slowest:<28} {per_event[slowest]:>8,.0f}")
    verdict = "ok" if worst >= TARGET else "BELOW TARGET"
    print(f"slowest vendor median: {worst:,.0f} events/s (target {TARGET:,.0f}: {verdict})")
    return 0 if worst >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
