"""Following one job: :meth:`JobTracker.watch`'s iterator."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from ..bus import Subscription
from ..core import Event
from ..errors import BackendUnavailable, EventsMissed, JobNotFound, SubscriptionClosed
from ._events import job_pattern
from ._model import Job

if TYPE_CHECKING:
    from ._tracker import JobTracker

__all__ = ["RESYNC", "JobWatch"]

logger = logging.getLogger("eventpatterns.jobs")

#: Seconds (of the tracker's clock) after which a watcher with no news reads the
#: store anyway: the fallback for a change whose event was never published.
RESYNC = 5.0

#: Events held for one watcher; past it the oldest are dropped and the store is read.
BUFFER = 64


def _version(event: Event) -> int | None:
    data = event.data
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None


class JobWatch:
    """An async iterator of one job's versions, from now until it ends.

    Made by :meth:`JobTracker.watch`; iterate it with ``async for``. Closing it early
    (``await watch.aclose()``, or ``async with tracker.watch(id) as updates:``) leaves
    the bus at once; otherwise it closes itself after the final state or an error. A
    call cancelled while waiting (a timeout around it) leaves it usable.
    """

    def __init__(self, tracker: JobTracker, job_id: str, *, owner: str | None) -> None:
        self._tracker = tracker
        self._job_id = job_id
        self._owner = owner
        self._sub: Subscription | None = None
        self._last: Job | None = None
        self._done = False

    @property
    def last(self) -> Job | None:
        """The version of the job yielded last (``None`` before the first)."""
        return self._last

    async def __aenter__(self) -> JobWatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop watching (idempotent)."""
        self._done = True
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.aclose()

    def __aiter__(self) -> JobWatch:
        return self

    async def __anext__(self) -> Job:
        if self._done:
            raise StopAsyncIteration
        try:
            if self._last is None:
                return await self._emit(await self._first())
            while True:
                announced = await self._signal()
                if announced is not None and announced <= self._last.version:
                    continue  # a change already seen (the store was read after it)
                job = await self._read()
                if job is not None and job.version > self._last.version:
                    return await self._emit(job)
        except SubscriptionClosed:
            if self._done:  # aclose() from another task while this one waited
                raise StopAsyncIteration from None
            await self.aclose()
            raise
        except Exception:  # a cancelled call leaves it usable; an error ends it
            await self.aclose()
            raise

    async def _first(self) -> Job:
        # Subscribe first, then read: a change between the two is in the subscription.
        sub = self._tracker.bus.subscribe(job_pattern(self._job_id), buffer=BUFFER)
        await sub.__aenter__()
        self._sub = sub
        job = await self._tracker.get(self._job_id, owner=self._owner)
        if job is None:
            raise JobNotFound(self._job_id)
        return job

    async def _read(self) -> Job | None:
        try:
            job = await self._tracker.get(self._job_id, owner=self._owner)
        except BackendUnavailable as exc:  # retried at the next event or resync
            logger.warning("watching job %s: store unreachable: %s", self._job_id, exc)
            return None
        if job is None:  # its record vanished (deleted by hand): it will not end
            raise JobNotFound(self._job_id)
        return job

    async def _emit(self, job: Job) -> Job:
        self._last = job
        if job.state.final:
            await self.aclose()
        return job

    async def _signal(self) -> int | None:
        """Wait for the job's next event (its version) or ``RESYNC`` seconds (``None``)."""
        sub = self._sub
        if sub is None:  # pragma: no cover - closed by another task during a read
            raise StopAsyncIteration
        clock = self._tracker.clock
        got: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def resync() -> None:
                await clock.sleep(RESYNC)
                tg.cancel_scope.cancel()

            tg.start_soon(resync)
            try:
                got.append(_version(await sub.receive()))
            except EventsMissed:  # events dropped for this watcher: read the store
                got.append(None)
            except Exception as exc:  # re-raised below, out of the group and unwrapped
                got.append(exc)
            tg.cancel_scope.cancel()
        if got and isinstance(got[0], Exception):
            raise got[0]
        return got[0] if got else None
