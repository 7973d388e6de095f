"""``JobContext[Model]`` is typed: mypy --strict sees ``ctx.input`` as the model.

This module is type-checked with the rest of the tests (``assert_type`` below fails the
mypy run if ``ctx.input`` were ``Any``), and one test runs mypy on a handler that
misuses its input, to show the check can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel
from typing_extensions import assert_type

from eventpatterns.jobs import JobContext, JobState

from .worker_helpers import kind, running_pool

ROOT = Path(__file__).resolve().parents[2]


class Thumbnail(BaseModel):
    url: str
    width: int = 128


async def thumbnail(ctx: JobContext[Thumbnail]) -> dict[str, int | str]:
    assert_type(ctx.input, Thumbnail)
    assert_type(ctx.attempt, int)
    assert_type(ctx.cancelled, bool)
    await ctx.progress(0.5, "resizing", {"width": ctx.input.width})
    return {"url": ctx.input.url, "width": ctx.input.width}


@pytest.mark.anyio
async def test_the_typed_handler_gets_its_model() -> None:
    async with running_pool(kind("thumbnail", thumbnail)) as h:
        job = await h.submit("thumbnail", {"url": "/a.png"})
        done = await h.final(job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.result == {"url": "/a.png", "width": 128}


@pytest.mark.slow
def test_mypy_refuses_a_handler_that_misuses_its_input(tmp_path: Path) -> None:
    module = tmp_path / "misuse.py"
    module.write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel
            from eventpatterns.jobs import JobContext

            class Thumbnail(BaseModel):
                url: str

            async def thumbnail(ctx: JobContext[Thumbnail]) -> int:
                return ctx.input.width
            """
        )
    )
    env = {**os.environ, "MYPYPATH": os.environ.get("MYPYPATH", str(ROOT / "src"))}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(module)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert '"Thumbnail" has no attribute "width"' in result.stdout
