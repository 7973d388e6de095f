"""One subscriber's replay-then-live merge, as a sans-I/O state machine.

A subscriber that resumes from a position must read history from the log while new
entries keep arriving live, and hand out each matching entry once, in log order, with
no gap: the classic resume problem (Centrifugo's recovery, a WebSocket gateway's
``Last-Event-ID``). :class:`ReplayMerge` solves it with no I/O at all. It is driven
with values by the code that owns the I/O (:class:`~eventpatterns.bus.Subscription`
today, the real-time gateway's resume next), websockets' ``protocol.py`` way:

* the live source calls :meth:`~ReplayMerge.push` with new entries (already filtered,
  in log order), :meth:`~ReplayMerge.lost` when it lost some, :meth:`~ReplayMerge.end`
  when it ends;
* the receiver calls :meth:`~ReplayMerge.next`, which returns the next
  :class:`~eventpatterns.bus.LogEntry`, a :class:`Gap`, or what it needs first:
  :attr:`Need.PAGE` (call :meth:`~ReplayMerge.page_after`, read the log after that
  position, pass the result to :meth:`~ReplayMerge.replayed`) or :attr:`Need.WAIT`
  (wait until the live source calls in, then call :meth:`~ReplayMerge.next` again).

States (:class:`State`)::

    NEW ──start_replay()──> REPLAYING ──an empty page, nothing lost meanwhile──> LIVE
     └───────start_live()─────────────────────────────────────────────────────────┘
    REPLAYING, LIVE ──end()──> ENDING      deliver what is held, then SubscriptionClosed (-> CLOSED)
    LIVE ──overflow="disconnect" and full──> OVERFLOWED   ...then SubscriberOverflow
    any ──close()──> CLOSED                SubscriptionClosed at once

Why no gap and no duplicate: live entries are buffered from before the first page is
read. The merge goes live only after a page read that *started* after the last time
the buffer dropped an entry (or the source lost some) came back empty: every entry up
to the end of the log at that moment was replayed, and every later one is in the
buffer. Buffered entries the replay already covered are discarded by position
(``sort_key``) when it goes live, so none is delivered twice.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..core import Event
from ..errors import InvalidState, SubscriberOverflow, SubscriptionClosed
from ._contract import LogEntry, Position

__all__ = ["Gap", "Need", "Overflow", "ReplayMerge", "State"]

#: What a subscriber that falls ``buffer`` entries behind gets.
Overflow = Literal["drop_oldest", "disconnect"]


@dataclass(frozen=True, slots=True)
class Gap:
    """Where a subscriber missed events, in its stream (``overflow="drop_oldest"``).

    :meth:`Subscription.receive() <eventpatterns.bus.Subscription.receive>` raises it
    as :class:`~eventpatterns.errors.EventsMissed`;
    :meth:`Subscription.items() <eventpatterns.bus.Subscription.items>` yields it.

    Attributes:
        missed: How many matching events were dropped, or ``None`` when unknown
            (the bus's own reader fell behind the backend's retention).
        after: Position of the last event delivered before the gap; resubscribe with
            ``since=after`` to fetch what was missed, while history lasts.
    """

    missed: int | None
    after: Position | None


class State(enum.IntEnum):
    """Where a :class:`ReplayMerge` is; see the module docstring for the transitions."""

    NEW = 0
    REPLAYING = 1
    LIVE = 2
    ENDING = 3
    OVERFLOWED = 4
    CLOSED = 5


class Need(enum.Enum):
    """What :meth:`ReplayMerge.next` needs before it can hand out more."""

    PAGE = "page"  #: read a page of history: page_after(), then replayed()
    WAIT = "wait"  #: wait for the live source (push, lost, end) or close()


# Marks, in the live buffer, the place where the live source lost entries.
_LOST = LogEntry("", Event(type="eventpatterns.lost", source="/eventpatterns"))


class ReplayMerge:
    """Merge a replay of the log with live entries: no gap, no duplicate, bounded.

    Args:
        sort_key: Orders positions as the log does (``backend.sort_key``).
        buffer: Most live entries held (plus one page of history while replaying).
        overflow: When the live buffer is full: ``"drop_oldest"`` (and hand out a
            :class:`Gap` where they were) or ``"disconnect"`` (go to ``OVERFLOWED``).

    Attributes:
        state: The current :class:`State`.
        position: Position of the last entry handed out (or replayed past); resume
            from it with ``since=position``.
        missed: How many entries were dropped in total (known counts only).
        buffer: The live entries held, oldest first.
        clean: ``True`` when the next item is simply ``buffer[0]`` (live, no gap
            pending). A hot path may then ``popleft()`` it and assign ``position``
            itself instead of calling :meth:`next`; nothing else may touch ``buffer``.

    Raises:
        InvalidState: A method called in a state that does not allow it (the message
            names the state), e.g. :meth:`page_after` while ``LIVE``.
    """

    __slots__ = (
        "_cursor",
        "_front_unknown",
        "_markers",
        "_maxlen",
        "_overflow",
        "_page",
        "_pending",
        "_reason",
        "_reread",
        "_skip",
        "buffer",
        "clean",
        "missed",
        "position",
        "sort_key",
        "state",
    )

    def __init__(
        self,
        sort_key: Callable[[Position], tuple[int, ...]],
        *,
        buffer: int,
        overflow: Overflow,
    ) -> None:
        self.sort_key = sort_key
        self._maxlen = buffer
        self._overflow: Overflow = overflow
        self.state = State.NEW
        self.position: Position | None = None
        self.missed = 0
        self.buffer: deque[LogEntry] = deque()
        self.clean = False
        self._page: deque[LogEntry] = deque()  # replayed entries not handed out yet
        self._cursor: Position | None = None  # last position the replay has read
        self._reread = False  # the buffer dropped entries since the last page read began
        self._skip: tuple[int, ...] | None = None  # live entries up to here were replayed
        self._pending = 0  # entries dropped at the front, not reported yet
        self._front_unknown = False  # ...and an unknown number lost there too
        self._markers = 0  # _LOST markers in the buffer
        self._reason = "the subscription is closed"

    def _guard(self, action: str, *allowed: State) -> None:
        if self.state not in allowed:
            raise InvalidState(
                f"cannot {action}: the subscriber is {self.state.name.lower()}",
                state=self.state.name.lower(),
            )

    # -- starting ------------------------------------------------------------------------

    def start_live(self) -> None:
        """Go live at once: hand out entries pushed from now on."""
        self._guard("start", State.NEW)
        self.state = State.LIVE
        self.clean = True

    def start_replay(self, after: Position | None) -> None:
        """Replay the log after ``after`` (``None``: from the oldest entry), then go live.

        Entries pushed from now on are held until the replay catches up, so start
        the live source after calling this.
        """
        self._guard("start", State.NEW)
        self.state = State.REPLAYING
        self._cursor = self.position = after

    # -- the live source ----------------------------------------------------------------

    def push(self, entries: list[LogEntry]) -> None:
        """Take new live entries (matching ones, in log order)."""
        state = self.state
        buf = self.buffer
        if state is State.LIVE:
            skip = self._skip
            if skip is not None:
                entries = self._unseen(entries, skip)
            if len(buf) + len(entries) <= self._maxlen:
                buf.extend(entries)
            else:
                self._overfill(entries)
        elif state is State.REPLAYING:
            buf.extend(entries)
            while len(buf) > self._maxlen:
                buf.popleft()  # still in the log: the replay reads it from there
                self._reread = True
        elif state is State.NEW:
            self._guard("push", State.REPLAYING, State.LIVE)
        # ENDING, OVERFLOWED, CLOSED: the source may not have heard yet; nothing to do

    def lost(self) -> None:
        """The live source lost entries after those it pushed (how many is unknown)."""
        state = self.state
        if state is State.REPLAYING:
            self._reread = True  # the replay reads them from the log, or hears they expired
        elif state is State.LIVE:
            if self._overflow == "disconnect":
                self._overflowed()
            elif self.buffer:
                self.buffer.append(_LOST)
                self._markers += 1
                self.clean = False
            else:
                self._front_unknown = True
                self.clean = False

    def end(self) -> None:
        """The live source ended: hand out what is held, then end."""
        if self.state in (State.NEW, State.REPLAYING):
            # The rest of the history cannot be read any more: what was buffered live
            # lies after a hole; only the page already read is handed out.
            self.buffer.clear()
            self._markers = 0
        if self.state in (State.NEW, State.REPLAYING, State.LIVE):
            self.state = State.ENDING
            self.clean = False

    def close(self) -> None:
        """Close: drop everything held; :meth:`next` raises ``SubscriptionClosed``."""
        self.state = State.CLOSED
        self.clean = False
        self.buffer.clear()
        self._page.clear()
        self._markers = 0

    # -- the replay ----------------------------------------------------------------------

    def page_after(self) -> Position | None:
        """Return the position to read the next page of history after (``None``: oldest)."""
        self._guard("read a page", State.REPLAYING)
        if self._page:
            raise InvalidState(
                "cannot read a page: hand out the last one first", state=self.state.name.lower()
            )
        self._reread = False
        return self._cursor

    def replayed(self, matched: list[LogEntry], last: Position | None) -> None:
        """Take a page of history read after :meth:`page_after`'s position.

        Args:
            matched: The page's entries that match, in log order.
            last: Position of the page's last entry (matching or not), or ``None``
                when the page was empty: the replay reached the end of the log.
        """
        self._guard("take a page", State.REPLAYING, State.ENDING, State.CLOSED)
        if self.state is State.CLOSED:
            return
        self._page.extend(matched)
        if last is not None:
            self._cursor = last
        elif self.state is State.REPLAYING and not self._reread:
            self._go_live()

    def _go_live(self) -> None:
        self.state = State.LIVE
        self.clean = True
        cursor, self._cursor = self._cursor, None
        if cursor is None:  # nothing was replayed: every live entry is new
            return
        self.position = cursor
        key = self.sort_key
        limit = key(cursor)
        buf = self.buffer
        while buf and key(buf[0].position) <= limit:
            buf.popleft()
        # Entries the reader has not pushed yet may still be ones the replay covered.
        self._skip = None if buf else limit

    def _unseen(self, entries: list[LogEntry], limit: tuple[int, ...]) -> list[LogEntry]:
        key = self.sort_key
        start = 0
        while start < len(entries) and key(entries[start].position) <= limit:
            start += 1
        if start < len(entries):
            self._skip = None  # log order: later pushes are all new
        return entries[start:] if start else entries

    def _overfill(self, entries: list[LogEntry]) -> None:
        buf = self.buffer
        for entry in entries:
            while len(buf) >= self._maxlen:  # a loss marker may hold a place too
                if self._overflow == "disconnect":
                    self._overflowed()
                    return
                dropped = buf.popleft()
                if dropped is _LOST:
                    self._markers -= 1
                    self._front_unknown = True
                else:
                    self._pending += 1
                    self.missed += 1
                self.clean = False
            buf.append(entry)

    def _overflowed(self) -> None:
        self.state = State.OVERFLOWED
        self.clean = False

    # -- handing out ---------------------------------------------------------------------

    def next(self) -> LogEntry | Gap | Need:
        """Return the next entry, a :class:`Gap`, or what is needed first.

        Raises:
            SubscriptionClosed: Closed, or ended and everything held was handed out.
            SubscriberOverflow: ``OVERFLOWED`` and everything held was handed out
                (again on every later call).
            InvalidState: Not started yet (``NEW``).
        """
        state = self.state
        if state is State.REPLAYING or state is State.ENDING:
            page = self._page
            if page:
                entry = page.popleft()
                self.position = entry.position
                return entry
            if self._cursor is not None:
                self.position = self._cursor  # non-matching entries were read past too
            if state is State.REPLAYING:
                return Need.PAGE
        elif state is State.CLOSED:
            raise SubscriptionClosed(self._reason, position=self.position)
        elif state is State.NEW:
            self._guard("receive", State.LIVE)
        item = self._next_held()
        if item is not None:
            return item
        if state is State.LIVE:
            return Need.WAIT
        if state is State.OVERFLOWED:
            raise SubscriberOverflow(buffer=self._maxlen, position=self.position)
        # ENDING, and everything was handed out: the end is final.
        self.close()
        self._reason = "the subscription's bus closed"
        raise SubscriptionClosed(self._reason, position=self.position)

    def _next_held(self) -> LogEntry | Gap | None:
        if self._pending or self._front_unknown:
            gap = Gap(None if self._front_unknown else self._pending, self.position)
            self._pending = 0
            self._front_unknown = False
            self._reclean()
            return gap
        buf = self.buffer
        if not buf:
            return None
        entry = buf.popleft()
        if entry is _LOST:
            self._markers -= 1
            self._reclean()
            return Gap(None, self.position)
        self.position = entry.position
        return entry

    def _reclean(self) -> None:
        self.clean = self.state is State.LIVE and not self._markers and not self._pending
