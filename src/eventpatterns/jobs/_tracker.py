"""The :class:`JobTracker` façade: submit, read, list, cancel, wait for and watch jobs."""

from __future__ import annotations

import json
import os
import socket
import sys
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..bus import EventBus, check_group_name
from ..core import Clock, SystemClock, is_json_content_type, new_id
from ..errors import (
    ArgumentTypeError,
    BackendUnavailable,
    ConfigurationError,
    InvalidState,
    JobNotFound,
    JobTimeout,
    LimitExceeded,
    UnknownJobKind,
)
from ._blobs import BlobStore
from ._codec import encode_json
from ._machine import Cancel, Command
from ._model import Job, JobState
from ._ops import DEFAULT_SOURCE, JobOps
from ._reaper import Reaper, check_seconds
from ._registry import KindRegistry
from ._store import JobPage, JobStore
from ._watch import JobWatch, WatchHub

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["JobTracker"]

#: Longest owner or idempotency key, in characters.
MAX_TOKEN = 255
#: Longest cancellation reason kept (a longer one is cut).
MAX_REASON = 1000


def check_token(name: str, value: object) -> str:
    """Return ``value`` if it is 1 to 255 printable ASCII characters, else raise.

    Raises:
        ArgumentTypeError: It is not a string.
        ConfigurationError: It is empty, too long, or holds other characters.
    """
    if not isinstance(value, str):
        raise ArgumentTypeError("JobTracker", name, expected="a str", got=value)
    if not 1 <= len(value) <= MAX_TOKEN or not (value.isascii() and value.isprintable()):
        raise ConfigurationError(
            f"{name} must be 1 to {MAX_TOKEN} printable ASCII characters, got {value[:80]!r}"
        )
    return value


async def _exit_group(
    tg: TaskGroup,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> bool | None:
    """Cancel and leave ``tg``; one error comes out as itself (as EventBus does)."""
    tg.cancel_scope.cancel()
    try:
        return await tg.__aexit__(exc_type, exc, tb)
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            only = group.exceptions[0]
            if only is exc:
                return False
            raise only from None
        raise


class JobTracker(KindRegistry):
    """Submit, track and run long-running jobs over a bus and a job store.

    An async context manager, entered inside the bus's ``async with``: it owns a task
    group running the reaper (see :mod:`eventpatterns.jobs._reaper`) and, when this
    process registered workers, the worker pool. Register kinds (:meth:`declare`,
    :meth:`worker`, :meth:`durable`) before entering; use it (:meth:`submit`,
    :meth:`get`, :meth:`watch`...) inside.

    Every change to a job is an event on the bus (``eventpatterns.job.<what>``, subject
    the job id, the owner in the ``jobowner`` attribute): the ``pending`` event is the
    workers' dispatch, and the real-time gateway delivers the rest to the owner.

    Args:
        bus: An entered :class:`~eventpatterns.EventBus`.
        store: Where job records live.
        blobs: Where large results go (and are read from), or ``None``.
        clock: The clock every job time and the reaper's interval are read from.
        source: The ``source`` of job events.
        worker_id: This process's worker name (default: host, pid and a random tag).
        group_prefix: Workers consume in groups ``"<group_prefix>.<kind>"``.
        reaper_interval: Seconds between the reaper's sweeps.
        dispatch_recheck: Seconds after which a pending job no worker started is
            dispatched again (the reaper re-announces it).
        inline_limit: Largest result (JSON-encoded bytes) kept in the job's record;
            larger ones go to ``blobs``.
        max_input: Largest input (JSON-encoded bytes) :meth:`submit` accepts.
        run_workers: Run this process's workers (``False``: submit and track only).
        run_reaper: Run the reaper in this process.

    Raises:
        ConfigurationError: A bad option.

    Example:
        ```python
        import anyio
        from eventpatterns import EventBus
        from eventpatterns.backends.memory import MemoryJobStore
        from eventpatterns.jobs import JobTracker

        async def main() -> None:
            async with EventBus.from_url("memory://") as bus:
                tracker = JobTracker(bus, MemoryJobStore())
                tracker.declare("report")  # run by workers elsewhere
                async with tracker:
                    job = await tracker.submit("report", {"month": 5}, owner="alice")
                    print(job.state.value)  # pending

        anyio.run(main)
        ```
    """

    def __init__(
        self,
        bus: EventBus,
        store: JobStore,
        *,
        blobs: BlobStore | None = None,
        clock: Clock | None = None,
        source: str = DEFAULT_SOURCE,
        worker_id: str | None = None,
        group_prefix: str = "jobs",
        reaper_interval: float = 1.0,
        dispatch_recheck: float = 60.0,
        inline_limit: int = 64 * 1024,
        max_input: int = 256 * 1024,
        run_workers: bool = True,
        run_reaper: bool = True,
    ) -> None:
        for name, size in (("inline_limit", inline_limit), ("max_input", max_input)):
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise ConfigurationError(f"{name} must be an int >= 0, got {size!r}")
        if worker_id is None:
            worker_id = f"{socket.gethostname()}-{os.getpid()}-{new_id()[-8:]}"
        check_token("worker_id", worker_id)
        check_group_name(group_prefix)  # the workers' groups are "<group_prefix>.<kind>"
        self.bus = bus
        self.store = store
        self.blobs = blobs
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.worker_id = worker_id
        self.group_prefix = group_prefix
        self.inline_limit = inline_limit
        self.max_input = max_input
        self.run_workers = run_workers
        self.run_reaper = run_reaper
        self.dispatch_recheck = check_seconds("dispatch_recheck", dispatch_recheck)
        super().__init__()
        self.ops = JobOps(store, bus, self.clock, source=source)
        self.reaper = Reaper(
            self.ops,
            self._kinds,
            interval=reaper_interval,
            dispatch_recheck=self.dispatch_recheck,
            blobs=blobs,
        )
        self._tg: TaskGroup | None = None
        self._hub = WatchHub(self)

    def _spawn(self, function: Any, *args: Any) -> None:
        """Run ``function(*args)`` in the tracker's task group (it stops with it)."""
        self._running()
        assert self._tg is not None  # noqa: S101 - running() checked it
        self._tg.start_soon(function, *args)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the tracker is entered and not closed (what a health check reports)."""
        return self._state == "running"

    async def __aenter__(self) -> JobTracker:
        if self._state != "new":
            raise InvalidState("a JobTracker can be entered only once", state=self._state)
        self.bus._running()  # a bus not entered (or closed) says so now, not in a task
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg, self._state = tg, "running"
        try:
            # Every kind's consumer group exists from now on, so a job submitted before
            # any of its workers started is delivered when one does (not re-dispatched
            # by the reaper a dispatch_recheck later).
            from ._worker import group_name

            for kind in self._kinds:
                await self.bus.create_group(group_name(self.group_prefix, kind), start="latest")
            if self.run_reaper:
                await tg.start(self.reaper.run)
            runnable = {name: k for name, k in self._kinds.items() if k.runnable}
            if self.run_workers and runnable:
                from ._worker import WorkerPool

                pool = WorkerPool(
                    self.ops, runnable, blobs=self.blobs, worker_id=self.worker_id,
                    inline_limit=self.inline_limit, group_prefix=self.group_prefix,
                )  # fmt: skip
                await tg.start(pool.run)
        except BaseException as exc:
            self._state, self._tg = "closed", None
            await _exit_group(tg, type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg, self._state = self._tg, None, "closed"
        if tg is None:
            return None
        return await _exit_group(tg, exc_type, exc, tb)  # stops the reaper and the workers

    def _running(self) -> None:
        if self._state != "running":
            raise InvalidState(
                f"use the tracker inside `async with tracker:` (it is {self._state})",
                state=self._state,
            )

    # -- submitting -----------------------------------------------------------------------

    async def submit(
        self,
        kind: str,
        input: Any,  # noqa: A002 - the job's input, as the issue names it
        *,
        owner: str,
        idempotency_key: str | None = None,
        deadline: float | None = None,
        ttl: float | None = None,
        max_attempts: int | None = None,
    ) -> Job:
        """Submit a job and return it (pending); its ``pending`` event dispatches it.

        Everything is checked before anything is written: a refused submit leaves no
        job and no event. The same ``idempotency_key`` from the same owner returns the
        first job (while its record lives), also under concurrent submits.

        Args:
            kind: A kind this tracker knows (:meth:`declare`, :meth:`worker`,
                :meth:`durable`).
            input: The input; validated by the kind's input type, stored as JSON.
            owner: Who submits it (1 to 255 printable ASCII characters): reading,
                listing, cancelling and its events are scoped to it.
            idempotency_key: Optional key (1 to 255 printable ASCII characters).
            deadline: Seconds from now by which the job must end (overrides the kind's).
            ttl: Seconds its record is kept after it ends (overrides the kind's).
            max_attempts: Attempts allowed (overrides the kind's).

        Returns:
            The stored job (the earlier one, for a known idempotency key).

        Raises:
            UnknownJobKind: The kind is not known here.
            ConfigurationError: A bad owner, idempotency key, deadline, ttl or
                max_attempts.
            ArgumentTypeError: The input is not JSON-serialisable, or owner / key
                are not strings.
            InvalidJobInput: The input does not validate (the errors say where).
            LimitExceeded: The JSON-encoded input is over ``max_input`` bytes.
            InvalidState: The tracker is not entered.
            BackendUnavailable: The store could not be reached (nothing was written).
        """
        self._running()
        spec = self._kinds.get(kind) if isinstance(kind, str) else None
        if spec is None:
            raise UnknownJobKind(str(kind), known=tuple(sorted(self._kinds)))
        check_token("owner", owner)
        if idempotency_key is not None:
            check_token("idempotency_key", idempotency_key)
        data = spec.dump(spec.validate(input))
        try:
            size = len(encode_json(data))
        except (TypeError, ValueError) as exc:
            raise ArgumentTypeError(
                "submit", "input", expected="a JSON-serialisable value", got=exc
            ) from exc
        if size > self.max_input:
            raise LimitExceeded(
                f"job input of {size} bytes is over max_input={self.max_input}",
                limit="max_input",
                value=self.max_input,
            )
        seconds = deadline if deadline is not None else spec.deadline
        if seconds is not None:
            seconds = check_seconds("deadline", seconds)
        now = self.clock.time()
        job = Job.new(
            new_id(),
            spec.kind,
            owner=owner,
            input=data,
            now=now,
            max_attempts=spec.max_attempts if max_attempts is None else max_attempts,
            deadline=None if seconds is None else now + seconds,
            idempotency_key=idempotency_key,
            ttl=spec.ttl if ttl is None else ttl,
            run_after=now + self.dispatch_recheck,
        )
        listening = self._hub.listening  # before the job's event can be published
        stored = await self.ops.create(job)
        if listening and stored.id == job.id:
            self._hub.remember(stored)  # a wait() on it need not read it back
        return stored

    # -- reading --------------------------------------------------------------------------

    async def get(self, job_id: str, *, owner: str | None = None) -> Job | None:
        """Return the job, or ``None`` (never submitted, expired, or ``owner``'s not).

        Args:
            job_id: The job's id.
            owner: When given, another owner's job reads as ``None`` (not a refusal,
                so ids of other owners' jobs cannot be probed).

        Raises:
            ArgumentTypeError: ``job_id`` is not a string.
            InvalidState: The tracker is not entered.
            BackendUnavailable: The store could not be reached.
        """
        self._running()
        if not isinstance(job_id, str):
            raise ArgumentTypeError("JobTracker.get", "job_id", expected="a str", got=job_id)
        job = await self.store.get(job_id)
        if job is None or (owner is not None and job.owner != owner):
            return None
        return job

    async def state(self, job_id: str, *, owner: str | None = None) -> JobState:
        """Return the job's state: :attr:`JobState.UNKNOWN` when :meth:`get` finds none."""
        job = await self.get(job_id, owner=owner)
        return JobState.UNKNOWN if job is None else job.state

    async def list(
        self,
        owner: str,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Return a page of ``owner``'s jobs, newest first.

        Args:
            owner: Whose jobs.
            state: Only jobs in this state.
            limit: Most jobs on the page (1 to 1,000).
            cursor: The previous page's ``cursor``, for the next page.

        Raises:
            ConfigurationError: A bad owner, ``limit`` or cursor.
            ArgumentTypeError: ``owner`` is not a string, or ``state`` not a JobState.
            InvalidState: The tracker is not entered.
        """
        self._running()
        check_token("owner", owner)
        if state is not None and not isinstance(state, JobState):
            raise ArgumentTypeError("JobTracker.list", "state", expected="a JobState", got=state)
        return await self.store.list(owner, state=state, limit=limit, cursor=cursor)

    # -- cancelling and waiting -----------------------------------------------------------

    async def cancel(
        self, job_id: str, *, owner: str | None = None, reason: str = "cancelled"
    ) -> Job:
        """Cancel a job; return it as it now is.

        A pending or retrying job is cancelled at once; a running one gets
        ``cancel_requested`` (event ``cancelling``) and its worker stops it (event
        ``cancelled``), or it is cancelled when its lease ends; a final job is returned
        unchanged.

        Args:
            job_id: The job.
            owner: When given, another owner's job is not found.
            reason: Kept as the job's ``error`` (at most 1,000 characters).

        Raises:
            JobNotFound: No such job (or not ``owner``'s).
            ArgumentTypeError: ``reason`` is not a string.
            InvalidState: The tracker is not entered.
            BackendUnavailable: The store could not be reached.
        """
        if not isinstance(reason, str):
            raise ArgumentTypeError("JobTracker.cancel", "reason", expected="a str", got=reason)
        job = await self._found(job_id, owner)
        command = Cancel(reason[:MAX_REASON])

        def decide(current: Job) -> Command | None:
            return None if current.state.final or current.cancel_requested else command

        if decide(job) is None:
            return job
        changed = await self.ops.apply(job_id, decide, current=job)
        # None: someone else ended it (or asked) first; return it as they left it
        return changed if changed is not None else await self._found(job_id, owner)

    async def _found(self, job_id: str, owner: str | None) -> Job:
        job = await self.get(job_id, owner=owner)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def watch(self, job_id: str, *, owner: str | None = None) -> JobWatch:
        """Follow one job: its current state first, then each change, until it ends.

        Returns an async iterator of :class:`Job` (also an async context manager, to
        close it early): versions only go up, and changes in quick succession may
        arrive as one (the latest). It subscribes to the job's events before reading
        the store (no change is missed in between), reads the store again on each
        event and, as a fallback for a lost announcement, every few seconds of the
        tracker's clock; the final version comes from its event, with no read (the
        event carries the job's view; the rest of a final job is what it was). It ends
        after a final state.

        Raises (from iterating):
            JobNotFound: No such job (or not ``owner``'s).
            InvalidState: The tracker is not entered.
            BackendUnavailable: The first read of the store failed (later ones are
                retried).
        """
        self._running()
        return JobWatch(self, job_id, owner=owner)

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the spec's API (as asyncio.wait_for's)
        owner: str | None = None,
    ) -> Job:
        """Return the job once it is final (succeeded, failed, cancelled).

        Args:
            job_id: The job.
            timeout: Seconds (of real time) to wait at most.
            owner: When given, another owner's job is not found.

        Raises:
            JobTimeout: It did not end within ``timeout`` (the error names its state).
            JobNotFound: No such job (or not ``owner``'s).
            ConfigurationError: ``timeout`` is not a positive number.
            InvalidState: The tracker is not entered.
        """
        timeout = check_seconds("timeout", timeout)
        self._running()
        async with JobWatch(self, job_id, owner=owner, finals_only=True) as updates:
            with anyio.move_on_after(timeout):
                async for _ in updates:  # it ends after the final state
                    pass
            last = updates.last
        if last is not None and last.state.final:
            return last
        # Timed out: name the state as it is now (the watch read only the first
        # version and would have read a final one).
        try:
            state = await self.state(job_id, owner=owner)
        except BackendUnavailable:
            if last is None:
                raise
            state = last.state
        if state is JobState.UNKNOWN:
            if last is None:
                raise JobNotFound(job_id)
            state = last.state  # its record vanished meanwhile: the last one seen
        raise JobTimeout(job_id, state=state.value, timeout=timeout)

    # -- results --------------------------------------------------------------------------

    def _result_ref_of(self, job: Job) -> BlobStore | None:
        if not isinstance(job, Job):
            raise ArgumentTypeError("JobTracker.result", "job", expected="a Job", got=job)
        if job.state is not JobState.SUCCEEDED:
            raise InvalidState(
                f"job {job.id!r} is {job.state.value}: only a succeeded job has a result",
                state=job.state.value,
            )
        if job.result_ref is None:
            return None
        if self.blobs is None:
            raise ConfigurationError(
                f"job {job.id!r} has its result in a blob store: give the tracker blobs="
            )
        return self.blobs

    async def result(self, job: Job) -> Any:
        """Return a succeeded job's result: inline, or fetched from the blob store.

        A blob of a JSON media type is decoded; any other is returned as ``bytes``.

        Raises:
            InvalidState: The job did not succeed.
            ConfigurationError: The result is a blob and the tracker has no blob store.
            BlobNotFound: The blob expired or was deleted.
        """
        blobs = self._result_ref_of(job)
        if blobs is None or job.result_ref is None:
            return job.result
        blob = await blobs.get(job.result_ref.key)
        if is_json_content_type(blob.content_type):
            return json.loads(blob.data)
        return blob.data

    async def result_url(self, job: Job, *, expires_in: float = 3600) -> str | None:
        """Return a signed URL of a succeeded job's blob result (``None``: it is inline).

        Raises:
            InvalidState: The job did not succeed.
            ConfigurationError: No blob store, or the store cannot sign URLs.
            BlobNotFound: The blob expired or was deleted.
        """
        blobs = self._result_ref_of(job)
        if blobs is None or job.result_ref is None:
            return None
        ref = job.result_ref
        if ref.filename is None:  # a store written before filenames need not take one
            return await blobs.url(ref.key, expires_in=expires_in)
        return await blobs.url(ref.key, expires_in=expires_in, filename=ref.filename)
