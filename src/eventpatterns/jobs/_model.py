"""What a job is: its state, progress and record, as plain immutable values.

Nothing here does I/O. A :class:`Job` is the whole record a store persists; every
change to it goes through :func:`~eventpatterns.jobs.transition`, which returns a new
``Job`` whose :attr:`~Job.version` is one higher, so that a store can guard each write
with a compare-and-swap on the version it read.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArgumentTypeError, ConfigurationError

__all__ = ["Job", "JobState", "Progress", "ResultRef"]


class JobState(str, enum.Enum):
    """Where a job stands.

    ::

        PENDING ──start──> RUNNING ──succeed──> SUCCEEDED
           │                │  │ └──fail / lease lost, attempts left──> RETRYING ──start──> RUNNING
           │                │  └──fail / lease lost, last attempt────> FAILED
           │                └──cancel (acknowledged by the worker, or its lease lost)──> CANCELLED
           └──cancel──> CANCELLED        RETRYING ──cancel──> CANCELLED
                                         RETRYING ──due, dispatched──> PENDING
        any state but a final one ──deadline passed──> FAILED

    :attr:`UNKNOWN` is never the state of a stored job: it is the answer for an id that
    was never submitted (or whose record expired), so that a typo is not mistaken for a
    job still waiting to run — Celery's ``PENDING`` for unknown ids is the complaint this
    avoids.
    """

    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def final(self) -> bool:
        """Tell whether no transition leaves this state (succeeded, failed, cancelled)."""
        return self in _FINAL


_FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

#: Longest progress message kept; a longer one is cut (with an ellipsis).
MAX_MESSAGE = 1024


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a running job is.

    Attributes:
        fraction: Done so far, from 0.0 to 1.0.
        message: A short human-readable note (at most 1,024 characters kept).
        detail: Optional structured detail (JSON-serialisable), e.g. ``{"frames": 120}``.

    Raises:
        ConfigurationError: ``fraction`` is not a finite number within [0, 1].
        ArgumentTypeError: ``message`` is not a string or ``detail`` not a mapping.
    """

    fraction: float = 0.0
    message: str = ""
    detail: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        fraction = self.fraction
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ArgumentTypeError("Progress", "fraction", expected="a float", got=fraction)
        if not (math.isfinite(fraction) and 0.0 <= fraction <= 1.0):
            raise ConfigurationError(f"progress fraction must be within [0, 1], got {fraction!r}")
        object.__setattr__(self, "fraction", float(fraction))
        if not isinstance(self.message, str):
            raise ArgumentTypeError("Progress", "message", expected="a str", got=self.message)
        if len(self.message) > MAX_MESSAGE:
            object.__setattr__(self, "message", self.message[: MAX_MESSAGE - 1] + "…")
        if self.detail is not None and not isinstance(self.detail, Mapping):
            raise ArgumentTypeError("Progress", "detail", expected="a mapping", got=self.detail)


@dataclass(frozen=True, slots=True)
class ResultRef:
    """Where a large result was put: a key in a blob store, fetched by reference.

    Attributes:
        key: The blob's key in the tracker's blob store.
        size: Its size in bytes.
        content_type: Its media type.
        filename: The name to download it as (a :class:`~eventpatterns.jobs.FileResult`'s,
            sanitised), or ``None``.
    """

    key: str
    size: int
    content_type: str = "application/json"
    filename: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """One job's record: what was asked, by whom, and where it stands.

    Build the first version with :meth:`Job.new`; every later version comes from
    :func:`~eventpatterns.jobs.transition`.

    Attributes:
        id: The job's id.
        kind: The name of the work to run (a worker is registered per kind).
        owner: The principal that submitted it; listing and reading are scoped to it.
        input: The input, as submitted (JSON-serialisable).
        state: Where it stands.
        version: 1 for a new job, +1 on each transition (the store's compare-and-swap).
        attempts: Runs started so far.
        max_attempts: Runs allowed before a failing job is failed for good.
        progress: The last progress reported.
        created_at: When it was submitted (Unix seconds), ``updated_at`` its last change.
        started_at: When its first attempt started, ``finished_at`` when it ended.
        deadline: An absolute time (Unix seconds) after which it fails, or ``None``.
        run_after: In :attr:`JobState.RETRYING`, when the next attempt may start; in
            :attr:`JobState.PENDING`, when to dispatch it again if no worker started it.
        worker: The worker holding the current attempt (running), else ``None``.
        lease_until: When that worker's lease ends unless it heartbeats.
        cancel_requested: A cancel came while running; the worker should stop.
        result: The result inline (small, JSON-serialisable) when it succeeded.
        result_ref: Or where a large result was put (:class:`ResultRef`).
        error: Why the last attempt failed (or why the job failed / was cancelled).
        idempotency_key: The key the owner submitted it with, if any.
        ttl: Seconds the record is kept after it ends (``None``: the store's default).
        step: For a job of durable steps, the index of the next step to run.
        step_outputs: The outputs of the steps completed so far, in order.
    """

    id: str
    kind: str
    owner: str
    input: Any
    state: JobState
    version: int
    created_at: float
    updated_at: float
    attempts: int = 0
    max_attempts: int = 3
    progress: Progress = field(default_factory=Progress)
    started_at: float | None = None
    finished_at: float | None = None
    deadline: float | None = None
    run_after: float | None = None
    worker: str | None = None
    lease_until: float | None = None
    cancel_requested: bool = False
    result: Any = None
    result_ref: ResultRef | None = None
    error: str | None = None
    idempotency_key: str | None = None
    ttl: float | None = None
    step: int = 0
    step_outputs: tuple[Any, ...] = ()

    @classmethod
    def new(
        cls,
        job_id: str,
        kind: str,
        *,
        owner: str,
        input: Any,  # noqa: A002 - the job's input, as the issue names it
        now: float,
        max_attempts: int = 3,
        deadline: float | None = None,
        idempotency_key: str | None = None,
        ttl: float | None = None,
        run_after: float | None = None,
    ) -> Job:
        """Return a new pending job (version 1).

        ``run_after`` is when to dispatch it again if no worker has started it by then
        (see :class:`~eventpatterns.jobs.Dispatch`).

        Raises:
            ConfigurationError: An empty id, kind or owner, ``max_attempts`` below 1,
                or a ``deadline`` / ``ttl`` that is not a finite positive number.
        """
        for name, value in (("job id", job_id), ("kind", kind), ("owner", owner)):
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be an int >= 1, got {max_attempts!r}")
        for name, number in (("deadline", deadline), ("ttl", ttl)):
            if number is not None and not (
                isinstance(number, int | float) and math.isfinite(number) and number > 0
            ):
                raise ConfigurationError(f"{name} must be a positive number, got {number!r}")
        return cls(
            id=job_id,
            kind=kind,
            owner=owner,
            input=input,
            state=JobState.PENDING,
            version=1,
            created_at=now,
            updated_at=now,
            max_attempts=max_attempts,
            deadline=deadline,
            idempotency_key=idempotency_key,
            ttl=ttl,
            run_after=run_after,
        )


#: Job's fields in order, read at once, and their slots' setters.
_FIELDS = tuple(f.name for f in dataclasses.fields(Job))
_READ_ALL = operator.attrgetter(*_FIELDS)
_SETTERS = tuple(getattr(Job, name).__set__ for name in _FIELDS)
_SETTER = dict(zip(_FIELDS, _SETTERS, strict=True))


def evolve(job: Job, changes: dict[str, Any]) -> Job:
    """Return ``dataclasses.replace(job, **changes)``, for a third of its cost.

    Every transition builds a job; ``replace`` checks each field's kind and calls the
    frozen ``__init__``, which sets each field through ``object.__setattr__``. The
    values of a transition need no check (``Job`` has no ``__post_init__``), so the new
    job's slots are filled directly.
    """
    if type(job) is not Job:  # a subclass may hold more than Job's slots
        return dataclasses.replace(job, **changes)
    new = job_of(_READ_ALL(job))
    for name, value in changes.items():
        _SETTER[name](new, value)
    return new


_NEW = object.__new__


def job_of(values: tuple[Any, ...]) -> Job:
    """Return ``Job(*values)`` (every field, in order), for less than half its cost.

    For values already checked (a stored record's, read back): the slots are filled
    directly, as :func:`evolve` does.
    """
    new: Job = _NEW(Job)
    for setter, value in zip(_SETTERS, values, strict=True):
        setter(new, value)
    return new


#: The progress of a job that reported none (shared: progress is immutable).
NO_PROGRESS = Progress()
