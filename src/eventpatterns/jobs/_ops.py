"""The one read → decide → compare-and-swap → announce loop every job change goes through.

Used by the tracker (submit, cancel), the workers (start, heartbeat, progress, steps,
results) and the reaper (lost leases, due retries, deadlines). The store holds the
truth; the event on the bus announces it. When the announcement cannot be published
(the bus is unreachable) the change stands: the reaper dispatches pending jobs again
(:class:`~eventpatterns.jobs.Dispatch`) and watchers re-read the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol, cast

import anyio
import anyio.lowlevel

from ..bus import EventBus
from ..core import Clock, Event
from ..errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    EventTooLarge,
    InvalidJobTransition,
    JobConflict,
    JobNotFound,
)
from ..observability import _trace
from ..observability._metrics import metrics
from ._events import PENDING, event_type, job_event
from ._machine import Command, transition
from ._model import Job
from ._store import JobStore

__all__ = ["DEFAULT_SOURCE", "JobOps"]

logger = logging.getLogger("eventpatterns.jobs")

#: The ``source`` of job events unless the tracker is given another.
DEFAULT_SOURCE = "/eventpatterns/jobs"

#: Compare-and-swap attempts before a change gives up (each lost one re-reads the job).
MAX_RACES = 50


class _Outbox(Protocol):
    """A store appending each change's event to the bus's log with the change itself.

    :class:`~eventpatterns.backends.redis.RedisJobStore` beside a bus on the same Redis
    and prefix (its default; ``outbox=False`` opts out), or given ``outbox=backend``.
    """

    async def create_announced(self, job: Job, event: Event) -> Job: ...

    async def replace_announced(self, job: Job, *, expected_version: int, event: Event) -> Job: ...


class _Batched(Protocol):
    """A store that reads and writes many jobs in one round trip each.

    :class:`~eventpatterns.backends.redis.RedisJobStore`. ``replace_many`` returns per
    write the job as written or the error ``replace`` would raise; with ``events`` (the
    store's outbox) it appends the event of each job written in the same step.
    """

    async def get_many(self, job_ids: Sequence[str]) -> list[Job | None]: ...

    async def replace_many(
        self, writes: Sequence[tuple[Job, int]], *, events: Sequence[Event | None] | None = None
    ) -> Sequence[Job | Exception]: ...


class _Waiting:
    """A write waiting in :class:`JobOps`'s coalesced batch, and its outcome."""

    __slots__ = ("done", "event", "job", "new", "outcome")

    def __init__(self, job: Job, new: Job, event: Event | None) -> None:
        self.job = job
        self.new = new
        self.event = event
        self.done = anyio.Event()
        self.outcome: Job | BaseException | None = None


def _outbox_of(store: JobStore, bus: EventBus) -> _Outbox | None:
    # A claim check may put a large event elsewhere: publishing does that, not the outbox.
    adopt = bus.claim_check is None
    outbox_for = getattr(store, "outbox_for", None)
    if outbox_for is not None:  # the store decides (the Redis one: the same server and prefix)
        return cast(_Outbox, store) if outbox_for(bus.backend, adopt=adopt) and adopt else None
    outbox = getattr(store, "outbox", None)
    if outbox is None:
        return None
    if outbox is not bus.backend:
        raise ConfigurationError(
            "the job store's outbox is not the tracker's bus backend: give the store"
            " outbox=<the bus's backend>, or none"
        )
    return cast(_Outbox, store) if adopt else None


class JobOps:
    """Changes jobs in ``store`` and announces each change on ``bus``.

    Args:
        store: Where jobs live.
        bus: Where changes are announced (an entered :class:`~eventpatterns.bus.EventBus`).
        clock: The clock ``now`` is read from for every transition.
        source: The ``source`` of the events.
    """

    def __init__(
        self, store: JobStore, bus: EventBus, clock: Clock, *, source: str = DEFAULT_SOURCE
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.source = source
        self._outbox = _outbox_of(store, bus)
        many = getattr(store, "replace_many", None)
        self._batched = cast(_Batched, store) if many is not None else None
        self._waiting: list[_Waiting] = []

    async def create(self, job: Job) -> Job:
        """Store a new job and announce it; return the stored job.

        With an idempotency key already used by the owner, the existing job is
        returned and nothing is announced (compare ids to tell).
        """
        outbox = self._outbox
        if outbox is not None:

            async def create(event: Event) -> tuple[Job, bool]:
                stored = await outbox.create_announced(job, event)
                return stored, stored.id == job.id

            try:
                stored = await self.bus._publish_via(
                    job_event(job, PENDING, source=self.source), create
                )
            except EventTooLarge:
                pass  # as without an outbox: stored, then its announcement refused
            else:
                _count(job, stored)
                return stored
        stored = await self.store.create(job)
        if stored.id == job.id:
            await self.announce(None, stored)
        _count(job, stored)
        return stored

    async def apply(
        self,
        job_id: str,
        decide: Callable[[Job], Command | None],
        *,
        current: Job | None = None,
        coalesce: bool = False,
    ) -> Job | None:
        """Apply ``decide(job)``'s command to the job as stored; return the new job.

        ``decide`` sees the job as just read and returns the command to apply, or
        ``None`` for nothing to do (then ``None`` is returned and nothing is written).
        When another writer wins the compare-and-swap, the job is read again and
        ``decide`` asked again.

        Args:
            job_id: The job.
            decide: Chooses the command from the job as it stands.
            current: The job as the caller last wrote or read it (a worker knows its
                job's version): the first try writes on it without reading the store,
                saving a round trip; a stale ``current`` only costs one lost race.
            coalesce: Write together with the other coalesced writes made in the same
                turn of the event loop (one round trip for them all, on a store that
                writes many at once; each still a compare-and-swap of its own).

        Raises:
            JobNotFound: No such job (never stored, or expired).
            InvalidJobTransition: The job's state does not allow the command.
            JobConflict: The job kept changing under it (50 lost races in a row).
            BackendUnavailable: The store could not be reached.
        """
        job = current if current is not None and current.id == job_id else None
        for _ in range(MAX_RACES):
            fresh = job is None
            if job is None:
                job = await self.store.get(job_id)
                if job is None:
                    raise JobNotFound(job_id)
            try:
                command = decide(job)
                if command is None:
                    if fresh:
                        return None
                    job = None  # judged on the caller's copy: read the store first
                    continue
                new = transition(job, command, self.clock.time())
            except InvalidJobTransition:
                if fresh:
                    raise
                job = None  # the caller's copy may be stale: judge the stored job
                continue
            try:
                stored = await (self._write_soon(job, new) if coalesce else self._write(job, new))
            except JobConflict:
                job = None
                continue
            if stored.state is not job.state:
                metrics.inc("eventpatterns_jobs_state_changes_total", state=stored.state.value)
            return stored
        raise JobConflict(job_id, expected=None, actual=None)

    async def _write(self, job: Job, new: Job) -> Job:
        """Store ``new`` over ``job`` (compare-and-swap) and announce it."""
        outbox = self._outbox
        if outbox is not None:
            type_ = event_type(job, new)
            if type_ is not None:

                async def replace(event: Event) -> tuple[Job, bool]:
                    stored = await outbox.replace_announced(
                        new, expected_version=job.version, event=event
                    )
                    return stored, True

                try:
                    return await self.bus._publish_via(
                        job_event(new, type_, source=self.source), replace
                    )
                except EventTooLarge:
                    pass  # as without an outbox: stored, then its announcement refused
        stored = await self.store.replace(new, expected_version=job.version)
        await self.announce(job, stored)
        return stored

    async def apply_many(
        self,
        job_ids: Sequence[str],
        decide: Callable[[Job], Command | None],
        *,
        traces: Sequence[Event | None] | None = None,
    ) -> list[Job | Exception | None]:
        """:meth:`apply` ``decide`` to each job, reading and writing them all together.

        One read and one write for the batch (on a store that does many at once);
        a write that loses its compare-and-swap is tried again by :meth:`apply`.
        ``traces`` (one per id) gives each job's event the trace context it continues
        (a worker: the job's dispatch); else the current one.

        Returns:
            Per id, in order: the new job, ``None`` (``decide`` said nothing to do), or
            the error :meth:`apply` would raise for it (``JobNotFound``,
            ``InvalidJobTransition``, ``JobConflict``, ``BackendUnavailable``).

        Raises:
            BackendUnavailable: The store could not be reached to read the jobs.
        """
        jobs = await self._get_many(job_ids)
        now = self.clock.time()
        results: list[Job | Exception | None] = [None] * len(job_ids)
        todo: list[tuple[int, Job, Job]] = []
        events: list[Event | None] = []
        for index, (job_id, job) in enumerate(zip(job_ids, jobs, strict=True)):
            if job is None:
                results[index] = JobNotFound(job_id)
                continue
            try:
                command = decide(job)
                if command is not None:
                    new = transition(job, command, now)
                    todo.append((index, job, new))
                    events.append(self._event(job, new, None if traces is None else traces[index]))
            except InvalidJobTransition as exc:
                results[index] = exc
        if not todo:
            return results
        outcomes = await self._write_many([(job, new) for _, job, new in todo], events)
        for (index, job, _new), outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, JobConflict):  # changed since read: the one-by-one way
                try:
                    results[index] = await self.apply(job.id, decide)
                except Exception as exc:
                    results[index] = exc
                continue
            if isinstance(outcome, Job) and outcome.state is not job.state:
                metrics.inc("eventpatterns_jobs_state_changes_total", state=outcome.state.value)
            results[index] = outcome
        return results

    async def _get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        if self._batched is not None:
            return await self._batched.get_many(job_ids)
        return [await self.store.get(job_id) for job_id in job_ids]

    async def _write_soon(self, job: Job, new: Job) -> Job:
        """:meth:`_write`, together with the others asked for in this turn of the loop.

        The first write of a batch waits one checkpoint (the other tasks ready to run
        add theirs), then writes them all; each gets its own outcome. Shielded: a
        write handed over is seen through, so its caller knows what became of it.
        """
        if self._batched is None:
            return await self._write(job, new)
        waiting = _Waiting(job, new, self._event(job, new))  # in the caller's trace
        self._waiting.append(waiting)
        with anyio.CancelScope(shield=True):
            if len(self._waiting) == 1:  # the first: it writes the batch
                try:
                    await anyio.lowlevel.checkpoint()
                finally:
                    batch, self._waiting = self._waiting, []
                    await self._flush(batch)
            else:
                await waiting.done.wait()
        outcome = waiting.outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None  # noqa: S101 - set by the flush
        return outcome

    async def _flush(self, batch: list[_Waiting]) -> None:
        outcomes: Sequence[Job | BaseException] | None = None
        try:
            outcomes = await self._write_many(
                [(w.job, w.new) for w in batch], [w.event for w in batch]
            )
        except Exception as exc:  # the store unreachable: each caller hears of it
            outcomes = [exc] * len(batch)
        finally:  # whatever happened, no caller is left waiting
            if outcomes is None:
                lost = BackendUnavailable("the batched write was interrupted")
                outcomes = [lost] * len(batch)
            for waiting, outcome in zip(batch, outcomes, strict=True):
                waiting.outcome = outcome
                waiting.done.set()

    def _event(self, job: Job, new: Job, trace: Event | None = None) -> Event | None:
        """The event announcing ``job -> new``, carrying the trace context it continues.

        ``trace``: that context (else the current one, as publishing would take).
        """
        type_ = event_type(job, new)
        if type_ is None:
            return None
        event = job_event(new, type_, source=self.source)
        if trace is None:
            return _trace.stamp(event)
        token = _trace.CURRENT.set(trace)
        try:
            return _trace.stamp(event)
        finally:
            _trace.CURRENT.reset(token)

    async def _write_many(
        self, pairs: Sequence[tuple[Job, Job]], events: Sequence[Event | None]
    ) -> Sequence[Job | Exception]:
        """Store each ``new`` over its ``job`` (compare-and-swap) and announce it.

        ``events``: :meth:`_event` of each pair. Returns per pair the job stored, or
        the error :meth:`_write` would raise.
        """
        batched = self._batched
        if batched is None:
            return await self._write_each(pairs)
        writes = [(new, job.version) for job, new in pairs]
        if self._outbox is not None:
            try:
                appended = await batched.replace_many(writes, events=events)
            except EventTooLarge:  # one of them: each on its own, as without a batch
                return await self._write_each(pairs)
            self.bus._count_published(
                sum(1 for e, o in zip(events, appended, strict=True) if e and isinstance(o, Job))
            )
            return appended
        outcomes = await batched.replace_many(writes)
        written = [e for e, o in zip(events, outcomes, strict=True) if e and isinstance(o, Job)]
        if written:
            try:
                await self.bus._publish_batch_unique(written)  # new versions: no dedupe
            except (BackendUnavailable, BusClosed) as exc:
                logger.warning("%d job events not announced: %s", len(written), exc)
        return outcomes

    async def _write_each(self, pairs: Sequence[tuple[Job, Job]]) -> list[Job | Exception]:
        results: list[Job | Exception] = []
        for job, new in pairs:
            try:
                results.append(await self._write(job, new))
            except (JobConflict, JobNotFound, ConfigurationError) as exc:
                results.append(exc)
        return results

    async def announce(self, before: Job | None, after: Job) -> None:
        """Publish the event for ``before -> after`` (none for a heartbeat).

        A bus that cannot be reached is logged, not raised: the change is stored.
        """
        type_ = event_type(before, after)
        if type_ is None:
            return
        try:
            # Its id, <job id>.<version>, is new: the compare-and-swap wrote that
            # version once, and only its writer announces it (no dedupe record needed).
            await self.bus._publish_unique(job_event(after, type_, source=self.source))
        except (BackendUnavailable, BusClosed) as exc:
            logger.warning("job %s: %s not announced: %s", after.id, type_, exc)


def _count(job: Job, stored: Job) -> None:
    if stored.id == job.id:  # created, not an idempotent repeat
        metrics.inc("eventpatterns_jobs_state_changes_total", state=stored.state.value)
