"""Benchmark: the real-time gateway against websockets, broadcaster and python-socketio.

Run: ``python benchmarks/gateway.py`` (a few minutes; ``--quick`` for a CI smoke run
of under a minute)

Each contender runs as a server in its own process, with its publisher inside it;
the clients (1,000 connections by default) run in another process on a minimal raw
client (``_wsclient.py``: RFC 6455, Engine.IO/Socket.IO, SSE) that counts every
delivery and measures latency from just before the publish call (for the gateway,
``bus.publish``) to receipt, on the machine's monotonic clock. Messages are ~100
bytes of JSON; compression is off everywhere.

Workloads:

* **broadcast**: every client receives every message (1,000 messages);
* **point-to-point**: 1,000 users, each client subscribed to its own user's
  messages only (the gateway: a per-user EventBridge pattern; broadcaster: one
  channel per user; socketio: one room per user), each message to one user.

Each contender is run twice per round on the same connections: **saturated**
(publish as fast as the loop allows, one ``await asyncio.sleep(0)`` between
messages; deliveries/s = deliveries / (last receipt - first publish)) and
**paced** (at half the smaller of ``broadcast()``'s and its own saturated rate, for
latency). Rounds are interleaved (``broadcast()`` first in each, then the others in
a rotating order); the table shows medians of the rounds, ratios taken within a
round. A row whose clients did not receive exactly every message is marked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, write_results
from _servers import server_main
from _wsclient import Tally, open_all


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    server: str
    client: str
    p2p: bool = False


ROWS = [
    Row("broadcast", "websockets broadcast()", "ws-broadcast", "ws"),
    Row("send-loop", "websockets, await send() per connection", "ws-send", "ws"),
    Row("frame", "one pre-built frame per transport (ceiling)", "ws-frame", "ws"),
    Row("broadcaster", "broadcaster memory:// + Starlette/uvicorn", "broadcaster", "ws"),
    Row("socketio", "python-socketio (ASGI, uvicorn)", "socketio", "socketio"),
    Row("gateway", "eventpatterns Gateway, websockets transport", "gateway-ws", "gateway"),
    Row(
        "gateway-asgi", "eventpatterns Gateway, ASGI WebSocket (uvicorn)", "gateway-asgi", "gateway"
    ),
    Row("gateway-sse", "eventpatterns Gateway, SSE (uvicorn)", "gateway-asgi", "sse"),
    Row(
        "p2p-broadcast",
        "websockets broadcast() to the user's connection",
        "ws-broadcast",
        "ws",
        True,
    ),
    Row("p2p-broadcaster", "broadcaster, one channel per user", "broadcaster", "ws", True),
    Row("p2p-socketio", "python-socketio, one room per user", "socketio", "socketio", True),
    Row(
        "p2p-gateway",
        "eventpatterns Gateway, per-user pattern (WebSocket)",
        "gateway-ws",
        "gateway",
        True,
    ),
    Row(
        "p2p-gateway-sse",
        "eventpatterns Gateway, per-user pattern (SSE)",
        "gateway-asgi",
        "sse",
        True,
    ),
]


# -- the client process ---------------------------------------------------------------------


async def client_process(client: str, port: int, indexes: range, p2p: bool, pipe: Pipe) -> None:
    loop = asyncio.get_running_loop()
    tally = Tally()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    connections = await open_all(client, port, indexes, tally, p2p=p2p)
    loop.add_reader(pipe.fileno(), lambda: inbox.put_nowait(pipe.recv()))
    pipe.send(("ready", len(connections)))
    while True:
        command = await inbox.get()
        if command[0] != "arm":
            break
        _, expected, measure, idle = command
        tally.arm(expected, measure=measure)
        cpu0 = time.process_time()
        pipe.send(("armed",))
        progress, seen = time.monotonic(), -1
        while not tally.done.is_set():
            try:
                await asyncio.wait_for(tally.done.wait(), 0.5)
            except asyncio.TimeoutError:
                if tally.last_ns != seen:
                    progress, seen = time.monotonic(), tally.last_ns
                elif time.monotonic() - progress > idle:
                    break  # no frame for `idle` seconds: report what arrived
        pipe.send(
            (
                "done",
                {
                    "delivered": sum(tally.counts),
                    "expected": sum(expected),
                    "short": sum(1 for c, e in zip(tally.counts, expected, strict=True) if c != e),
                    "first_ns": tally.first_ns,
                    "last_ns": tally.last_ns,
                    "latency": tally.latency,
                    "cpu": time.process_time() - cpu0,
                    "frame_bytes": tally.frame_bytes,
                },
            )
        )
    for connection in connections:
        if connection.transport is not None:
            connection.transport.abort()


def client_main(client: str, port: int, indexes: range, p2p: bool, pipe: Pipe) -> None:
    asyncio.run(client_process(client, port, indexes, p2p, pipe))


# -- orchestration ------------------------------------------------------------------------


def receive(pipe: Pipe, timeout: float, what: str) -> Any:
    if not pipe.poll(timeout):
        raise TimeoutError(f"no {what} within {timeout:.0f} s")
    return pipe.recv()


def expected_counts(n: int, indexes: range, users: int, p2p: bool) -> list[int]:
    if not p2p:
        return [n] * len(indexes)
    return [n // users + (1 if j < n % users else 0) for j in indexes]


def percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))] / 1e6  # ns -> ms


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.ctx = multiprocessing.get_context("fork")

    def run_row(self, row: Row, reference_rate: float | None) -> dict[str, Any]:
        args = self.args
        ctx = self.ctx
        server_pipe, child = ctx.Pipe()
        server = ctx.Process(target=server_main, args=(row.server, child), daemon=True)
        server.start()
        processes = [server]
        try:
            _, port = receive(server_pipe, 30, "port from the server")
            parts = [range(i, args.clients, args.client_procs) for i in range(args.client_procs)]
            pipes: list[Pipe] = []
            for indexes in parts:
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(
                    target=client_main,
                    args=(row.client, port, indexes, row.p2p, theirs),
                    daemon=True,
                )
                proc.start()
                processes.append(proc)
                pipes.append(mine)
            for pipe in pipes:
                receive(pipe, 120, "ready from the clients")
            users = args.clients
            per_message = 1 if row.p2p else args.clients
            n = users * args.per_user if row.p2p else args.messages
            saturated = self.run_once(server_pipe, pipes, parts, row, n, None, measure=False)
            own = saturated["rate"]
            rate = 0.5 * min(own, reference_rate or own)
            messages_per_s = rate / per_message
            n_paced = max(args.min_paced, int(messages_per_s * args.paced_seconds))
            paced = self.run_once(
                server_pipe, pipes, parts, row, n_paced, messages_per_s, measure=True
            )
            for pipe in pipes:
                pipe.send(("quit",))
            server_pipe.send(("quit",))
            return {"saturated": saturated, "paced": paced, "paced_rate": rate}
        finally:
            for proc in processes:
                proc.join(2)
                if proc.is_alive():
                    proc.kill()
                    proc.join()

    def run_once(
        self,
        server_pipe: Pipe,
        pipes: list[Pipe],
        parts: list[range],
        row: Row,
        n: int,
        rate: float | None,
        *,
        measure: bool,
    ) -> dict[str, Any]:
        users = self.args.clients
        for pipe, indexes in zip(pipes, parts, strict=True):
            pipe.send(("arm", expected_counts(n, indexes, users, row.p2p), measure, self.args.idle))
        for pipe in pipes:
            receive(pipe, 30, "armed from the clients")
        server_pipe.send(("run", n, users, rate, row.p2p, self.args.profile == row.key))
        reports = [receive(pipe, 1800, "a report from the clients")[1] for pipe in pipes]
        server_pipe.send(("stop",))
        _, first_ns, last_publish_ns, cpu = receive(server_pipe, 60, "the server's figures")
        delivered = sum(r["delivered"] for r in reports)
        expected = sum(r["expected"] for r in reports)
        last_ns = max(r["last_ns"] for r in reports)
        elapsed = max(last_ns - first_ns, 1) / 1e9
        latency: array[int] = array("q")
        for r in reports:
            latency.extend(r["latency"])
        ordered = sorted(latency)
        return {
            "messages": n,
            "delivered": delivered,
            "expected": expected,
            "complete": delivered == expected and not any(r["short"] for r in reports),
            "seconds": elapsed,
            "publish_seconds": (last_publish_ns - first_ns) / 1e9,
            "rate": delivered / elapsed,
            "p50_ms": percentile(ordered, 0.50),
            "p99_ms": percentile(ordered, 0.99),
            "max_ms": percentile(ordered, 1.0),
            "server_cpu_s": cpu,
            "server_cpu_us_per_delivery": cpu / max(delivered, 1) * 1e6,
            "client_cpu_share": sum(r["cpu"] for r in reports) / elapsed / len(reports),
            "frame_bytes": max(r["frame_bytes"] for r in reports),
        }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(rows: list[Row], rounds: list[dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One line per contender: medians over rounds, ratios taken within each round."""
    table = []
    for row in rows:
        runs = [r[row.key] for r in rounds if row.key in r]
        if not runs:
            continue

        def ratio(base: str, *, cpu: bool = False, key: str = row.key) -> float | str:
            values = []
            for r in rounds:
                if key in r and base in r:
                    mine, theirs = r[key]["saturated"], r[base]["saturated"]
                    if cpu:  # deliveries per second of server CPU, as a ratio
                        cost = "server_cpu_us_per_delivery"
                        values.append(theirs[cost] / mine[cost])
                    else:
                        values.append(mine["rate"] / theirs["rate"])
            return median(values) if values else ""

        sat = [run["saturated"] for run in runs]
        paced = [run["paced"] for run in runs]
        line: dict[str, Any] = {
            "workload": "point-to-point" if row.p2p else "broadcast",
            "contender": row.label,
            "key": row.key,
            "deliveries/s": median([s["rate"] for s in sat]),
            "x broadcast()": ratio("broadcast"),
            "x broadcaster": ratio("p2p-broadcaster" if row.p2p else "broadcaster"),
            "x socketio": ratio("p2p-socketio" if row.p2p else "socketio"),
            "CPU x broadcast()": ratio("broadcast", cpu=True),
            "CPU x broadcaster": ratio("p2p-broadcaster" if row.p2p else "broadcaster", cpu=True),
            "CPU x socketio": ratio("p2p-socketio" if row.p2p else "socketio", cpu=True),
            "p50 ms": median([p["p50_ms"] for p in paced]),
            "p99 ms": median([p["p99_ms"] for p in paced]),
            "paced at/s": median([run["paced_rate"] for run in runs]),
            "server CPU us/delivery": median([s["server_cpu_us_per_delivery"] for s in sat]),
            "client CPU": median([s["client_cpu_share"] for s in sat]),
            "frame bytes": max(s["frame_bytes"] for s in sat),
            "complete": all(s["complete"] for s in sat + paced),
            "rounds": runs,
        }
        table.append(line)
    return table


def check_targets(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {line["key"]: line for line in table}
    gw = by.get("gateway")
    if gw is None:
        return []
    checks = []
    for prefix, basis in (("", "wall"), ("CPU ", "server CPU")):
        checks += [
            (f"gateway >= 1.0x broadcast() ({basis})", gw[f"{prefix}x broadcast()"], 1.0),
            (f"gateway >= 2x broadcaster ({basis})", gw[f"{prefix}x broadcaster"], 2.0),
            (f"gateway >= 5x python-socketio ({basis})", gw[f"{prefix}x socketio"], 5.0),
            (f"stretch: gateway >= 1.4x broadcast() ({basis})", gw[f"{prefix}x broadcast()"], 1.4),
        ]
    out = [
        {"target": name, "measured": value, "met": isinstance(value, float) and value >= bar}
        for name, value, bar in checks
    ]
    out.append({"target": "gateway paced p99 < 60 ms", "measured": gw["p99 ms"],
                "met": gw["p99 ms"] < 60})  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=1000, help="broadcast messages")
    parser.add_argument("--per-user", type=int, default=50, help="point-to-point messages per user")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--paced-seconds", type=float, default=3.0)
    parser.add_argument("--min-paced", type=int, default=20, help="fewest paced messages")
    parser.add_argument("--client-procs", type=int, default=1, help="client processes")
    parser.add_argument("--idle", type=float, default=10.0, help="s without a frame = lost")
    parser.add_argument("--only", default="", help="comma-separated row keys (broadcast is kept)")
    parser.add_argument("--profile", default="", help="row key: cProfile its server (saturated)")
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--quick", action="store_true", help="CI smoke: small and one round")
    parser.add_argument(
        "--baseline-pad",
        type=int,
        default=0,
        help="extra bytes in the baselines' messages (e.g. 210: frames as large as the"
        " gateway's, which carry the whole CloudEvent)",
    )
    args = parser.parse_args()
    if args.baseline_pad:
        os.environ["EVENTPATTERNS_BENCH_BASELINE_PAD"] = str(args.baseline_pad)
    if args.quick:
        args.clients = min(args.clients, 50)
        args.messages = min(args.messages, 50)
        args.per_user = min(args.per_user, 2)
        args.rounds = 1
        args.paced_seconds = min(args.paced_seconds, 0.5)
        args.min_paced = min(args.min_paced, 10)
        args.idle = min(args.idle, 5.0)
    rows = ROWS
    if args.only:
        keys = {"broadcast", *args.only.split(",")}
        rows = [row for row in ROWS if row.key in keys]
    harness = Harness(args)
    rounds: list[dict[str, dict[str, Any]]] = []
    t0 = time.monotonic()
    for number in range(args.rounds):
        results: dict[str, dict[str, Any]] = {}
        others = rows[1:]
        shift = number % max(len(others), 1)
        order = [rows[0], *others[shift:], *others[:shift]]
        for row in order:
            reference = results.get("broadcast", {}).get("saturated", {}).get("rate")
            result = harness.run_row(row, reference)
            results[row.key] = result
            sat, paced = result["saturated"], result["paced"]
            flag = "" if sat["complete"] and paced["complete"] else "  INCOMPLETE"
            print(
                f"round {number + 1} {row.key:16} {sat['rate']:>10,.0f} deliveries/s  "
                f"paced p99 {paced['p99_ms']:6.1f} ms  server CPU "
                f"{sat['server_cpu_us_per_delivery']:.2f} us/delivery  "
                f"client CPU {sat['client_cpu_share']:.0%}{flag}",
                flush=True,
            )
        rounds.append(results)
        partial = args.output or Path(__file__).parent / "results" / "gateway.json"
        partial.parent.mkdir(exist_ok=True)
        # Written after every round: a long run that is stopped keeps what it measured.
        partial.with_suffix(".rounds.json").write_text(json.dumps(rounds, default=list))
    table = summarize(rows, rounds)
    print(
        f"\n{args.clients:,} clients; broadcast {args.messages:,} messages, point-to-point "
        f"{args.per_user} per user; medians of {args.rounds} round(s), "
        f"{time.monotonic() - t0:.0f} s\n"
    )
    columns = [
        "workload", "contender", "deliveries/s", "x broadcast()", "x broadcaster",
        "x socketio", "CPU x broadcast()", "CPU x broadcaster", "CPU x socketio",
        "p50 ms", "p99 ms", "paced at/s", "server CPU us/delivery",
        "client CPU", "frame bytes", "complete",
    ]  # fmt: skip
    print_table(table, columns)
    targets = check_targets(table)
    if targets:
        print()
        print_table(targets, ["target", "measured", "met"])
    extra = {"config": {k: str(v) for k, v in vars(args).items()}, "targets": targets}
    if args.output is not None:
        payload = {"benchmark": "gateway", "rows": table, **extra}
        args.output.write_text(json.dumps(payload, indent=2, default=list))
        print(f"\nwrote {args.output}")
    else:
        print(f"\nwrote {write_results('gateway', table, extra)}")
    return 0 if all(line["complete"] for line in table) else 1


if __name__ == "__main__":
    sys.exit(main())
