"""Benchmark: the AWS bus against moto_server — functional throughput and requests spent.

Run: ``python benchmarks/bus_aws.py [--events 500] [--quick] [--output PATH]``

moto is not AWS: its figures say nothing about AWS latency, only how the backend's
request pattern compares with a raw aiobotocore peer in the same run. What carries
over to AWS is the **requests per event**, counted per API operation by a botocore
``before-call`` hook:

* **publish** — raw ``PutEvents`` one entry per request and 10 per request (the peers),
  against ``append`` one event per call and ``append`` of 100 (10 ``PutEvents`` of 10,
  plus the dedupe ``PutItem`` per event);
* **consume** — a raw ``ReceiveMessage`` (10) + ``DeleteMessageBatch`` loop on the
  group's queue (the peer), against the backend's ``receive(max_count=10)`` + ``ack``,
  each draining a pre-filled group.

Ratios (events/s of the backend over its peer) and requests per event go to
``benchmarks/results/bus_aws.json``. The aim (issue 12): one ``PutEvents`` per 10
published events, one receive and one delete per 10 consumed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import anyio
from _common import print_table, write_results

from eventpatterns import Event, EventBus
from eventpatterns.backends.aws import AWSBusBackend, DynamoJobStore
from eventpatterns.jobs import JobContext, JobTracker

REGION = "eu-west-1"


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto_server on a free port; yield its URL; stop it by its PID."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    beside = Path(sys.executable).with_name("moto_server")
    command = str(beside) if beside.exists() else shutil.which("moto_server")
    if command is None:
        raise SystemExit("moto_server is not installed (pip install 'moto[server]')")
    proc = subprocess.Popen(
        [command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("moto_server did not start") from None
            time.sleep(0.1)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
    )  # fmt: skip
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def make_events(n: int, tag: str) -> list[Event]:
    return [Event(type="bench.tick", source=f"/bench/{tag}", data={"n": i}) for i in range(n)]


class Requests:
    """Counts API requests per operation on the clients it is attached to."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def attach(self, client: Any) -> None:
        def count(model: Any, **_: Any) -> None:
            self.counts[model.name] += 1

        client.meta.events.register("before-call.*.*", count)

    def take(self) -> dict[str, int]:
        out, self.counts = dict(self.counts), Counter()
        return out


async def timed(run: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await run()
    return time.perf_counter() - start


async def attached(backend: AWSBusBackend, requests: Requests) -> None:
    for service in ("events", "sqs", "dynamodb"):
        requests.attach(await backend.pool.client(service))


async def bench(endpoint: str, n: int) -> list[dict[str, Any]]:
    from aiobotocore.session import get_session

    rows: list[dict[str, Any]] = []
    requests = Requests()
    backend = AWSBusBackend(region=REGION, bus="bench", prefix="bench", endpoint_url=endpoint)
    await attached(backend, requests)
    await backend.create_group("g", start="latest")
    url = backend._groups["g"].queue_url
    async with (
        get_session().create_client("events", region_name=REGION, endpoint_url=endpoint) as ev,
        get_session().create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs,
    ):
        requests.attach(ev)
        requests.attach(sqs)

        def entry(e: Event) -> dict[str, Any]:
            return {"Source": e.source, "DetailType": e.type, "Detail": e.to_json().decode(),
                    "EventBusName": "bench"}  # fmt: skip

        async def raw_one() -> None:
            for e in make_events(n, "raw1"):
                await ev.put_events(Entries=[entry(e)])

        async def raw_ten() -> None:
            events = make_events(n, "raw10")
            for i in range(0, n, 10):
                await ev.put_events(Entries=[entry(e) for e in events[i : i + 10]])

        async def one_by_one() -> None:
            for e in make_events(n, "one"):
                await backend.append([e])

        async def batched() -> None:
            events = make_events(n, "batch")
            for i in range(0, n, 100):
                await backend.append(events[i : i + 100])

        async def raw_consume() -> None:
            while True:
                answer = await sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0
                )
                got = answer.get("Messages", [])
                if not got:
                    return
                await sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                             for i, m in enumerate(got)],
                )  # fmt: skip

        async def consume() -> None:
            while deliveries := await backend.receive(
                "g", "c", max_count=10, visibility_timeout=30, wait=0
            ):
                await backend.ack("g", [d.receipt for d in deliveries])

        await backend.append(make_events(1, "warm"))  # creates the dedupe table and bus
        await consume()
        requests.take()
        for name, run, peer in (
            ("raw PutEvents x1", raw_one, None),
            ("raw PutEvents x10", raw_ten, None),
            ("append one by one", one_by_one, "raw PutEvents x1"),
            ("append batches of 100", batched, "raw PutEvents x10"),
        ):
            seconds = await timed(run)
            spent = requests.take()
            rows.append(row(name, "publish", n, seconds, spent, peer, rows))
            if name.startswith("raw"):
                await consume()  # the raw events also reached the group: empty it
                requests.take()
        for name, run, peer in (
            ("raw receive+delete batch", raw_consume, None),
            ("receive(10) + ack", consume, "raw receive+delete batch"),
        ):
            await backend.append(make_events(n, f"fill-{name}"))
            requests.take()
            seconds = await timed(run)
            rows.append(row(name, "consume", n, seconds, requests.take(), peer, rows))
    await backend.aclose()
    rows.append(await jobs_round_trip(endpoint, min(n, 100), rows))
    return rows


async def _noop(ctx: JobContext[int]) -> int:
    return ctx.input


async def jobs_round_trip(endpoint: str, n: int, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """No-op jobs end to end on AWS: the EventBridge + SQS bus and the DynamoDB job store."""
    requests = Requests()
    backend = AWSBusBackend(region=REGION, bus="jobs", prefix="bj", endpoint_url=endpoint, poll=1)
    store = DynamoJobStore("bench-jobs", region=REGION, endpoint_url=endpoint, create_table=True)
    async with EventBus(backend) as bus:
        tracker = JobTracker(bus, store)

        tracker.worker("noop", concurrency=10)(_noop)

        async with tracker:
            warm = await tracker.submit("noop", 0, owner="bench")  # creates the table, tap
            await tracker.wait(warm.id, timeout=60)
            await attached(backend, requests)
            requests.attach(await store._db())
            requests.take()
            limit = anyio.Semaphore(10)

            async def one(i: int) -> None:
                async with limit:
                    job = await tracker.submit("noop", i, owner="bench")
                    await tracker.wait(job.id, timeout=120)

            async def all_jobs() -> None:
                async with anyio.create_task_group() as tg:
                    for i in range(n):
                        tg.start_soon(one, i)

            seconds = await timed(all_jobs)
            spent = requests.take()
    await store.aclose()
    out = row("JobTracker no-op round trip", "job", n, seconds, spent, None, rows)
    out["requests_per_job"] = out.pop("requests_per_event")
    return out


def row(
    name: str,
    kind: str,
    n: int,
    seconds: float,
    spent: dict[str, int],
    peer: str | None,
    rows: list[dict[str, Any]],
) -> dict[str, Any]:
    rate = n / seconds
    out: dict[str, Any] = {
        "scenario": name,
        "kind": kind,
        "events": n,
        "events_per_s": rate,
        "requests_per_event": sum(spent.values()) / n,
        "requests": spent,
    }
    if peer is not None:
        base = next(r for r in rows if r["scenario"] == peer)
        out["ratio_to_peer"] = rate / base["events_per_s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="a small run (a smoke test)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    n = 50 if args.quick else args.events
    with moto_server() as endpoint:
        rows = asyncio.run(bench(endpoint, n))
    print_table(
        [{**r, "requests": " ".join(f"{k}={v}" for k, v in sorted(r["requests"].items()))}
         for r in rows],
        ["scenario", "events", "events_per_s", "ratio_to_peer", "requests_per_event",
         "requests_per_job", "requests"],
    )  # fmt: skip
    extra = {"note": "against moto_server, not AWS", "events": n}
    if args.output is None:
        print(f"results: {write_results('bus_aws', rows, extra)}")
    else:  # a smoke test: leave benchmarks/results alone
        args.output.write_text(json.dumps({"benchmark": "bus_aws", "rows": rows, **extra}))


if __name__ == "__main__":
    main()
