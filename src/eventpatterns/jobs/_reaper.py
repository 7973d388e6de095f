"""The reaper: the tracker's background sweep that keeps every job moving.

Workers hear of a job through its ``pending`` event; everything that event cannot
promise, the reaper makes good, from the store's indexes alone:

* a running job whose lease ended (its worker died or hung) gets
  :class:`~eventpatterns.jobs.ExpireLease`: retried with its kind's backoff, failed
  after ``max_attempts``, or cancelled if that was asked;
* a waiting job whose ``run_after`` passed gets :class:`~eventpatterns.jobs.Dispatch`:
  a retry that came due, or a pending job no worker started (its dispatch event was
  lost, or no worker was up), is announced ``pending`` again;
* a job past its deadline gets :class:`~eventpatterns.jobs.DeadlinePassed`;
* every ``purge_interval`` the store (and the blob store) drop what expired.

Every tracker process runs one; they race on the same jobs and the store's
compare-and-swap settles each race (the loser reads the job again and finds nothing
to do). A store or bus that cannot be reached is logged and the sweep tried again at
the next interval: a Redis restart never stops the reaper.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from ..bus import Backoff
from ..errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    InvalidJobTransition,
    JobConflict,
    JobNotFound,
)
from ._blobs import BlobStore
from ._kinds import JobKind
from ._machine import Command, DeadlinePassed, Dispatch, ExpireLease
from ._model import Job, JobState
from ._ops import JobOps

__all__ = ["Reaper", "Sweep"]

logger = logging.getLogger("eventpatterns.jobs")

#: Ids read from one store index per call.
BATCH = 100

#: Most calls per index in one sweep (a backlog is worked through over several sweeps).
MAX_PAGES = 10

_DEFAULT_BACKOFF = Backoff()


def check_seconds(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite positive number of seconds."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(slots=True)
class Sweep:
    """What one sweep did (each count: jobs whose change this process wrote).

    Attributes:
        expired: Lost leases expired (the job retried, failed or cancelled).
        dispatched: Waiting jobs announced ``pending`` again.
        overdue: Jobs failed for their deadline.
        purged: Job records (and blobs) deleted for their TTL.
        complete: ``False`` when the store or bus could not be reached mid-sweep.
    """

    expired: int = 0
    dispatched: int = 0
    overdue: int = 0
    purged: int = 0
    complete: bool = True


class Reaper:
    """Sweep the store every ``interval`` seconds of ``ops.clock`` (see the module doc).

    Args:
        ops: How jobs are changed (store, bus, clock).
        kinds: The tracker's job kinds; a lost lease is retried with its kind's
            backoff (kinds this process does not know get the default).
        interval: Seconds between sweeps.
        dispatch_recheck: The ``recheck`` of the :class:`Dispatch` it sends.
        purge_interval: Seconds between purges of expired records and blobs.
        blobs: A blob store to purge as well, or ``None``.

    Raises:
        ConfigurationError: An interval that is not a positive number of seconds.
    """

    def __init__(
        self,
        ops: JobOps,
        kinds: Mapping[str, JobKind],
        *,
        interval: float = 1.0,
        dispatch_recheck: float = 60.0,
        purge_interval: float = 60.0,
        blobs: BlobStore | None = None,
    ) -> None:
        self.ops = ops
        self.kinds = kinds
        self.interval = check_seconds("reaper_interval", interval)
        self.dispatch_recheck = check_seconds("dispatch_recheck", dispatch_recheck)
        self.purge_interval = check_seconds("purge_interval", purge_interval)
        self.blobs = blobs
        self.sweeps = 0
        self._next_purge = -math.inf

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sweep, then sleep ``interval``, until cancelled (started with ``tg.start``)."""
        task_status.started()
        while True:
            await self.sweep()
            await self.ops.clock.sleep(self.interval)

    async def sweep(self) -> Sweep:
        """Do one sweep now and return what it did; never raises for an unreachable store.

        Raises nothing but cancellation and programming errors: a job someone else
        changed first is skipped, and a store or bus that cannot be reached ends the
        sweep early (logged; ``complete`` is then ``False``).
        """
        done = Sweep()
        self.sweeps += 1
        store = self.ops.store
        try:
            done.expired = await self._each(store.expired_leases, self._expire)
            done.dispatched = await self._each(store.due, self._dispatch)
            done.overdue = await self._each(store.overdue, self._overdue)
            now = self.ops.clock.time()
            if now >= self._next_purge:
                self._next_purge = now + self.purge_interval
                done.purged = await store.purge()
                if self.blobs is not None:
                    done.purged += await self.blobs.purge()
        except (BackendUnavailable, BusClosed) as exc:
            logger.warning("job reaper: store unreachable, sweeping again later: %s", exc)
            done.complete = False
        return done

    async def _each(
        self,
        find: Callable[..., Awaitable[list[str]]],
        decide: Callable[[float], Callable[[Job], Command | None]],
    ) -> int:
        changed = 0
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            now = self.ops.clock.time()
            ids = [i for i in await find(now, limit=BATCH) if i not in seen]
            for job_id in ids:
                seen.add(job_id)
                try:
                    if await self.ops.apply(job_id, decide(now)) is not None:
                        changed += 1
                except (InvalidJobTransition, JobNotFound, JobConflict) as exc:
                    logger.debug("job reaper: %s skipped: %s", job_id, exc)  # someone else won
            if len(ids) < BATCH:
                break
        return changed

    def _expire(self, now: float) -> Callable[[Job], Command | None]:
        def decide(job: Job) -> Command | None:
            if job.state is not JobState.RUNNING or (job.lease_until or math.inf) > now:
                return None  # it heartbeat, or another reaper got there first
            kind = self.kinds.get(job.kind)
            return ExpireLease(kind.backoff if kind is not None else _DEFAULT_BACKOFF)

        return decide

    def _dispatch(self, now: float) -> Callable[[Job], Command | None]:
        def decide(job: Job) -> Command | None:
            waiting = job.state in (JobState.PENDING, JobState.RETRYING)
            if not waiting or job.run_after is None or job.run_after > now:
                return None  # started, or dispatched again by another process
            return Dispatch(self.dispatch_recheck)

        return decide

    def _overdue(self, now: float) -> Callable[[Job], Command | None]:
        def decide(job: Job) -> Command | None:
            if job.state.final or job.deadline is None or job.deadline > now:
                return None
            return DeadlinePassed()

        return decide
