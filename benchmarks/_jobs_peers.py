"""The processes of ``benchmarks/jobs.py``: one role per subprocess.

Run: ``python benchmarks/_jobs_peers.py ROLE --url redis://... --name NAME [options]``

Workers (run until killed): ``arq-worker``, ``celery-worker``, ``raw-worker``,
``ep-worker``. Clients: ``arq-client``, ``celery-client``, ``raw-client``, ``ep-client``,
``ep-memory`` (tracker, worker and submitter in one process). A client submits a few
warm-up jobs (which also proves its worker is up), prints ``{"warm": true}``, waits for a
line on stdin, then submits ``--jobs`` no-op jobs keeping at most ``--inflight`` in flight,
each observed to succeed by the submitter, and prints its figures as one JSON line.

Then, on ``account N``, it runs N more (while the benchmark counts commands with
``MONITOR``) and prints their figures too.

Only the standard library is imported at the top: the arq roles run in a venv of their
own (arq pins ``redis<6``) that has neither eventpatterns nor celery.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

WARMUP = 20
Submit = Callable[[int], Awaitable[None]]


def payload_for(i: int, size: int) -> Any:
    """The job's input (and, the handlers being no-ops returning it, its result)."""
    if size <= 0:
        return {"i": i}
    return {"i": i, "pad": "x" * max(size - 20, 0)}  # ~size bytes of JSON


def figures(latencies: list[float], seconds: float, submitted: int) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pick(q: float) -> float:
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3

    return {
        "jobs": submitted,
        "completed": len(ordered),
        "seconds": seconds,
        "jobs_per_s": len(ordered) / seconds if seconds > 0 else 0.0,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": pick(1.0),
        "client_cpu_s": time.process_time(),
    }


def say(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def drive(n: int, inflight: int, one: Submit, *, offset: int = 0) -> dict[str, Any]:
    """Run ``one(i)`` for ``n`` indexes with at most ``inflight`` of them at once."""
    latencies: list[float] = []
    indexes = iter(range(offset, offset + n))

    async def lane() -> None:
        for i in indexes:
            t0 = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - t0)

    cpu0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(min(inflight, n))))
    result = figures(latencies, time.perf_counter() - t0, n)
    result["client_cpu_s"] -= cpu0
    return result


async def warm_then_measure(args: argparse.Namespace, one: Submit) -> None:
    await drive(WARMUP, min(args.inflight, WARMUP), one, offset=10**9)
    say({"warm": True})
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    say(await drive(args.jobs, args.inflight, one))
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if line.startswith("account"):  # a pass under MONITOR, counting round trips
        say(await drive(int(line.split()[1]), args.inflight, one, offset=2 * 10**9))


# -- arq --------------------------------------------------------------------------------------


def arq_worker(args: argparse.Namespace) -> None:
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    async def noop(ctx: dict[str, Any], value: Any) -> Any:
        return value

    worker = Worker(
        functions=[func(noop, name="noop")],
        redis_settings=RedisSettings.from_dsn(args.url),
        queue_name=args.name,
        max_jobs=args.inflight,
        poll_delay=args.poll,
        keep_result=300,
        handle_signals=True,
    )
    worker.run()  # on the loop it made in __init__


async def arq_client(args: argparse.Namespace) -> None:
    from arq import create_pool
    from arq.connections import RedisSettings

    pool = await create_pool(RedisSettings.from_dsn(args.url), default_queue_name=args.name)

    async def one(i: int) -> None:
        job = await pool.enqueue_job("noop", payload_for(i, args.size))
        assert job is not None
        result = await job.result(timeout=120, poll_delay=args.poll)
        assert result["i"] == i

    await warm_then_measure(args, one)
    await pool.aclose()


# -- Celery -----------------------------------------------------------------------------------


def celery_app(args: argparse.Namespace) -> Any:
    from celery import Celery

    app = Celery("jobsbench", broker=args.url, backend=args.url)
    app.conf.update(
        task_default_queue=args.name,
        result_expires=300,
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=4,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
    )

    @app.task(name="bench.noop")  # type: ignore[untyped-decorator]
    def noop(value: Any) -> Any:
        return value

    return app


def celery_worker(args: argparse.Namespace) -> None:
    app = celery_app(args)
    argv = ["worker", "--loglevel", "WARNING", "-Q", args.name, "--pool", args.pool]
    argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    if args.pool == "prefork":
        argv += ["--concurrency", str(args.concurrency)]
    app.worker_main(argv=argv)


def celery_client(args: argparse.Namespace) -> None:
    """Celery's client is synchronous: one loop keeps ``inflight`` results pending and
    drains the result backend's pub/sub, each result's ``then`` recording its latency."""
    app = celery_app(args)
    task = app.tasks["bench.noop"]
    consumer = app.backend.result_consumer
    keep: list[Any] = []  # every AsyncResult stays alive (Celery 5 hangs if one is collected)

    def run(n: int, inflight: int, offset: int) -> dict[str, Any]:
        latencies: list[float] = []
        pending = 0
        submitted = 0
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        while len(latencies) < n:
            while pending < inflight and submitted < n:
                i = offset + submitted
                start = time.perf_counter()
                result = task.apply_async((payload_for(i, args.size),))
                keep.append(result)

                def done(_: Any, start: float = start) -> None:
                    nonlocal pending
                    pending -= 1
                    latencies.append(time.perf_counter() - start)

                result.then(done)
                pending += 1
                submitted += 1
            consumer.drain_events(timeout=0.05)
        out = figures(latencies, time.perf_counter() - t0, n)
        out["client_cpu_s"] -= cpu0
        return out

    run(WARMUP, min(args.inflight, WARMUP), 10**9)
    say({"warm": True})
    sys.stdin.readline()
    say(run(args.jobs, args.inflight, 0))
    line = sys.stdin.readline()
    if line.startswith("account"):  # a pass under MONITOR, counting round trips
        say(run(int(line.split()[1]), args.inflight, 2 * 10**9))


# -- raw Redis Streams ------------------------------------------------------------------------


async def raw_worker(args: argparse.Namespace) -> None:
    """XREADGROUP a batch, then one pipeline: the result (SET ... EX), its PUBLISH, XACK."""
    import redis.asyncio as aredis
    from redis.exceptions import ResponseError

    client = aredis.Redis.from_url(args.url)
    stream, channel = f"{args.name}:jobs", f"{args.name}:done"
    try:
        await client.xgroup_create(stream, "workers", id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    while True:
        reply: Any = await client.xreadgroup(
            "workers", "w1", {stream: ">"}, count=args.inflight, block=1000
        )
        if not reply:
            continue
        entries = reply[stream.encode()][0] if isinstance(reply, dict) else reply[0][1]
        async with client.pipeline(transaction=False) as pipe:
            for _, fields in entries:
                job_id, value = fields[b"id"], fields[b"p"]  # the no-op: result = input
                pipe.set(f"{args.name}:result:".encode() + job_id, value, ex=300)
                pipe.publish(channel, job_id + b" " + value)
            pipe.xack(stream, "workers", *[entry_id for entry_id, _ in entries])
            await pipe.execute()


async def raw_client(args: argparse.Namespace) -> None:
    import redis.asyncio as aredis

    client = aredis.Redis.from_url(args.url)
    listener = aredis.Redis.from_url(args.url)
    stream, channel = f"{args.name}:jobs", f"{args.name}:done"
    waiting: dict[bytes, asyncio.Future[bytes]] = {}
    pubsub = listener.pubsub()
    await pubsub.subscribe(channel)

    async def listen() -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None:
                continue
            job_id, _, value = message["data"].partition(b" ")
            future = waiting.pop(job_id, None)
            if future is not None and not future.done():
                future.set_result(value)

    listening = asyncio.create_task(listen())

    async def one(i: int) -> None:
        job_id = str(i).encode()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        waiting[job_id] = future
        data = json.dumps(payload_for(i, args.size))
        await client.xadd(stream, {"id": job_id, "p": data})
        assert json.loads(await future)["i"] == i

    await warm_then_measure(args, one)
    listening.cancel()
    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # redis < 8.2 is untyped
    await client.aclose()
    await listener.aclose()


# -- eventpatterns ----------------------------------------------------------------------------


def ep_tracker(args: argparse.Namespace, bus: Any, store: Any, *, workers: bool) -> Any:
    from eventpatterns.jobs import JobTracker

    tracker = JobTracker(bus, store, run_workers=workers, run_reaper=workers)
    if workers:

        @tracker.worker("noop", concurrency=args.inflight)
        async def noop(ctx: Any) -> Any:
            return ctx.input

    else:
        tracker.declare("noop")
    return tracker


def ep_redis(args: argparse.Namespace) -> tuple[Any, Any]:
    from eventpatterns import EventBus
    from eventpatterns.backends.redis import RedisBusBackend, RedisJobStore

    options = {"max_connections": args.max_connections} if args.max_connections else {}
    backend = RedisBusBackend(args.url, prefix=args.name, **options)
    if args.outbox:  # (not passed otherwise: a --baseline-src tree may not know it)
        options["outbox"] = backend
    elif args.no_outbox:  # the opt-out: the tracker publishes each event itself
        options["outbox"] = False
    return EventBus(backend), RedisJobStore(args.url, prefix=args.name, **options)


async def ep_worker(args: argparse.Namespace) -> None:
    bus, store = ep_redis(args)
    async with bus, ep_tracker(args, bus, store, workers=True):
        # Its consumer group now exists: a job submitted earlier would wait for the
        # reaper's re-dispatch (dispatch_recheck, 60 s), so the benchmark waits for this.
        say({"ready": True})
        await asyncio.Event().wait()  # until killed


def ep_one(args: argparse.Namespace, tracker: Any) -> Submit:
    from eventpatterns.jobs import JobState

    async def one(i: int) -> None:
        job = await tracker.submit("noop", payload_for(i, args.size), owner="bench")
        if args.watch:
            async for update in tracker.watch(job.id):
                last = update
            job = last
        else:
            job = await tracker.wait(job.id, timeout=120)
        assert job.state is JobState.SUCCEEDED, job
        assert (await tracker.result(job))["i"] == i

    return one


async def ep_client(args: argparse.Namespace) -> None:
    bus, store = ep_redis(args)
    async with bus, ep_tracker(args, bus, store, workers=False) as tracker:
        await warm_then_measure(args, ep_one(args, tracker))


async def ep_memory(args: argparse.Namespace) -> None:
    from eventpatterns import EventBus
    from eventpatterns.backends.memory import MemoryBusBackend, MemoryJobStore

    bus = EventBus(MemoryBusBackend())
    async with bus, ep_tracker(args, bus, MemoryJobStore(), workers=True) as tracker:
        await warm_then_measure(args, ep_one(args, tracker))


ROLES: dict[str, Callable[[argparse.Namespace], Any]] = {
    "arq-worker": arq_worker,
    "arq-client": arq_client,
    "celery-worker": celery_worker,
    "celery-client": celery_client,
    "raw-worker": raw_worker,
    "raw-client": raw_client,
    "ep-worker": ep_worker,
    "ep-client": ep_client,
    "ep-memory": ep_memory,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True, help="queue / key prefix of this row")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--inflight", type=int, default=100)
    parser.add_argument("--size", type=int, default=0, help="bytes of input (and result)")
    parser.add_argument("--poll", type=float, default=0.5, help="arq poll delay, s")
    parser.add_argument("--pool", default="solo", help="Celery worker pool")
    parser.add_argument("--concurrency", type=int, default=2, help="Celery prefork processes")
    parser.add_argument(
        "--max-connections", type=int, default=0, help="eventpatterns: the store's pool size"
    )
    parser.add_argument("--watch", action="store_true", help="eventpatterns: watch, not wait")
    parser.add_argument("--outbox", action="store_true", help="eventpatterns: store outbox")
    parser.add_argument(
        "--no-outbox", action="store_true", help="eventpatterns: outbox=False (its default: on)"
    )
    args = parser.parse_args()
    outcome = ROLES[args.role](args)
    if asyncio.iscoroutine(outcome):
        asyncio.run(outcome)


if __name__ == "__main__":
    main()
