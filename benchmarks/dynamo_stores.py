"""Benchmark: requests the DynamoDB device registry and presence spend, uncontended vs raced.

Run: ``python benchmarks/dynamo_stores.py [--n 100]`` (starts a moto_server of its own,
serialised like the tests', see ``tests/backends/aws/_dynamo_moto.py``).

moto is not AWS: the seconds are moto's, so the figure that carries over is the number
of DynamoDB requests (each billed) per operation. Rows:

* **register-known** / **register-new** / **register-move** — one registration at a time:
  a token registered again, a new token, a token moving to another user.
* **register-raced** — ``--n`` concurrent registrations of one token by two users (the
  suite's weakest case): every write conditional on the version read, losers retry.
* **join-alone** / **join-raced** — presence joins of one channel, one at a time, then
  ``--n`` at once (one channel item, conditional on its version).

Ratios are requests per operation against the uncontended row of the same kind.
Results go to ``benchmarks/results/dynamo_stores.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results

from eventpatterns.backends.aws import DynamoDeviceRegistry, DynamoPresence
from eventpatterns.push import Registration
from eventpatterns.testing import ManualClock

_TESTS = Path(__file__).parents[1] / "tests" / "backends" / "aws" / "_dynamo_moto.py"


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    """Start the tests' serialised moto_server on a free port."""
    server = _TESTS.read_text().split('_SERVER = """')[1].split('"""')[0]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", server, "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return proc, endpoint
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def counter(client: Any) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    return calls


async def measure(
    name: str, calls: list[str], n: int, make: Callable[[int], Awaitable[Any]], *, at_once: bool
) -> dict[str, Any]:
    calls.clear()
    start = time.perf_counter()
    if at_once:
        await asyncio.gather(*(make(i) for i in range(n)))
    else:
        for i in range(n):
            await make(i)
    seconds = time.perf_counter() - start
    return {"row": name, "ops": n, "requests": len(calls), "per_op": len(calls) / n,
            "moto_ops_s": n / seconds}  # fmt: skip


async def main(n: int) -> list[dict[str, Any]]:
    proc, endpoint = start_moto()
    rows: list[dict[str, Any]] = []
    try:
        options: dict[str, Any] = {"region": "eu-west-1", "endpoint_url": endpoint}
        async with DynamoDeviceRegistry(
            "bench-devices", max_devices=5000, create_table=True, **options
        ) as registry:
            await registry.get("0" * 32)  # creates the table
            calls = counter(await registry._db())
            fcm = [Registration("fcm", f"token-{i}") for i in range(n)]
            one = Registration("apns", "a0" * 32)
            rows.append(await measure(
                "register-new", calls, n, lambda i: registry.register("u", fcm[i], now=1e9),
                at_once=False,
            ))  # fmt: skip
            rows.append(await measure(
                "register-known", calls, n, lambda i: registry.register("u", fcm[i], now=2e9),
                at_once=False,
            ))  # fmt: skip
            rows.append(await measure(
                "register-move", calls, n, lambda i: registry.register("v", fcm[i], now=3e9),
                at_once=False,
            ))  # fmt: skip
            rows.append(await measure(
                "register-raced", calls, n,
                lambda i: registry.register(("a", "b")[i % 2], one, now=1e9 + i), at_once=True,
            ))  # fmt: skip
        presence = DynamoPresence(
            "bench-presence", create_table=True, clock=ManualClock(), **options
        )
        try:
            await presence.count("warm-up")
            calls = counter(await presence._pool.client("dynamodb"))
            rows.append(await measure(
                "join-alone", calls, n,
                lambda i: presence.join("alone", f"u{i}", connection=f"c{i}"), at_once=False,
            ))  # fmt: skip
            rows.append(await measure(
                "join-raced", calls, n,
                lambda i: presence.join("raced", f"u{i}", connection=f"c{i}"), at_once=True,
            ))  # fmt: skip
        finally:
            await presence.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    base = {r["row"]: r["per_op"] for r in rows}
    for r in rows:
        kind = "register-new" if r["row"].startswith("register") else "join-alone"
        r["ratio"] = r["per_op"] / base[kind]
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    result = asyncio.run(main(args.n))
    print_table(result, ["row", "ops", "requests", "per_op", "ratio", "moto_ops_s"])
    print(write_results("dynamo_stores", result, {"n": args.n}))
