"""The job store contract: persist job records, guarding every write by version.

A store only persists: what a job may become is decided by
:func:`~eventpatterns.jobs.transition`, and the store's part is to make that decision
stick exactly once. :meth:`JobStore.replace` writes a job only if the stored version is
the one the caller read (compare-and-swap), so two workers that both read version 7 and
both try to complete the job cannot both win: the second gets :class:`JobConflict`, reads
again and finds the job already succeeded.
"""

from __future__ import annotations

import builtins
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import ConfigurationError
from ._model import Job, JobState

__all__ = [
    "DEFAULT_TTL",
    "MAX_PAGE",
    "JobPage",
    "JobStore",
    "check_limit",
    "format_cursor",
    "parse_cursor",
]

#: Seconds a final job's record is kept when neither it nor the store sets a TTL.
DEFAULT_TTL = 7 * 24 * 3600.0

#: Most jobs one page of :meth:`JobStore.list` holds.
MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of an owner's jobs, newest first.

    Attributes:
        jobs: The jobs on this page.
        cursor: Pass it back as ``cursor=`` for the next page; ``None`` on the last page.
    """

    jobs: list[Job]
    cursor: str | None


@runtime_checkable
class JobStore(Protocol):
    """Where job records live: by id, by owner, by idempotency key and by lease.

    Guarantees every implementation gives (``eventpatterns.testing.JobStoreSuite``
    checks them):

    * :meth:`create` and :meth:`replace` are atomic: a reader sees the old job or the
      new one, and no write is lost or applied twice;
    * a final job (succeeded, failed, cancelled) is kept for its ``ttl`` (or the
      store's default) after ``finished_at``, then :meth:`get` answers ``None`` and it
      leaves every listing and its idempotency key is free again; :meth:`purge`
      reclaims the space;
    * the store reads time only to expire records, from the clock it was given (give it
      the tracker's); the other times it compares are the ones passed in as ``now``.

    Every method may raise :class:`~eventpatterns.errors.BackendUnavailable` when the
    store cannot be reached; nothing was written then, or the write is complete.

    The library's implementations are also :class:`~eventpatterns.core.AsyncResource`
    (``async with``, an idempotent ``aclose()``), on every backend.
    """

    async def create(self, job: Job) -> Job:
        """Store a new job and return the stored job.

        When ``job.idempotency_key`` is set and the same owner already has a live job
        with that key, nothing is written and that job is returned instead (compare
        ids to tell): one atomic step, so concurrent submits with one key make one job.

        Raises:
            JobConflict: A job with this id exists already, or ``job.version`` is not 1.
        """
        ...

    async def get(self, job_id: str) -> Job | None:
        """Return the job, or ``None`` if it was never stored or its record expired."""
        ...

    async def replace(self, job: Job, *, expected_version: int) -> Job:
        """Write ``job`` if the stored version is ``expected_version``; return it.

        Raises:
            JobConflict: The stored version is another one (someone else wrote first),
                or ``job.version`` is not ``expected_version + 1``.
            JobNotFound: No such job (never stored, or expired).
        """
        ...

    async def list(
        self,
        owner: str,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Return the owner's jobs, newest first (by ``created_at``, then id).

        Args:
            owner: Only this owner's jobs are listed.
            state: Only jobs in this state.
            limit: Most jobs on the page (1 to 1,000).
            cursor: Where the previous page ended.

        Raises:
            ConfigurationError: ``limit`` out of range, or a cursor this store did not
                hand out.
        """
        ...

    async def expired_leases(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return ids of running jobs whose lease ended at or before ``now``, oldest first."""
        ...

    async def due(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return ids of waiting jobs whose ``run_after`` is at or before ``now``, oldest first.

        Waiting jobs are the retrying ones (``run_after``: when the next attempt may
        start) and the pending ones that have a ``run_after`` (when the tracker should
        dispatch them again if no worker has started them by then).
        """
        ...

    async def overdue(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return ids of jobs not final whose deadline passed by ``now``, oldest first."""
        ...

    async def purge(self) -> int:
        """Delete the final jobs whose TTL ended; return how many."""
        ...


def check_limit(limit: object) -> None:
    """Refuse a page size that is not an int from 1 to :data:`MAX_PAGE` (for stores)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ConfigurationError(f"limit must be an int from 1 to {MAX_PAGE}, got {limit!r}")


def format_cursor(job: Job) -> str:
    """Return the cursor of the page that ends with ``job`` (``created_at/id``)."""
    return f"{job.created_at!r}/{job.id}"


def parse_cursor(cursor: object) -> tuple[float, str] | None:
    """Return ``(created_at, id)`` of a cursor :func:`format_cursor` made (``None``: none).

    Raises:
        ConfigurationError: Anything else (the message quotes 80 characters of it).
    """
    if cursor is None:
        return None
    if isinstance(cursor, str):
        created, sep, job_id = cursor.partition("/")
        try:
            stamp = float(created)
        except ValueError:
            stamp = math.nan
        if sep and job_id and math.isfinite(stamp):
            return stamp, job_id
    raise ConfigurationError(f"not a cursor this store handed out: {str(cursor)[:80]!r}")
