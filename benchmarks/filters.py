"""Benchmark: PatternIndex on compound workloads vs a loop over individual matchers.

Each workload is a family of patterns (10, 1,000 and 10,000 of them) and events of
about 300 bytes, matched as parsed dicts. For each: events/s of ``PatternIndex``
at each size, the cost growth from 10 to 10,000 patterns, the growth of the cost per
(event + match) (some workloads are output-bound: matches per event grow with the
patterns held, and every match must be returned), the time to build the
10,000-pattern index (from pattern dicts, and from compiled matchers: the engine
alone), matches per event at each size, machine states per pattern, memory per
pattern (tracemalloc, compiled matcher included), and the ratio to the naive loop over
``Matcher.matches`` measured in the same run (the loop is sampled on fewer events).
Repetitions are interleaved across sizes and medians reported; times are CPU times
of the measuring process, after a warm-up of five matches per pattern held (the
steady state; "first pass" gives the first pass over the events as built, as a
multiple of the steady cost). Answers are compared with the loop first.

The workloads: the five of issue 8 (an exact ``type`` shared by many plus a
numeric threshold; an exact ``source`` plus ``anything-but``; an exact field plus a
``wildcard``; a mix of every kind; distinct exact / prefix / suffix /
equals-ignore-case / ``$or`` / exists) and harder ones (overlapping numeric ranges,
many ``anything-but`` lists on one field, deep nesting, patterns sharing every
field but the last, conditions under an array of objects, ``*text*`` wildcards).
Four of those are output-bound (matches per event grow with the patterns held);
each has a ``-bounded`` variant with the same pattern shapes whose generator scales
the values with the number of patterns, so that an event matches about 1-2 of them
at every size: growth is reported both ways. Patterns sharing every field but the
last match nothing at 10 and 0.8 per event at 10,000; its ``-bounded`` variant
matches 0.8 per event at every size.

Run: ``python benchmarks/filters.py [--quick] [--only NAME,...] [--jobs N]``; writes
``benchmarks/results/filters.json``. ``--quick`` reports the same figures from fewer
events and repetitions (memory per pattern over the first 300 patterns) and measures two
workloads at a time in separate processes; building 10,000 patterns per workload
(``compile`` included) is most of its time. ``--export DIR`` also writes each workload's
patterns and events as JSON lines (for comparing other engines on the same files).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from eventpatterns import filters
from eventpatterns.filters import PatternIndex

SIZES = (10, 1_000, 10_000)
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

Pattern = dict[str, Any]
Event = dict[str, Any]


# ------------------------------------------------------------ the realistic mix


def make_event(rng: random.Random) -> Event:
    """An EventBridge-style event of about 20 fields with a nested ``detail``."""
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


def _subject(rng: random.Random, kind: int) -> Pattern:
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


EXTRAS: list[Callable[[random.Random], Pattern]] = [
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


def make_pattern(rng: random.Random, i: int) -> Pattern:
    """A rule: routes on source/detail-type, selects a subject, adds 0-2 conditions."""
    detail: Pattern = dict(_subject(rng, i % 7))
    for extra in rng.sample(EXTRAS, rng.randrange(0, 3)):
        for key, value in extra(rng).items():
            detail.setdefault(key, value)
    pattern: Pattern = {"detail": detail}
    roll = rng.random()
    if roll < 0.7:
        pattern["source"] = [rng.choice(SOURCES)]
    elif roll < 0.8:
        pattern["source"] = [{"prefix": "shop."}]
    if rng.random() < 0.5:
        pattern["detail-type"] = rng.sample(TYPES, 2)
    return pattern


# ------------------------------------------------------------ compound workloads


def _envelope(rng: random.Random, detail: dict[str, Any], **top: Any) -> Event:
    """About 300 bytes: an envelope, the workload's fields, some filler."""
    event: Event = {
        "id": f"{rng.getrandbits(64):016x}",
        "source": rng.choice(SOURCES),
        "type": rng.choice(TYPES),
        "time": f"2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00Z",
        "region": rng.choice(REGIONS),
        "account": f"{rng.randrange(20):012d}",
    }
    event.update(top)
    event["detail"] = {
        "user": f"u-{rng.randrange(10_000)}",
        "status": rng.choice(STATUSES),
        "currency": rng.choice(["USD", "EUR", "GBP"]),
        "note": "x" * rng.randrange(20, 60),
        **detail,
    }
    return event


def w_type_threshold(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """An exact ``type`` shared by 2,000 patterns each, plus a ``>`` threshold."""
    types = TYPES[:5]
    pats = [
        {
            "type": [types[i % 5]],
            "detail": {"amount": [{"numeric": [">", 1000 - 2 * rng.random()]}]},
        }
        for i in range(n)
    ]
    evs = [_envelope(rng, {"amount": round(rng.uniform(0, 1000), 3)}, type=rng.choice(types))
           for _ in range(m)]  # fmt: skip
    return pats, evs


def w_source_anything_but(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """An exact ``source`` shared by many, plus ``anything-but`` a list (mostly excluded)."""
    rare = [f"s{j}" for j in range(1000)]
    pats = [
        {"source": [SOURCES[i % 6]],
         "detail": {"state": [{"anything-but": ["ok", "pending", rng.choice(rare)]}]}}
        for i in range(n)
    ]  # fmt: skip
    evs = []
    for _ in range(m):
        roll = rng.random()
        state = "ok" if roll < 0.6 else "pending" if roll < 0.999 else rng.choice(rare)
        evs.append(_envelope(rng, {"state": state}))
    return pats, evs


def w_field_wildcard(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """An exact field shared by many, plus a ``wildcard`` on a path."""
    pats = [
        {"source": [SOURCES[i % 6]],
         "detail": {"path": [{"wildcard": f"/api/v*/orders/{rng.randrange(ORDERS)}"}]}}
        for i in range(n)
    ]  # fmt: skip
    evs = [
        _envelope(rng, {"path": f"/api/v{rng.randrange(1, 4)}/orders/{rng.randrange(ORDERS)}"})
        for _ in range(m)
    ]
    return pats, evs


def w_mix(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """Every kind: routing fields, a selective subject, up to two further conditions."""
    return [make_pattern(rng, i) for i in range(n)], [make_event(rng) for _ in range(m)]


def w_distinct(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """Distinct exact / prefix / suffix / equals-ignore-case / ``$or`` / exists."""
    pats: list[Pattern] = []
    for i in range(n):
        c, o = rng.randrange(CUSTOMERS), rng.randrange(ORDERS)
        kind = i % 6
        if kind == 0:
            pats.append({"detail": {"customerId": [f"c-{c}"]}})
        elif kind == 1:
            pats.append({"detail": {"orderId": [{"prefix": f"o-{o}"}]}})
        elif kind == 2:
            pats.append({"detail": {"email": [{"suffix": f"user{c}@example{c % 7}.com"}]}})
        elif kind == 3:
            pats.append({"detail": {"customerId": [{"equals-ignore-case": f"C-{c}"}]}})
        elif kind == 4:
            pats.append({"$or": [{"detail": {"customerId": [f"c-{c}"]}},
                                 {"detail": {"orderId": [f"o-{o}"]}}]})  # fmt: skip
        else:
            pats.append({"detail": {"customerId": [f"c-{c}"], "coupon": [{"exists": True}]}})
    evs = []
    for _ in range(m):
        c, o = rng.randrange(CUSTOMERS), rng.randrange(ORDERS)
        detail = {
            "customerId": f"c-{c}",
            "orderId": f"o-{o}",
            "email": f"user{c}@example{c % 7}.com",
        }
        if rng.random() < 0.3:
            detail["coupon"] = f"SAVE{rng.randrange(50)}"
        evs.append(_envelope(rng, detail))
    return pats, evs


def w_overlapping_ranges(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """Bounded numeric ranges of random width that overlap (event-ruler's cliff)."""
    pats = []
    for _ in range(n):
        low = round(rng.uniform(0, 1_000_000), 2)
        pats.append(
            {"detail": {"amount": [{"numeric": [">=", low, "<", low + rng.randrange(1, 2000)]}]}}
        )
    evs = [_envelope(rng, {"amount": round(rng.uniform(0, 1_000_000), 2)}) for _ in range(m)]
    return pats, evs


def w_anything_but_lists(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """Many ``anything-but`` lists on one field: most patterns match (output-bound)."""
    states = [f"st{j}" for j in range(200)]
    pats = [{"detail": {"state": [{"anything-but": rng.sample(states, 3)}]}} for _ in range(n)]
    evs = [_envelope(rng, {"state": rng.choice(states)}) for _ in range(m)]
    return pats, evs


def _deep(path: list[str], leaf: Any) -> dict[str, Any]:
    out: Any = leaf
    for key in reversed(path):
        out = {key: out}
    return out  # type: ignore[no-any-return]


def w_deep(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """Conditions six levels deep: an id, a shared region, a prefix."""
    keys = ["l1", "l2", "l3", "l4", "l5"]
    pats = []
    for _ in range(n):
        p = _deep(keys, {"id": [f"i-{rng.randrange(20_000)}"], "zone": [rng.choice(REGIONS)],
                         "name": [{"prefix": "n"}]})  # fmt: skip
        pats.append(p)
    evs = []
    for _ in range(m):
        inner = {"id": f"i-{rng.randrange(20_000)}", "zone": rng.choice(REGIONS), "name": "nx"}
        evs.append(_envelope(rng, {}, **_deep(keys, inner)))
    return pats, evs


def w_shared_but_last(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """Patterns that agree on every field but the last (a user id)."""
    pats = [
        {"source": ["shop.orders"], "type": ["OrderPlaced"], "region": ["eu-west-1"],
         "account": ["000000000007"], "detail": {"user": [f"u-{i}"]}}
        for i in range(n)
    ]  # fmt: skip
    evs = [
        _envelope(rng, {}, source="shop.orders", type="OrderPlaced", region="eu-west-1",
                  account="000000000007")
        if rng.random() < 0.8 else _envelope(rng, {})
        for _ in range(m)
    ]  # fmt: skip
    return pats, evs


def w_array_objects(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """Two conditions under an array of objects (same-element check where it matters)."""
    pats = [
        {"detail": {"items": {"sku": [f"SKU-{rng.randrange(500)}"],
                              "qty": [{"numeric": [">=", rng.randrange(1, 5)]}]}}}
        for _ in range(n)
    ]  # fmt: skip
    evs = [
        _envelope(rng, {"items": [{"sku": f"SKU-{rng.randrange(500)}", "qty": rng.randrange(1, 5)}
                                  for _ in range(3)]})
        for _ in range(m)
    ]  # fmt: skip
    return pats, evs


def w_infix_wildcard(rng: random.Random, n: int, m: int) -> tuple[list[Pattern], list[Event]]:
    """``*text*`` wildcards (no literal head or tail) on a free-text message."""
    stems = ["time", "err", "retr", "conn", "disc", "pay", "ord", "ship"]
    ends = ["out", "or", "ied", "ect", "ard", "ment", "er", "ped"]
    words = [f"{a}{b}" for a in stems for b in ends]
    pats = [
        {"detail": {"message": [{"wildcard": f"*{rng.choice(words)}-{rng.randrange(200)}*"}]}}
        for _ in range(n)
    ]
    evs = [
        _envelope(rng, {"message": " ".join(
            f"{rng.choice(words)}-{rng.randrange(200)}" for _ in range(rng.randrange(3, 7)))})
        for _ in range(m)
    ]  # fmt: skip
    return pats, evs


# ------------------------------------------------- the same shapes, bounded matches
#
# The harder workloads above are output-bound: matches per event grow with the
# patterns held (overlapping ranges 0 -> 10, arrays of objects 0 -> 38, ...), and every
# match must be returned. Each variant below keeps the pattern shapes but scales the
# value domain with the number of patterns, so that an event matches about 1-2 of
# them at every size: the growth it reports is the engine's, not the output's. These
# are generated per size (see BOUNDED), not as prefixes of one 10,000-pattern list.


def w_overlapping_ranges_bounded(
    rng: random.Random, n: int, m: int
) -> tuple[list[Pattern], list[Event]]:
    """Overlapping ranges whose widths shrink as they multiply: ~1.5 hold each value."""
    span = 1_000_000
    pats = []
    for _ in range(n):
        low = round(rng.uniform(0, span), 2)
        width = round(rng.uniform(1.0, 2.0) * span / n, 2)
        pats.append({"detail": {"amount": [{"numeric": [">=", low, "<", low + width]}]}})
    evs = [_envelope(rng, {"amount": round(rng.uniform(0, span), 2)}) for _ in range(m)]
    return pats, evs


def w_anything_but_lists_bounded(
    rng: random.Random, n: int, m: int
) -> tuple[list[Pattern], list[Event]]:
    """``anything-but`` lists of three that name the event's value but for ~1.5 patterns."""
    common = ["st0", "st1", "st2"]
    rare = [f"st{j}" for j in range(3, 200)]
    pats = []
    for _ in range(n):
        names = list(common)
        if rng.random() < 4.5 / n:  # one of the common values left out: it matches those
            names[rng.randrange(3)] = rng.choice(rare)
        pats.append({"detail": {"state": [{"anything-but": names}]}})
    evs = [_envelope(rng, {"state": rng.choice(common)}) for _ in range(m)]
    return pats, evs


def w_array_objects_bounded(
    rng: random.Random, n: int, m: int
) -> tuple[list[Pattern], list[Event]]:
    """Two conditions under an array of objects, SKUs as many as the patterns (~1.5 match)."""
    skus = max(2, round(1.2 * n))
    pats = [
        {"detail": {"items": {"sku": [f"SKU-{rng.randrange(skus)}"],
                              "qty": [{"numeric": [">=", rng.randrange(1, 5)]}]}}}
        for _ in range(n)
    ]  # fmt: skip
    evs = [
        _envelope(rng, {"items": [{"sku": f"SKU-{rng.randrange(skus)}", "qty": rng.randrange(1, 5)}
                                  for _ in range(3)]})
        for _ in range(m)
    ]  # fmt: skip
    return pats, evs


def w_shared_but_last_bounded(
    rng: random.Random, n: int, m: int
) -> tuple[list[Pattern], list[Event]]:
    """Patterns sharing all but the user id, events naming one of theirs (~0.8 match)."""
    pats, evs = w_shared_but_last(rng, n, m)
    for ev in evs:
        ev["detail"]["user"] = f"u-{rng.randrange(n)}"
    return pats, evs


def w_infix_wildcard_bounded(
    rng: random.Random, n: int, m: int
) -> tuple[list[Pattern], list[Event]]:
    """``*text*`` wildcards on words numbered in proportion to the patterns (~1.5 match)."""
    stems = ["time", "err", "retr", "conn", "disc", "pay", "ord", "ship"]
    ends = ["out", "or", "ied", "ect", "ard", "ment", "er", "ped"]
    words = [f"{a}{b}" for a in stems for b in ends]
    numbers = max(1, -(-3 * n // len(words)))  # four digits: no number is inside another

    def token() -> str:
        return f"{rng.choice(words)}-{rng.randrange(numbers):04d}"

    pats = [{"detail": {"message": [{"wildcard": f"*{token()}*"}]}} for _ in range(n)]
    evs = [
        _envelope(rng, {"message": " ".join(token() for _ in range(rng.randrange(3, 7)))})
        for _ in range(m)
    ]
    return pats, evs


WORKLOADS: dict[str, Callable[[random.Random, int, int], tuple[list[Pattern], list[Event]]]] = {
    "type+threshold": w_type_threshold,
    "source+anything-but": w_source_anything_but,
    "field+wildcard": w_field_wildcard,
    "mix": w_mix,
    "distinct": w_distinct,
    "overlapping-ranges": w_overlapping_ranges,
    "anything-but-lists": w_anything_but_lists,
    "deep": w_deep,
    "shared-but-last": w_shared_but_last,
    "array-of-objects": w_array_objects,
    "infix-wildcard": w_infix_wildcard,
    "overlapping-ranges-bounded": w_overlapping_ranges_bounded,
    "anything-but-lists-bounded": w_anything_but_lists_bounded,
    "array-of-objects-bounded": w_array_objects_bounded,
    "infix-wildcard-bounded": w_infix_wildcard_bounded,
    "shared-but-last-bounded": w_shared_but_last_bounded,
}
# Generated once per size (patterns and events for that size), not as prefixes.
BOUNDED = {name for name in WORKLOADS if name.endswith("-bounded")}
QUICK_TRACED = 300  # patterns built under tracemalloc by --quick
WARM_UP = 5  # matches per pattern held before timing (see measure)
WARM_UP_S = 1.0  # CPU seconds of warm-up per size, at most
# The summary's "matches bounded" rows: at most this many matches per event at 10,000.
BOUNDED_MATCHES = 3.0


# --------------------------------------------------------------------- measuring


def _states(index: PatternIndex[int]) -> int:
    seen, todo = 0, [index._root]
    while todo:
        state = todo.pop()
        seen += 1
        todo.extend(state.children.values())
    return seen


# CPU time of this process: on a shared machine, wall-clock time mostly measures the
# other processes. Everything here is single-threaded, so on a quiet machine the two agree.
_clock = time.process_time


def _pass(fn: Callable[[Event], object], events: list[Event]) -> float:
    start = _clock()
    for event in events:
        fn(event)
    return _clock() - start


def _build(patterns: list[Any], *, traced: bool = False) -> tuple[PatternIndex[int], float, float]:
    """Build an index; return it, its CPU seconds and (if ``traced``) bytes per pattern.

    Traced builds are given pattern dicts, so the bytes include the compiled matcher the
    index keeps for each pattern; tracing makes them slower (their time is not reported).
    """
    index: PatternIndex[int] = PatternIndex()
    if traced:
        gc.collect()
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0] if traced else 0
    start = _clock()
    for i, p in enumerate(patterns):
        index.add(i, p)
    seconds = _clock() - start
    per_pattern = 0.0
    if traced:
        per_pattern = (tracemalloc.get_traced_memory()[0] - before) / max(1, len(patterns))
        tracemalloc.stop()
    return index, seconds, per_pattern


def _sample(
    fn: Callable[[Event], object], events: list[Event], budget: float, least: int
) -> list[Event]:
    """The events one pass over which takes about ``budget`` seconds (at least ``least``)."""
    head = events[:least]
    per_event = _pass(fn, head) / len(head)
    return events[: max(least, min(len(events), int(budget / max(per_event, 1e-9))))]


def measure(name: str, *, quick: bool) -> dict[str, Any]:
    """Measure one workload at every size.

    ``quick`` keeps every figure but takes fewer events and repetitions, checks fewer
    answers against the loop, and measures memory on the first 300 patterns instead
    of all 10,000.
    """
    n_events = 300 if quick else 1000
    reps = 3 if quick else 7
    budget = 0.012 if quick else 0.08  # seconds per timed pass
    least = 3 if quick else 5  # events per pass, at least
    make = WORKLOADS[name]
    pats, evs = make(random.Random(name), max(SIZES), n_events)
    start = _clock()
    matchers = [filters.compile(p) for p in pats]
    compile_s = _clock() - start
    # Per size: (compiled patterns, events). Prefixes of one list, except for the
    # bounded variants, generated for each size.
    data: dict[int, tuple[list[Any], list[Event]]] = {max(SIZES): (matchers, evs)}
    for n in SIZES:
        if n in data:
            continue
        if name in BOUNDED:
            some, their = make(random.Random(f"{name}/{n}"), n, n_events)
            data[n] = ([filters.compile(p) for p in some], their)
        else:
            data[n] = (matchers[:n], evs)
    indexes: dict[int, PatternIndex[int]] = {}
    row: dict[str, Any] = {"workload": name}
    for n in SIZES:
        indexes[n], seconds, _ = _build(data[n][0])
    # The engine alone (from compiled matchers), and from pattern dicts (compile + engine).
    row["build_engine_s"] = round(seconds, 3)
    row["build_s"] = round(seconds + compile_s, 3)
    # Same answers as the loop on a sample, before timing anything.
    for event in evs[: 3 if quick else 50]:
        want = {i for i, m in enumerate(matchers) if m.matches(event)}
        if indexes[max(SIZES)].match(event) != want:
            raise AssertionError(f"{name}: index and loop disagree on {event}")
    runs: dict[int, list[float]] = {n: [] for n in SIZES}
    loop_runs: dict[int, list[float]] = {n: [] for n in SIZES}
    loops = {n: (lambda e, ms=data[n][0]: [m for m in ms if m.matches(e)]) for n in SIZES}
    # The first pass over the events as built (a field's range table may keep a tail of
    # ranges filed since its last build, until its lookups build it: see
    # RangeIndex.collect), then a warm-up of WARM_UP matches per pattern held (or
    # WARM_UP_S of CPU): the passes timed below measure the steady state.
    for n in SIZES:
        their = data[n][1]
        row[f"first_us_{n}"] = round(_pass(indexes[n].match, their) / len(their) * 1e6, 2)
        done, spent = len(their), 0.0
        while done < WARM_UP * n and spent < WARM_UP_S:
            spent += _pass(indexes[n].match, their)
            done += len(their)
    index_events = {n: _sample(indexes[n].match, data[n][1], budget, least) for n in SIZES}
    loop_events = {n: _sample(loops[n], data[n][1], budget / 2, least) for n in SIZES}
    # Interleaved: every size in every repetition. The loop's passes come after the
    # index's (they would flush the caches between the index's passes: the index is
    # timed in its steady state, as the event-ruler harness times event-ruler).
    for _ in range(reps):
        for n in SIZES:
            runs[n].append(_pass(indexes[n].match, index_events[n]) / len(index_events[n]))
    for _ in range(max(2, reps // 2)):  # the baseline needs fewer
        for n in SIZES:
            loop_runs[n].append(_pass(loops[n], loop_events[n]) / len(loop_events[n]))
    for n in SIZES:
        cost = statistics.median(runs[n])
        sample = index_events[n]
        per_event = sum(len(indexes[n].match(e)) for e in sample) / len(sample)
        row[f"ev_s_{n}"] = round(1 / cost)
        row[f"loop_ev_s_{n}"] = round(1 / statistics.median(loop_runs[n]))
        row[f"us_{n}"] = round(cost * 1e6, 2)
        row[f"matches_per_event_{n}"] = round(per_event, 2)
        # Cost per unit of output: an event that matches k patterns must return k keys.
        row[f"us_per_output_{n}"] = round(cost * 1e6 / (1 + per_event), 3)
    small, big_n = min(SIZES), max(SIZES)
    row["growth"] = round(row[f"us_{big_n}"] / row[f"us_{small}"], 2)
    row["growth_per_output"] = round(
        row[f"us_per_output_{big_n}"] / row[f"us_per_output_{small}"], 2
    )
    row["vs_loop"] = round(row[f"ev_s_{big_n}"] / row[f"loop_ev_s_{big_n}"], 1)
    row["matches_per_event"] = row[f"matches_per_event_{big_n}"]
    row["states"] = _states(indexes[big_n])
    row["states_per_pattern"] = round(row["states"] / big_n, 2)
    # Tracing makes a build about ten times slower: --quick traces the first 300 patterns.
    del indexes
    traced_n = QUICK_TRACED if quick else big_n
    _, _, per_pattern = _build(pats[:traced_n], traced=True)
    row["bytes_per_pattern"] = round(per_pattern)
    row["bytes_per_pattern_at"] = traced_n
    return row


def export(directory: Path, *, quick: bool) -> None:
    """Write each workload's patterns and events as JSON lines, for every size.

    ``NAME.patterns.jsonl`` / ``NAME.events.jsonl`` hold the 10,000 set;
    ``NAME.N.patterns.jsonl`` / ``NAME.N.events.jsonl`` the set of each size N, as
    ``measure`` builds it (prefixes of the largest, or generated per size for the
    ``-bounded`` variants).
    """
    directory.mkdir(parents=True, exist_ok=True)
    n_events = 300 if quick else 1000

    def write(stem: str, pats: list[Pattern], evs: list[Event]) -> None:
        (directory / f"{stem}.patterns.jsonl").write_text(
            "".join(json.dumps(p) + "\n" for p in pats), encoding="utf-8"
        )
        (directory / f"{stem}.events.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in evs), encoding="utf-8"
        )

    for name, make in WORKLOADS.items():
        pats, evs = make(random.Random(name), max(SIZES), n_events)
        write(name, pats, evs)
        for n in SIZES:
            if name in BOUNDED and n != max(SIZES):
                some, their = make(random.Random(f"{name}/{n}"), n, n_events)
                write(f"{name}.{n}", some, their)
            else:
                write(f"{name}.{n}", pats[:n], evs)


def _measure_quick(name: str) -> dict[str, Any]:
    return measure(name, quick=True)


def _measure_full(name: str) -> dict[str, Any]:
    return measure(name, quick=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer events and repetitions")
    parser.add_argument("--only", default="", help="comma-separated workload names")
    parser.add_argument("--export", type=Path, help="also write the workloads as JSON lines")
    parser.add_argument(
        "--jobs",
        type=int,
        help="workloads measured at once, one process each (default: 2 with --quick, else 1)",
    )
    args = parser.parse_args()
    if args.export:
        export(args.export, quick=args.quick)
    names = [n for n in args.only.split(",") if n] or list(WORKLOADS)
    unknown = sorted(set(names) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads: {', '.join(unknown)}")
    jobs = args.jobs or (2 if args.quick else 1)
    started = time.perf_counter()
    one = _measure_quick if args.quick else _measure_full
    rows: list[dict[str, Any]] = []
    if jobs > 1:
        # Each workload in its own process: CPU times are per process, so two at once
        # on two cores halve the wall time (at the price of some shared-cache noise).
        with ProcessPoolExecutor(jobs) as pool:
            for name, row in zip(names, pool.map(one, names), strict=True):
                rows.append(row)
                print(f"  {name}: {row['ev_s_10000']:,} ev/s at 10,000", file=sys.stderr)
    else:
        for name in names:
            rows.append(one(name))
            print(f"  {name}: {rows[-1]['ev_s_10000']:,} ev/s at 10,000", file=sys.stderr)
    print(
        "| workload | ev/s @10 | @1,000 | @10,000 | growth 10→10k | per (event + match) growth"
        " | first pass @10k | loop @10k | ÷ loop | build 10k (engine) | matches/ev @10 → @10k"
        " | states/pattern | bytes/pattern |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        cells = [
            r["workload"],
            f"{r['ev_s_10']:,}",
            f"{r['ev_s_1000']:,}",
            f"{r['ev_s_10000']:,}",
            f"{r['growth']}x",
            f"{r['growth_per_output']}x",
            f"{r['first_us_10000'] / r['us_10000']:.2f}x the time",
            f"{r['loop_ev_s_10000']:,}",
            f"{r['vs_loop']:,}x",
            f"{r['build_s']} s ({r['build_engine_s']} s)",
            f"{r['matches_per_event_10']} → {r['matches_per_event_10000']}",
            f"{r['states_per_pattern']}",
            f"{r['bytes_per_pattern']:,} (@{r['bytes_per_pattern_at']:,})",
        ]
        print("| " + " | ".join(cells) + " |")
    bounded = [r for r in rows if r["matches_per_event_10000"] <= BOUNDED_MATCHES]
    if bounded:
        weakest = max(bounded, key=lambda r: r["growth"])
        print(
            f"weakest (largest growth, at most {BOUNDED_MATCHES:g} matches per event):"
            f" {weakest['workload']} ({weakest['growth']}x from 10 to 10,000 patterns)"
        )
    if rows:
        grows = max(rows, key=lambda r: r["growth"])
        print(
            f"largest growth of all (output included): {grows['workload']}"
            f" ({grows['growth']}x, {grows['matches_per_event_10']} ->"
            f" {grows['matches_per_event_10000']} matches per event)"
        )
        per_output = max(rows, key=lambda r: r["growth_per_output"])
        print(
            f"weakest per (event + match): {per_output['workload']}"
            f" ({per_output['growth_per_output']}x from 10 to 10,000 patterns)"
        )
        slowest = min(rows, key=lambda r: r["ev_s_10000"])
        print(f"slowest at 10,000: {slowest['workload']} ({slowest['ev_s_10000']:,} ev/s)")
    out = Path(__file__).resolve().parent / "results" / "filters.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "filters",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "quick": args.quick,
                "jobs": jobs,
                "wall_s": round(time.perf_counter() - started, 1),
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
