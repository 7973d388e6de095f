"""The bus's one reader of the log per process, fanning entries out to subscriptions."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from ..errors import BackendUnavailable, BusClosed, PositionExpired
from ._contract import BusBackend, LogEntry, Position
from ._matching import SupportsMatch, event_view

if TYPE_CHECKING:
    from ._subscription import Subscription

__all__ = ["INDEX_THRESHOLD"]

logger = logging.getLogger("eventpatterns.bus")

#: From this many distinct filter patterns on, the bus's reader matches each entry
#: once against a shared :class:`~eventpatterns.filters.PatternIndex` instead of once
#: per pattern (measured: the index breaks even at about 4 patterns, is 1.3x faster at
#: 8, 3x at 32; ``benchmarks/bus_memory.py``).
INDEX_THRESHOLD = 8


class _Hub:
    """One reader of the log per bus; pushes every new entry to each subscription."""

    def __init__(self, backend: BusBackend, *, batch: int = 1000) -> None:
        self.backend = backend
        self.batch = batch
        self.subs: list[Subscription] = []
        self.cursor: Position | None = None
        self.scope = anyio.CancelScope()
        self._index: Any = None  # a PatternIndex, once there are many distinct patterns
        self._indexed: dict[int, SupportsMatch] = {}

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Read the log and fan it out until :meth:`stop` (or cancellation)."""
        with self.scope:
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

    def stop(self) -> None:
        """Stop reading (the bus calls this when it closes)."""
        self.scope.cancel()

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
