"""Registering job kinds on a tracker: :meth:`declare`, :meth:`worker`, :meth:`durable`."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from ..bus import Backoff
from ..errors import ArgumentTypeError, ConfigurationError, InvalidState
from ._kinds import Handler, JobKind, Step, input_type_of

__all__ = ["KindRegistry"]

H = TypeVar("H", bound=Handler)

_DEFAULT_BACKOFF = Backoff()


def _check_async(kind: str, fn: object) -> None:
    if not inspect.iscoroutinefunction(fn):
        raise ArgumentTypeError(
            f"job kind {kind!r}", "handler", expected="an async function", got=fn
        )


class KindRegistry:
    """The job kinds a :class:`~eventpatterns.jobs.JobTracker` knows (its registration half).

    Kinds are registered before the tracker is entered; afterwards registering raises
    :class:`~eventpatterns.errors.InvalidState`.
    """

    def __init__(self) -> None:
        self._kinds: dict[str, JobKind] = {}
        self._state = "new"

    # -- registration ---------------------------------------------------------------------

    @property
    def kinds(self) -> Mapping[str, JobKind]:
        """The kinds this tracker knows, by name (read-only)."""
        return MappingProxyType(self._kinds)

    def _register(self, kind: JobKind) -> JobKind:
        if self._state != "new":
            raise InvalidState(
                f"register job kinds before entering the tracker (it is {self._state})",
                state=self._state,
            )
        if kind.kind in self._kinds:
            raise ConfigurationError(f"job kind {kind.kind!r} is registered already")
        self._kinds[kind.kind] = kind
        return kind

    def declare(
        self,
        kind: str,
        input_type: Any = None,
        *,
        max_attempts: int = 3,
        timeout: float | None = None,
        lease: float = 30.0,
        backoff: Backoff = _DEFAULT_BACKOFF,
        ttl: float | None = None,
        deadline: float | None = None,
    ) -> JobKind:
        """Make a kind known here (to submit and track it) that workers run elsewhere.

        Args:
            kind: The kind's name.
            input_type: What its input validates against (a pydantic model or any
                type pydantic validates), or ``None`` for any JSON value.
            max_attempts: Attempts before a job fails for good.
            timeout: Seconds one attempt may run.
            lease: Seconds a worker holds an attempt without heartbeating.
            backoff: The delay between attempts (also for lost leases).
            ttl: Seconds a finished job's record is kept (``None``: the store's).
            deadline: Seconds after submission by which a job must end.

        Returns:
            The :class:`~eventpatterns.jobs.JobKind`.

        Raises:
            InvalidState: The tracker was entered already.
            ConfigurationError: A bad option, or the kind is registered already.
        """
        return self._register(
            JobKind(
                kind, input_type=input_type, max_attempts=max_attempts, timeout=timeout,
                lease=lease, backoff=backoff, ttl=ttl, deadline=deadline,
            )
        )  # fmt: skip

    def worker(
        self,
        kind: str,
        *,
        concurrency: int = 10,
        timeout: float | None = None,
        max_attempts: int = 3,
        lease: float = 30.0,
        backoff: Backoff = _DEFAULT_BACKOFF,
        ttl: float | None = None,
        deadline: float | None = None,
    ) -> Callable[[H], H]:
        """Register the decorated async function as this process's worker for ``kind``.

        The handler takes a :class:`~eventpatterns.jobs.JobContext`; annotate it
        ``JobContext[Model]`` and the input is validated as ``Model`` on submit.
        ``concurrency`` bounds the jobs of this kind one process runs at once; the
        other options are :meth:`declare`'s.

        Raises:
            InvalidState: The tracker was entered already.
            ConfigurationError: A bad option, or the kind is registered already.
            ArgumentTypeError: The handler is not an async function.
        """
        if self._state != "new":
            self._register(JobKind(kind))  # raises InvalidState before decorating

        def register(handler: H) -> H:
            _check_async(kind, handler)
            self._register(
                JobKind(
                    kind, input_type=input_type_of(handler), handler=handler,
                    concurrency=concurrency, timeout=timeout, max_attempts=max_attempts,
                    lease=lease, backoff=backoff, ttl=ttl, deadline=deadline,
                )
            )  # fmt: skip
            return handler

        return register

    def durable(
        self,
        kind: str,
        steps: Sequence[Step],
        *,
        concurrency: int = 10,
        timeout: float | None = None,
        max_attempts: int = 3,
        lease: float = 30.0,
        backoff: Backoff = _DEFAULT_BACKOFF,
        ttl: float | None = None,
        deadline: float | None = None,
    ) -> JobKind:
        """Register ``kind`` as durable ``steps`` run in order by this process's workers.

        Each step is ``async def step(ctx, value) -> output``: ``value`` is the previous
        step's output (the input for the first), and each output is checkpointed in the
        job, so a retried job resumes at the first step not done. The first step's
        ``JobContext[Model]`` annotation validates the input. Options as :meth:`worker`.

        Raises:
            InvalidState: The tracker was entered already.
            ConfigurationError: No steps, a bad option, or the kind is registered already.
            ArgumentTypeError: A step is not an async function.
        """
        if not isinstance(steps, list | tuple) or not steps:
            raise ConfigurationError(f"job kind {kind!r}: give the steps as a non-empty list")
        for step in steps:
            _check_async(kind, step)
        return self._register(
            JobKind(
                kind, input_type=input_type_of(steps[0]), steps=tuple(steps),
                concurrency=concurrency, timeout=timeout, max_attempts=max_attempts,
                lease=lease, backoff=backoff, ttl=ttl, deadline=deadline,
            )
        )  # fmt: skip
