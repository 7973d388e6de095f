"""The bus's one reader of the log per process, fanning entries out to subscribers.

:class:`LogReader` is the state the bus's parts share: the bus creates one, each
:class:`~eventpatterns.bus.Subscription` attaches a :class:`Sink` to it, and the
reader pushes every new matching entry to the sinks. None of them reaches into the
others' privates, so a subscription can be driven with a reader and a backend alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..errors import BackendUnavailable, BusClosed, InvalidPosition, ResyncRequired
from ._contract import BusBackend, LogEntry, Position
from ._matching import SupportsMatch, event_view, type_probes

__all__ = ["INDEX_THRESHOLD", "LogReader", "Sink"]

logger = logging.getLogger("eventpatterns.bus")

#: From this many distinct filter patterns on, the bus's reader matches each entry
#: once against a shared :class:`~eventpatterns.filters.PatternIndex` instead of once
#: per pattern (measured: the index breaks even at about 4 patterns, is 1.3x faster at
#: 8, 3x at 32; ``benchmarks/bus_memory.py``).
INDEX_THRESHOLD = 8


class Sink(Protocol):
    """What the reader pushes to: one per subscriber.

    The reader calls these from its own task, never concurrently, and does not await
    them: they must return at once.
    """

    #: Only entries this accepts are pushed (``None``: all). Sinks holding the same
    #: matcher object share one evaluation per entry.
    matcher: SupportsMatch | None

    def push(self, entries: list[LogEntry], /) -> None:
        """Take new matching entries, in log order (the list is shared: do not mutate)."""
        ...

    def lost(self) -> None:
        """Entries after the last push were lost (the reader fell behind retention)."""
        ...

    def end(self) -> None:
        """The reader stopped for good (its bus closed); nothing more will be pushed."""
        ...


class LogReader:
    """One reader of the log per bus; pushes every new entry to the attached sinks.

    Args:
        backend: The log to read.
        task_group: Where the reading task runs; it starts with the first
            :meth:`attach`.
        batch: Most entries read per call.
    """

    def __init__(self, backend: BusBackend, task_group: TaskGroup, *, batch: int = 1000) -> None:
        self.backend = backend
        self.batch = batch
        self.sinks: list[Sink] = []
        self.cursor: Position | None = None
        self._task_group = task_group
        self._started = False
        self._closed = False
        self._lock = anyio.Lock()
        self._scope = anyio.CancelScope()
        self._index: Any = None  # a PatternIndex, once there are many distinct patterns
        self._indexed: dict[int, SupportsMatch] = {}
        # The probes of the distinct matchers fanned out to last (held, so that their
        # ids cannot be reused), and their union (None: some matcher has none).
        self._screened: dict[int, SupportsMatch | None] = {}
        self._probes: tuple[bytes, ...] | None = None

    async def attach(self, sink: Sink) -> None:
        """Push entries appended from now on to ``sink`` (start reading if needed).

        Raises:
            BusClosed: The reader was closed.
            BackendUnavailable: Starting: the log's end could not be read.
        """
        if not self._started:
            async with self._lock:
                if not self._started and not self._closed:
                    await self._task_group.start(self._run)
                    self._started = True
        if self._closed:
            raise BusClosed("the event bus is closed")
        self.sinks.append(sink)

    def detach(self, sink: Sink) -> None:
        """Stop pushing to ``sink`` (no error if it is not attached)."""
        if sink in self.sinks:
            self.sinks.remove(sink)

    def close(self) -> None:
        """Stop reading and tell every sink it ended. Idempotent."""
        self._closed = True
        self._scope.cancel()
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            sink.end()

    async def _run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        # Expected failures are handled here (retried, or told to the sinks), so they
        # never reach the bus's task group; anything else is a bug and does.
        with self._scope:
            self.cursor = await self.backend.last_position()
            task_status.started()
            failures = 0
            while True:
                try:
                    entries = await self.backend.read(self.cursor, limit=self.batch, wait=5.0)
                except (ResyncRequired, InvalidPosition) as exc:
                    # Fell behind retention, or the log was recreated (another epoch):
                    # every subscriber hears of the gap; read on from the oldest entry.
                    logger.warning("bus reader lost its place in the log: %s", exc)
                    for sink in list(self.sinks):
                        sink.lost()
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
                    self.close()
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
        if not self.sinks:
            return
        groups: dict[int, tuple[SupportsMatch | None, list[Sink]]] = {}
        for sink in self.sinks:
            matcher = sink.matcher
            key = id(matcher)
            if key in groups:
                groups[key][1].append(sink)
            else:
                groups[key] = (matcher, [sink])
        probes = self._screen(groups)
        if probes is not None:
            # Every pattern names the event types it wants: an entry the backend hands
            # undecoded (``raw``: its ``Event.to_json()`` bytes) whose text names none
            # of them is wanted by nobody, and is skipped without being decoded.
            entries = [e for e in entries if _may_want(e, probes)]
            if not entries:
                return
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
        for key, (matcher, sinks) in groups.items():
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
                for sink in sinks:
                    sink.push(matched)

    def _screen(
        self, groups: dict[int, tuple[SupportsMatch | None, list[Sink]]]
    ) -> tuple[bytes, ...] | None:
        """Return the union of every distinct matcher's type probes (``None``: no screen)."""
        if groups.keys() != self._screened.keys():
            self._screened = {key: matcher for key, (matcher, _) in groups.items()}
            self._probes = _union_of_probes(self._screened.values())
        return self._probes

    def _sync_index(self, groups: dict[int, tuple[SupportsMatch | None, list[Sink]]]) -> set[int]:
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


def _union_of_probes(matchers: Iterable[SupportsMatch | None]) -> tuple[bytes, ...] | None:
    """Every matcher's type probes, once each (``None`` if one of them has none)."""
    union: list[bytes] = []
    for matcher in matchers:
        found = type_probes(matcher)
        if found is None:
            return None
        union.extend(found)
    return tuple(dict.fromkeys(union))


def _may_want(entry: LogEntry, probes: tuple[bytes, ...]) -> bool:
    """Tell whether ``entry`` may hold an event of a probed type (decoded ones may)."""
    raw = getattr(entry, "raw", None)
    if raw is None:
        return True
    for probe in probes:  # noqa: SIM110 - any() of a generator costs more, per entry
        if probe in raw:
            return True
    return False
