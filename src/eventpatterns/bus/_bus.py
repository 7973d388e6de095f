"""The :class:`EventBus` façade."""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import sys
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import anyio
from anyio.abc import TaskGroup

from ..core import Event, EventModel
from ..errors import (
    ArgumentTypeError,
    BusClosed,
    ConfigurationError,
    DeadLetterNotFound,
    InvalidState,
)
from ..observability import _trace
from ..observability._metrics import Sample, metrics
from ._claims import ClaimCheck, ClaimedSubscription
from ._consumer import BatchHandler, Consumer, Handler, Timeouts
from ._contract import BusBackend, DeadLetter, GroupStats, Position, check_group_name
from ._explain import explain_for
from ._matching import SupportsMatch, as_matcher
from ._reader import LogReader, Sink
from ._retry import Retry
from ._subscription import Overflow, Subscription
from ._typed import InvalidHook, TypedSubscription, model_of, typed_handler, typed_pattern

if TYPE_CHECKING:
    from ..filters import Explanation

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

__all__ = ["EventBus"]

logger = logging.getLogger("eventpatterns.bus")
_PUBLISHED = metrics.counter("eventpatterns_bus_published_total")

#: URL scheme -> "module:class" of a backend with a ``from_url(url, **options)`` classmethod.
BACKENDS: dict[str, str] = {
    "memory": "eventpatterns.backends.memory:MemoryBusBackend",
    "redis": "eventpatterns.backends.redis:RedisBusBackend",
    "rediss": "eventpatterns.backends.redis:RedisBusBackend",
    "unix": "eventpatterns.backends.redis:RedisBusBackend",
    "aws": "eventpatterns.backends.aws:AWSBusBackend",
}

Pattern = SupportsMatch | Mapping[str, Any] | None
M = TypeVar("M", bound=EventModel)
T = TypeVar("T")

# Immutable value objects, so one instance can be every call's default (httpx does the
# same with its ``DEFAULT_TIMEOUT_CONFIG``).
DEFAULT_RETRY = Retry()
DEFAULT_TIMEOUTS = Timeouts()


class EventBus:
    """Publish/subscribe with durable consumer groups, over a pluggable backend.

    Use it as an async context manager; it owns a task group in which the shared log
    reader and the consumers run.

    An exception raised inside the ``async with`` block (by your code or by a bus
    call) comes out of it as itself, not wrapped in an ``ExceptionGroup``; so does a
    failure of one of the bus's own tasks, when it is the only error. Only when
    several errors happened at once (your block raised while a bus task failed)
    does a ``BaseExceptionGroup`` holding all of them come out.

    Args:
        backend: Any :class:`~eventpatterns.bus.BusBackend`; the bus closes it on exit.
        claim_check: Offload large event data to a blob store (:class:`ClaimCheck`);
            subscribers and consumers of this bus get it back transparently.

    Example:
        ```python
        import anyio
        from eventpatterns import Event, EventBus

        async def main() -> None:
            async with EventBus.from_url("memory://") as bus:
                async with bus.subscribe({"type": ["greeting"]}) as sub:
                    await bus.publish(Event(type="greeting", source="/docs", data="hi"))
                    async for event in sub:  # an Event; a gap raises EventsMissed
                        print(event.data)
                        break

        anyio.run(main)
        ```
    """

    def __init__(self, backend: BusBackend, *, claim_check: ClaimCheck | None = None) -> None:
        if claim_check is not None and not isinstance(claim_check, ClaimCheck):
            raise ArgumentTypeError(
                "EventBus", "claim_check", expected="a ClaimCheck", got=claim_check
            )
        self.backend = backend
        self.claim_check = claim_check
        self._tg: TaskGroup | None = None
        self._reader: LogReader | None = None
        self._consumers: weakref.WeakSet[Consumer] = weakref.WeakSet()
        self._names = itertools.count(1)
        self._closed = False
        self._unregister_source: Callable[[], None] | None = None

    @classmethod
    def from_url(
        cls, url: str, *, claim_check: ClaimCheck | None = None, **options: Any
    ) -> EventBus:
        """Create a bus from a URL: ``memory://`` or ``redis://host:6379/0``.

        Keyword options go to the backend's constructor (``claim_check`` to the bus).

        Raises:
            ConfigurationError: Unknown scheme or bad option.
            MissingDependency: The backend's extra is not installed.
        """
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        target = BACKENDS.get(scheme)
        if target is None:
            known = ", ".join(f"{s}://" for s in BACKENDS)
            raise ConfigurationError(f"unknown bus URL scheme in {url!r}; expected one of {known}")
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        backend_cls = getattr(module, attr)
        return cls(backend_cls.from_url(url, **options), claim_check=claim_check)

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> EventBus:
        if self._tg is not None or self._closed:
            raise InvalidState(
                "an EventBus can be entered only once",
                state="closed" if self._closed else "running",
            )
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._reader = LogReader(self.backend, tg)
        self._unregister_source = metrics.source(_GroupDepths(weakref.ref(self)))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            if self._tg is None:
                return None
            self._tg.cancel_scope.cancel()
            try:
                return await self._tg.__aexit__(exc_type, exc, tb)
            except BaseExceptionGroup as group:
                # The task group wraps whatever it saw, also the block's own exception
                # (anyio/trio always group). One error comes out as itself, so that
                # `except BackendUnavailable:` around the block works.
                if len(group.exceptions) == 1:
                    only = group.exceptions[0]
                    if only is exc:
                        return False  # re-raise the block's exception, traceback intact
                    raise only from None
                raise
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop consumers and subscriptions and close the backend. Idempotent.

        Called inside the ``async with`` block, it stops the bus's own tasks (not the
        code around the call); later calls on the bus raise ``BusClosed``.
        """
        if self._closed:
            return
        self._closed = True
        if self._unregister_source is not None:
            self._unregister_source()
        if self._reader is not None:
            self._reader.close()  # open subscriptions end after what they hold
        for consumer in list(self._consumers):
            consumer.stop()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await self.backend.aclose()

    @property
    def running(self) -> bool:
        """Whether the bus is entered and not closed (what a health check reports)."""
        return self._tg is not None and not self._closed

    def _running(self) -> TaskGroup:
        if self._closed:
            raise BusClosed("the event bus is closed")
        if self._tg is None:
            raise InvalidState(
                "use the bus as an async context manager: `async with EventBus(...) as bus:`",
                state="new",
            )
        return self._tg

    # -- publishing -----------------------------------------------------------------------

    async def publish(self, event: Event | EventModel) -> Position:
        """Append one event to the log and return its position.

        A typed event (an :class:`~eventpatterns.core.EventModel` instance) is sent as
        the CloudEvent its ``to_event()`` builds.

        Publishing an event id again within the backend's dedupe window is a no-op that
        returns the original position, so a publish can be retried safely.

        Raises:
            ArgumentTypeError: ``event`` is not an :class:`Event` (also a ``TypeError``).
            EventTooLarge: Over the backend's ``max_message_size``.
            BusClosed: The bus is closed.
            InvalidState: The bus was not entered (``async with``).
            BackendUnavailable: The backend could not be reached.
        """
        return await self._publish(event, True)

    async def _publish_unique(self, event: Event) -> Position:
        """:meth:`publish` an event whose id was never published (the caller's promise).

        As the job tracker's ``<job id>.<version>``, written once by its
        compare-and-swap: a backend with ``capabilities.unique_appends`` (Redis) then
        keeps no dedupe record for it (``GET`` + ``SET`` fewer); another dedupes as
        usual. (Not an option of :meth:`publish`: subclasses override that one.)
        """
        return await self._publish(event, False)

    async def _publish(self, event: Event | EventModel, dedupe: bool) -> Position:
        if isinstance(event, EventModel):
            event = event.to_event()
        elif not isinstance(event, Event):
            raise ArgumentTypeError("publish", "event", expected="an Event", got=event)
        if self._tg is None or self._closed:
            self._running()  # raises the right error
        tracer = _trace.otel_tracer()
        try:
            if tracer is None:
                if event.extensions or _trace.CURRENT.get() is not None:  # stamp()'s test
                    event = _trace.stamp(event)
                position = await self._append(event, dedupe)
            else:
                with _trace.producer_span(tracer, event) as event:
                    position = await self._append(event, dedupe)
        except Exception as exc:
            self._publish_failed(exc, event)
            raise
        _PUBLISHED.inc()
        return position

    async def _publish_via(
        self, event: Event, write: Callable[[Event], Awaitable[tuple[T, bool]]]
    ) -> T:
        """Publish ``event`` by ``write(event)``: another part's step that appends it.

        For a store that appends an event to this bus's log in the same script as the
        change it announces (the Redis job store's outbox). As :meth:`publish` does,
        the event given to ``write`` carries the current trace context (in a PRODUCER
        span when OpenTelemetry is set up), and it counts in
        ``eventpatterns_bus_published_total`` when ``write`` says it appended it (its
        second value; ``False``: nothing was written, as for an idempotent repeat).
        Errors of ``write`` are its own (a store's), raised as they are and not counted
        as failed publishes: the caller decides whether to publish another way.
        """
        tracer = _trace.otel_tracer()
        if tracer is None:
            if event.extensions or _trace.CURRENT.get() is not None:  # stamp()'s test
                event = _trace.stamp(event)
            result, appended = await write(event)
        else:
            with _trace.producer_span(tracer, event) as event:
                result, appended = await write(event)
        if appended:
            _PUBLISHED.inc()
        return result

    def _count_published(self, count: int) -> None:
        """Count ``count`` events another part's script appended (a store's outbox)."""
        if count:
            _PUBLISHED.inc(count)

    async def _append(self, event: Event, dedupe: bool = True) -> Position:
        backend = self.backend
        if self.claim_check is not None:
            limit = backend.capabilities.max_message_size
            event = await self.claim_check.offload(event, limit=limit)
        if not dedupe and backend.capabilities.unique_appends:
            return (await backend.append((event,), dedupe=False))[0]  # type: ignore[call-arg]
        return (await backend.append((event,)))[0]

    def _publish_failed(self, exc: Exception, event: Event) -> None:
        metrics.inc("eventpatterns_bus_publish_failures_total", error=type(exc).__name__)
        logger.warning(
            "publishing event %s (%s) failed: %s",
            event.id,
            event.type,
            exc,
            extra={"event_id": event.id, "event_type": event.type, "event_source": event.source},
        )

    async def publish_batch(self, events: Iterable[Event | EventModel]) -> list[Position]:
        """Append events in order, in as few round trips as the backend allows.

        Nothing is appended when one item is not an :class:`Event`.

        Raises:
            ArgumentTypeError: An item is not an :class:`Event` (also a ``TypeError``).
            EventTooLarge: An event is over ``max_message_size``; none is appended.
            BusClosed: The bus is closed.
            InvalidState: The bus was not entered (``async with``).
            BackendUnavailable: The backend could not be reached.
        """
        return await self._publish_batch(events, True)

    async def _publish_batch_unique(self, events: Iterable[Event]) -> list[Position]:
        """:meth:`publish_batch` events whose ids were never published (the caller's promise).

        As :meth:`_publish_unique`: no dedupe record on a backend with ``unique_appends``.
        """
        return await self._publish_batch(events, False)

    async def _publish_batch(
        self, events: Iterable[Event | EventModel], dedupe: bool
    ) -> list[Position]:
        batch = [e.to_event() if isinstance(e, EventModel) else e for e in events]
        for index, event in enumerate(batch):
            if not isinstance(event, Event):
                raise ArgumentTypeError(
                    "publish_batch", f"events[{index}]", expected="an Event", got=event
                )
        self._running()
        if not batch:
            return []
        batch = _trace.stamp_all(batch)
        try:
            if self.claim_check is not None:
                limit = self.backend.capabilities.max_message_size
                batch = [await self.claim_check.offload(e, limit=limit) for e in batch]
            if not dedupe and self.backend.capabilities.unique_appends:
                positions = await self.backend.append(batch, dedupe=False)  # type: ignore[call-arg]
            else:
                positions = await self.backend.append(batch)
        except Exception as exc:
            self._publish_failed(exc, batch[0])
            raise
        _PUBLISHED.inc(len(batch))
        return positions

    # -- live subscriptions -------------------------------------------------------------

    @overload
    def subscribe(
        self,
        pattern: type[M],
        *,
        where: Pattern = None,
        since: Position | None = None,
        buffer: int = 1000,
        overflow: Overflow = "drop_oldest",
        on_invalid: InvalidHook | None = None,
        fetch_claims: bool = True,
    ) -> TypedSubscription[M]: ...

    @overload
    def subscribe(
        self,
        pattern: Pattern = None,
        *,
        since: Position | None = None,
        buffer: int = 1000,
        overflow: Overflow = "drop_oldest",
        fetch_claims: bool = True,
    ) -> Subscription: ...

    def subscribe(
        self,
        pattern: Pattern | type[EventModel] = None,
        *,
        where: Pattern = None,
        since: Position | None = None,
        buffer: int = 1000,
        overflow: Overflow = "drop_oldest",
        on_invalid: InvalidHook | None = None,
        fetch_claims: bool = True,
    ) -> Subscription | TypedSubscription[Any]:
        """Open a live stream of matching events (enter it with ``async with``).

        Then ``await sub.receive()`` or ``async for event in sub`` (typed
        :class:`Event`); a gap raises :class:`~eventpatterns.errors.EventsMissed`, or
        comes in-band as a :class:`Gap` from ``sub.items()``.

        Given an :class:`~eventpatterns.core.EventModel` class instead of a pattern, the
        stream holds that model's instances (a :class:`TypedSubscription`): only
        events of its ``type`` (and matching ``where``, if given) arrive, and one whose
        data does not validate is skipped, counted in ``invalid`` and passed to
        ``on_invalid(event, error)`` (logged when there is no hook).

        Args:
            pattern: An EventBridge event pattern (``dict``), any object with
                ``matches(event_json)``, ``None`` for every event, or an
                :class:`~eventpatterns.core.EventModel` class.
            where: With a model: a pattern the events must also match.
            on_invalid: With a model: told of each event whose data is invalid.
            fetch_claims: On a bus with a claim check, fetch claim-checked data back
                (``False``: hand events out with ``data=None`` and their ``dataref``).
            since: Replay events after this position first, then go live with no gap
                and no duplicate; :data:`EARLIEST` replays all retained history.
            buffer: Most undelivered events held for this subscriber.
            overflow: When the buffer is full: ``"drop_oldest"`` (the subscriber gets
                :class:`~eventpatterns.errors.EventsMissed` saying how many were
                dropped) or ``"disconnect"`` (it gets
                :class:`~eventpatterns.errors.SubscriberOverflow`).

        Raises:
            ConfigurationError: A bad ``pattern`` type, ``buffer`` or ``overflow``.
            InvalidPattern: The pattern cannot be compiled (the message names the path).
            BusClosed: The bus is closed.

        On entering, a bad ``since`` raises :class:`~eventpatterns.errors.InvalidPosition`
        (malformed, or beyond the end of the log), or a
        :class:`~eventpatterns.errors.ResyncRequired`:
        :class:`~eventpatterns.errors.StalePosition` (from another incarnation of the
        log, e.g. before a memory bus restarted) or
        :class:`~eventpatterns.errors.PositionExpired` (older than the history kept).
        """
        self._running()
        reader = self._reader
        if reader is None:  # pragma: no cover - set together with the task group
            raise InvalidState("the bus has no reader", state="new")
        typed = isinstance(pattern, type) and issubclass(pattern, EventModel)
        if not typed and (where is not None or on_invalid is not None):
            raise ConfigurationError("where= and on_invalid= go with an EventModel class")
        matcher = as_matcher(typed_pattern(pattern, where) if typed else pattern)  # type: ignore[arg-type]
        options: dict[str, Any] = {"since": since, "buffer": buffer, "overflow": overflow}
        if self.claim_check is not None and fetch_claims:
            sub: Subscription = ClaimedSubscription(
                reader, matcher, claims=self.claim_check, **options
            )
        else:
            sub = Subscription(reader, matcher, **options)
        if typed:
            return TypedSubscription(sub, pattern, on_invalid)  # type: ignore[arg-type]
        return sub

    async def attach(self, sink: Sink) -> Position | None:
        """Push every entry appended from now on to ``sink``; return where that starts.

        The low-level hook the real-time gateway uses to hold one bus subscription per
        process (see :class:`~eventpatterns.bus._reader.Sink` for what a sink
        implements: ``matcher``, ``push``, ``lost``, ``end``; the bus's reader calls
        them from its task and they must not block). Most code wants
        :meth:`subscribe`.

        Returns:
            The position of the last entry pushed to the sinks before this one was
            attached (``None``: the log was empty): ``sink`` receives every entry
            after it, in log order.

        Raises:
            BusClosed: The bus is closed.
            InvalidState: The bus was not entered.
            BackendUnavailable: Starting the reader: the log's end could not be read.
        """
        self._running()
        reader = self._reader
        if reader is None:  # pragma: no cover - set together with the task group
            raise InvalidState("the bus has no reader", state="new")
        await reader.attach(sink)
        return reader.cursor  # attach() and this read run with no await in between

    def detach(self, sink: Sink) -> None:
        """Stop pushing to a sink given to :meth:`attach` (no error if it is not attached)."""
        if self._reader is not None:
            self._reader.detach(sink)

    # -- consumer groups ------------------------------------------------------------------

    async def create_group(
        self, group: str, *, start: Literal["earliest", "latest"] = "latest"
    ) -> bool:
        """Create a consumer group if missing; return whether it was created.

        A new group receives events published from now on (``"latest"``) or also the
        retained history (``"earliest"``).
        """
        self._running()
        check_group_name(group)
        return await self.backend.create_group(group, start=start)

    @overload
    async def consume(
        self,
        group: str,
        handler: Callable[[M], Awaitable[Any]],
        *,
        pattern: Pattern = None,
        retry: Retry = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        prefetch: int = 10,
        concurrency: int = 1,
        start: Literal["earliest", "latest"] = "latest",
        name: str | None = None,
        fetch_claims: bool = True,
    ) -> Consumer: ...

    @overload
    async def consume(
        self,
        group: str,
        handler: Handler,
        *,
        pattern: Pattern = None,
        retry: Retry = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        prefetch: int = 10,
        concurrency: int = 1,
        start: Literal["earliest", "latest"] = "latest",
        name: str | None = None,
        fetch_claims: bool = True,
    ) -> Consumer: ...

    async def consume(
        self,
        group: str,
        handler: Handler | Callable[[M], Awaitable[Any]],
        *,
        pattern: Pattern = None,
        retry: Retry = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        prefetch: int = 10,
        concurrency: int = 1,
        start: Literal["earliest", "latest"] = "latest",
        name: str | None = None,
        fetch_claims: bool = True,
    ) -> Consumer:
        """Start a consumer in ``group``: at-least-once, with retries and dead letters.

        Each event published to the log (and matching ``pattern``) is handled by one
        consumer of the group. A handler whose parameter is annotated with an
        :class:`~eventpatterns.core.EventModel` class (``async def handle(order:
        OrderCreated)``) receives that model's instances, only for events of its
        ``type``; an event whose data does not validate goes to the dead letters at
        once, with the validation errors as the reason (retrying cannot fix it).

        A handler that returns acknowledges the event; one that raises gets it again
        after ``retry.backoff``; after ``retry.max_attempts`` the event goes to the
        group's dead letters with the last error. An event whose
        consumer crashed or hung is redelivered after ``timeouts.visibility``.

        Args:
            group: Consumer group name (created with ``start`` if missing).
            handler: ``async def handler(event)``.
            pattern: Only events matching it (an EventBridge pattern ``dict`` or an
                object with ``matches(event_json)``) are handled; the rest are acked.
            retry: Attempts and backoff (:class:`Retry`).
            timeouts: Visibility and handler timeouts (:class:`Timeouts`).
            prefetch: Deliveries taken per receive.
            concurrency: Handle up to this many deliveries at once (that many
                workers, each a consumer of the group; order is then not kept).
            start: Where a newly created group starts (``"earliest"``: the retained
                history too).
            name: Consumer name within the group (default: unique per process).
            fetch_claims: On a bus with a claim check, hand the handler claim-checked
                events with their data fetched back (``False``: with ``dataref``).

        Returns:
            The running :class:`Consumer`; it stops with the bus, its ``aclose()``,
            or the end of ``async with`` on it. ``await consumer.drain()`` waits
            until what was published has been handled.

        Raises:
            ArgumentTypeError: ``handler`` is not callable, or ``retry`` /
                ``timeouts`` are not a :class:`Retry` / :class:`Timeouts`.
            ConfigurationError: A bad group name or option.
        """
        return await self._start_consumer(
            "consume", group, handler, pattern, retry, timeouts, prefetch, None, concurrency,
            start, name, fetch_claims,
        )  # fmt: skip

    async def consume_batches(
        self,
        group: str,
        handler: BatchHandler,
        *,
        pattern: Pattern = None,
        batch_size: int = 10,
        retry: Retry = DEFAULT_RETRY,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        concurrency: int = 1,
        start: Literal["earliest", "latest"] = "latest",
        name: str | None = None,
        fetch_claims: bool = True,
    ) -> Consumer:
        """Start a consumer whose handler takes lists of events, with partial failure.

        The handler receives up to ``batch_size`` events (those matching ``pattern``)
        and reports the ones that failed, by returning their ids or raising
        :class:`BatchFailure`; only those are retried, the rest are acknowledged.
        Raising anything else (or running past ``timeouts.handler``) fails the whole
        batch. Otherwise as :meth:`consume`.

        Args:
            group: Consumer group name (created with ``start`` if missing).
            handler: ``async def handler(events) -> failed_ids | None``.
            pattern: Only matching events are handed to the handler.
            batch_size: Most events per call (and per receive).
            retry: Attempts and backoff, per event (:class:`Retry`).
            timeouts: Visibility timeout, and the timeout of one handler call.
            concurrency: That many workers, each handling its own batches.
            start: Where a newly created group starts.
            name: Consumer name within the group.
            fetch_claims: As for :meth:`consume`.

        Returns:
            The running :class:`Consumer`.

        Raises:
            ArgumentTypeError: ``handler`` is not callable, or a value object of the
                wrong type.
            ConfigurationError: A bad group name or option.
        """
        return await self._start_consumer(
            "consume_batches", group, handler, pattern, retry, timeouts, batch_size,
            batch_size, concurrency, start, name, fetch_claims,
        )  # fmt: skip

    async def _start_consumer(
        self,
        function: str,
        group: str,
        handler: Handler | BatchHandler | Callable[[Any], Awaitable[Any]],
        pattern: Pattern,
        retry: Retry,
        timeouts: Timeouts,
        prefetch: int,
        batch_size: int | None,
        concurrency: int,
        start: Literal["earliest", "latest"],
        name: str | None,
        fetch_claims: bool = True,
    ) -> Consumer:
        tg = self._running()
        check_group_name(group)
        if not callable(handler):
            raise ArgumentTypeError(function, "handler", expected="an async callable", got=handler)
        model = model_of(handler) if batch_size is None else None
        if model is not None:
            pattern = typed_pattern(model, pattern)
            handler = typed_handler(model, handler)
        if self.claim_check is not None and fetch_claims:
            if batch_size is None:
                handler = self.claim_check.wrap(handler)
            else:
                handler = self.claim_check.wrap_batch(handler)  # type: ignore[arg-type]
        if not isinstance(retry, Retry):
            raise ArgumentTypeError(function, "retry", expected="a Retry", got=retry)
        if not isinstance(timeouts, Timeouts):
            raise ArgumentTypeError(function, "timeouts", expected="a Timeouts", got=timeouts)
        # Everything is checked before the group is created: a bad call changes nothing.
        consumer = Consumer(
            self.backend,
            group,
            handler,
            name=name or f"{os.getpid()}-{next(self._names)}",
            matcher=as_matcher(pattern),
            batch_size=batch_size,
            prefetch=prefetch,
            retry=retry,
            timeouts=timeouts,
            concurrency=concurrency,
            start=start,
        )
        await self.backend.create_group(group, start=start)
        await tg.start(consumer.run)
        self._consumers.add(consumer)
        return consumer

    async def group_stats(self, group: str) -> GroupStats:
        """Return the counters of ``group`` as the backend sees them now.

        Raises:
            GroupNotFound: The group does not exist.
        """
        self._running()
        return await self.backend.group_stats(group)

    async def dead_letters(self, group: str, *, limit: int = 100) -> list[DeadLetter]:
        """List up to ``limit`` dead letters of ``group``, oldest first."""
        self._running()
        return await self.backend.dead_letters(group, limit=limit)

    async def get_dead_letter(self, group: str, dead_letter_id: str) -> DeadLetter:
        """Return one dead letter.

        Raises:
            DeadLetterNotFound: No such id in the group.
        """
        for letter in await self.dead_letters(group, limit=1_000_000):
            if letter.id == dead_letter_id:
                return letter
        raise DeadLetterNotFound(group, dead_letter_id)

    async def redrive(self, group: str, ids: Sequence[str] | None = None) -> int:
        """Deliver dead letters to ``group`` again, with fresh attempts; return how many."""
        self._running()
        count = await self.backend.redrive(group, None if ids is None else list(ids))
        if count:
            metrics.inc("eventpatterns_bus_redriven_total", count, group=group)
            logger.info("redrove %d dead letter(s) of %s", count, group, extra={"group": group})
        return count

    def explain(
        self,
        event: Event | EventModel | Mapping[str, Any],
        *,
        group: str | None = None,
        pattern: Pattern = None,
    ) -> Explanation:
        """Say why ``event`` would (or would not) reach a consumer group or a pattern.

        "Why did my subscription not fire": with ``group``, the pattern of that group's
        consumers running on this bus is explained (an :class:`~eventpatterns.filters.
        Explanation` naming every field condition, the values seen, and why each passed
        or failed); with ``pattern``, that pattern (a ``dict``, as ``subscribe`` takes
        it). A group consuming every event (no pattern) matches everything. This
        explains the filter only: an event also misses a group created after it was
        published (``start="latest"``), or one whose dead letters hold it (see
        :meth:`dead_letters`).

        Args:
            event: The event (an :class:`Event`, a typed event, or its JSON form).
            group: A consumer group with a consumer started on this bus.
            pattern: A pattern instead of a group.

        Raises:
            ConfigurationError: Neither or both of ``group`` and ``pattern``; no
                consumer of ``group`` runs on this bus; or its matcher is a custom
                object (not a filters pattern) that cannot be explained.
            InvalidPattern: ``pattern`` cannot be compiled.

        Example:
            ```python
            import anyio
            from eventpatterns import Event, EventBus


            async def main() -> None:
                async with EventBus.from_url("memory://") as bus:
                    async def bill(event: Event) -> None: ...

                    await bus.consume("billing", bill, pattern={"type": ["order.paid"]})
                    why = bus.explain(Event(type="order.created", source="/shop"), group="billing")
                    print(why.matched, why.failures[0].path)  # False $.type


            anyio.run(main)
            ```
        """
        if (group is None) == (pattern is None):
            raise ConfigurationError("explain() takes either group= or pattern=")
        if isinstance(event, EventModel):
            event = event.to_event()
        if group is None:
            return explain_for(as_matcher(pattern), event, what="the pattern")
        matchers = {id(c.matcher): c.matcher for c in self._consumers if c.group == group}
        if not matchers:
            raise ConfigurationError(
                f"no consumer of group {group!r} runs on this bus: pass its pattern= instead"
            )
        return explain_for(next(iter(matchers.values())), event, what=f"group {group!r}")

    async def _group_depths(self) -> list[Sample]:
        samples: list[Sample] = []
        if self._closed or self._tg is None:
            return samples
        for group in sorted({c.group for c in self._consumers if c.running}):
            stats = await self.backend.group_stats(group)
            labels = {"group": group}
            samples.append(("eventpatterns_bus_group_lag", labels, stats.lag))
            samples.append(("eventpatterns_bus_group_pending", labels, stats.pending))
            samples.append(("eventpatterns_bus_group_dead_letters", labels, stats.dead_letters))
        return samples

    async def discard_dead_letters(self, group: str, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters for good; return how many."""
        self._running()
        return await self.backend.discard_dead_letters(group, None if ids is None else list(ids))


class _GroupDepths:
    """The bus's metrics source: its running groups' lag, pending and dead letters.

    Holds the bus weakly, so that a bus dropped without closing is not kept alive.
    """

    __slots__ = ("bus",)

    def __init__(self, bus: weakref.ref[EventBus]) -> None:
        self.bus = bus

    async def __call__(self) -> list[Sample]:
        bus = self.bus()
        return [] if bus is None else await bus._group_depths()

    def __repr__(self) -> str:
        return "<EventBus group depths>"
