"""Aggregated view over three local downstream services vs the same view by hand.

Three upstream services, each its own server on its own port (hypercorn, in this
process) and its own ``Upstream`` (so its own breaker and connection pool): ``fast``
answers at once, ``slow`` after ``--slow-ms``, ``failing`` answers 503. The
eventpatterns row runs the view through ``Aggregator.fetch`` (task group, per-call
timeout, a breaker per upstream and per-part errors in the path; the breakers'
threshold is set past the run so that the failing one never opens and short-circuits
its part, which would flatter us). The peer row is the same three calls written by hand
with ``httpx`` and ``anyio`` over the same pooled client. Rounds alternate; the ratio
row also gives the latency eventpatterns adds (``added_p50_ms``, ``added_p99_ms``) and
``p99_rounds``, the median over the rounds of each round's p99 ratio (steadier than the
pooled p99 on a machine with other load); ``cpu_ms_view`` is the process's CPU time per
view (the in-process servers' share included), the cost that load cannot blur.

The weakest case is ``3 fast`` (three fast services): no slow part hides the
aggregator's own overhead.

    python benchmarks/bff.py [--requests 1600] [--concurrency 10] [--rounds 8] [--slow-ms 20]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import now, print_table, write_results

from eventpatterns.bff import Aggregator, BreakerPolicy, Part, Upstream, View
from eventpatterns.testing._fake_server import (
    Receive,
    Scope,
    Send,
    read_request,
    respond,
    serve_asgi,
)

SLOW = 0.02


def service(kind: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """A downstream service: ``fast``, ``slow`` (waits ``SLOW``) or ``failing`` (503)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        if kind == "slow":
            await anyio.sleep(SLOW)
        if kind == "failing":
            await respond(send, 503, {"error": "down"})
            return
        await respond(send, 200, {"path": request.path, "items": list(range(10))})

    return app


async def by_hand(client: httpx.AsyncClient, urls: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    async def one(url: str) -> None:
        try:
            with anyio.fail_after(2.0):
                response = await client.get(url, timeout=2.0)
            if response.status_code == 200:
                out[url] = {"ok": True, "data": response.json()}
            else:
                out[url] = {"ok": False, "error": f"HTTP {response.status_code}"}
        except (TimeoutError, httpx.HTTPError) as exc:
            out[url] = {"ok": False, "error": type(exc).__name__}

    async with anyio.create_task_group() as tg:
        for url in urls:
            tg.start_soon(one, url)
    return out


async def timed(
    call: Callable[[], Awaitable[Any]], requests: int, concurrency: int
) -> tuple[list[float], float, float]:
    """Run ``requests`` calls, ``concurrency`` at once.

    Returns:
        The latencies, the elapsed time and this process's CPU time (the in-process
        servers' share included: the same for both rows).
    """
    latencies: list[float] = []
    todo = iter(range(requests))

    async def worker() -> None:
        for _ in todo:
            start = now()
            await call()
            latencies.append(now() - start)

    began, cpu = now(), time.process_time()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return latencies, now() - began, time.process_time() - cpu


def summary(latencies: list[float], elapsed: float, cpu: float) -> dict[str, float]:
    latencies = sorted(latencies)
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "views_s": len(latencies) / elapsed,
        "cpu_ms_view": cpu / len(latencies) * 1000,
    }


async def compare(
    ours: Callable[[], Awaitable[Any]],
    hand: Callable[[], Awaitable[Any]],
    requests: int,
    concurrency: int,
    rounds: int,
) -> tuple[dict[str, float], dict[str, float], float]:
    """Alternate rounds of both, so that a loaded machine's drift hits both alike.

    Returns both summaries over every round, and the median over the rounds of each
    round's p99 ratio (ours / hand): a burst of other load spoils one round's pair, not
    the whole run's tail.
    """
    results: dict[str, tuple[list[float], float, float]] = {
        "ours": ([], 0.0, 0.0),
        "hand": ([], 0.0, 0.0),
    }
    ratios: list[float] = []
    for _ in range(rounds):
        p99: dict[str, float] = {}
        for key, call in (("hand", hand), ("ours", ours)):
            latencies, elapsed, cpu = await timed(call, requests // rounds, concurrency)
            held, total, spent = results[key]
            results[key] = (held + latencies, total + elapsed, spent + cpu)
            p99[key] = summary(latencies, elapsed, cpu)["p99_ms"]
        ratios.append(p99["ours"] / p99["hand"])
    return summary(*results["ours"]), summary(*results["hand"]), statistics.median(ratios)


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    kinds = {"fast": "fast", "fast2": "fast", "fast3": "fast", "slow": "slow", "failing": "failing"}
    async with contextlib.AsyncExitStack() as stack, httpx.AsyncClient() as client:
        bases: dict[str, str] = {}
        for name, kind in kinds.items():
            port = await stack.enter_async_context(serve_asgi(service(kind)))
            bases[name] = f"http://127.0.0.1:{port}"
        never = BreakerPolicy(threshold=10**9)
        upstreams = [
            Upstream(name, base, timeout=2.0, retries=0, breaker=never)
            for name, base in bases.items()
        ]
        aggregator = Aggregator(upstreams, allowed_hosts={"127.0.0.1"}, client=client)
        cases = {
            "fast+slow+failing": ["fast", "slow", "failing"],
            "3 fast (weakest)": ["fast", "fast2", "fast3"],
        }
        for case, names in cases.items():
            parts = tuple(Part(name, name, f"/{name}/1") for name in names)
            view = View("v", "/", parts)
            urls = [f"{bases[name]}/{name}/1" for name in names]
            for _ in range(2):  # warm the pools
                await aggregator.fetch(view, {})
                await by_hand(client, urls)
            ours, hand, round_ratio = await compare(
                lambda v=view: aggregator.fetch(v, {}),  # type: ignore[misc]
                lambda u=urls: by_hand(client, u),  # type: ignore[misc]
                args.requests,
                args.concurrency,
                args.rounds,
            )
            for key, result in (("httpx+anyio by hand", hand), ("eventpatterns.bff", ours)):
                rows.append({"case": case, "row": key, **result})
            rows.append(
                {
                    "case": case,
                    "row": "ratio (ours / hand)",
                    "p50_ms": ours["p50_ms"] / hand["p50_ms"],
                    "p99_ms": ours["p99_ms"] / hand["p99_ms"],
                    "views_s": ours["views_s"] / hand["views_s"],
                    "cpu_ms_view": ours["cpu_ms_view"] / hand["cpu_ms_view"],
                    "added_p50_ms": ours["p50_ms"] - hand["p50_ms"],
                    "added_p99_ms": ours["p99_ms"] - hand["p99_ms"],
                    "p99_rounds": round_ratio,
                }
            )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--slow-ms", type=float, default=20.0)
    parsed = parser.parse_args()
    SLOW = parsed.slow_ms / 1000
    result = anyio.run(main, parsed)
    print_table(
        result,
        [
            "case",
            "row",
            "p50_ms",
            "p99_ms",
            "views_s",
            "cpu_ms_view",
            "added_p50_ms",
            "added_p99_ms",
            "p99_rounds",
        ],
    )
    print("results:", write_results("bff", result))
