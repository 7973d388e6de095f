"""Job kinds for the CLI tests (``serve --jobs tests.cli.jobs_app:setup``).

``gated`` reports half its progress, then waits until an event ``cli.test.go`` whose
subject is its input's ``gate`` is published: a test decides when it ends, no sleep.
``fails`` raises on its one attempt.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from eventpatterns.jobs import JobContext, JobTracker


class Gate(BaseModel):
    gate: str


def setup(tracker: JobTracker) -> None:
    """Register ``gated`` and ``fails``."""

    @tracker.worker("gated")
    async def gated(ctx: JobContext[Gate]) -> Any:
        pattern = {"type": ["cli.test.go"], "subject": [ctx.input.gate]}
        async with tracker.bus.subscribe(pattern) as sub:
            await ctx.progress(0.5, "waiting at the gate")
            event = await sub.receive()
        return {"opened_by": event.id}

    @tracker.worker("fails", max_attempts=1)
    async def fails(ctx: JobContext[Gate]) -> Any:
        raise RuntimeError(f"gate {ctx.input.gate} is broken")
