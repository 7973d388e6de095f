"""Aggregated view over three local downstream services vs the same view by hand.

Three upstream services, each its own server on its own port and its own ``Upstream``
(so its own breaker and connection pool): ``fast`` answers at once, ``slow`` after
``--slow-ms``, ``failing`` answers 503. The services run in a process of their own, a
minimal asyncio HTTP/1.1 keep-alive responder, so that the measuring process does only
the client's work and the servers' cost does not queue in front of it. The
eventpatterns row runs the view through ``Aggregator.fetch`` (task group, per-call
timeout, a breaker per upstream and per-part errors in the path; the breakers'
threshold is set past the run so that the failing one never opens and short-circuits
its part, which would flatter us). The peer row is the same three calls written by hand
with ``httpx`` and ``anyio`` over the same pooled client. Rounds alternate; the ratio
row also gives the latency eventpatterns adds (``added_p50_ms``, ``added_p99_ms``) and
``p99_rounds``, the median over the rounds of each round's p99 ratio (steadier than the
pooled p99 on a machine with other load); ``cpu_ms_view`` is the client process's CPU
time per view, the cost that load cannot blur.

The weakest case is ``3 fast`` (three fast services): no slow part hides the
aggregator's own overhead.

Each case runs twice: paced (open loop, ``--rate`` views a second, below what one core
can serve: the latency a user sees, the p99 target's row) and saturated (``--concurrency``
callers in a closed loop: the throughput, where the tail is the queue in front of a
busy core).

    python benchmarks/bff.py [--requests 1600] [--concurrency 10] [--rounds 8] [--slow-ms 20]
                             [--rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
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

SLOW = 0.02
KINDS = {"fast": "fast", "fast2": "fast", "fast3": "fast", "slow": "slow", "failing": "failing"}


def _response(status: int, body: bytes) -> bytes:
    reason = b"OK" if status == 200 else b"Service Unavailable"
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % (status, reason, len(body)) + body


class _Service(asyncio.Protocol):
    """A downstream service: ``fast``, ``slow`` (waits ``SLOW``) or ``failing`` (503).

    Bodiless GETs over keep-alive connections (what both rows send); the answer of a
    ``fast`` one is ``{"path": ..., "items": [0..9]}``.
    """

    def __init__(self, kind: str, slow: float) -> None:
        self.kind, self.slow = kind, slow
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            request, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            path = request.split(b" ", 2)[1].decode()
            if self.kind == "failing":
                answer = _response(503, b'{"error":"down"}')
            else:
                body = b'{"path":"%s","items":[0,1,2,3,4,5,6,7,8,9]}' % path.encode()
                answer = _response(200, body)
            if self.kind == "slow":
                asyncio.get_running_loop().call_later(self.slow, self._write, answer)
            else:
                self._write(answer)

    def _write(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)


def _services_main(pipe: Any, slow: float) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        ports = {}
        for name, kind in KINDS.items():
            server = await loop.create_server(
                lambda k=kind: _Service(k, slow),  # type: ignore[misc]
                "127.0.0.1",
                0,
            )
            ports[name] = server.sockets[0].getsockname()[1]
        pipe.send(ports)
        await loop.run_in_executor(None, pipe.recv)  # until the benchmark says stop

    asyncio.run(run())


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
    call: Callable[[], Awaitable[Any]], requests: int, concurrency: int, rate: float
) -> tuple[list[float], float, float]:
    """Run ``requests`` calls, ``concurrency`` at once, or paced at ``rate`` per second.

    Paced (``rate > 0``, open loop): a call starts every ``1 / rate`` seconds whatever
    the others are doing, and its latency counts from when it was due, so a stall delays
    every call behind it and shows in the tail (no coordinated omission). Closed loop
    (``rate == 0``): ``concurrency`` callers, each starting its next call when its last
    one ends: the throughput at saturation.

    Returns:
        The latencies, the elapsed time and this (the client's) process's CPU time.
    """
    latencies: list[float] = []
    began, cpu = now(), time.process_time()
    if rate > 0:

        async def one(due: float) -> None:
            await call()
            latencies.append(now() - due)

        async with anyio.create_task_group() as tg:
            for n in range(requests):
                due = began + n / rate
                delay = due - now()
                if delay > 0:
                    await anyio.sleep(delay)
                tg.start_soon(one, due)
    else:
        todo = iter(range(requests))

        async def worker() -> None:
            for _ in todo:
                start = now()
                await call()
                latencies.append(now() - start)

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
    rate: float,
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
            latencies, elapsed, cpu = await timed(call, requests // rounds, concurrency, rate)
            held, total, spent = results[key]
            results[key] = (held + latencies, total + elapsed, spent + cpu)
            p99[key] = summary(latencies, elapsed, cpu)["p99_ms"]
        ratios.append(p99["ours"] / p99["hand"])
    return summary(*results["ours"]), summary(*results["hand"]), statistics.median(ratios)


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")
    ours_end, theirs = context.Pipe()
    services = context.Process(target=_services_main, args=(theirs, SLOW), daemon=True)
    services.start()
    try:
        ports: dict[str, int] = await anyio.to_thread.run_sync(ours_end.recv)
        async with httpx.AsyncClient() as client:
            await _cases(client, ports, args, rows)
    finally:
        ours_end.send("stop")
        services.join(5)
        if services.is_alive():
            services.kill()
    return rows


async def _cases(
    client: httpx.AsyncClient,
    ports: dict[str, int],
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
) -> None:
    bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    never = BreakerPolicy(threshold=10**9)
    upstreams = [
        Upstream(name, base, timeout=2.0, retries=0, breaker=never) for name, base in bases.items()
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
        loads = {
            f"paced {args.rate:g}/s": args.rate,
            f"saturated ({args.concurrency} callers)": 0.0,
        }
        for load, rate in loads.items():
            ours, hand, round_ratio = await compare(
                lambda v=view: aggregator.fetch(v, {}),  # type: ignore[misc]
                lambda u=urls: by_hand(client, u),  # type: ignore[misc]
                args.requests,
                args.concurrency,
                args.rounds,
                rate,
            )
            for key, result in (("httpx+anyio by hand", hand), ("eventpatterns.bff", ours)):
                rows.append({"case": case, "load": load, "row": key, **result})
            rows.append(
                {
                    "case": case,
                    "load": load,
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--slow-ms", type=float, default=20.0)
    parser.add_argument(
        "--rate", type=float, default=50.0, help="views/s of the paced (open-loop) rows"
    )
    parsed = parser.parse_args()
    SLOW = parsed.slow_ms / 1000
    result = anyio.run(main, parsed)
    print_table(
        result,
        [
            "case",
            "load",
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
