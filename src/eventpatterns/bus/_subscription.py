"""Live subscriptions: one reader per bus fans the log out to bounded local buffers."""

from __future__ import annotations

import base64
import functools
import json
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskStatus

from ..core import Event, format_time
from ..errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    PositionExpired,
    SubscriberOverflow,
)
from ._contract import BusBackend, LogEntry, Position

__all__ = ["EARLIEST", "Gap", "Overflow", "SupportsMatch", "Subscription", "as_matcher"]

#: ``subscribe(since=EARLIEST)`` replays the whole retained history first.
EARLIEST = "earliest"

#: From this many distinct filter patterns on, the bus's reader matches each entry
#: once against a shared :class:`~eventpatterns.filters.PatternIndex` instead of once
#: per pattern (the index costs about as much as ~40 single matchers per entry).
INDEX_THRESHOLD = 64

logger = logging.getLogger("eventpatterns.bus")

#: What a subscriber that falls ``buffer`` events behind gets.
Overflow = Literal["drop_oldest", "disconnect"]


@runtime_checkable
class SupportsMatch(Protocol):
    """Anything with ``matches(event_json) -> bool``, e.g. a compiled filter."""

    def matches(self, event: dict[str, Any], /) -> bool:
        """Tell whether the event (CloudEvents JSON form) is wanted."""
        ...


def as_matcher(pattern: SupportsMatch | Mapping[str, Any] | None) -> SupportsMatch | None:
    """Compile an EventBridge-style pattern dict, or pass a matcher through."""
    if pattern is None or isinstance(pattern, SupportsMatch):
        return pattern
    if isinstance(pattern, Mapping):
        return _compile_cached(json.dumps(pattern, sort_keys=True, default=str))
    raise ConfigurationError(
        f"pattern must be a dict (an EventBridge event pattern) or have a matches() method,"
        f" got {type(pattern).__name__}"
    )


_PLAIN_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "subject", "datacontenttype", "dataschema"}
)


def event_view(event: Event, keys: frozenset[str]) -> dict[str, Any]:
    """Return the part of ``event.to_dict()`` under ``keys`` (same values, less work)."""
    out: dict[str, Any] = {}
    for key in keys:
        if key in _PLAIN_ATTRIBUTES:
            value = getattr(event, key)
            if value is not None:
                out[key] = value
        elif key == "data":
            if event.data is not None and not isinstance(event.data, bytes):
                out[key] = event.data
        elif key == "data_base64":
            if isinstance(event.data, bytes):
                out[key] = base64.b64encode(event.data).decode("ascii")
        elif key == "time":
            if event.time is not None:
                out[key] = format_time(event.time)
        elif key in event.extensions:
            out[key] = event.extensions[key]
    return out


@functools.lru_cache(maxsize=4096)
def _compile_cached(canonical: str) -> SupportsMatch:
    # Equal patterns share one matcher, so the hub evaluates each distinct pattern once.
    from ..filters import compile as compile_pattern

    matcher: SupportsMatch = compile_pattern(json.loads(canonical))
    return matcher


@dataclass(frozen=True, slots=True)
class Gap:
    """In-band signal that a slow subscriber missed events (``overflow="drop_oldest"``).

    Attributes:
        missed: How many matching events were dropped, or ``None`` when unknown
            (the bus's own reader fell behind the backend's retention).
        after: Position of the last event delivered before the gap; resubscribe with
            ``since=after`` to fetch what was missed, while history lasts.
    """

    missed: int | None
    after: Position | None


class _Hub:
    """One reader of the log per bus; pushes every new entry to each subscription."""

    def __init__(self, backend: BusBackend, *, batch: int = 1000) -> None:
        self.backend = backend
        self.batch = batch
        self.subs: list[Subscription] = []
        self.cursor: Position | None = None
        self._index: Any = None  # a PatternIndex, once there are many distinct patterns
        self._indexed: dict[int, SupportsMatch] = {}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self.cursor = await self.backend.last_position()
        task_status.started()
        failures = 0
        while True:
            try:
                entries = await self.backend.read(self.cursor, limit=self.batch, wait=5.0)
            except PositionExpired as exc:
                # The reader fell behind retention: every subscriber hears of the gap.
                logger.warning("bus reader fell behind retention: %s", exc)
                for sub in list(self.subs):
                    sub._gap()
                self.cursor = None
                continue
            except BackendUnavailable as exc:
                failures += 1
                delay = min(0.05 * 2**failures, 5.0)
                logger.warning(
                    "bus reader: backend unavailable (%s); retrying in %.2fs", exc, delay
                )
                await anyio.sleep(delay)
                continue
            except BusClosed:
                return
            failures = 0
            if entries:
                self.fan_out(entries)
                self.cursor = entries[-1].position

    def fan_out(self, entries: list[LogEntry]) -> None:
        """Push a batch of new entries to every subscription whose filter wants them.

        Subscriptions sharing a matcher (equal dict patterns compile to one matcher)
        share its verdict, so the filter runs once per entry per distinct pattern;
        from :data:`INDEX_THRESHOLD` distinct compiled patterns on, they are held in a
        :class:`~eventpatterns.filters.PatternIndex`, whose cost per entry does not
        grow with their number.
        """
        if not self.subs:
            return
        groups: dict[int, tuple[SupportsMatch | None, list[Subscription]]] = {}
        for sub in self.subs:
            key = id(sub._matcher)
            if key in groups:
                groups[key][1].append(sub)
            else:
                groups[key] = (sub._matcher, [sub])
        indexed = self._sync_index(groups)
        by_group: dict[int, list[LogEntry]] = {}
        if indexed:
            match = self._index.match
            for entry in entries:
                for key in match(entry.event.to_dict()):
                    by_group.setdefault(key, []).append(entry)
        as_json: list[dict[str, Any]] | None = None
        # With one or two patterns, building just the fields each reads is cheapest;
        # with more, one full JSON form per entry is shared by all of them.
        views = len(groups) - len(indexed) <= 3
        for key, (matcher, subs) in groups.items():
            if matcher is None:
                matched = entries
            elif key in indexed:
                matched = by_group.get(key, [])
            else:
                matches = matcher.matches
                keys = getattr(matcher, "top_level_keys", None)
                if views and keys is not None and "time" not in keys and len(keys) <= 4:
                    # Build only the fields the pattern reads (formatting ``time`` is
                    # the costly part of the full JSON form).
                    matched = [e for e in entries if matches(event_view(e.event, keys))]
                else:
                    if as_json is None:
                        as_json = [entry.event.to_dict() for entry in entries]
                    matched = [e for e, j in zip(entries, as_json, strict=True) if matches(j)]
            if matched:
                for sub in subs:
                    sub._push_many(matched)

    def _sync_index(
        self, groups: dict[int, tuple[SupportsMatch | None, list[Subscription]]]
    ) -> set[int]:
        """Hold the compiled patterns in the shared index when there are many of them."""
        if len(groups) < INDEX_THRESHOLD:
            if self._indexed:  # few patterns again: matching one by one is cheaper
                self._index, self._indexed = None, {}
            return set()
        from ..filters import Matcher, PatternIndex  # the bus loads filters on first use

        compiled = {k: m for k, (m, _) in groups.items() if isinstance(m, Matcher)}
        if len(compiled) < INDEX_THRESHOLD:
            return set()
        if self._index is None:
            self._index = PatternIndex()
        held = self._indexed
        for key in held.keys() - compiled.keys():
            self._index.remove(key)
            del held[key]
        for key in compiled.keys() - held.keys():
            self._index.add(key, compiled[key])
            held[key] = compiled[key]  # a strong reference: the id cannot be reused
        return set(compiled)


class Subscription:
    """A live stream of matching events, optionally replaying history first.

    Use it as an async context manager, then iterate. Items are :class:`Event`, or a
    :class:`Gap` when the subscriber fell behind and events were dropped.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     async with EventBus.from_url("memory://") as bus:
        ...         async with bus.subscribe({"type": ["order.created"]}) as sub:
        ...             async for item in sub:
        ...                 print(item)
    """

    def __init__(
        self,
        bus: Any,
        matcher: SupportsMatch | None,
        *,
        since: Position | None,
        buffer: int,
        overflow: Overflow,
        replay_page: int = 500,
    ) -> None:
        if buffer < 1:
            raise ConfigurationError(f"buffer must be at least 1, got {buffer}")
        if overflow not in ("drop_oldest", "disconnect"):
            raise ConfigurationError(
                f"overflow must be 'drop_oldest' or 'disconnect', got {overflow!r}"
            )
        self._bus = bus
        self._backend: BusBackend = bus.backend
        self._matcher = matcher
        self._since = since
        self._maxlen = buffer
        self._overflow = overflow
        self._page_size = replay_page
        self._buf: deque[LogEntry] = deque()
        self._waiter: anyio.Event | None = None
        self._missed = 0
        self._unknown_gap = False
        self._overflowed = False
        self._closed = False
        self._entered = False
        self._replaying = since is not None
        self._replay_dropped = False
        self._fast = since is None  # live, no gap to report, nothing to skip
        self._page: deque[LogEntry] = deque()
        self._skip_key: tuple[int, ...] | None = None
        start = None if since == EARLIEST else since
        self._replay_cursor: Position | None = start
        #: The log position this subscription has reached: resubscribe with
        #: ``since=sub.position`` to resume without a gap or a duplicate.
        self.position: Position | None = start
        #: How many events were dropped for this subscriber in total.
        self.dropped = 0

    # -- called by the hub ------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def _push_many(self, entries: list[LogEntry]) -> None:
        buf = self._buf
        if len(buf) + len(entries) <= self._maxlen:
            buf.extend(entries)
        else:
            for entry in entries:
                if len(buf) >= self._maxlen:
                    if self._replaying:
                        buf.popleft()  # still in the log: the replay reads it again
                        self._replay_dropped = True
                    elif self._overflow == "drop_oldest":
                        buf.popleft()
                        self._missed += 1
                        self.dropped += 1
                        self._fast = False
                    else:
                        self._overflowed = True
                        self._detach()
                        break
                buf.append(entry)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def _gap(self) -> None:
        """The bus's reader lost entries (it fell behind retention)."""
        if self._replaying:
            self._replay_dropped = True  # the replay re-reads the log (or hears it expired)
        elif self._overflow == "disconnect":
            self._overflowed = True
            self._detach()
        else:
            self._unknown_gap = True
            self._fast = False
        self._wake()

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a Subscription can be entered only once")
        self._entered = True
        hub = await self._bus._ensure_hub()
        hub.subs.append(self)  # buffer live entries from now on, before replay starts
        if self._since is not None:
            try:
                if self.position is not None:
                    self._skip_key = self._backend.sort_key(self.position)
                await self._fill_page()  # raises PositionExpired now, not at first read
            except BaseException:
                self._detach()
                raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop receiving; iteration ends. Idempotent."""
        self._closed = True
        self._detach()
        self._wake()
        await anyio.lowlevel.checkpoint()

    def _detach(self) -> None:
        hub = self._bus._hub
        if hub is not None and self in hub.subs:
            hub.subs.remove(self)

    def _end(self) -> None:
        """Called by the bus when it closes."""
        self._closed = True
        self._wake()

    # -- iteration ----------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def _fill_page(self) -> bool:
        self._replay_dropped = False
        page = await self._backend.read(self.position, limit=self._page_size)
        if not page:
            return False
        matcher = self._matcher
        for entry in page:
            if matcher is None or matcher.matches(entry.event.to_dict()):
                self._page.append(entry)
        self._replay_cursor = page[-1].position
        return True

    async def __anext__(self) -> Event | Gap:
        buf = self._buf
        if buf and self._fast:
            entry = buf.popleft()
            self.position = entry.position
            return entry.event
        return await self._next_slow()

    async def _next_slow(self) -> Event | Gap:
        if not self._entered:
            raise RuntimeError(
                "enter the subscription first: `async with bus.subscribe(...) as sub:`"
            )
        while self._replaying:
            if self._page:
                entry = self._page.popleft()
                self.position = entry.position
                return entry.event
            if self._closed:
                raise StopAsyncIteration
            self.position = self._replay_cursor
            if await self._fill_page() or self._replay_dropped:
                continue
            # Caught up: go live, skipping buffered entries the replay already covered.
            self._replaying = False
            self._skip_key = self._backend.sort_key(self.position) if self.position else None
        while True:
            self._fast = self._skip_key is None and not self._missed and not self._unknown_gap
            if self._unknown_gap:
                self._unknown_gap = False
                self._missed = 0
                return Gap(None, self.position)
            if self._missed:
                missed, self._missed = self._missed, 0
                return Gap(missed, self.position)
            buf = self._buf
            if buf:
                entry = buf.popleft()
                if self._skip_key is not None:
                    if self._backend.sort_key(entry.position) <= self._skip_key:
                        continue
                    self._skip_key = None
                self.position = entry.position
                return entry.event
            if self._overflowed:
                self._fast = False
                raise SubscriberOverflow(buffer=self._maxlen, position=self.position)
            if self._closed:
                raise StopAsyncIteration
            waiter = self._waiter = anyio.Event()
            await waiter.wait()
