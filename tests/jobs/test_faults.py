"""Faults with real processes on Redis: SIGKILL mid-job, a crash between steps, cancel, deadline.

Each worker is a process of its own (``fault_worker.py``: a ``JobTracker`` with workers
and a reaper, lease 1 s, reaper every 0.2 s) on the shared Redis under a key prefix of
the test's own; the test process submits and tracks with a tracker that runs no
workers. Handlers leave marker files (started, cancelled, step 2 reached) and count
completions in Redis, so the test sees what ran where, and how often.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import pytest
import redis
import redis.asyncio

from eventpatterns import EventBus
from eventpatterns.backends.redis import RedisJobStore
from eventpatterns.jobs import JobState, JobTracker

from .fault_worker import FAST, LEASE, REAPER_INTERVAL, Nap

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.anyio]

REDIS_URL = os.environ.get("EVENTPATTERNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
WORKER = Path(__file__).with_name("fault_worker.py")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client runs on asyncio only


def _redis_reason() -> str | None:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        return f"Redis is not reachable at {REDIS_URL}: {exc}"
    return None


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, deleted afterwards."""
    reason = _redis_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI requires Redis: {reason}")
        pytest.skip(reason)
    value = f"eptest:jobs:{uuid.uuid4().hex[:12]}"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match="{" + value + "}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


class Workers:
    """Worker processes of one test; all killed at the end."""

    def __init__(self, prefix: str, marks: Path) -> None:
        self.prefix = prefix
        self.marks = marks
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[IO[bytes]] = []

    def start(self, name: str, *args: str) -> None:
        log = (self.marks / f"{name}.log").open("wb")
        self.logs.append(log)
        self.procs[name] = subprocess.Popen(
            [sys.executable, str(WORKER), REDIS_URL, self.prefix, name, str(self.marks), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def ready(self, name: str) -> None:
        await self.mark(f"{name}.ready", within=60)

    async def mark(self, file: str, *, within: float = 30) -> None:
        """Wait (bounded) for a marker file a worker writes."""
        path = self.marks / file
        with anyio.move_on_after(within):
            while not path.exists():  # another process writes it
                for name, proc in self.procs.items():
                    if proc.poll() is not None and proc.returncode != -signal.SIGKILL:
                        pytest.fail(f"worker {name} exited: {self.log(name)}")
                await anyio.sleep(0.02)
        if not path.exists():
            logs = {name: self.log(name) for name in self.procs}
            pytest.fail(f"no {file} within {within} s; logs: {logs}")

    def log(self, name: str) -> str:
        return (self.marks / f"{name}.log").read_text(errors="replace")[-3000:]

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        for log in self.logs:
            log.close()


@pytest.fixture
def workers(prefix: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(prefix, tmp_path)
    yield pool
    pool.close()


@asynccontextmanager
async def tracking(prefix: str) -> AsyncIterator[JobTracker]:
    """A tracker that submits and tracks (and reaps, as every tracker does), running no workers."""
    async with (
        EventBus.from_url(f"{REDIS_URL}?prefix={prefix}") as bus,
        RedisJobStore(REDIS_URL, prefix=prefix) as store,
    ):
        tracker = JobTracker(
            bus, store, run_workers=False, reaper_interval=REAPER_INTERVAL, dispatch_recheck=1.0
        )
        tracker.declare("nap", Nap, lease=LEASE, backoff=FAST)
        tracker.declare("two-steps", dict[str, Any], lease=LEASE, backoff=FAST)
        async with tracker:
            yield tracker


async def counter(prefix: str, name: str) -> int | None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        value = await client.get("{" + prefix + "}:" + name)
    finally:
        await client.aclose()
    return None if value is None else int(value)


async def test_a_worker_killed_mid_job_is_retried_elsewhere_and_finishes_once(
    prefix: str, workers: Workers
) -> None:
    async with tracking(prefix) as tracker:
        workers.start("a", "--slow", "60")
        await workers.ready("a")
        job = await tracker.submit("nap", {"seconds": 0.2}, owner="alice")
        await workers.mark(f"{job.id}.a.started")
        workers.start("b")
        await workers.ready("b")
        workers.kill("a")  # SIGKILL mid-job: no release, no last word; the lease runs out
        done = await tracker.wait(job.id, timeout=30, owner="alice")
    assert done.state is JobState.SUCCEEDED
    assert done.result == {"worker": "b"}
    assert done.attempts == 2
    assert await counter(prefix, f"done:{job.id}") == 1  # one completion, by b
    assert not (workers.marks / f"{job.id}.a.cancelled").exists()  # killed, not cancelled


async def test_a_crash_between_two_steps_resumes_at_the_second(
    prefix: str, workers: Workers
) -> None:
    async with tracking(prefix) as tracker:
        workers.start("a", "--slow", "60")
        await workers.ready("a")
        job = await tracker.submit("two-steps", {}, owner="alice")
        await workers.mark(f"{job.id}.a.step2")  # step 1 is checkpointed before step 2 runs
        checkpointed = await tracker.get(job.id)
        workers.start("b")
        await workers.ready("b")
        workers.kill("a")
        done = await tracker.wait(job.id, timeout=30, owner="alice")
    assert checkpointed is not None
    assert checkpointed.step == 1
    assert checkpointed.step_outputs == ({"n": 1, "by": "a"},)
    assert done.state is JobState.SUCCEEDED
    assert done.result == {"n": 2, "step1_by": "a", "step2_by": "b"}
    assert done.attempts == 2
    assert await counter(prefix, f"step1:{job.id}") == 1  # step 1 ran exactly once
    assert await counter(prefix, f"step2:{job.id}") == 1  # step 2 finished once, on b


async def test_a_cancel_stops_the_handler_running_in_another_process(
    prefix: str, workers: Workers
) -> None:
    async with tracking(prefix) as tracker:
        workers.start("a", "--slow", "60")
        await workers.ready("a")
        job = await tracker.submit("nap", {"seconds": 60}, owner="alice")
        await workers.mark(f"{job.id}.a.started")
        asked = await tracker.cancel(job.id, owner="alice", reason="changed my mind")
        done = await tracker.wait(job.id, timeout=10, owner="alice")
        await workers.mark(f"{job.id}.a.cancelled", within=10)
    assert asked.state is JobState.RUNNING
    assert asked.cancel_requested
    assert done.state is JobState.CANCELLED
    assert done.error == "changed my mind"
    assert done.attempts == 1
    assert await counter(prefix, f"done:{job.id}") is None  # it never completed


async def test_a_deadline_passing_mid_run_fails_the_job_and_stops_the_handler(
    prefix: str, workers: Workers
) -> None:
    async with tracking(prefix) as tracker:
        workers.start("a")
        await workers.ready("a")
        job = await tracker.submit("nap", {"seconds": 60}, owner="alice", deadline=1.5)
        await workers.mark(f"{job.id}.a.started")
        done = await tracker.wait(job.id, timeout=15, owner="alice")
        await workers.mark(f"{job.id}.a.cancelled", within=10)
    assert done.state is JobState.FAILED
    assert done.error == "deadline exceeded"
    assert done.attempts == 1
    assert await counter(prefix, f"done:{job.id}") is None
