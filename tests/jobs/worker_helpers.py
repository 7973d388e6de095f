"""A worker pool on a memory bus and store, for the worker and steps tests."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryBusBackend, MemoryJobStore
from eventpatterns.core import Clock, SystemClock
from eventpatterns.errors import BackendUnavailable
from eventpatterns.jobs import BlobStore, Dispatch, Job, JobPage, JobState, JobStore
from eventpatterns.jobs._kinds import JobKind
from eventpatterns.jobs._ops import JobOps
from eventpatterns.jobs._worker import WorkerPool


class FlakyStore:
    """A real :class:`MemoryJobStore` that can be taken down: every call then raises.

    Fault injection for the paths a Redis restart takes (``BackendUnavailable``),
    without restarting a server in every test.
    """

    def __init__(self, inner: JobStore) -> None:
        self.inner = inner
        self.down = False
        self.refused = 0

    def _check(self) -> None:
        if self.down:
            self.refused += 1
            raise BackendUnavailable("the job store is down (test)")

    async def create(self, job: Job) -> Job:
        self._check()
        return await self.inner.create(job)

    async def get(self, job_id: str) -> Job | None:
        self._check()
        return await self.inner.get(job_id)

    async def replace(self, job: Job, *, expected_version: int) -> Job:
        self._check()
        return await self.inner.replace(job, expected_version=expected_version)

    async def list(
        self,
        owner: str,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        self._check()
        return await self.inner.list(owner, state=state, limit=limit, cursor=cursor)

    async def expired_leases(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        self._check()
        return await self.inner.expired_leases(now, limit=limit)

    async def due(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        self._check()
        return await self.inner.due(now, limit=limit)

    async def overdue(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        self._check()
        return await self.inner.overdue(now, limit=limit)

    async def purge(self) -> int:
        self._check()
        return await self.inner.purge()


@dataclass
class Harness:
    """A running pool and what it runs on."""

    store: JobStore
    bus: EventBus
    ops: JobOps
    pools: list[WorkerPool]
    clock: Clock
    events: list[Event] = field(default_factory=list)

    @property
    def pool(self) -> WorkerPool:
        return self.pools[0]

    async def submit(
        self,
        kind: str,
        input: Any = None,  # noqa: A002 - as Job.new names it
        *,
        deadline: float | None = None,
        max_attempts: int = 3,
    ) -> Job:
        now = self.clock.time()
        job = Job.new(
            uuid.uuid4().hex,
            kind,
            owner="alice",
            input=input,
            now=now,
            run_after=now + 60,
            deadline=deadline,
            max_attempts=max_attempts,
        )
        return await self.ops.create(job)

    async def get(self, job_id: str) -> Job:
        job = await self.store.get(job_id)
        assert job is not None
        return job

    async def until(
        self, job_id: str, check: Callable[[Job], bool], *, within: float = 10.0
    ) -> Job:
        """Wait (bounded) until the stored job satisfies ``check``; return it."""
        with anyio.fail_after(within):
            while True:  # polling the store: what other tasks wrote
                job = await self.store.get(job_id)
                if job is not None and check(job):
                    return job
                await anyio.sleep(0.005)

    async def final(self, job_id: str, *, within: float = 10.0) -> Job:
        return await self.until(job_id, lambda job: job.state.final, within=within)

    async def in_state(self, job_id: str, state: JobState, *, within: float = 10.0) -> Job:
        return await self.until(job_id, lambda job: job.state is state, within=within)

    async def dispatch(self, job_id: str) -> Job | None:
        """What the reaper does for a due retry: make it pending and announce it."""
        return await self.ops.apply(job_id, lambda job: Dispatch(60.0))

    async def announced(self, job_id: str, what: str, *, within: float = 10.0) -> list[str]:
        """Wait (bounded) until the recorder saw event ``what`` of the job; return its types."""
        with anyio.fail_after(within):
            while what not in self.types(job_id):  # noqa: ASYNC110 - a recorder's list
                await anyio.sleep(0.005)
        return self.types(job_id)

    def types(self, job_id: str) -> list[str]:
        return [e.type.rsplit(".", 1)[1] for e in self.events if e.subject == job_id]


async def _record(
    bus: EventBus, events: list[Event], *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    async with bus.subscribe({"type": [{"prefix": "eventpatterns.job."}]}) as sub:
        task_status.started()
        async for event in sub:
            events.append(event)


@asynccontextmanager
async def running_pool(
    *kinds: JobKind,
    clock: Clock | None = None,
    blobs: BlobStore | None = None,
    inline_limit: int = 64 * 1024,
    workers: int = 1,
    store: JobStore | None = None,
    wrap: Callable[[JobStore], JobStore] | None = None,
) -> AsyncIterator[Harness]:
    """Run ``workers`` pools over one memory bus and store (the pools' view may be ``wrap``ped)."""
    clock = clock or SystemClock()
    store = store or MemoryJobStore(clock=clock)
    kind_map: Mapping[str, JobKind] = {kind.kind: kind for kind in kinds}
    async with EventBus(MemoryBusBackend()) as bus:
        ops = JobOps(store, bus, clock)
        worker_ops = JobOps(wrap(store), bus, clock) if wrap else ops
        pools = [
            WorkerPool(
                worker_ops,
                kind_map,
                blobs=blobs,
                worker_id=f"w{i + 1}",
                inline_limit=inline_limit,
                group_prefix="jobs",
            )
            for i in range(workers)
        ]
        harness = Harness(store, bus, ops, pools, clock)
        async with anyio.create_task_group() as tg:
            await tg.start(_record, bus, harness.events)
            for pool in pools:
                await tg.start(pool.run)
            yield harness
            tg.cancel_scope.cancel()


def kind(
    name: str,
    handler: Any = None,
    *,
    steps: Sequence[Any] = (),
    input_type: Any = None,
    **options: Any,
) -> JobKind:
    """A JobKind as the tracker registers it: the input type read from the annotation."""
    from eventpatterns.jobs._kinds import input_type_of

    first = handler if handler is not None else (steps[0] if steps else None)
    if input_type is None and first is not None:
        input_type = input_type_of(first)
    return JobKind(name, input_type, handler=handler, steps=tuple(steps), **options)
