"""The :class:`EventBus` façade."""

from __future__ import annotations

import importlib
import itertools
import os
import weakref
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, overload

import anyio
from anyio.abc import TaskGroup

from ..core import Event
from ..errors import BusClosed, ConfigurationError, DeadLetterNotFound
from ._consumer import Backoff, BatchHandler, Consumer, Handler
from ._contract import BusBackend, DeadLetter, Position, check_group_name
from ._hub import _Hub
from ._matching import SupportsMatch, as_matcher
from ._subscription import Overflow, Subscription

__all__ = ["EventBus"]

#: URL scheme -> "module:class" of a backend with a ``from_url(url, **options)`` classmethod.
BACKENDS: dict[str, str] = {
    "memory": "eventpatterns.backends.memory:MemoryBusBackend",
    "redis": "eventpatterns.backends.redis:RedisBusBackend",
    "rediss": "eventpatterns.backends.redis:RedisBusBackend",
    "unix": "eventpatterns.backends.redis:RedisBusBackend",
}

Pattern = SupportsMatch | Mapping[str, Any] | None


class EventBus:
    """Publish/subscribe with durable consumer groups, over a pluggable backend.

    Use it as an async context manager; it owns a task group in which the shared log
    reader and the consumers run.

    Args:
        backend: Any :class:`~eventpatterns.bus.BusBackend`; the bus closes it on exit.

    Example:
        ```python
        import anyio
        from eventpatterns import Event, EventBus

        async def main() -> None:
            async with EventBus.from_url("memory://") as bus:
                async with bus.subscribe({"type": ["greeting"]}) as sub:
                    await bus.publish(Event(type="greeting", source="/docs", data="hi"))
                    async for event in sub:
                        print(event.data)
                        break

        anyio.run(main)
        ```
    """

    def __init__(self, backend: BusBackend) -> None:
        self.backend = backend
        self._tg: TaskGroup | None = None
        self._hub: _Hub | None = None
        self._hub_lock = anyio.Lock()
        # Weak: a subscription the application dropped (or closed) is not kept alive
        # here; the bus only needs the live ones, to end them when it closes.
        self._subs: weakref.WeakSet[Subscription] = weakref.WeakSet()
        self._consumers: weakref.WeakSet[Consumer] = weakref.WeakSet()
        self._names = itertools.count(1)
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> EventBus:
        """Create a bus from a URL: ``memory://`` or ``redis://host:6379/0``.

        Keyword options go to the backend's constructor.

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
        return cls(backend_cls.from_url(url, **options))

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> EventBus:
        if self._tg is not None or self._closed:
            raise RuntimeError("an EventBus can be entered only once")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
                return await self._tg.__aexit__(exc_type, exc, tb)
            return None
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
        if self._hub is not None:
            self._hub.stop()
        for consumer in list(self._consumers):
            consumer.stop()
        for sub in list(self._subs):
            sub._end()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await self.backend.aclose()

    def _running(self) -> TaskGroup:
        if self._closed:
            raise BusClosed("the event bus is closed")
        if self._tg is None:
            raise RuntimeError(
                "use the bus as an async context manager: `async with EventBus(...) as bus:`"
            )
        return self._tg

    async def _ensure_hub(self) -> _Hub:
        tg = self._running()
        async with self._hub_lock:
            if self._hub is None:
                hub = _Hub(self.backend)
                await tg.start(hub.run)
                self._hub = hub
        return self._hub

    # -- publishing -----------------------------------------------------------------------

    async def publish(self, event: Event) -> Position:
        """Append one event to the log and return its position.

        Publishing an event id again within the backend's dedupe window is a no-op that
        returns the original position, so a publish can be retried safely.

        Raises:
            TypeError: ``event`` is not an :class:`Event`.
            EventTooLarge: Over the backend's ``max_message_size``.
            BackendUnavailable: The backend could not be reached.
        """
        if not isinstance(event, Event):
            raise TypeError(f"publish() takes an Event, got {type(event).__name__}")
        if self._tg is None or self._closed:
            self._running()  # raises the right error
        return (await self.backend.append((event,)))[0]

    async def publish_batch(self, events: Iterable[Event]) -> list[Position]:
        """Append events in order, in as few round trips as the backend allows."""
        batch = list(events)
        for index, event in enumerate(batch):
            if not isinstance(event, Event):
                raise TypeError(
                    f"publish_batch() takes Events; item {index} is {type(event).__name__}"
                )
        self._running()
        if not batch:
            return []
        return await self.backend.append(batch)

    # -- live subscriptions -------------------------------------------------------------

    def subscribe(
        self,
        pattern: Pattern = None,
        *,
        since: Position | None = None,
        buffer: int = 1000,
        overflow: Overflow = "drop_oldest",
    ) -> Subscription:
        """Open a live stream of matching events (enter it with ``async with``).

        Args:
            pattern: An EventBridge event pattern (``dict``), any object with
                ``matches(event_json)``, or ``None`` for every event.
            since: Replay events after this position first, then go live with no gap
                and no duplicate; :data:`EARLIEST` replays all retained history.
            buffer: Most undelivered events held for this subscriber.
            overflow: When the buffer is full: ``"drop_oldest"`` (and yield a
                :class:`Gap` saying how many were dropped) or ``"disconnect"`` (raise
                :class:`~eventpatterns.errors.SubscriberOverflow`).

        Raises:
            PositionExpired: On entering, when ``since`` is older than the history the
                backend retains (a resync is required).
        """
        self._running()
        sub = Subscription(self, as_matcher(pattern), since=since, buffer=buffer, overflow=overflow)
        self._subs.add(sub)
        return sub

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
        handler: Handler,
        pattern: Pattern = None,
        *,
        batch_size: None = None,
        max_attempts: int = ...,
        visibility_timeout: float = ...,
        handler_timeout: float | None = ...,
        backoff: Backoff | None = ...,
        prefetch: int = ...,
        start: Literal["earliest", "latest"] = ...,
        name: str | None = ...,
        poll: float = ...,
        concurrency: int = ...,
    ) -> Consumer: ...

    @overload
    async def consume(
        self,
        group: str,
        handler: BatchHandler,
        pattern: Pattern = None,
        *,
        batch_size: int,
        max_attempts: int = ...,
        visibility_timeout: float = ...,
        handler_timeout: float | None = ...,
        backoff: Backoff | None = ...,
        prefetch: int = ...,
        start: Literal["earliest", "latest"] = ...,
        name: str | None = ...,
        poll: float = ...,
        concurrency: int = ...,
    ) -> Consumer: ...

    async def consume(
        self,
        group: str,
        handler: Handler | BatchHandler,
        pattern: Pattern = None,
        *,
        batch_size: int | None = None,
        max_attempts: int = 5,
        visibility_timeout: float = 30.0,
        handler_timeout: float | None = None,
        backoff: Backoff | None = None,
        prefetch: int = 10,
        start: Literal["earliest", "latest"] = "latest",
        name: str | None = None,
        poll: float = 1.0,
        concurrency: int = 1,
    ) -> Consumer:
        """Start a consumer in ``group``: at-least-once, with retries and dead letters.

        Each event published to the log (and matching ``pattern``) is handled by one
        consumer of the group. A handler that returns acknowledges the event; one that
        raises gets it again after a backoff; after ``max_attempts`` the event goes
        to the group's dead letters with the last error. An event whose consumer
        crashed or hung is redelivered after ``visibility_timeout``.

        Args:
            group: Consumer group name (created with ``start`` if missing).
            handler: ``async def handler(event)``; with ``batch_size``,
                ``async def handler(events) -> failed_ids | None`` (or raise
                :class:`BatchFailure`) so only failed events are retried.
            pattern: Only events matching it are handled; the rest are acked.
            batch_size: Deliver lists of up to this many events.
            max_attempts: Deliveries before an event is dead-lettered.
            visibility_timeout: Seconds an unacked delivery stays with this consumer.
            handler_timeout: Seconds a handler may run (default: ``visibility_timeout``).
            backoff: Delay policy between attempts (default :class:`Backoff()`).
            prefetch: Deliveries taken per receive (single-event handlers).
            start: Where a newly created group starts.
            name: Consumer name within the group (default: unique per process).
            poll: Longest blocking receive, in seconds.
            concurrency: Handle up to this many deliveries at once (that many
                workers, each a consumer of the group; order is then not kept).

        Returns:
            The running :class:`Consumer`; it stops with the bus or its ``aclose()``.
        """
        tg = self._running()
        check_group_name(group)
        await self.backend.create_group(group, start=start)
        consumer = Consumer(
            self.backend,
            group,
            handler,
            name=name or f"{os.getpid()}-{next(self._names)}",
            matcher=as_matcher(pattern),
            batch_size=batch_size,
            prefetch=prefetch,
            max_attempts=max_attempts,
            visibility_timeout=visibility_timeout,
            handler_timeout=handler_timeout,
            backoff=backoff or Backoff(),
            poll=poll,
            concurrency=concurrency,
        )
        await tg.start(consumer.run)
        self._consumers.add(consumer)
        return consumer

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
        return await self.backend.redrive(group, None if ids is None else list(ids))

    async def discard_dead_letters(self, group: str, ids: Sequence[str] | None = None) -> int:
        """Delete dead letters for good; return how many."""
        self._running()
        return await self.backend.discard_dead_letters(group, None if ids is None else list(ids))
