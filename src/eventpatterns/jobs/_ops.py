"""The one read → decide → compare-and-swap → announce loop every job change goes through.

Used by the tracker (submit, cancel), the workers (start, heartbeat, progress, steps,
results) and the reaper (lost leases, due retries, deadlines). The store holds the
truth; the event on the bus announces it. When the announcement cannot be published
(the bus is unreachable) the change stands: the reaper dispatches pending jobs again
(:class:`~eventpatterns.jobs.Dispatch`) and watchers re-read the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, cast

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
                stored = await self._write(job, new)
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
