"""Job kinds for ``eventpatterns serve --jobs tests.jobs.serve_app:setup`` in the tests."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from eventpatterns.jobs import JobContext, JobTracker


class Echo(BaseModel):
    text: str
    big: bool = False


def setup(tracker: JobTracker) -> None:
    """Register the ``echo`` kind."""

    @tracker.worker("echo")
    async def echo(ctx: JobContext[Echo]) -> Any:
        await ctx.progress(0.5, "echoing")
        return {"text": ctx.input.text * (70_000 if ctx.input.big else 1)}  # 70 KB: a blob


def registers_nothing(tracker: JobTracker) -> None:
    """Register no kind (an error for serve)."""


def raises(tracker: JobTracker) -> None:
    """Fail while registering."""
    raise RuntimeError("no database configured")


NOT_A_FUNCTION = 42
