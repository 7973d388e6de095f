"""Long-running jobs: one state machine, guarded by compare-and-swap in the store.

Sans-I/O so far: :class:`Job` (the record), :class:`JobState`, :class:`Progress` and
:func:`transition`, the one function every change to a job goes through. The tracker,
workers, stores and HTTP routes build on it; see ``docs/jobs.md``.
"""

from ._machine import (
    DEADLINE_EXCEEDED,
    Cancel,
    Command,
    CompleteStep,
    DeadlinePassed,
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

__all__ = [
    "DEADLINE_EXCEEDED",
    "Cancel",
    "Command",
    "CompleteStep",
    "DeadlinePassed",
    "ExpireLease",
    "Fail",
    "Heartbeat",
    "Job",
    "JobState",
    "Progress",
    "ReportProgress",
    "ResultRef",
    "Start",
    "Stop",
    "Succeed",
    "transition",
]
