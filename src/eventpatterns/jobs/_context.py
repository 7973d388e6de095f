"""What a handler sees of its job (:class:`JobContext`), and the attempt behind it.

A worker runs each attempt of a job under a lease: :class:`Attempt` holds the job as
last written, extends the lease, reports progress and records steps through
:class:`~eventpatterns.jobs._ops.JobOps` (never around it), and notices when the job
stops being its own — the lease was lost, the deadline passed, or a cancellation was
requested — to cancel the handler's scope.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from ..errors import BackendUnavailable, InvalidJobTransition, JobNotFound
from ._kinds import JobKind
from ._machine import Command, Heartbeat, ReportProgress
from ._model import Job, JobState, Progress
from ._ops import JobOps

__all__ = ["Attempt", "FailJob", "JobContext", "Stopped"]

logger = logging.getLogger("eventpatterns.jobs")

InputT = TypeVar("InputT")

#: Seconds between tries of a final write (a result, a failure) the store refused.
PERSIST_RETRY = 0.1


class FailJob(Exception):
    """Raise it in a handler to fail the attempt with ``message`` (and nothing else).

    The job's ``error`` is ``message`` as given (other exceptions are recorded as
    ``"<type>: <message>"``).

    Args:
        message: Why the attempt failed, for the job's owner.
        retryable: ``True`` retries the job (while attempts are left, with the kind's
            backoff); by default it fails for good.

    Example:
        >>> FailJob("the video has no frames").retryable
        False
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Stopped(enum.Enum):
    """Why an attempt's handler was stopped from outside (a cancel scope cancelled)."""

    LOST = "lost"  # the job is no longer this attempt's: lease lost, job ended, deleted
    CANCELLED = "cancelled"  # its cancellation was requested: stop, then `Stop`


class Attempt:
    """One attempt of a job on this worker: the lease, and the handler's cancel scope.

    Every write goes through ``ops.apply`` on the job as last written here. A write
    refused because the job is no longer this worker's (``InvalidJobTransition``,
    ``JobNotFound``), or one that shows it ended or went to another worker, marks the
    attempt :attr:`Stopped.LOST` and cancels the handler; one that shows
    ``cancel_requested`` marks it :attr:`Stopped.CANCELLED` and cancels the handler.

    Args:
        ops: Where jobs change.
        kind: The job's kind (its lease and backoff).
        job: The job as this attempt's ``Start`` wrote it.
        worker_id: This worker.
    """

    def __init__(self, ops: JobOps, kind: JobKind, job: Job, worker_id: str) -> None:
        self.ops = ops
        self.kind = kind
        self.started = job
        self.job = job
        self.worker_id = worker_id
        self.scope = anyio.CancelScope()
        #: The scope of this attempt's heartbeats, once they start (cancelled when it ends).
        self.beats: anyio.CancelScope | None = None
        self.stopped: Stopped | None = None
        self.finished = False

    @property
    def lease_ends(self) -> float:
        """When the lease ends on the tracker's clock (as this attempt last wrote it)."""
        job = self.job
        return job.lease_until if job.lease_until is not None else self.ops.clock.time()

    def stop(self, why: Stopped) -> None:
        """Cancel the handler's scope; a lost lease outranks a cancellation."""
        if self.stopped is not Stopped.LOST:
            self.stopped = why
        self.scope.cancel()

    def _seen(self, job: Job) -> None:
        if job.version > self.job.version:
            self.job = job
        if job.state is not JobState.RUNNING or job.worker != self.worker_id:
            self.stop(Stopped.LOST)
        elif job.cancel_requested and self.stopped is None:
            self.stop(Stopped.CANCELLED)

    async def write(self, command: Command, *, persist: bool = False) -> Job | None:
        """Apply a worker command that keeps the job running; ``None``: the job was lost.

        Args:
            command: ``Heartbeat``, ``ReportProgress`` or ``CompleteStep``.
            persist: Try again while the store cannot be reached, until the lease
                ends (then the attempt is lost: the reaper will retry the job).

        Raises:
            BackendUnavailable: The store could not be reached (nothing was written)
                and ``persist`` is false.
        """
        while self.stopped is not Stopped.LOST:
            try:
                job = await self.ops.apply(self.job.id, lambda _job: command, current=self.job)
            except (InvalidJobTransition, JobNotFound) as exc:
                if not self.finished:  # else: a heartbeat crossed the attempt's last write
                    logger.info(
                        "job %s: attempt %d lost: %s", self.job.id, self.started.attempts, exc
                    )
                self.stop(Stopped.LOST)
                return None
            except BackendUnavailable as exc:
                if not persist:
                    raise
                if self.ops.clock.time() >= self.lease_ends:
                    logger.warning("job %s: lease ran out, store unreachable: %s", self.job.id, exc)
                    self.stop(Stopped.LOST)
                    return None
                await anyio.sleep(PERSIST_RETRY)
                continue
            if job is not None:  # pragma: no branch - the decision is never None
                self._seen(job)
            return job
        return None

    async def finish(self, command: Command) -> Job | None:
        """Apply the attempt's last command (``Succeed``, ``Fail``, ``Stop``); return the job.

        Written together with the other attempts ending in the same turn of the event
        loop (one round trip for them all on Redis). A store that cannot be reached is
        tried again until the lease ends (then the lease expires and the reaper retries
        the job). ``None``: the job was no longer this attempt's, or the store stayed
        unreachable.
        """
        while self.stopped is not Stopped.LOST:
            try:
                job = await self.ops.apply(
                    self.job.id, lambda _job: command, current=self.job, coalesce=True
                )
            except (InvalidJobTransition, JobNotFound) as exc:
                logger.info("job %s: %s refused: %s", self.job.id, type(command).__name__, exc)
                break
            except BackendUnavailable as exc:
                if self.ops.clock.time() >= self.lease_ends:
                    logger.warning("job %s: left to its lease: %s", self.job.id, exc)
                    break
                await anyio.sleep(PERSIST_RETRY)
                continue
            self.finished = True
            return job
        self.stop(Stopped.LOST)
        return None

    async def heartbeat(self) -> None:
        """Extend the lease (the store unreachable: logged, the lease runs on)."""
        try:
            await self.write(Heartbeat(self.worker_id, self.kind.lease))
        except BackendUnavailable as exc:
            logger.warning("job %s: heartbeat failed: %s", self.job.id, exc)
            if self.ops.clock.time() >= self.lease_ends:
                self.stop(Stopped.LOST)

    async def progress(self, progress: Progress) -> None:
        """Report progress (the store unreachable: logged and skipped)."""
        try:
            await self.write(ReportProgress(self.worker_id, progress))
        except BackendUnavailable as exc:
            logger.warning("job %s: progress not recorded: %s", self.job.id, exc)

    def next_wait(self) -> float:
        """Seconds until the next heartbeat: lease/3, or less to wake at the deadline."""
        wait = self.kind.lease / 3
        deadline = self.job.deadline
        if deadline is not None:
            now = self.ops.clock.time()
            if deadline > now:
                wait = min(wait, deadline - now)
        return wait

    async def keep_alive(self, *, slept: bool = False) -> None:
        """Heartbeat every lease/3 until cancelled; stop the handler at the deadline.

        A heartbeat past the job's deadline fails the job (the state machine's rule),
        which this attempt then sees as lost; the loop wakes at the deadline for that.

        Args:
            slept: The first wait (:meth:`next_wait` from the start) is over already:
                heartbeat at once (the worker pool waits it out for every attempt
                in one task, so that an attempt ending sooner costs no task).
        """
        while self.stopped is not Stopped.LOST:
            if slept:
                slept = False
            else:
                await anyio.sleep(self.next_wait())
            await self.heartbeat()


class JobContext(Generic[InputT]):
    """What a handler gets: the job, its validated input, and its lease.

    Annotate the handler's first parameter ``JobContext[Model]``: the job's input is
    validated as ``Model`` (a pydantic model, or any type pydantic validates) before
    the handler runs, and ``ctx.input`` is typed as ``Model``.

    Attributes:
        job: The job as this attempt's start wrote it.
        input: The input, validated by the kind's input type (else the JSON value).
        attempt: This attempt's number (1 for the first).
        worker_id: The worker running it.

    Example:
        ```python
        from pydantic import BaseModel

        from eventpatterns.jobs import JobContext


        class Render(BaseModel):
            frames: int


        async def render(ctx: JobContext[Render]) -> dict[str, int]:
            for done in range(ctx.input.frames):
                await ctx.progress((done + 1) / ctx.input.frames, f"frame {done + 1}")
            return {"frames": ctx.input.frames}
        ```
    """

    def __init__(self, attempt: Attempt, input: InputT) -> None:  # noqa: A002 - the job's input
        self._attempt = attempt
        self.job: Job = attempt.started
        self.input: InputT = input
        self.attempt: int = attempt.started.attempts
        self.worker_id: str = attempt.worker_id

    @property
    def cancelled(self) -> bool:
        """Tell whether the job's cancellation was requested (the handler is stopping)."""
        return self._attempt.stopped is Stopped.CANCELLED

    async def progress(
        self, fraction: float, message: str = "", detail: Mapping[str, Any] | None = None
    ) -> None:
        """Record how far the job is and announce it (``eventpatterns.job.progress``).

        Progress is advisory: when the store cannot be reached the report is logged
        and skipped (the next one supersedes it).

        Args:
            fraction: Done so far, from 0.0 to 1.0.
            message: A short note for the owner (at most 1,024 characters kept).
            detail: Optional JSON-serialisable detail.

        Raises:
            ConfigurationError: ``fraction`` is not within [0, 1].
            ArgumentTypeError: ``message`` is not a string or ``detail`` not a mapping.
        """
        await self._attempt.progress(Progress(fraction, message, detail))
        await anyio.lowlevel.checkpoint()  # a lost lease cancels the handler here

    async def heartbeat(self) -> None:
        """Extend the lease now (the worker also does every lease/3 on its own).

        Call it before a long stretch of work that cannot be interrupted between
        awaits. A lost lease or a requested cancellation cancels the handler here.
        """
        await self._attempt.heartbeat()
        await anyio.lowlevel.checkpoint()
