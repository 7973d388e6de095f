"""Durable steps: run a job's steps in order, checkpointing each output in the job.

A job kind declared as steps (``tracker.durable("kind", [fetch, render, upload])``)
runs them one after another, each step's output feeding the next. After every step but
the last, the worker records the output with
:class:`~eventpatterns.jobs.CompleteStep` (the checkpoint) and reports progress
``(i + 1) / len(steps)`` with the step's name. An attempt starts at ``job.step``, the
first step not recorded, feeding it the last recorded output, so a job whose worker
crashed between two steps resumes at the second: a recorded step never runs again.

Step outputs live in the job's record, so they are kept as JSON (what the next step
gets is the output as stored, validated by the step's annotation of its ``value``
parameter when it has one, the same on a fresh run and on a resumed one) and must be
small: at most the tracker's ``inline_limit`` once encoded. The last step's output is
the job's result (inline, or in the blob store when large or ``bytes``); it is not
recorded as a step, so a result is never stored twice.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel

from ..errors import ConfigurationError
from ._codec import encode_json
from ._context import Attempt, FailJob, JobContext
from ._kinds import Step
from ._machine import CompleteStep
from ._model import Progress

__all__ = ["StepPlan", "to_json"]


def to_json(value: Any) -> tuple[Any, bytes]:
    """Return ``value`` as JSON-ready data and its encoding (pydantic models included).

    Raises:
        TypeError: Not JSON-serialisable (``ValueError`` for NaN or an infinity).
    """
    import pydantic_core

    try:
        ready = pydantic_core.to_jsonable_python(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise TypeError(str(exc)) from None
    return ready, encode_json(ready)


def _value_adapter(step: Step) -> Any:
    """The pydantic adapter for ``step``'s ``value`` parameter (``None``: not annotated)."""
    name = getattr(step, "__qualname__", repr(step))
    try:
        hints = typing.get_type_hints(step)
    except Exception as exc:  # an unresolvable forward reference: say which
        raise ConfigurationError(f"cannot read the annotations of step {name!r}: {exc}") from exc
    params = list(inspect.signature(step).parameters)
    if len(params) < 2:
        raise ConfigurationError(f"step {name!r} must take (ctx, value): the context and its input")
    hint = hints.get(params[1])
    if hint is None or hint is Any:
        return None
    import pydantic

    return pydantic.TypeAdapter(hint)


def step_name(step: Step) -> str:
    """The name progress reports for ``step`` (its function's name)."""
    return str(getattr(step, "__name__", None) or type(step).__name__)


class StepPlan:
    """A kind's steps, with what each accepts: runs them from the job's next step.

    Args:
        kind: The kind's name (for errors).
        steps: The steps, in order.
        inline_limit: Largest encoded output recorded in the job, in bytes.

    Raises:
        ConfigurationError: A step's annotations cannot be read, or it does not take
            ``(ctx, value)``.
    """

    def __init__(self, kind: str, steps: Sequence[Step], *, inline_limit: int) -> None:
        self.kind = kind
        self.steps = tuple(steps)
        self.names = [step_name(step) for step in self.steps]
        self.adapters = [_value_adapter(step) for step in self.steps]
        self.inline_limit = inline_limit

    def _accept(self, index: int, value: Any) -> Any:
        adapter = self.adapters[index]
        if adapter is None:
            return value
        import pydantic

        try:
            return adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(value)'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            raise FailJob(
                f"step {self.names[index]!r} of job kind {self.kind!r} refused its value: {errors}"
            ) from None

    def _record(self, index: int, output: Any) -> Any:
        name = self.names[index]
        if isinstance(output, bytes | bytearray | memoryview):
            raise FailJob(
                f"step {name!r} returned bytes: only the last step may (its result goes to"
                " the blob store); put large data in a blob store and return its key"
            )
        try:
            ready, encoded = to_json(output)
        except (TypeError, ValueError) as exc:
            raise FailJob(f"step {name!r} returned a value that is not JSON: {exc}") from None
        if len(encoded) > self.inline_limit:
            raise FailJob(
                f"step {name!r} returned {len(encoded)} bytes of JSON, over inline_limit="
                f"{self.inline_limit}: step outputs are kept in the job's record; put large"
                " data in a blob store and return its key"
            )
        return ready

    async def run(self, ctx: JobContext[Any], attempt: Attempt) -> Any:
        """Run the steps from the job's next one; return the last step's output.

        Raises:
            FailJob: The job recorded more steps than the kind has, a step refused its
                value, or an output cannot be recorded (not JSON, or too large).
        """
        job = attempt.started
        count = len(self.steps)
        if job.step >= count:
            raise FailJob(
                f"job {job.id!r} recorded {job.step} steps but kind {self.kind!r} has {count}"
                " (the last one is never recorded): the kind's steps changed under it"
            )
        value = job.step_outputs[-1] if job.step else ctx.input
        for index in range(job.step, count):
            output = await self.steps[index](ctx, self._accept(index, value))
            if index == count - 1:
                return output
            value = self._record(index, output)
            await attempt.write(CompleteStep(attempt.worker_id, index, value), persist=True)
            await anyio.lowlevel.checkpoint()  # lost: cancelled here, never runs on
            await attempt.progress(Progress((index + 1) / count, self.names[index]))
        raise AssertionError("unreachable")  # pragma: no cover
