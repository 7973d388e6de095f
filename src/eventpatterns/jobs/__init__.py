"""Long-running jobs: one state machine, guarded by compare-and-swap in the store.

Sans-I/O so far: :class:`Job` (the record), :class:`JobState`, :class:`Progress` and
:func:`transition`, the one function every change to a job goes through, and
:class:`JobStore`, the contract of where records live (compare-and-swap on the version).
The tracker, workers and HTTP routes build on them; see ``docs/jobs.md``.

:class:`JobTracker` is the façade: submit, read, list, cancel, wait for and watch jobs,
with every change announced on the bus (``eventpatterns.job.<what>``, the owner in the
``jobowner`` attribute) and a reaper that retries lost leases and re-dispatches jobs.
"""

from ._blobs import Blob, BlobStore, URLSigner
from ._context import FailJob, JobContext
from ._events import JOB_EVENT_PREFIX, KIND_ATTRIBUTE, OWNER_ATTRIBUTE
from ._files import FileResult, content_disposition, safe_filename
from ._kinds import JobKind
from ._machine import (
    DEADLINE_EXCEEDED,
    Cancel,
    Command,
    CompleteStep,
    DeadlinePassed,
    Dispatch,
    ExpireLease,
    Fail,
    Heartbeat,
    ReportProgress,
    Start,
    Stop,
    Succeed,
    transition,
)
from ._model import Job, JobState, Progress, ResultRef
from ._store import DEFAULT_TTL, JobPage, JobStore
from ._tracker import JobTracker
from ._watch import JobWatch

__all__ = [
    "DEADLINE_EXCEEDED",
    "DEFAULT_TTL",
    "JOB_EVENT_PREFIX",
    "KIND_ATTRIBUTE",
    "OWNER_ATTRIBUTE",
    "Blob",
    "BlobStore",
    "Cancel",
    "Command",
    "CompleteStep",
    "DeadlinePassed",
    "Dispatch",
    "ExpireLease",
    "Fail",
    "FailJob",
    "FileResult",
    "Heartbeat",
    "Job",
    "JobContext",
    "JobKind",
    "JobPage",
    "JobState",
    "JobStore",
    "JobTracker",
    "JobWatch",
    "Progress",
    "ReportProgress",
    "ResultRef",
    "Start",
    "Stop",
    "Succeed",
    "URLSigner",
    "content_disposition",
    "safe_filename",
    "transition",
]
