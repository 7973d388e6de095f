"""What the tracker knows of a job kind: its input model, handler or steps, and limits."""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..bus import Backoff
from ..errors import ArgumentTypeError, ConfigurationError, InvalidJobInput

__all__ = ["Handler", "JobKind", "Step", "input_type_of"]

#: A worker's handler: ``async def handler(ctx: JobContext[Input]) -> result``.
Handler = Callable[[Any], Awaitable[Any]]

#: A durable step: ``async def step(ctx: JobContext[Input], value) -> output``; ``value``
#: is the previous step's output (the job's input for the first step).
Step = Callable[[Any, Any], Awaitable[Any]]


def input_type_of(function: Callable[..., Any]) -> Any:
    """Return ``X`` when ``function``'s first parameter is annotated ``JobContext[X]``.

    ``None`` when it is not annotated so (the input is then passed through as JSON).
    """
    try:
        hints = typing.get_type_hints(function)
    except Exception as exc:  # an unresolvable forward reference: say which
        raise ConfigurationError(
            f"cannot read the annotations of {getattr(function, '__qualname__', function)!r}: {exc}"
        ) from exc
    params = list(inspect.signature(function).parameters)
    if not params:
        raise ConfigurationError(
            f"{getattr(function, '__qualname__', function)!r} must take the job context"
        )
    hint = hints.get(params[0])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is not None and getattr(origin, "__name__", "") == "JobContext" and args:
        return args[0]
    return None


def _positive(name: str, value: float | None, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)  # no slots: the input adapter is a cached_property
class JobKind:
    """One kind of job the tracker accepts, and how its workers run it.

    Attributes:
        kind: The name jobs are submitted under.
        input_type: The type the input validates against (a pydantic model, or any
            type pydantic can validate), or ``None`` to accept any JSON value.
        handler: The worker's handler (``None``: declared only, run elsewhere).
        steps: Or the durable steps, in order.
        concurrency: Most jobs of this kind one worker process runs at once.
        timeout: Seconds one attempt may run before it fails (and is retried).
        max_attempts: Attempts before the job fails for good.
        lease: Seconds a worker holds an attempt without heartbeating.
        backoff: The delay between attempts.
        ttl: Seconds a finished job's record is kept (``None``: the store's default).
        deadline: Seconds after submission by which the job must end, or ``None``.
    """

    kind: str
    input_type: Any = None
    handler: Handler | None = None
    steps: tuple[Step, ...] = ()
    concurrency: int = 10
    timeout: float | None = None
    max_attempts: int = 3
    lease: float = 30.0
    backoff: Backoff = field(default_factory=Backoff)
    ttl: float | None = None
    deadline: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.kind, str) or not self.kind or len(self.kind) > 200:
            raise ConfigurationError(
                f"a job kind must be a string of 1 to 200 characters, got {self.kind!r}"
            )
        if self.handler is not None and self.steps:
            raise ConfigurationError(f"job kind {self.kind!r}: give a handler or steps, not both")
        for fn in (self.handler, *self.steps):
            if fn is not None and not callable(fn):
                raise ArgumentTypeError("worker", "handler", expected="an async callable", got=fn)
        c = self.concurrency
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise ConfigurationError(f"concurrency must be an int >= 1, got {c!r}")
        m = self.max_attempts
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ConfigurationError(f"max_attempts must be an int >= 1, got {m!r}")
        _positive("timeout", self.timeout)
        _positive("lease", self.lease, optional=False)
        _positive("ttl", self.ttl)
        _positive("deadline", self.deadline)
        if not isinstance(self.backoff, Backoff):
            raise ArgumentTypeError("worker", "backoff", expected="a Backoff", got=self.backoff)

    @property
    def runnable(self) -> bool:
        """Tell whether this process runs jobs of this kind (a handler or steps)."""
        return self.handler is not None or bool(self.steps)

    @cached_property
    def _adapter(self) -> Any:
        import pydantic

        return None if self.input_type is None else pydantic.TypeAdapter(self.input_type)

    def validate(self, value: Any) -> Any:
        """Return ``value`` validated as :attr:`input_type` (itself when there is none).

        Raises:
            InvalidJobInput: It does not validate (the errors say where and why).
        """
        adapter = self._adapter
        if adapter is None:
            return value
        import pydantic

        try:
            return adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            errors: list[dict[str, object]] = [
                {"loc": e["loc"], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            raise InvalidJobInput(self.kind, errors) from None

    def dump(self, value: Any) -> Any:
        """Return a validated input as JSON-ready data (what the store keeps)."""
        adapter = self._adapter
        return value if adapter is None else adapter.dump_python(value, mode="json")
