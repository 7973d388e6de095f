"""Every change to a job is an event on the bus: what it is called and what it carries.

The real-time gateway delivers these to the job's owner (scope a subscription on the
``jobowner`` attribute, e.g. ``owner_only("jobowner")``), workers receive the
``pending`` ones as their dispatch, and :meth:`JobTracker.watch` follows one job by its
``subject``. An event's id is ``<job id>.<version>``, so publishing the same change
twice is deduplicated by the bus.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from ..core import Event, trusted_event
from ..errors import ConfigurationError
from ._codec import job_from_record
from ._model import Job, JobState

__all__ = [
    "JOB_EVENT_PREFIX",
    "KIND_ATTRIBUTE",
    "OWNER_ATTRIBUTE",
    "dispatch_pattern",
    "event_type",
    "job_event",
    "job_pattern",
    "job_view",
]

#: Every job event's ``type`` starts with it: ``eventpatterns.job.<what>``, where
#: ``<what>`` is a state (``pending`` ... ``cancelled``), ``progress``, ``step`` (a
#: durable step completed) or ``cancelling`` (a cancel reached a running job).
JOB_EVENT_PREFIX = "eventpatterns.job."

#: The CloudEvents extension attribute holding the job's owner (for authorization).
OWNER_ATTRIBUTE = "jobowner"

#: The CloudEvents extension attribute holding the job's kind (workers filter on it).
KIND_ATTRIBUTE = "jobkind"

PENDING = JOB_EVENT_PREFIX + "pending"
PROGRESS = JOB_EVENT_PREFIX + "progress"
STEP = JOB_EVENT_PREFIX + "step"
CANCELLING = JOB_EVENT_PREFIX + "cancelling"


def event_type(before: Job | None, after: Job) -> str | None:
    """Return the ``type`` of the event announcing ``before -> after`` (``None``: none).

    A heartbeat (only the lease moved) announces nothing.
    """
    if before is None or after.state is JobState.PENDING:
        return PENDING  # submitted, or dispatched again
    if after.state is not before.state:
        return JOB_EVENT_PREFIX + str(after.state.value)
    if after.cancel_requested and not before.cancel_requested:
        return CANCELLING
    if after.step != before.step:
        return STEP
    if after.progress != before.progress:
        return PROGRESS
    return None


def job_view(job: Job) -> dict[str, Any]:
    """Return the job as its owner may see it (JSON-ready; no input, lease or worker).

    The same view goes in job events and in the HTTP routes' answers.
    """
    ref = job.result_ref
    return {
        "id": job.id,
        "kind": job.kind,
        "owner": job.owner,
        "state": job.state.value,
        "version": job.version,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": {
            "fraction": job.progress.fraction,
            "message": job.progress.message,
            "detail": None if job.progress.detail is None else dict(job.progress.detail),
        },
        "step": job.step,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "deadline": job.deadline,
        "run_after": job.run_after,
        "cancel_requested": job.cancel_requested,
        "result": job.result,
        "result_ref": None
        if ref is None
        else {
            "key": ref.key,
            "size": ref.size,
            "content_type": ref.content_type,
            "filename": ref.filename,
        },
        "error": job.error,
    }


def final_job(view: Any, last: Job) -> Job | None:
    """Return the final job an event's data (its :func:`job_view`) announces, or ``None``.

    The view leaves out what a final job shares with every earlier version (input,
    idempotency key, TTL; worker and lease are cleared at the end), so ``last``, a
    version of the same job seen before, supplies it; ``None`` when the view is not
    that of a later, final version of ``last`` or when its step outputs may have
    changed since (a durable job's), so the caller reads the store instead.
    """
    if not isinstance(view, dict) or view.get("id") != last.id:
        return None
    version, step = view.get("version"), view.get("step")
    if not isinstance(version, int) or version <= last.version or step != last.step:
        return None
    if view.get("owner") != last.owner or view.get("kind") != last.kind:
        return None
    if view.get("state") not in _FINAL_STATES or view.get("run_after") is not None:
        return None
    record = dict(view)
    record.update(
        input=last.input,
        worker=None,
        lease_until=None,
        idempotency_key=last.idempotency_key,
        ttl=last.ttl,
        step_outputs=list(last.step_outputs),
    )
    try:
        return job_from_record(record)
    except ConfigurationError:
        return None


_FINAL_STATES = frozenset(state.value for state in JobState if state.final)


def job_event(job: Job, type_: str, *, source: str) -> Event:
    """Return the event announcing ``job`` as it now is (id ``<job id>.<version>``).

    Built without re-validating the data: every field comes from a job record the
    store accepted (its JSON checked on the way in), so the walk over ``data`` that
    ``Event(...)`` makes would only cost time.
    """
    return trusted_event(
        {
            "specversion": "1.0",
            "id": f"{job.id}.{job.version}",
            "source": source,
            "type": type_,
            "subject": job.id,
            "time": datetime.fromtimestamp(job.updated_at, timezone.utc),  # not formatted
            "data": job_view(job),
            OWNER_ATTRIBUTE: job.owner,
            KIND_ATTRIBUTE: job.kind,
        }
    )


def dispatch_pattern(kinds: Iterable[str]) -> dict[str, Any]:
    """Return the pattern of the dispatch events for jobs of ``kinds`` (for workers)."""
    return {"type": [PENDING], KIND_ATTRIBUTE: sorted(kinds)}


def job_pattern(job_id: str) -> dict[str, Any]:
    """Return the pattern of every event about one job."""
    return {"type": [{"prefix": JOB_EVENT_PREFIX}], "subject": [job_id]}
