"""Durable competing consumers: retries with backoff, dead letters, partial batch failure.

The consumer is the I/O half: it receives deliveries, runs the handler, and carries out
what :class:`~eventpatterns.bus.DeliveryAttempt` (the sans-I/O half, in ``_retry``)
decides for each delivery that leaves the straight path: a failure, or a delivery past
its last attempt. A delivery that is received, handled and acknowledged, or filtered out,
involves no decision (its only outcome is ``Ack``), so the hot path acks it with its
batch without building a state machine for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import anyio
from anyio.abc import TaskStatus

from ..core import Event
from ..errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    EventPatternsError,
    InvalidEventData,
)
from ..observability import _trace
from ..observability._metrics import metrics
from ._contract import BusBackend, Delivery
from ._matching import SupportsMatch
from ._retry import DeliveryAttempt, GiveUp, Retry

__all__ = ["BatchFailure", "Consumer", "ConsumerStats", "Timeouts"]

logger = logging.getLogger("eventpatterns.bus")

Handler = Callable[[Event], Awaitable[Any]]
BatchHandler = Callable[[list[Event]], Awaitable[Iterable[str] | None]]

#: Longest blocking ``receive`` of a consumer, in seconds. A delivery made receivable
#: by another process (a retry it released) is picked up within this time; within one
#: process, releases, redrives and new entries wake the receive at once.
RECEIVE_WAIT = 1.0
#: How often (real seconds) ``drain()`` re-reads the group's counters when this
#: consumer made no progress: other consumers of the group may have.
DRAIN_RECHECK = 0.05

_FILTERED = metrics.counter("eventpatterns_bus_dropped_total", reason="filtered_out")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """How long a delivery may stay with a consumer, and a handler may run.

    A value object like httpx's ``Timeout``: pass one to
    :meth:`~eventpatterns.bus.EventBus.consume` as ``timeouts=Timeouts(...)``.

    Attributes:
        visibility: Seconds (on the backend's clock) an unacknowledged delivery stays
            invisible to the group's other consumers; after that it is delivered again
            (its consumer is presumed crashed or hung).
        handler: Seconds a handler (or a batch handler, for its whole batch) may run
            before it is cancelled and counted as a failure; ``None``: ``visibility``.

    Example:
        >>> Timeouts(visibility=60).handler_seconds
        60.0
    """

    visibility: float = 30.0
    handler: float | None = None

    def __post_init__(self) -> None:
        if not self.visibility > 0:
            raise ConfigurationError(f"visibility timeout must be > 0, got {self.visibility}")
        if self.handler is not None and not self.handler > 0:
            raise ConfigurationError(f"handler timeout must be > 0, got {self.handler}")

    @property
    def handler_seconds(self) -> float:
        """The handler timeout in effect."""
        return float(self.visibility if self.handler is None else self.handler)


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
    """A running member of a consumer group.

    Created (and started) by :meth:`EventBus.consume` or :meth:`EventBus.consume_batches`;
    runs in the bus's task group until :meth:`aclose`, the end of an ``async with``
    block on it, or the bus closing, whichever comes first.

    Example:
        ```python
        import anyio
        from eventpatterns import Event, EventBus


        async def main() -> None:
            async with EventBus.from_url("memory://") as bus:
                async def ship(event: Event) -> None:
                    print("shipping", event.data)

                async with await bus.consume("shipping", ship) as consumer:
                    await bus.publish(Event(type="order.paid", source="/shop", data=1))
                    await consumer.drain()   # handled, dead-lettered or filtered out


        anyio.run(main)
        ```
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
        retry: Retry,
        timeouts: Timeouts,
        concurrency: int,
        start: Literal["earliest", "latest"],
    ) -> None:
        for option, value in (
            ("batch_size", 1 if batch_size is None else batch_size),
            ("prefetch", prefetch),
            ("concurrency", concurrency),
        ):
            if value < 1:
                raise ConfigurationError(f"{option} must be at least 1, got {value}")
        if start not in ("earliest", "latest"):
            raise ConfigurationError(f"start must be 'earliest' or 'latest', got {start!r}")
        self.backend = backend
        self.group = group
        self.name = name
        self.stats = ConsumerStats()
        self.retry = retry
        self.timeouts = timeouts
        self.start = start
        self._handler = handler
        self._matcher = matcher
        self._batch_size = batch_size
        self._prefetch = batch_size or prefetch
        self._max_attempts = retry.max_attempts
        self._visibility = timeouts.visibility
        self._handler_timeout = timeouts.handler_seconds
        self._concurrency = concurrency
        self._scope: anyio.CancelScope | None = None
        self._done = anyio.Event()
        self._progress: anyio.Event | None = None  # set after a batch, while drain() waits
        self._busy = 0  # workers between receiving a batch and finishing it
        self._on_close: list[Callable[[], Awaitable[object]]] = []
        # Bound once: counting on the hot path is then one dict increment per batch.
        self._delivered = metrics.counter("eventpatterns_bus_delivered_total", group=group)
        self._retried = metrics.counter("eventpatterns_bus_retried_total", group=group)
        self._dead = metrics.counter("eventpatterns_bus_dead_lettered_total", group=group)

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Receive and handle deliveries until cancelled (the bus runs this for you)."""
        _trace.CURRENT.set(None)  # this task's own context: no event is handled yet
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
                with anyio.CancelScope(shield=True):
                    for close in reversed(self._on_close):
                        try:
                            await close()
                        except Exception:  # a cleanup's failure must not hide the others
                            logger.exception("consumer %r: a close callback failed", self.name)
                self._done.set()
                self._signal()

    def on_close(self, callback: Callable[[], Awaitable[object]]) -> None:
        """Call ``callback()`` once, when the consumer stops (last registered, first called).

        For what the handler owns: a webhook sender's HTTP client, say. It runs when the
        consumer stops for any reason (:meth:`aclose`, ``stop()``, the bus closing); a
        callback that raises is logged and the others still run.
        """
        self._on_close.append(callback)

    @property
    def matcher(self) -> SupportsMatch | None:
        """The consumer's compiled filter (``None``: every event); see ``EventBus.explain``."""
        return self._matcher

    @property
    def running(self) -> bool:
        """Whether the consumer is still receiving."""
        return self._scope is not None and not self._done.is_set()

    def stop(self) -> None:
        """Ask the consumer to stop, without waiting for it (see :meth:`aclose`)."""
        if self._scope is not None:
            self._scope.cancel()

    async def aclose(self) -> None:
        """Stop: unacknowledged deliveries are redelivered after their visibility timeout.

        Idempotent; returns once the consumer's tasks have ended.
        """
        if self._scope is not None:
            self._scope.cancel()
            with anyio.CancelScope(shield=True):
                await self._done.wait()

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def drain(self) -> None:
        """Wait until the group has nothing left to do, then return.

        Returns at the first moment the backend reports, for this consumer's group,
        no entry left to receive and no delivery pending (``group_stats()``:
        ``lag == 0`` and ``pending == 0``). Then every event appended to the log
        before that moment — in particular before the call — was handled
        successfully, dead-lettered, or filtered out, by this consumer or another
        consumer of the group. Deliveries waiting out a retry delay or a visibility
        timeout are pending, so ``drain()`` waits for them too (with a
        :class:`~eventpatterns.testing.ManualClock`, advance it). This consumer has
        also finished its batches by then, so its :attr:`stats` are up to date. It
        checks after each batch this consumer finishes and every 50 ms otherwise.

        It has no timeout of its own: while publishers keep the group busy it may not
        return, so bound it with ``anyio.fail_after(...)``.

        Raises:
            BusClosed: The consumer stopped (or had stopped) before the group was idle.
            GroupNotFound: The group was deleted.
        """
        while True:
            if not self.running:
                raise BusClosed(f"consumer {self.name!r} of group {self.group!r} is stopped")
            progress = self._progress
            if progress is None:
                progress = self._progress = anyio.Event()
            stats = await self.backend.group_stats(self.group)
            if stats.lag == 0 and stats.pending == 0 and not self._busy:
                return
            with anyio.move_on_after(DRAIN_RECHECK):
                await progress.wait()

    def _signal(self) -> None:
        progress = self._progress
        if progress is not None:
            self._progress = None
            progress.set()

    # -- the loop -----------------------------------------------------------------------

    async def _loop(self, name: str) -> None:
        failures = 0
        while True:
            try:
                deliveries = await self.backend.receive(
                    self.group,
                    name,
                    max_count=self._prefetch,
                    visibility_timeout=self._visibility,
                    wait=RECEIVE_WAIT,
                )
                if not deliveries:
                    continue
                self.stats.received += len(deliveries)
                self._busy += 1
                try:
                    if self._batch_size is None:
                        await self._handle_each(deliveries)
                    else:
                        await self._handle_batch(deliveries)
                finally:
                    self._busy -= 1
                if self._progress is not None:
                    self._signal()
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

    async def _screen(self, deliveries: Sequence[Delivery]) -> tuple[list[Delivery], list[str]]:
        """Split deliveries into those to handle and receipts to ack unhandled.

        Only a delivery past its last attempt needs a decision here, so only it gets a
        :class:`DeliveryAttempt` (``attempt > max_attempts`` is the machine's
        ``exhausted`` rule, checked first as a plain comparison to keep this loop cheap);
        a filtered-out delivery is always acked.
        """
        limit = self._max_attempts
        if self._matcher is None and all(d.attempt <= limit for d in deliveries):
            return list(deliveries), []  # the common case, without a loop in Python
        todo: list[Delivery] = []
        skip: list[str] = []
        matcher = self._matcher
        for delivery in deliveries:
            if matcher is not None and not matcher.matches(delivery.event.to_dict()):
                self.stats.filtered_out += 1
                _FILTERED.inc()
                skip.append(delivery.receipt)
            elif delivery.attempt > limit:
                # Delivered again after its last allowed attempt: the consumer that held
                # it crashed or hung. It is not run once more.
                machine = DeliveryAttempt(
                    delivery.attempt, self.retry, last_error=delivery.last_error
                )
                give_up = machine.start()
                if give_up is not None:  # always, as it is exhausted
                    await self._dead_letter(delivery, give_up.reason)
            else:
                todo.append(delivery)
        return todo, skip

    async def _handle_each(self, deliveries: Sequence[Delivery]) -> None:
        todo, done = await self._screen(deliveries)
        skipped = len(done)
        handler: Handler = self._handler  # type: ignore[assignment]
        tracer = _trace.otel_tracer()
        current = _trace.CURRENT
        timeout = self._handler_timeout
        slack = min(timeout * 0.05, 1.0)
        failed: list[tuple[Delivery, str]] = []
        rejected: list[tuple[Delivery, str]] = []
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
                        # The handled event is the trace context of what the handler
                        # publishes (observability._trace): a context variable, or an
                        # OpenTelemetry span when a tracer provider is set.
                        if tracer is None:
                            current.set(delivery.event)
                            await handler(delivery.event)
                        else:
                            with _trace.consumer_span(tracer, delivery.event, self.group):
                                await handler(delivery.event)
                    except InvalidEventData as exc:  # no retry can make the data valid
                        rejected.append((delivery, _describe(exc)))
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
        if todo and tracer is None:
            current.set(None)
        for delivery, error in failed:
            await self._fail(delivery, error)
        for delivery, error in rejected:
            self.stats.failed += 1
            self.stats.last_error = error
            await self._dead_letter(delivery, error)
        if done:
            await self.backend.ack(self.group, done)
            if len(done) > skipped:
                self._delivered.inc(len(done) - skipped)

    async def _handle_batch(self, deliveries: Sequence[Delivery]) -> None:
        todo, done = await self._screen(deliveries)
        skipped = len(done)
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
            except TimeoutError:
                failed = {d.event.id for d in todo}
                error = (
                    f"TimeoutError: batch handler did not finish within {self._handler_timeout}s"
                )
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
            if len(done) > skipped:
                self._delivered.inc(len(done) - skipped)

    async def _fail(self, delivery: Delivery, error: str) -> None:
        self.stats.failed += 1
        self.stats.last_error = error
        machine = DeliveryAttempt(delivery.attempt, self.retry, last_error=delivery.last_error)
        machine.start()  # screened: not exhausted, so this is HANDLING
        decision = machine.fail(error)
        if isinstance(decision, GiveUp):
            await self._dead_letter(delivery, decision.reason)
            return
        logger.info(
            "event %s failed in %s (attempt %d/%d): %s; retrying in %.2fs",
            delivery.event.id,
            self.group,
            delivery.attempt,
            self._max_attempts,
            error,
            decision.delay,
            extra=self._log_extra(delivery),
        )
        await self.backend.release(
            self.group, delivery.receipt, delay=decision.delay, error=decision.error
        )
        self.stats.retried += 1  # counted once the backend has it, so stats never run ahead
        self._retried.inc()

    async def _dead_letter(self, delivery: Delivery, error: str) -> None:
        await self.backend.dead_letter(self.group, delivery.receipt, error=error)
        self.stats.dead_lettered += 1
        self._dead.inc()
        logger.warning(
            "event %s dead-lettered in %s after %d attempt(s): %s",
            delivery.event.id,
            self.group,
            delivery.attempt,
            error,
            extra=self._log_extra(delivery),
        )

    def _log_extra(self, delivery: Delivery) -> dict[str, Any]:
        # Structured fields for log handlers (JSON formatters read them off the record).
        event = delivery.event
        return {
            "event_id": event.id,
            "event_type": event.type,
            "event_source": event.source,
            "group": self.group,
            "consumer": self.name,
            "attempt": delivery.attempt,
        }
