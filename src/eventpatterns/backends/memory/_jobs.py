"""The in-memory job store: dicts in one process, for development and tests."""

from __future__ import annotations

import builtins
import math
from typing import Any

from ...core import Clock, SystemClock
from ...errors import ConfigurationError, JobConflict, JobNotFound
from ...jobs._codec import job_to_json
from ...jobs._model import Job, JobState
from ...jobs._store import DEFAULT_TTL, JobPage, check_limit, format_cursor, parse_cursor
from ._url import Closeable, parse_memory_url

__all__ = ["MemoryJobStore"]

_WAITING = (JobState.PENDING, JobState.RETRYING)


class MemoryJobStore(Closeable):
    """A :class:`~eventpatterns.jobs.JobStore` in this process's memory.

    Every method runs without awaiting anything in between, so each is atomic within
    the event loop. Nothing survives the process.

    Args:
        default_ttl: Seconds a final job is kept when the job sets no ``ttl``.
        clock: Where expiry reads the time (pass the tracker's clock).
    """

    def __init__(self, *, default_ttl: float = DEFAULT_TTL, clock: Clock | None = None) -> None:
        if not (isinstance(default_ttl, int | float) and math.isfinite(default_ttl)) or (
            isinstance(default_ttl, bool) or default_ttl <= 0
        ):
            raise ConfigurationError(f"default_ttl must be a positive number, got {default_ttl!r}")
        self._ttl = float(default_ttl)
        self._clock = clock or SystemClock()
        self._jobs: dict[str, Job] = {}
        self._by_owner: dict[str, set[str]] = {}
        self._by_key: dict[tuple[str, str], str] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryJobStore:
        """Build from ``memory://?default_ttl=86400``, as the Redis and AWS stores from theirs.

        ``default_ttl`` is read; the other memory stores' options are skipped, so one URL
        serves every store. Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not a ``memory://`` URL, or a bad or unknown option.
        """
        return cls(**parse_memory_url(url, "MemoryJobStore", options))

    # -- expiry --------------------------------------------------------------------------

    def _expires_at(self, job: Job) -> float | None:
        if job.finished_at is None:
            return None
        return job.finished_at + (job.ttl if job.ttl is not None else self._ttl)

    def _live(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        expires = self._expires_at(job)
        if expires is not None and self._clock.time() >= expires:
            self._drop(job)
            return None
        return job

    def _drop(self, job: Job) -> None:
        del self._jobs[job.id]
        owned = self._by_owner.get(job.owner)
        if owned is not None:
            owned.discard(job.id)
            if not owned:
                del self._by_owner[job.owner]
        if job.idempotency_key is not None:
            key = (job.owner, job.idempotency_key)
            if self._by_key.get(key) == job.id:
                del self._by_key[key]

    # -- the contract --------------------------------------------------------------------

    async def create(self, job: Job) -> Job:
        """Store a new job, or return the owner's live job with the same idempotency key."""
        if job.version != 1:
            raise JobConflict(job.id, expected=None, actual=job.version)
        job_to_json(job)  # what another store could not keep, this one refuses too
        if job.idempotency_key is not None:
            existing_id = self._by_key.get((job.owner, job.idempotency_key))
            if existing_id is not None:
                existing = self._live(existing_id)
                if existing is not None:
                    return existing
        if self._live(job.id) is not None:
            raise JobConflict(job.id, expected=None, actual=self._jobs[job.id].version)
        self._jobs[job.id] = job
        self._by_owner.setdefault(job.owner, set()).add(job.id)
        if job.idempotency_key is not None:
            self._by_key[(job.owner, job.idempotency_key)] = job.id
        return job

    async def get(self, job_id: str) -> Job | None:
        """Return the job, or ``None`` if never stored or expired."""
        return self._live(job_id)

    async def replace(self, job: Job, *, expected_version: int) -> Job:
        """Write ``job`` if the stored version is ``expected_version``."""
        stored = self._live(job.id)
        if stored is None:
            raise JobNotFound(job.id)
        if stored.version != expected_version or job.version != expected_version + 1:
            raise JobConflict(job.id, expected=expected_version, actual=stored.version)
        if (job.owner, job.idempotency_key) != (stored.owner, stored.idempotency_key):
            raise ConfigurationError(f"job {job.id!r}: owner and idempotency key never change")
        job_to_json(job)
        self._jobs[job.id] = job
        return job

    async def list(
        self,
        owner: str,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Return the owner's jobs, newest first, ``limit`` at a time."""
        check_limit(limit)
        after = parse_cursor(cursor)
        jobs = [self._live(i) for i in list(self._by_owner.get(owner, ()))]
        ordered = sorted(
            (j for j in jobs if j is not None and (state is None or j.state is state)),
            key=lambda j: (j.created_at, j.id),
            reverse=True,
        )
        if after is not None:
            ordered = [j for j in ordered if (j.created_at, j.id) < after]
        page = ordered[:limit]
        more = len(ordered) > limit
        return JobPage(page, format_cursor(page[-1]) if more else None)

    async def expired_leases(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return running jobs whose lease ended by ``now``, oldest lease first."""
        found = [
            (j.lease_until, j.id)
            for j in self._jobs.values()
            if j.state is JobState.RUNNING and j.lease_until is not None and j.lease_until <= now
        ]
        return [i for _, i in sorted(found)[:limit]]

    async def due(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return waiting jobs (pending, retrying) whose ``run_after`` is by ``now``."""
        found = [
            (j.run_after, j.id)
            for j in self._jobs.values()
            if j.state in _WAITING and j.run_after is not None and j.run_after <= now
        ]
        return [i for _, i in sorted(found)[:limit]]

    async def overdue(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return jobs not final whose deadline passed by ``now``, oldest first."""
        found = [
            (j.deadline, j.id)
            for j in self._jobs.values()
            if not j.state.final and j.deadline is not None and j.deadline <= now
        ]
        return [i for _, i in sorted(found)[:limit]]

    async def purge(self) -> int:
        """Delete the final jobs whose TTL ended; return how many."""
        now = self._clock.time()
        gone = [
            j for j in self._jobs.values() if (e := self._expires_at(j)) is not None and now >= e
        ]
        for job in gone:
            self._drop(job)
        return len(gone)
