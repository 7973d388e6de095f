"""Micro-benchmark: decoding a stored event, against raw ``orjson.loads``, in one run.

Run: ``python benchmarks/decode.py [--rounds 15] [--number 20000]``

A Redis consumer decodes every entry it receives (``backends/redis/_codec.py``:
orjson, then core's ``trusted_event``). This times that decode path alone, so it is
steadier than the end-to-end Redis benchmark on a busy machine, and reports it as a
ratio to ``orjson.loads`` of the same bytes (the floor: parsing with nothing built)
and to ``Event.from_json`` (full validation). Rounds interleave the three, and the
median of the per-round ratios is reported.

Workloads, weakest case last: the Redis benchmark's small event; a larger nested
payload (where skipping validation saves most); two extensions; ``bytes`` data
(``data_base64``). Extensions and bytes take the slower branch of ``trusted_event``,
which sorts members one by one and checks the extensions.
Results go to ``benchmarks/results/decode.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import timeit
from pathlib import Path
from typing import Any

import orjson

from eventpatterns import Event
from eventpatterns.backends.redis._codec import decode_event

RESULTS = Path(__file__).parent / "results"

WORKLOADS: dict[str, Event] = {
    "small (bus benchmark)": Event(type="bench.tick", source="/bench", data={"n": 7, "user": "u7"}),
    "nested payload": Event(
        type="order.created",
        source="/shop/orders",
        subject="order-1042",
        data={
            "items": [{"sku": f"s{i}", "qty": i, "price": 9.5 + i} for i in range(10)],
            "customer": {"id": "c-7", "tags": ["a", "b", "c"], "vip": True},
        },
    ),
    "two extensions": Event(
        type="bench.tick",
        source="/bench",
        data={"n": 7, "user": "u7"},
        extensions={"tenant": "acme", "partitionkey": "k7"},
    ),
    "bytes data (weakest)": Event(
        type="photo.uploaded", source="/album", datacontenttype="image/png", data=b"\x89PNG" * 8
    ),
}


def per_call_ns(func: Any, raw: bytes, number: int) -> float:
    return timeit.timeit(lambda: func(raw), number=number) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--label", default="", help="a name for this run in the JSON output")
    args = parser.parse_args()
    rows = []
    print(
        f"{'workload':<22}  {'decode ns':>9}  {'orjson ns':>9}  {'x orjson':>8}  {'from_json':>9}"
    )
    for name, event in WORKLOADS.items():
        raw = event.to_json()
        if decode_event(raw) != event:
            raise SystemExit(f"{name}: decode_event does not give the event back")
        decode, raw_loads, validated = [], [], []
        for _ in range(args.rounds):
            decode.append(per_call_ns(decode_event, raw, args.number))
            raw_loads.append(per_call_ns(orjson.loads, raw, args.number))
            validated.append(per_call_ns(Event.from_json, raw, args.number // 4))
        ratio = statistics.median(d / o for d, o in zip(decode, raw_loads, strict=True))
        speedup = statistics.median(v / d for v, d in zip(validated, decode, strict=True))
        row = {
            "workload": name,
            "decode_ns": statistics.median(decode),
            "orjson_ns": statistics.median(raw_loads),
            "from_json_ns": statistics.median(validated),
            "decode_over_orjson": ratio,
            "from_json_over_decode": speedup,
        }
        rows.append(row)
        print(
            f"{name:<22}  {row['decode_ns']:>9,.0f}  {row['orjson_ns']:>9,.0f}  {ratio:>7.2f}x"
            f"  {speedup:>8.1f}x slower"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "decode.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "decode",
                "label": args.label,
                "rounds": args.rounds,
                "number": args.number,
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
