"""The in-memory bus backend: the executable specification of the bus contract.

It really keeps a bounded log, a dedupe window, per-group pending entries with
visibility deadlines and attempt counts, and dead letters. Everything runs in the
event loop's thread; methods do their bookkeeping without awaiting in between, so
each call is atomic with respect to other tasks.
"""

from __future__ import annotations

import heapq
import logging
import math
import secrets
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.lowlevel

from ...bus._contract import (
    Capabilities,
    DeadLetter,
    Delivery,
    GroupStats,
    LogEntry,
    Position,
    check_group_name,
)
from ...core import Clock, Event, SystemClock
from ...errors import (
    BusClosed,
    ConfigurationError,
    DeadLetterNotFound,
    EventTooLarge,
    GroupNotFound,
    InvalidPosition,
    PositionExpired,
    StalePosition,
)
from ._url import parse_memory_url

__all__ = ["MemoryBusBackend"]

logger = logging.getLogger("eventpatterns.bus")

_YIELD_EVERY = 256


@dataclass(slots=True)
class _Pending:
    seq: int
    event: Event
    attempt: int = 0
    error: str | None = None
    token: int = 0  # bumped on every hand-out, so stale heap entries are recognised


@dataclass(slots=True)
class _Group:
    cursor: int  # next log sequence number this group has not seen yet
    ready: list[tuple[float, int, int, int]] = field(
        default_factory=list
    )  # (due, order, seq, token)
    pending: dict[int, _Pending] = field(default_factory=dict)  # seq -> state, ready or in flight
    dead: OrderedDict[str, DeadLetter] = field(default_factory=OrderedDict)
    dead_counter: int = 0
    trimmed_unread: int = 0  # entries trimmed from the log before this group read them


class _Waiter:
    """Wakes blocked readers when the log or a group changes."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event: anyio.Event | None = None

    def notify(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, clock: Clock, seconds: float) -> None:
        if self._event is None:
            self._event = anyio.Event()
        event = self._event
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        if type(clock) is SystemClock:
            # The event loop's own timeline: a cancel-scope deadline, no timer task per
            # wait (that task was a quarter of a point-to-point gateway delivery).
            with anyio.move_on_after(seconds):
                await event.wait()
            return
        # The deadline is fixed now: the timer task starts later, and time that passes
        # (a ManualClock advanced) before it runs must count.
        deadline = clock.time() + seconds
        async with anyio.create_task_group() as tg:

            async def _timer() -> None:
                await clock.sleep(deadline - clock.time())
                tg.cancel_scope.cancel()

            tg.start_soon(_timer)
            await event.wait()
            tg.cancel_scope.cancel()


class MemoryBusBackend:
    """The embedded bus backend, for a single process, tests and development.

    Args:
        clock: Time source for visibility timeouts, delays and the dedupe window.
        max_entries: Retention: the log keeps at most this many entries.
        dedupe_window: Seconds during which a repeated event id is ignored.
        max_message_size: Reject events whose JSON form is larger (``None``: no limit;
            set it to rehearse a real backend's limit).
        epoch: This log's incarnation, the part of every position before the ``:``
            (default: 8 random hex digits, new for every backend object; pass one in
            tests that need stable positions). A position from another epoch, i.e.
            from before a restart, raises :class:`~eventpatterns.errors.StalePosition`.

    Example:
        >>> backend = MemoryBusBackend(max_entries=10_000)
        >>> backend.capabilities.history
        True
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        max_entries: int = 100_000,
        dedupe_window: float = 300.0,
        max_message_size: int | None = None,
        epoch: str | None = None,
    ) -> None:
        if epoch is not None and (not isinstance(epoch, str) or not epoch or ":" in epoch):
            raise ConfigurationError(f"epoch must be a non-empty string without ':', got {epoch!r}")
        if max_entries < 1:
            raise ConfigurationError(f"max_entries must be at least 1, got {max_entries}")
        if dedupe_window < 0:
            raise ConfigurationError(f"dedupe_window must be >= 0, got {dedupe_window}")
        self.clock: Clock = clock or SystemClock()
        self.capabilities = Capabilities(
            ordering="total",
            history=True,
            max_message_size=max_message_size,
            dedupe_window=dedupe_window,
        )
        self._max_entries = max_entries
        #: This log's incarnation; every position is ``f"{epoch}:{sequence number}"``.
        self.epoch: str = epoch or secrets.token_hex(4)
        self._prefix = self.epoch + ":"
        # Events only (a LogEntry is built when read, so the retained log holds no
        # extra objects for the garbage collector to scan), in a list for O(1) access
        # by index; trimming moves ``_head`` and compacts now and then.
        self._log: list[Event] = []
        self._head = 0  # index in _log of the entry numbered _first_seq
        self._first_seq = 1  # sequence number of the oldest retained entry
        self._next_seq = 1
        # Dedupe: id -> seq, expired by whole-second buckets of ids (cheaper than a
        # deadline per id; an id is remembered at most one second beyond the window).
        self._seen: dict[str, int] = {}
        self._seen_buckets: deque[tuple[float, list[str]]] = deque()
        self._bucket_until = -math.inf
        self._groups: dict[str, _Group] = {}
        self._log_changed = _Waiter()
        self._group_changed: dict[str, _Waiter] = {}
        self._order = 0
        self._unyielded = 0
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryBusBackend:
        """Build from ``memory://`` with optional query options (``?max_entries=1000``).

        ``max_entries``, ``max_message_size`` and ``dedupe_window`` are read; the other
        memory stores' options are skipped (one URL serves every store).

        Raises:
            ConfigurationError: Not a ``memory://`` URL, or a bad or unknown option.
        """
        return cls(**parse_memory_url(url, "MemoryBusBackend", options))

    # -- the log --------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed("the memory bus backend is closed")

    async def append(self, events: Sequence[Event]) -> list[Position]:
        """Append events; see :meth:`BusBackend.append`."""
        if self._closed:
            raise BusClosed("the memory bus backend is closed")
        limit = self.capabilities.max_message_size
        if limit is not None:
            for event in events:
                size = len(event.to_json())
                if size > limit:
                    raise EventTooLarge(event.id, size=size, limit=limit)
        seen = self._seen
        bucket = self._dedupe_bucket()
        positions: list[Position] = []
        log = self._log
        for event in events:
            known = seen.get(event.id)
            if known is not None:
                positions.append(self._prefix + str(known))
                continue
            seq = self._next_seq
            self._next_seq = seq + 1
            log.append(event)
            if bucket is not None:
                seen[event.id] = seq
                bucket.append(event.id)
            positions.append(self._prefix + str(seq))
        overflow = self._next_seq - self._first_seq - self._max_entries
        if overflow > 0:
            self._trim(overflow)
        if self._log_changed._event is not None:
            self._log_changed.notify()
        for waiter in self._group_changed.values():
            waiter.notify()
        # Like asyncio.Queue.put on a queue with room, appending does not yield to the
        # event loop every time (readers then take whole batches), but it does yield
        # every few hundred events so a publishing loop cannot starve its readers.
        self._unyielded += len(events)
        if self._unyielded >= _YIELD_EVERY:
            self._unyielded = 0
            await anyio.lowlevel.checkpoint()
        return positions

    def _dedupe_bucket(self) -> list[str] | None:
        """Forget ids whose window has passed; return the list new ids go to."""
        window = self.capabilities.dedupe_window
        if window <= 0:
            return None
        now = self.clock.time()
        if now < self._bucket_until:  # the common case: nothing expires, same bucket
            return self._seen_buckets[-1][1]
        buckets = self._seen_buckets
        seen = self._seen
        while buckets and buckets[0][0] <= now:
            for event_id in buckets.popleft()[1]:
                del seen[event_id]
        expiry = float(math.ceil(now + window))
        if not buckets or buckets[-1][0] != expiry:
            buckets.append((expiry, []))
        # Until then, ``now + window`` still rounds up to ``expiry`` and no bucket is due.
        self._bucket_until = min(buckets[0][0], expiry - window)
        return buckets[-1][1]

    def _trim(self, count: int) -> None:
        self._head += count
        self._first_seq += count
        if self._head > 1024 and 2 * self._head > len(self._log):
            del self._log[: self._head]  # amortised O(1) per trimmed entry
            self._head = 0
        for name, group in self._groups.items():
            if group.cursor < self._first_seq:
                # Counted and logged, never silent: the group fell further behind than
                # retention (raise max_entries, or add consumers).
                lost = self._first_seq - group.cursor
                group.trimmed_unread += lost
                group.cursor = self._first_seq
                logger.warning(
                    "memory bus: %d entries trimmed before group %r read them"
                    " (max_entries=%d); see group_stats()",
                    lost,
                    name,
                    self._max_entries,
                )

    def _seq(self, position: Position) -> int:
        """Return the sequence number of a position of this log, or raise (SPEC-7)."""
        epoch, colon, local = position.partition(":") if isinstance(position, str) else ("", "", "")
        value = int(local) if colon and local.isdecimal() and local.isascii() else 0
        if not epoch or value < 1 or str(value) != local:
            raise InvalidPosition(position, expected="'<epoch>:<sequence number>'")
        if epoch != self.epoch:
            raise StalePosition(position, epoch=self.epoch)
        if value >= self._next_seq:
            raise InvalidPosition(position, expected="a position not beyond the end of the log")
        return value

    def sort_key(self, position: Position) -> tuple[int, ...]:
        """Order positions of this log; see :meth:`BusBackend.sort_key`.

        Raises:
            InvalidPosition: Malformed, or beyond the newest position of this log.
            StalePosition: From another epoch (another incarnation of the log).
        """
        return (self._seq(position),)

    async def read(
        self, after: Position | None, *, limit: int, wait: float = 0.0
    ) -> list[LogEntry]:
        """Read entries after ``after``; see :meth:`BusBackend.read`."""
        self._check_open()
        start = self._first_seq if after is None else self._seq(after) + 1
        if start < self._first_seq:
            raise PositionExpired(str(after), oldest=self._oldest())
        if start >= self._next_seq and wait > 0:
            await self._log_changed.wait(self.clock, wait)
            self._check_open()
            if start < self._first_seq:
                raise PositionExpired(str(after), oldest=self._oldest())
        else:
            await anyio.lowlevel.checkpoint()
        begin = self._head + start - self._first_seq
        page = self._log[begin : begin + limit]
        prefix = self._prefix
        return [LogEntry(prefix + str(start + i), event) for i, event in enumerate(page)]

    def _oldest(self) -> Position | None:
        return self._prefix + str(self._first_seq) if self._next_seq > self._first_seq else None

    async def last_position(self) -> Position | None:
        """Return the newest position, or ``None``."""
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return self._prefix + str(self._next_seq - 1) if self._next_seq > 1 else None

    # -- groups -----------------------------------------------------------------------

    async def create_group(self, group: str, *, start: Literal["earliest", "latest"]) -> bool:
        """Create a group; see :meth:`BusBackend.create_group`."""
        self._check_open()
        check_group_name(group)
        await anyio.lowlevel.checkpoint()
        if group in self._groups:
            return False
        if start not in ("earliest", "latest"):
            raise ConfigurationError(f"start must be 'earliest' or 'latest', got {start!r}")
        self._groups[group] = _Group(
            cursor=self._first_seq if start == "earliest" else self._next_seq
        )
        self._group_changed[group] = _Waiter()
        return True

    def _group(self, group: str) -> _Group:
        self._check_open()
        try:
            return self._groups[group]
        except KeyError:
            raise GroupNotFound(group) from None

    def _schedule(self, g: _Group, state: _Pending, due: float) -> None:
        state.token += 1
        self._order += 1
        heapq.heappush(g.ready, (due, self._order, state.seq, state.token))

    async def receive(
        self,
        group: str,
        consumer: str,
        *,
        max_count: int,
        visibility_timeout: float,
        wait: float,
    ) -> list[Delivery]:
        """Take deliveries; see :meth:`BusBackend.receive`."""
        g = self._group(group)
        out = self._take(g, max_count, visibility_timeout)
        if out or wait <= 0:
            await anyio.lowlevel.checkpoint()
            return out
        # Nothing ready: sleep until new entries arrive, a deadline passes, or ``wait`` ends.
        now = self.clock.time()
        timeout = wait
        if g.ready:
            timeout = min(timeout, max(g.ready[0][0] - now, 0.0))
        await self._group_changed[group].wait(self.clock, timeout)
        return self._take(self._group(group), max_count, visibility_timeout)

    def _take(self, g: _Group, max_count: int, visibility_timeout: float) -> list[Delivery]:
        now = self.clock.time()
        deadline = now + visibility_timeout
        out: list[Delivery] = []
        ready = g.ready
        while ready and len(out) < max_count and ready[0][0] <= now:
            _, _, seq, token = heapq.heappop(ready)
            state = g.pending.get(seq)
            if state is None or state.token != token:
                continue  # acked, dead-lettered or rescheduled since
            out.append(self._hand_out(g, state, deadline))
        log = self._log
        while len(out) < max_count and g.cursor < self._next_seq:
            seq = g.cursor
            g.cursor += 1
            state = _Pending(seq, log[self._head + seq - self._first_seq])
            g.pending[seq] = state
            out.append(self._hand_out(g, state, deadline))
        return out

    def _hand_out(self, g: _Group, state: _Pending, deadline: float) -> Delivery:
        state.attempt += 1
        self._schedule(g, state, deadline)  # redelivered at the deadline unless acked
        return Delivery(
            f"{state.seq}.{state.token}",
            self._prefix + str(state.seq),
            state.event,
            state.attempt,
            state.error,
        )

    def _state(self, g: _Group, receipt: str) -> _Pending | None:
        seq_text, _, _ = receipt.partition(".")
        try:
            return g.pending.get(int(seq_text))
        except ValueError:
            return None

    async def ack(self, group: str, receipts: Sequence[str]) -> None:
        """Acknowledge; see :meth:`BusBackend.ack`."""
        g = self._group(group)
        for receipt in receipts:
            state = self._state(g, receipt)
            if state is not None:
                del g.pending[state.seq]
        # Acked deliveries leave their visibility deadline in the heap (removing from
        # the middle of a heap is O(n)); compact once stale entries dominate, so the
        # heap stays proportional to what is really pending.
        if len(g.ready) > 2 * len(g.pending) + 1024:
            g.ready = [
                item
                for item in g.ready
                if (state := g.pending.get(item[2])) is not None and state.token == item[3]
            ]
            heapq.heapify(g.ready)
        await anyio.lowlevel.checkpoint()

    async def release(self, group: str, receipt: str, *, delay: float, error: str) -> None:
        """Redeliver later; see :meth:`BusBackend.release`."""
        g = self._group(group)
        state = self._state(g, receipt)
        if state is not None:
            state.error = error
            self._schedule(g, state, self.clock.time() + max(delay, 0.0))
            self._group_changed[group].notify()
        await anyio.lowlevel.checkpoint()

    async def dead_letter(self, group: str, receipt: str, *, error: str) -> DeadLetter:
        """Dead-letter a delivery; see :meth:`BusBackend.dead_letter`."""
        g = self._group(group)
        state = self._state(g, receipt)
        if state is None:
            raise LookupError(f"no delivery {receipt!r} is pending in group {group!r}")
        del g.pending[state.seq]
        g.dead_counter += 1
        letter = DeadLetter(
            id=f"{state.seq}-{g.dead_counter}",
            group=group,
            position=self._prefix + str(state.seq),
            event=state.event,
            error=error,
            attempts=state.attempt,
            failed_at=self.clock.time(),
        )
        g.dead[letter.id] = letter
        await anyio.lowlevel.checkpoint()
        return letter

    async def dead_letters(self, group: str, *, limit: int) -> list[DeadLetter]:
        """List dead letters; see :meth:`BusBackend.dead_letters`."""
        g = self._group(group)
        await anyio.lowlevel.checkpoint()
        return list(g.dead.values())[:limit]

    def _select(self, group: str, g: _Group, ids: Sequence[str] | None) -> list[str]:
        if ids is None:
            return list(g.dead)
        for dead_id in ids:
            if dead_id not in g.dead:
                raise DeadLetterNotFound(group, dead_id)
        return list(dict.fromkeys(ids))

    async def redrive(self, group: str, ids: Sequence[str] | None) -> int:
        """Redeliver dead letters; see :meth:`BusBackend.redrive`."""
        g = self._group(group)
        chosen = self._select(group, g, ids)
        now = self.clock.time()
        for dead_id in chosen:
            letter = g.dead.pop(dead_id)
            seq = int(letter.position.rpartition(":")[2])
            state = g.pending.get(seq)
            if state is None:
                state = g.pending[seq] = _Pending(seq, letter.event)
            self._schedule(g, state, now)
        if chosen:
            self._group_changed[group].notify()
        await anyio.lowlevel.checkpoint()
        return len(chosen)

    async def discard_dead_letters(self, group: str, ids: Sequence[str] | None) -> int:
        """Delete dead letters; see :meth:`BusBackend.discard_dead_letters`."""
        g = self._group(group)
        chosen = self._select(group, g, ids)
        for dead_id in chosen:
            del g.dead[dead_id]
        await anyio.lowlevel.checkpoint()
        return len(chosen)

    async def group_stats(self, group: str) -> GroupStats:
        """Return the group's counters; see :meth:`BusBackend.group_stats`.

        Pending deliveries keep their event, so trimming never loses one here
        (``lost`` is always 0), and there is no reclaiming (``reclaimed`` is 0).
        """
        g = self._group(group)
        await anyio.lowlevel.checkpoint()
        return GroupStats(
            pending=len(g.pending),
            dead_letters=len(g.dead),
            lag=self._next_seq - g.cursor,
            trimmed_unread=g.trimmed_unread,
        )

    async def aclose(self) -> None:
        """Close: later calls raise ``BusClosed``; blocked readers wake up."""
        self._closed = True
        self._log_changed.notify()
        for waiter in self._group_changed.values():
            waiter.notify()
        await anyio.lowlevel.checkpoint()
