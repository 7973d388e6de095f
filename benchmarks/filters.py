"""Benchmark: PatternIndex vs a loop over individually compiled matchers.

A realistic mix: EventBridge-style events of about 20 fields with a nested
``detail``, against 10, 100, 1,000 and 10,000 patterns that mix every operator.
Each pattern routes on ``source``/``detail-type`` (like a rule), selects a subject
(a customer, an order-id prefix, an e-mail suffix, a case-insensitive id, an IP
block, a narrow amount range, a path wildcard), and adds zero to two extra
conditions (numeric, anything-but, exists, wildcard, cidr, ``$or``, arrays of
objects).

Both are measured in the same run, on the same events, and their answers are
compared. Run: ``python benchmarks/filters.py [--quick]``; writes
``benchmarks/results/filters.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from eventpatterns import filters
from eventpatterns.filters import PatternIndex

SOURCES = ["shop.orders", "shop.payments", "shop.shipping", "auth", "crm", "inventory"]
TYPES = [
    "OrderPlaced",
    "OrderPaid",
    "OrderShipped",
    "OrderCancelled",
    "UserLoggedIn",
    "StockLow",
    "RefundIssued",
    "AddressChanged",
]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-south-1", "sa-east-1"]
STATUSES = ["new", "paid", "shipped", "cancelled", "refunded", "failed"]
COUNTRIES = ["US", "FR", "DE", "GB", "IN", "BR", "JP", "ES", "IT", "NL"]
CUSTOMERS = 5000
ORDERS = 20000


def make_event(rng: random.Random) -> dict[str, Any]:
    customer = rng.randrange(CUSTOMERS)
    order = rng.randrange(ORDERS)
    return {
        "version": "0",
        "id": f"{rng.getrandbits(64):016x}",
        "detail-type": rng.choice(TYPES),
        "source": rng.choice(SOURCES),
        "account": f"{rng.randrange(20):012d}",
        "time": f"2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00Z",
        "region": rng.choice(REGIONS),
        "resources": [f"arn:aws:shop:{rng.choice(REGIONS)}:order/o-{order}"],
        "detail": {
            "orderId": f"o-{order}",
            "customerId": f"c-{customer}",
            "email": f"user{customer}@example{customer % 7}.com",
            "status": rng.choice(STATUSES),
            "total": round(rng.uniform(0, 1000), 2),
            "quantity": rng.randrange(1, 20),
            "currency": rng.choice(["USD", "EUR", "GBP", "INR"]),
            "country": rng.choice(COUNTRIES),
            "clientIp": f"10.{rng.randrange(16)}.{rng.randrange(256)}.{rng.randrange(256)}",
            "path": f"/api/v{rng.randrange(1, 4)}/orders/{order}",
            "priority": rng.choice(["low", "normal", "high"]),
            "express": rng.random() < 0.2,
            "coupon": None if rng.random() < 0.7 else f"SAVE{rng.randrange(5, 50)}",
            "tags": rng.sample(["gift", "bulk", "fragile", "b2b", "promo"], rng.randrange(0, 3)),
            "items": [
                {"sku": f"SKU-{rng.randrange(500)}", "qty": rng.randrange(1, 5)}
                for _ in range(rng.randrange(1, 4))
            ],
            "shipping": {
                "method": rng.choice(["ground", "air", "pickup"]),
                "zip": f"{rng.randrange(100000):05d}",
            },
        },
    }


def _subject(rng: random.Random, kind: int) -> dict[str, Any]:
    customer = rng.randrange(CUSTOMERS)
    if kind == 0:
        return {"customerId": [f"c-{customer}", f"c-{rng.randrange(CUSTOMERS)}"]}
    if kind == 1:
        return {"orderId": [{"prefix": f"o-{rng.randrange(ORDERS // 10, ORDERS)}"}]}
    if kind == 2:
        return {"email": [{"suffix": f"user{customer}@example{customer % 7}.com"}]}
    if kind == 3:
        return {"customerId": [{"equals-ignore-case": f"C-{customer}"}]}
    if kind == 4:
        return {"clientIp": [{"cidr": f"10.{rng.randrange(16)}.{rng.randrange(256)}.0/28"}]}
    if kind == 5:
        low = round(rng.uniform(0, 1000), 2)
        return {"total": [{"numeric": [">=", low, "<", round(low + 0.25, 2)]}]}
    return {"path": [{"wildcard": f"/api/*/orders/{rng.randrange(ORDERS)}"}]}


EXTRAS: list[Callable[[random.Random], dict[str, Any]]] = [
    lambda r: {"total": [{"numeric": [">", r.randrange(500)]}]},
    lambda r: {"status": [{"anything-but": ["cancelled", "failed"]}]},
    lambda r: {"coupon": [{"exists": r.random() < 0.5}]},
    lambda r: {"path": [{"wildcard": "/api/v*/orders/*"}]},
    lambda r: {"clientIp": [{"cidr": "10.0.0.0/12"}]},
    lambda r: {"$or": [{"priority": ["high"]}, {"express": [True]}]},
    lambda r: {"items": {"sku": [{"prefix": "SKU-"}], "qty": [{"numeric": [">=", 1]}]}},
    lambda r: {"country": [{"equals-ignore-case": r.choice(COUNTRIES).lower()}]},
    lambda r: {"status": [{"anything-but": {"prefix": "ref"}}]},
]


def make_pattern(rng: random.Random, i: int) -> dict[str, Any]:
    detail: dict[str, Any] = dict(_subject(rng, i % 7))
    for extra in rng.sample(EXTRAS, rng.randrange(0, 3)):
        for key, value in extra(rng).items():
            detail.setdefault(key, value)
    pattern: dict[str, Any] = {"detail": detail}
    roll = rng.random()
    if roll < 0.7:
        pattern["source"] = [rng.choice(SOURCES)]
    elif roll < 0.8:
        pattern["source"] = [{"prefix": "shop."}]
    if rng.random() < 0.5:
        pattern["detail-type"] = rng.sample(TYPES, 2)
    return pattern


def _rate(fn: Any, events: list[dict[str, Any]], min_seconds: float) -> float:
    """Return events per second of ``fn`` over ``events`` (repeated to min_seconds)."""
    done, start = 0, time.perf_counter()
    while True:
        for event in events:
            fn(event)
        done += len(events)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return done / elapsed


def run(sizes: list[int], *, quick: bool) -> list[dict[str, Any]]:
    rng = random.Random(42)
    patterns = [make_pattern(rng, i) for i in range(max(sizes))]
    events = [make_event(rng) for _ in range(2000 if not quick else 500)]
    seconds = 0.3 if quick else 1.0
    rows = []
    for n in sizes:
        index: PatternIndex[int] = PatternIndex()
        t0 = time.perf_counter()
        for i in range(n):
            index.add(i, patterns[i])
        build = time.perf_counter() - t0
        matchers = [(i, filters.compile(patterns[i])) for i in range(n)]

        def loop(event: dict[str, Any], matchers: Any = matchers) -> list[int]:
            return [i for i, m in matchers if m.matches(event)]

        # Same answers on a sample before timing anything.
        matched = 0
        for event in events[:200]:
            found = index.match(event)
            assert found == set(loop(event)), "index and loop disagree"
            matched += len(found)
        loop_events = events[: max(20, min(len(events), 200_000 // n))]
        index_rate = _rate(index.match, events, seconds)
        loop_rate = _rate(loop, loop_events, seconds)
        rows.append(
            {
                "patterns": n,
                "index_events_per_s": round(index_rate),
                "loop_events_per_s": round(loop_rate),
                "speedup": round(index_rate / loop_rate, 1),
                "index_us_per_event": round(1e6 / index_rate, 2),
                "matches_per_event": round(matched / 200, 2),
                "build_s": round(build, 3),
            }
        )
        print(
            f"  {n:>6} patterns: index {index_rate:>10,.0f} ev/s   loop {loop_rate:>10,.0f} ev/s",
            file=sys.stderr,
            flush=True,
        )
    base = rows[0]["index_us_per_event"]
    for row in rows:
        row["cost_vs_smallest"] = round(row["index_us_per_event"] / base, 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="shorter timings")
    parser.add_argument("--sizes", default="10,100,1000,10000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = run(sizes, quick=args.quick)
    header = "| patterns | PatternIndex ev/s | loop ev/s | index / loop | µs/event | cost vs 10 |"
    print(header)
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [
            f"{r['patterns']:,}",
            f"{r['index_events_per_s']:,}",
            f"{r['loop_events_per_s']:,}",
            f"{r['speedup']:,}x",
            f"{r['index_us_per_event']}",
            f"{r['cost_vs_smallest']}x",
        ]
        print("| " + " | ".join(cells) + " |")
    out = Path(__file__).resolve().parent / "results" / "filters.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "filters",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "quick": args.quick,
                "rows": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
