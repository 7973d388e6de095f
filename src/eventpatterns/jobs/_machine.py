"""Every change to a job, as one pure function: ``transition(job, command, now) -> Job``.

Sans-I/O: no clock is read and nothing awaits; the caller passes ``now``, and a store
persists the returned job with a compare-and-swap on the version it read, so that two
workers can never both complete a job (the second write finds a newer version). The
tracker, the workers and the HTTP routes all change jobs only through this function.

Commands name who asks: the worker-scoped ones (:class:`Heartbeat`,
:class:`ReportProgress`, :class:`CompleteStep`, :class:`Succeed`, :class:`Fail`,
:class:`Stop`) are accepted only from the worker holding the current attempt, and only
while its lease lasts; a worker whose lease ran out has lost the job to
:class:`ExpireLease`, whatever it does next.

Two rules hold whatever the command:

* a job past its ``deadline`` fails (``error="deadline exceeded"``) on any command but
  :class:`Cancel`, so work never continues beyond it;
* a final job (succeeded, failed, cancelled) takes no command.

Retries reuse the bus consumer's decision (:func:`eventpatterns.bus.decide`) with the
job's ``max_attempts``; the jitter is seeded from the job id and attempt, so the same
job and command always give the same result.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Any

from ..bus import Backoff, Retry, RetryAfter, decide
from ..errors import ConfigurationError, InvalidJobTransition
from ._model import Job, JobState, Progress, ResultRef, evolve

__all__ = [
    "DEADLINE_EXCEEDED",
    "Cancel",
    "Command",
    "CompleteStep",
    "DeadlinePassed",
    "Dispatch",
    "ExpireLease",
    "Fail",
    "Heartbeat",
    "ReportProgress",
    "Start",
    "Stop",
    "Succeed",
    "transition",
]

#: The error a job gets when its deadline passes.
DEADLINE_EXCEEDED = "deadline exceeded"

PENDING, RUNNING, RETRYING, SUCCEEDED, FAILED, CANCELLED, _UNKNOWN = JobState


def _check_lease(lease: float) -> None:
    if isinstance(lease, bool) or not isinstance(lease, int | float):
        raise ConfigurationError(f"lease must be a number of seconds, got {lease!r}")
    if not (math.isfinite(lease) and lease > 0):
        raise ConfigurationError(f"lease must be a positive number of seconds, got {lease!r}")


@dataclass(frozen=True, slots=True)
class Start:
    """A worker takes the job for one attempt, holding it for ``lease`` seconds."""

    worker: str
    lease: float

    def __post_init__(self) -> None:
        _check_lease(self.lease)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The worker still runs the job: extend its lease to ``now + lease``."""

    worker: str
    lease: float

    def __post_init__(self) -> None:
        _check_lease(self.lease)


@dataclass(frozen=True, slots=True)
class ReportProgress:
    """The worker reports how far it is."""

    worker: str
    progress: Progress


@dataclass(frozen=True, slots=True)
class CompleteStep:
    """The worker finished durable step number ``step`` (0-based) with ``output``.

    Steps are recorded in order: ``step`` must be the job's next step, so a retried
    attempt resumes at the first step not recorded, never redoes a recorded one.
    """

    worker: str
    step: int
    output: Any = None


@dataclass(frozen=True, slots=True)
class Succeed:
    """The worker finished: the result inline, or a reference to where it was put."""

    worker: str
    result: Any = None
    result_ref: ResultRef | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """The worker's attempt failed with ``error``.

    Attributes:
        retryable: ``False`` fails the job at once, whatever attempts are left.
        backoff: The delay before the next attempt.
    """

    worker: str
    error: str
    retryable: bool = True
    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True, slots=True)
class Stop:
    """The worker stopped because the job's cancellation was requested."""

    worker: str


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the job: at once if it is not running, else ask its worker to stop."""

    reason: str = "cancelled"


@dataclass(frozen=True, slots=True)
class ExpireLease:
    """The running attempt's lease ended with no heartbeat: its worker died or hung."""

    backoff: Backoff = field(default_factory=Backoff)


@dataclass(frozen=True, slots=True)
class Dispatch:
    """The job was handed to the workers (again); dispatch it anew if not started by then.

    On a pending job it stays pending with ``run_after = now + recheck``; on a retrying
    job whose next attempt is due it becomes pending again, likewise. The tracker's
    reaper sends it for the jobs :meth:`~eventpatterns.jobs.JobStore.due` returns, so
    that a dispatch lost on the way (the bus was down after the job was stored) or a
    retry coming due reaches a worker, never waits forever.
    """

    recheck: float

    def __post_init__(self) -> None:
        _check_lease(self.recheck)


@dataclass(frozen=True, slots=True)
class DeadlinePassed:
    """The job's deadline passed: fail it."""


#: Everything :func:`transition` accepts.
Command = (
    Start
    | Heartbeat
    | ReportProgress
    | CompleteStep
    | Succeed
    | Fail
    | Stop
    | Cancel
    | Dispatch
    | ExpireLease
    | DeadlinePassed
)

_WORKER_COMMANDS = (Heartbeat, ReportProgress, CompleteStep, Succeed, Fail, Stop)


def transition(job: Job, command: Command, now: float) -> Job:
    """Return the job after ``command`` at time ``now`` (one version higher).

    Args:
        job: The job as read from the store.
        command: What happened, or what is asked.
        now: The current time (Unix seconds) on the caller's clock.

    Returns:
        The new version of the job; store it with a compare-and-swap on
        ``job.version``.

    Raises:
        InvalidJobTransition: The job's state does not allow the command (the error
            names the job, its state and the command): a final job, a worker command
            from a worker that does not hold the job or whose lease ran out, a retry
            started before it is due, a step out of order.

    Example:
        >>> job = Job.new("j1", "render", owner="u1", input={}, now=0.0)
        >>> running = transition(job, Start("w1", lease=30), now=1.0)
        >>> running.state.value, running.attempts, running.version
        ('running', 1, 2)
        >>> transition(running, Succeed("w1", result={"url": "..."}), now=2.0).state.value
        'succeeded'
    """
    if job.state.final or job.state is _UNKNOWN:
        raise _refuse(job, command, f"job is {job.state.value}")
    if job.deadline is not None and now >= job.deadline and not isinstance(command, Cancel):
        return _end(job, now, FAILED, error=DEADLINE_EXCEEDED)
    if isinstance(command, DeadlinePassed):
        raise _refuse(job, command, "its deadline has not passed")
    if isinstance(command, Start):
        return _start(job, command, now)
    if isinstance(command, Cancel):
        return _cancel(job, command, now)
    if isinstance(command, ExpireLease):
        return _expire(job, command, now)
    if isinstance(command, Dispatch):
        return _dispatch(job, command, now)
    return _from_worker(job, command, now)


def _refuse(job: Job, command: Command, why: str) -> InvalidJobTransition:
    name = type(command).__name__
    return InvalidJobTransition(
        f"cannot {name} job {job.id!r}: {why}", job_id=job.id, state=job.state.value, command=name
    )


def _changed(job: Job, now: float, **changes: Any) -> Job:
    changes["version"] = job.version + 1
    changes["updated_at"] = now
    return evolve(job, changes)


def _end(job: Job, now: float, state: JobState, **changes: Any) -> Job:
    return _changed(
        job,
        now,
        state=state,
        finished_at=now,
        worker=None,
        lease_until=None,
        run_after=None,
        **changes,
    )


def _start(job: Job, command: Start, now: float) -> Job:
    if job.state is RUNNING:
        raise _refuse(job, command, f"it is already running on worker {job.worker!r}")
    if job.state is RETRYING and job.run_after is not None and now < job.run_after:
        raise _refuse(job, command, f"its next attempt is not due until {job.run_after}")
    return _changed(
        job,
        now,
        state=RUNNING,
        attempts=job.attempts + 1,
        worker=command.worker,
        lease_until=now + command.lease,
        started_at=job.started_at if job.started_at is not None else now,
        run_after=None,
    )


def _cancel(job: Job, command: Cancel, now: float) -> Job:
    if job.state is RUNNING:
        if job.cancel_requested:
            raise _refuse(job, command, "its cancellation was already requested")
        return _changed(job, now, cancel_requested=True, error=command.reason)
    return _end(job, now, CANCELLED, error=command.reason)


def _dispatch(job: Job, command: Dispatch, now: float) -> Job:
    if job.state is RUNNING:
        raise _refuse(job, command, f"it is running on worker {job.worker!r}")
    if job.state is RETRYING and job.run_after is not None and now < job.run_after:
        raise _refuse(job, command, f"its next attempt is not due until {job.run_after}")
    return _changed(job, now, state=PENDING, run_after=now + command.recheck)


def _retry_or_fail(job: Job, now: float, error: str, backoff: Backoff) -> Job:
    seed = random.Random(f"{job.id}:{job.attempts}")  # noqa: S311 - jitter, not security
    decision = decide(
        job.attempts, error, Retry(max_attempts=job.max_attempts, backoff=backoff), rng=seed
    )
    if not isinstance(decision, RetryAfter):  # GiveUp: the last attempt failed
        return _end(job, now, FAILED, error=error)
    return _changed(
        job,
        now,
        state=RETRYING,
        worker=None,
        lease_until=None,
        run_after=now + decision.delay,
        error=error,
    )


def _expire(job: Job, command: ExpireLease, now: float) -> Job:
    if job.state is not RUNNING:
        raise _refuse(job, command, "it is not running")
    if job.lease_until is not None and now < job.lease_until:
        raise _refuse(job, command, f"its lease lasts until {job.lease_until}")
    error = f"lease expired: worker {job.worker!r} stopped heartbeating"
    if job.cancel_requested:
        return _end(job, now, CANCELLED, error=job.error or "cancelled")
    return _retry_or_fail(job, now, error, command.backoff)


def _from_worker(job: Job, command: Command, now: float) -> Job:
    if not isinstance(command, _WORKER_COMMANDS):
        raise _refuse(job, command, "unknown command")  # pragma: no cover - typed away
    if job.state is not RUNNING:
        raise _refuse(job, command, f"it is {job.state.value}, not running")
    if command.worker != job.worker:
        raise _refuse(
            job, command, f"worker {command.worker!r} does not hold it ({job.worker!r} does)"
        )
    if job.lease_until is not None and now >= job.lease_until:
        raise _refuse(job, command, f"the lease of worker {command.worker!r} ran out")
    if isinstance(command, Heartbeat):
        return _changed(job, now, lease_until=now + command.lease)
    if isinstance(command, ReportProgress):
        return _changed(job, now, progress=command.progress)
    if isinstance(command, CompleteStep):
        if command.step != job.step:
            raise _refuse(job, command, f"step {command.step} is not the next step ({job.step})")
        return _changed(
            job, now, step=job.step + 1, step_outputs=(*job.step_outputs, command.output)
        )
    if isinstance(command, Succeed):
        done = dataclasses.replace(job.progress, fraction=1.0)
        return _end(
            job,
            now,
            SUCCEEDED,
            result=command.result,
            result_ref=command.result_ref,
            progress=done,
            error=None,
        )
    if isinstance(command, Stop):
        if not job.cancel_requested:
            raise _refuse(job, command, "its cancellation was not requested")
        return _end(job, now, CANCELLED, error=job.error or "cancelled")
    # Fail
    if job.cancel_requested:
        return _end(job, now, CANCELLED, error=job.error or "cancelled")
    if not command.retryable:
        return _end(job, now, FAILED, error=command.error)
    return _retry_or_fail(job, now, command.error, command.backoff)
