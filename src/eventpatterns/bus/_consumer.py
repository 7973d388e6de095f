"""Durable competing consumers: retries with backoff, dead letters, partial batch failure."""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ..core import Event
from ..errors import BackendUnavailable, BusClosed, ConfigurationError, EventPatternsError
from ._contract import BusBackend, Delivery
from ._matching import SupportsMatch

__all__ = ["Backoff", "BatchFailure", "Consumer", "ConsumerStats"]

logger = logging.getLogger("eventpatterns.bus")

Handler = Callable[[Event], Awaitable[Any]]
BatchHandler = Callable[[list[Event]], Awaitable[Iterable[str] | None]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between delivery attempts.

    The delay before attempt ``n + 1`` is ``min(maximum, initial * multiplier**(n-1))``,
    scaled by a random factor in ``[1 - jitter, 1]`` so that failing consumers do not
    retry in lock-step.

    Example:
        >>> Backoff(initial=1, multiplier=2, jitter=0).delay(3)
        4.0
    """

    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ConfigurationError("backoff delays must be >= 0")
        if self.multiplier < 1:
            raise ConfigurationError(f"backoff multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"backoff jitter must be within [0, 1], got {self.jitter}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the delay after failed attempt number ``attempt`` (1-based)."""
        base = min(self.maximum, self.initial * self.multiplier ** max(attempt - 1, 0))
        if not self.jitter:
            return float(base)
        factor = 1.0 - self.jitter * (rng or random).random()
        return float(base * factor)


class BatchFailure(EventPatternsError):
    """Raise from a batch handler to fail only some events of the batch.

    Args:
        failed_ids: Ids of the events to retry; the others are acknowledged.
        cause: Optional description recorded as their error.
    """

    def __init__(self, failed_ids: Iterable[str], cause: str | None = None) -> None:
        self.failed_ids = frozenset(failed_ids)
        self.cause = cause
        super().__init__(cause or f"{len(self.failed_ids)} event(s) of the batch failed")


@dataclass(slots=True)
class ConsumerStats:
    """Counters of one consumer since it started.

    ``retried`` and ``dead_lettered`` count actions the backend has completed, so a
    test (or a health check) that sees them can rely on the backend's state.
    """

    received: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    dead_lettered: int = 0
    filtered_out: int = 0
    last_error: str | None = field(default=None)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Consumer:
    """A running member of a consumer group; stop it with :meth:`aclose`.

    Created by :meth:`EventBus.consume`; runs in the bus's task group until the bus
    closes or :meth:`aclose` is awaited.
    """

    def __init__(
        self,
        backend: BusBackend,
        group: str,
        handler: Handler | BatchHandler,
        *,
        name: str,
        matcher: SupportsMatch | None,
        batch_size: int | None,
        prefetch: int,
        max_attempts: int,
        visibility_timeout: float,
        handler_timeout: float | None,
        backoff: Backoff,
        poll: float,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
        if max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {max_attempts}")
        if visibility_timeout <= 0:
            raise ConfigurationError(f"visibility_timeout must be > 0, got {visibility_timeout}")
        if batch_size is not None and batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        if prefetch < 1:
            raise ConfigurationError(f"prefetch must be at least 1, got {prefetch}")
        self.backend = backend
        self.group = group
        self.name = name
        self.stats = ConsumerStats()
        self._handler = handler
        self._matcher = matcher
        self._batch_size = batch_size
        self._prefetch = batch_size or prefetch
        self._max_attempts = max_attempts
        self._visibility = visibility_timeout
        self._handler_timeout = visibility_timeout if handler_timeout is None else handler_timeout
        self._backoff = backoff
        self._poll = poll
        self._concurrency = concurrency
        self._scope: anyio.CancelScope | None = None
        self._done = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Receive and handle deliveries until cancelled (the bus runs this for you)."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            task_status.started()
            try:
                if self._concurrency == 1:
                    await self._loop(self.name)
                else:  # independent workers, each a consumer of the group, sharing stats
                    async with anyio.create_task_group() as tg:
                        for worker in range(self._concurrency):
                            tg.start_soon(self._loop, f"{self.name}.{worker}")
            finally:
                self._done.set()

    def stop(self) -> None:
        """Ask the consumer to stop, without waiting for it (see :meth:`aclose`)."""
        if self._scope is not None:
            self._scope.cancel()

    async def aclose(self) -> None:
        """Stop: unacknowledged deliveries are redelivered after their visibility timeout."""
        if self._scope is not None:
            self._scope.cancel()
            with anyio.CancelScope(shield=True):
                await self._done.wait()

    async def _loop(self, name: str) -> None:
        failures = 0
        while True:
            try:
                deliveries = await self.backend.receive(
                    self.group,
                    name,
                    max_count=self._prefetch,
                    visibility_timeout=self._visibility,
                    wait=self._poll,
                )
                if not deliveries:
                    continue
                self.stats.received += len(deliveries)
                if self._batch_size is None:
                    await self._handle_each(deliveries)
                else:
                    await self._handle_batch(deliveries)
                failures = 0
            except BackendUnavailable as exc:
                failures += 1
                delay = min(0.05 * 2**failures, 5.0)
                logger.warning(
                    "consumer %s/%s: %s; retrying in %.2fs", self.group, self.name, exc, delay
                )
                await anyio.sleep(delay)
            except BusClosed:
                return

    def _wanted(self, delivery: Delivery) -> bool:
        return self._matcher is None or self._matcher.matches(delivery.event.to_dict())

    async def _screen(self, deliveries: Sequence[Delivery]) -> tuple[list[Delivery], list[str]]:
        """Split deliveries into those to handle and receipts to ack unhandled."""
        limit = self._max_attempts
        if self._matcher is None and all(d.attempt <= limit for d in deliveries):
            return list(deliveries), []  # the common case, without a loop in Python
        todo: list[Delivery] = []
        skip: list[str] = []
        for delivery in deliveries:
            if not self._wanted(delivery):
                self.stats.filtered_out += 1
                skip.append(delivery.receipt)
            elif delivery.attempt > limit:
                # Delivered again after its last allowed attempt: the consumer that held
                # it crashed or hung. Do not run it once more.
                reason = (
                    delivery.last_error or "consumer stopped acknowledging (visibility timeout)"
                )
                await self._dead_letter(delivery, f"{reason}; exceeded max_attempts={limit}")
            else:
                todo.append(delivery)
        return todo, skip

    async def _handle_each(self, deliveries: Sequence[Delivery]) -> None:
        todo, done = await self._screen(deliveries)
        handler: Handler = self._handler  # type: ignore[assignment]
        timeout = self._handler_timeout
        slack = min(timeout * 0.05, 1.0)
        failed: list[tuple[Delivery, str]] = []
        index = 0
        while index < len(todo):
            # One cancel scope serves a run of handlers: entering a scope, or moving its
            # deadline (a timer), per event would cost more than a small handler. So
            # the deadline moves only when less than ``timeout`` is left, and then by
            # ``timeout + slack``: each handler gets at least ``timeout`` and at most
            # ``timeout + slack``. Only handlers run inside the scope, so a timeout
            # always belongs to todo[index].
            with anyio.CancelScope(deadline=anyio.current_time() + timeout + slack) as scope:
                while index < len(todo):
                    delivery = todo[index]
                    now = anyio.current_time()
                    if scope.deadline < now + timeout:
                        scope.deadline = now + timeout + slack
                    try:
                        await handler(delivery.event)
                    except Exception as exc:
                        failed.append((delivery, _describe(exc)))
                    else:
                        self.stats.succeeded += 1
                        done.append(delivery.receipt)
                    index += 1
            if scope.cancelled_caught and index < len(todo):
                failed.append(
                    (todo[index], f"TimeoutError: handler did not finish within {timeout}s")
                )
                index += 1
        for delivery, error in failed:
            await self._fail(delivery, error)
        if done:
            await self.backend.ack(self.group, done)

    async def _handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        todo, done = await self._screen(deliveries)
        if todo:
            handler: BatchHandler = self._handler  # type: ignore[assignment]
            failed: set[str]
            error = "reported failed by the batch handler"
            try:
                with anyio.fail_after(self._handler_timeout):
                    result = await handler([d.event for d in todo])
                failed = set(result) if result else set()
            except BatchFailure as exc:
                failed, error = set(exc.failed_ids), exc.cause or error
            except Exception as exc:
                failed, error = {d.event.id for d in todo}, _describe(exc)
            if not failed:
                self.stats.succeeded += len(todo)
                done.extend(d.receipt for d in todo)
            else:
                unknown = failed - {d.event.id for d in todo}
                if unknown:
                    logger.warning(
                        "batch handler reported unknown event ids %s; ignored", sorted(unknown)
                    )
                for delivery in todo:
                    if delivery.event.id in failed:
                        await self._fail(delivery, error)
                    else:
                        self.stats.succeeded += 1
                        done.append(delivery.receipt)
        if done:
            await self.backend.ack(self.group, done)

    async def _fail(self, delivery: Delivery, error: str) -> None:
        self.stats.failed += 1
        self.stats.last_error = error
        if delivery.attempt >= self._max_attempts:
            await self._dead_letter(delivery, error)
            return
        delay = self._backoff.delay(delivery.attempt)
        logger.info(
            "event %s failed in %s (attempt %d/%d): %s; retrying in %.2fs",
            delivery.event.id,
            self.group,
            delivery.attempt,
            self._max_attempts,
            error,
            delay,
        )
        await self.backend.release(self.group, delivery.receipt, delay=delay, error=error)
        self.stats.retried += 1  # counted once the backend has it, so stats never run ahead

    async def _dead_letter(self, delivery: Delivery, error: str) -> None:
        await self.backend.dead_letter(self.group, delivery.receipt, error=error)
        self.stats.dead_lettered += 1
        logger.warning(
            "event %s dead-lettered in %s after %d attempt(s): %s",
            delivery.event.id,
            self.group,
            delivery.attempt,
            error,
        )
