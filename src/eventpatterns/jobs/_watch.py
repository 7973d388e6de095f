"""Following one job: :meth:`JobTracker.watch`'s iterator."""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from ..bus import Subscription
from ..core import Event, SystemClock
from ..errors import BackendUnavailable, EventsMissed, JobNotFound, SubscriptionClosed
from ._events import JOB_EVENT_PREFIX, final_job
from ._model import Job, JobState

if TYPE_CHECKING:
    from ._tracker import JobTracker

__all__ = ["RESYNC", "JobWatch", "WatchHub"]

logger = logging.getLogger("eventpatterns.jobs")

#: Seconds (of the tracker's clock) after which a watcher with no news reads the
#: store anyway: the fallback for a change whose event was never published.
RESYNC = 5.0


#: Job events one tracker's hub holds for its watchers before it drops the oldest (and
#: every watcher reads the store instead).
HUB_BUFFER = 10_000

#: What a watcher's inbox holds: a change announced (its version, or ``None`` when the
#: event carries none, whether it announces a final state, and then the event's data),
#: ``None`` (events were missed: read the store), or the error that ended the hub.
_Announced = tuple[int | None, bool, Any]
_Note = _Announced | None | BaseException

#: The ``type`` of the events announcing a final state.
_FINAL_TYPES = frozenset(JOB_EVENT_PREFIX + state.value for state in JobState if state.final)

#: What the hub subscribes to for the waits (the ends), and for the watchers (every
#: job event, so that each watcher hears the changes and the end in log order).
_FINALS_PATTERN = {"type": sorted(_FINAL_TYPES)}
_EVERY_PATTERN = {"type": [{"prefix": JOB_EVENT_PREFIX}]}


class _Inbox:
    """One watcher's notes from the hub (``finals_only``: the ends, not other changes)."""

    __slots__ = ("_notes", "_ready", "finals_only")

    def __init__(self, *, finals_only: bool = False) -> None:
        self._notes: deque[_Note] = deque()
        self._ready = anyio.Event()
        self.finals_only = finals_only

    def put(self, note: _Note) -> None:
        self._notes.append(note)
        self._ready.set()

    def ready(self) -> bool:
        """Whether :meth:`get` would return (or raise) at once."""
        return bool(self._notes)

    async def get(self) -> _Announced | None:
        while not self._notes:
            self._ready = anyio.Event()
            await self._ready.wait()
        note = self._notes.popleft()
        if isinstance(note, BaseException):
            self._notes.appendleft(note)  # every later call raises it too
            raise note
        return note


class WatchHub:
    """The bus subscriptions of one tracker, shared by all its watchers.

    A watcher per job with a subscription of its own would cost a compiled pattern,
    an index update and a match per event each; the hub matches every job event once
    and hands its version to the inboxes registered for that job id. It subscribes to
    the jobs' ends on the first watcher, for the waits (a :meth:`JobTracker.wait`
    needs only the end), and to every job event on the first :meth:`JobTracker.watch`,
    for the watches (one subscription, so each hears the changes and the end in order).
    """

    def __init__(self, tracker: JobTracker) -> None:
        self._tracker = tracker
        self._inboxes: dict[str, set[_Inbox]] = {}
        self._lock = anyio.Lock()
        self._started = False  # listening to the ends
        self._every = False  # listening to every job event too (for the watches)
        self._ended: BaseException | None = None
        # Jobs this tracker created while the hub listened, whose end the hub has not
        # seen yet: a ``wait`` on one can start from the created job instead of
        # reading it back (every later change reaches its inbox).
        self._fresh: dict[str, Job] = {}

    @property
    def listening(self) -> bool:
        """Whether the hub hears every job's end published from now on."""
        return self._started and self._ended is None

    def remember(self, job: Job) -> None:
        """Hold ``job`` as just created (call only if :attr:`listening` before it was)."""
        fresh = self._fresh
        if len(fresh) >= HUB_BUFFER:
            del fresh[next(iter(fresh))]  # the oldest: its wait reads the store
        fresh[job.id] = job

    def take_fresh(self, job_id: str) -> Job | None:
        """Return (and forget) the created job if no end of it was announced since."""
        return self._fresh.pop(job_id, None)

    async def register(self, job_id: str, *, finals_only: bool = False) -> _Inbox:
        """Return an inbox of ``job_id``'s announcements from now on.

        ``finals_only``: only those of a final state (and missed events), for a
        ``wait``: the changes before the end would only wake it up.
        """
        if not self._started:
            await self._listen(every=False)
        if not finals_only and not self._every:
            await self._listen(every=True)
        inbox = _Inbox(finals_only=finals_only)
        if self._ended is not None:
            inbox.put(self._ended)
        self._inboxes.setdefault(job_id, set()).add(inbox)
        return inbox

    async def _listen(self, *, every: bool) -> None:
        # Two subscriptions: the ends, for the waits, and every job event, for the
        # watches (opened on the first). A tracker that only ``wait``s hears the ends
        # alone: on Redis the other events are not even decoded (their types screen
        # them out of the bus's reader).
        async with self._lock:
            if self._every if every else self._started:
                return
            pattern = _EVERY_PATTERN if every else _FINALS_PATTERN
            sub = self._tracker.bus.subscribe(pattern, buffer=HUB_BUFFER)
            await sub.__aenter__()
            self._tracker._spawn(self._run, sub, every)
            if every:
                self._every = True
            else:
                self._started = True

    def unregister(self, job_id: str, inbox: _Inbox) -> None:
        """Stop sending ``job_id``'s announcements to ``inbox``."""
        held = self._inboxes.get(job_id)
        if held is not None:
            held.discard(inbox)
            if not held:
                del self._inboxes[job_id]

    def _end(self, error: SubscriptionClosed) -> None:
        self._ended = error
        self._fresh.clear()
        for held in self._inboxes.values():
            for inbox in held:
                inbox.put(error)

    async def _run(self, sub: Subscription, every: bool) -> None:
        # ``every``: the subscription to every job event, which serves the watchers that
        # follow each change (in log order, the end included); otherwise the one to the
        # ends, which serves the waits (and keeps ``fresh``).
        inboxes, fresh = self._inboxes, self._fresh
        try:
            while True:
                try:
                    event = await sub.receive()
                except EventsMissed:
                    if not every:
                        fresh.clear()  # an end may be among the missed ones
                    for held in inboxes.values():
                        for inbox in held:
                            if inbox.finals_only is not every:
                                inbox.put(None)
                    continue
                subject = event.subject or ""
                final = event.type in _FINAL_TYPES
                if final and fresh and not every:
                    fresh.pop(subject, None)
                watching = inboxes.get(subject)
                if watching:
                    note = (_version(event), final, event.data if final else None)
                    for inbox in watching:
                        if inbox.finals_only is not every:
                            inbox.put(note)
        except SubscriptionClosed as exc:  # the bus closed: every watcher ends with it
            self._end(exc)
        except BaseException:  # the tracker is leaving (cancelled), or a bug
            self._end(SubscriptionClosed("the tracker stopped watching jobs", position=None))
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await sub.aclose()


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

    def __init__(
        self, tracker: JobTracker, job_id: str, *, owner: str | None, finals_only: bool = False
    ) -> None:
        self._tracker = tracker
        self._job_id = job_id
        self._owner = owner
        # Only the first version and a final one are wanted (``wait``): the store is
        # read again only when a final state is announced (or events were missed, or
        # at the resync), not on every change.
        self._finals_only = finals_only
        self._inbox: _Inbox | None = None
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
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            self._tracker._hub.unregister(self._job_id, inbox)
            inbox.put(SubscriptionClosed("the watch was closed", position=None))  # wake it
        await anyio.lowlevel.checkpoint()

    def __aiter__(self) -> JobWatch:
        return self

    async def __anext__(self) -> Job:
        if self._done:
            raise StopAsyncIteration
        try:
            if self._last is None:
                return await self._emit(await self._first())
            while True:
                note = await self._signal()
                if note is not None:
                    announced, final, view = note
                    if announced is not None and announced <= self._last.version:
                        continue  # a change already seen (the store was read after it)
                    if self._finals_only and not final:
                        continue  # not the end yet: no need to read it
                    if final:
                        # The end, as its event tells it: no read. The job's events are
                        # its store's (the outbox writes both at once; without it the
                        # change is stored before its event is published).
                        ended = final_job(view, self._last)
                        if ended is not None and self._owner in (None, ended.owner):
                            return await self._emit(ended)
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
        # Register first, then read: a change between the two is in the inbox.
        hub = self._tracker._hub
        self._inbox = await hub.register(self._job_id, finals_only=self._finals_only)
        if self._finals_only:
            # Created here while the hub listened, and not ended before the
            # registration (the hub forgets it on its final event): its end will be
            # in the inbox, so the created job stands for the first read.
            fresh = hub.take_fresh(self._job_id)
            if fresh is not None and self._owner in (None, fresh.owner):
                return fresh
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

    async def _signal(self) -> _Announced | None:
        """Wait for the job's next announcement or ``RESYNC`` seconds (``None``)."""
        inbox = self._inbox
        if inbox is None:  # pragma: no cover - closed by another task during a read
            raise StopAsyncIteration
        if inbox.ready():  # already here: no timer (and no task group) needed
            return await inbox.get()
        clock = self._tracker.clock
        if type(clock) is SystemClock:  # its sleep is anyio's: a deadline, not a task
            with anyio.move_on_after(RESYNC):
                return await inbox.get()  # None: events were missed, read the store
            return None
        got: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def resync() -> None:
                await clock.sleep(RESYNC)
                tg.cancel_scope.cancel()

            tg.start_soon(resync)
            try:
                got.append(await inbox.get())  # None: events were missed, read the store
            except Exception as exc:  # re-raised below, out of the group and unwrapped
                got.append(exc)
            tg.cancel_scope.cancel()
        if got and isinstance(got[0], Exception):
            raise got[0]
        return got[0] if got else None
