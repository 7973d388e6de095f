"""The sans-I/O replay-then-live merge, tested synchronously (no event loop)."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from eventpatterns.bus import LogEntry
from eventpatterns.bus._replay import Gap, Need, Overflow, ReplayMerge, State
from eventpatterns.errors import InvalidState, SubscriberOverflow, SubscriptionClosed
from eventpatterns.testing import make_events


def key(position: str) -> tuple[int, ...]:
    return (int(position.partition(":")[2]),)


def entries(first: int, count: int) -> list[LogEntry]:
    """Entries numbered ``first`` .. ``first + count - 1`` (positions ``"e:<n>"``)."""
    return [LogEntry(f"e:{first + i}", e) for i, e in enumerate(make_events(count, start=first))]


def merge(buffer: int = 10, overflow: Overflow = "drop_oldest") -> ReplayMerge:
    return ReplayMerge(key, buffer=buffer, overflow=overflow)


def state(m: ReplayMerge) -> State:
    """The merge's state, read through a call (mypy would keep an earlier narrowing)."""
    return m.state


def drain(m: ReplayMerge) -> list[object]:
    """Hand out everything available without I/O."""
    out: list[object] = []
    while not isinstance(item := m.next(), Need):
        out.append(item.position if isinstance(item, LogEntry) else item)
    return out


# -- the guard ----------------------------------------------------------------------------


def test_the_guard_names_the_state() -> None:
    m = merge()
    with pytest.raises(InvalidState, match="cannot receive: the subscriber is new") as info:
        m.next()
    assert info.value.state == "new"
    with pytest.raises(InvalidState, match="is new"):
        m.push(entries(1, 1))
    m.start_live()
    with pytest.raises(InvalidState, match="cannot start: the subscriber is live"):
        m.start_replay(None)
    with pytest.raises(InvalidState, match="cannot read a page: the subscriber is live"):
        m.page_after()
    with pytest.raises(InvalidState, match="cannot take a page: the subscriber is live"):
        m.replayed([], None)
    m.close()
    assert state(m) is State.CLOSED
    with pytest.raises(InvalidState, match="is closed"):
        m.page_after()


# -- replay, then live ----------------------------------------------------------------------


def test_replay_then_live_skips_what_the_replay_covered() -> None:
    m = merge()
    m.start_replay("e:2")
    assert m.next() is Need.PAGE
    assert m.page_after() == "e:2"
    m.push(entries(4, 3))  # live entries 4..6 arrive while the page is read
    m.replayed(entries(3, 3), "e:5")  # the page: 3..5
    assert drain(m) == ["e:3", "e:4", "e:5"]
    assert m.next() is Need.PAGE
    assert m.page_after() == "e:5"
    m.replayed([], None)  # the end of the log: live from here
    assert state(m) is State.LIVE
    assert drain(m) == ["e:6"]  # 4 and 5 were replayed: not again
    assert m.next() is Need.WAIT


def test_live_entries_the_reader_still_owes_are_skipped_too() -> None:
    m = merge()
    m.start_replay(None)
    m.page_after()
    m.replayed(entries(1, 4), "e:4")
    assert drain(m) == ["e:1", "e:2", "e:3", "e:4"]
    m.page_after()
    m.replayed([], None)
    assert m.clean
    m.push(entries(3, 4))  # a lagging reader pushes 3..6: 3 and 4 were replayed
    assert drain(m) == ["e:5", "e:6"]


def test_non_matching_entries_move_the_position() -> None:
    m = merge()
    m.start_replay("e:1")
    m.page_after()
    m.replayed([], "e:9")  # nine entries read, none matching
    assert m.next() is Need.PAGE
    assert m.position == "e:9"  # resuming from here skips them


def test_an_overflow_during_replay_reads_the_log_once_more() -> None:
    m = merge(buffer=2)
    m.start_replay("e:0")
    m.page_after()
    m.replayed(entries(1, 2), "e:2")
    m.push(entries(3, 3))  # 3..5 into a buffer of 2: 3 is dropped (still in the log)
    assert drain(m) == ["e:1", "e:2"]
    assert m.page_after() == "e:2"
    m.push(entries(6, 1))  # dropped again while the next page is read
    m.replayed([], None)  # an empty page, but read before 3..6 were appended: not live yet
    assert state(m) is State.REPLAYING
    assert m.next() is Need.PAGE
    m.page_after()
    m.replayed(entries(3, 4), "e:6")
    with pytest.raises(InvalidState, match="hand out the last one first"):
        m.page_after()
    assert drain(m) == ["e:3", "e:4", "e:5", "e:6"]
    m.page_after()
    m.replayed([], None)
    assert state(m) is State.LIVE
    assert drain(m) == []  # 5 and 6 were held live too: not again
    assert m.missed == 0


# -- slow subscribers ---------------------------------------------------------------------


def test_drop_oldest_reports_a_counted_gap_where_it_happened() -> None:
    m = merge(buffer=3)
    m.start_live()
    m.push(entries(1, 1))
    assert drain(m) == ["e:1"]
    m.push(entries(2, 5))  # 2..6 into 3 places: 2 and 3 are dropped
    assert m.clean is False
    assert drain(m) == [Gap(2, "e:1"), "e:4", "e:5", "e:6"]
    assert bool(m.clean)  # (a call: mypy would keep the narrowing above)
    assert m.missed == 2


def test_lost_entries_are_an_unknown_gap_after_what_was_held() -> None:
    m = merge()
    m.start_live()
    m.push(entries(1, 2))
    m.lost()  # the reader lost entries after 2
    m.push(entries(8, 1))
    assert drain(m) == ["e:1", "e:2", Gap(None, "e:2"), "e:8"]
    m.lost()  # nothing held: the gap comes first
    assert drain(m) == [Gap(None, "e:8")]


def test_a_dropped_loss_marker_makes_the_front_gap_unknown() -> None:
    m = merge(buffer=2)
    m.start_live()
    m.push(entries(1, 1))
    m.lost()
    m.push(entries(5, 3))  # drops 1, the marker and 5
    assert drain(m) == [Gap(None, None), "e:6", "e:7"]


def test_a_loss_marker_does_not_let_the_buffer_grow() -> None:
    m = merge(buffer=1)
    m.start_live()
    m.push(entries(1, 1))
    m.lost()
    m.push(entries(2, 2))
    assert len(m.buffer) == 1
    assert drain(m) == [Gap(None, None), "e:3"]


def test_disconnect_hands_out_what_it_held_then_overflows_for_good() -> None:
    m = merge(buffer=2, overflow="disconnect")
    m.start_live()
    m.push(entries(1, 5))
    assert state(m) is State.OVERFLOWED
    assert drain_until_error(m) == ["e:1", "e:2"]
    with pytest.raises(SubscriberOverflow) as info:
        m.next()
    assert info.value.position == "e:2"
    m.push(entries(6, 1))  # ignored
    with pytest.raises(SubscriberOverflow):
        m.next()


def drain_until_closed(m: ReplayMerge) -> list[str]:
    out: list[str] = []
    while True:
        try:
            item = m.next()
        except SubscriptionClosed:
            return out
        assert isinstance(item, LogEntry)
        out.append(item.position)


def drain_until_error(m: ReplayMerge) -> list[str]:
    out: list[str] = []
    while m.buffer:
        item = m.next()
        assert isinstance(item, LogEntry)
        out.append(item.position)
    return out


# -- ending ---------------------------------------------------------------------------------


def test_end_hands_out_what_was_held_then_closes() -> None:
    m = merge()
    m.start_live()
    m.push(entries(1, 2))
    m.end()
    assert state(m) is State.ENDING
    assert drain_until_error(m) == ["e:1", "e:2"]
    with pytest.raises(SubscriptionClosed, match="bus closed") as info:
        m.next()
    assert info.value.position == "e:2"


def test_end_during_replay_hands_out_the_page_only() -> None:
    m = merge()
    m.start_replay(None)
    m.page_after()
    m.push(entries(5, 1))  # after a hole the replay can no longer fill
    m.end()
    m.replayed(entries(1, 2), "e:2")  # the read in flight still lands
    assert drain_until_closed(m) == ["e:1", "e:2"]
    with pytest.raises(SubscriptionClosed):
        m.next()


def test_close_drops_everything_at_once() -> None:
    m = merge()
    m.start_replay(None)
    m.page_after()
    m.close()
    m.replayed(entries(1, 2), "e:2")  # a read finishing after close is ignored
    m.push(entries(3, 1))
    with pytest.raises(SubscriptionClosed, match="is closed"):
        m.next()


# -- any interleaving: no gap, no duplicate ---------------------------------------------------


class MergeMachine(RuleBasedStateMachine):
    """A log, a reader that pushes (lagging, or losing entries), pages read concurrently.

    Whatever the interleaving, what the merge hands out is in log order, without a
    duplicate, and every matching entry it skips is inside a reported gap (of the
    right size when the size is known).
    """

    @initialize(
        initial=st.lists(st.booleans(), max_size=8),
        since=st.one_of(st.none(), st.integers(-1, 8)),
        reader_lag=st.integers(0, 8),
        buffer=st.integers(1, 4),
        overflow=st.sampled_from(["drop_oldest", "disconnect"]),
        page_size=st.integers(1, 4),
    )
    def start(
        self,
        initial: list[bool],
        since: int | None,
        reader_lag: int,
        buffer: int,
        overflow: Overflow,
        page_size: int,
    ) -> None:
        self.matches: list[bool] = list(initial)  # entry n (1-based) matches: matches[n - 1]
        self.page_size = page_size
        self.merge = ReplayMerge(key, buffer=buffer, overflow=overflow)
        self.overflow = overflow
        # The reader's cursor at attach: it may lag behind the end of the log.
        self.reader = max(len(self.matches) - reader_lag, 0)
        if since is None:
            self.merge.start_live()
            self.last = self.reader  # a live subscription owes entries after this
        else:
            after = min(max(since, 0), len(self.matches))  # -1: EARLIEST
            self.merge.start_replay(None if since == -1 else f"e:{after}")
            self.last = 0 if since == -1 else after
        self.read: tuple[int, list[LogEntry], int | None] | None = None  # a page in flight
        self.gaps: list[int | None] = []  # gaps reported since the last delivery
        self.ended = False  # SubscriptionClosed or SubscriberOverflow was raised
        self.need_page = False  # next() asked for a page (and none is in flight)

    def _page(self, after: int) -> tuple[list[LogEntry], int | None]:
        numbers = range(after + 1, min(after + self.page_size, len(self.matches)) + 1)
        matched = [LogEntry(f"e:{n}", EVENT) for n in numbers if self.matches[n - 1]]
        return matched, (numbers[-1] if numbers else None)

    @rule(new=st.lists(st.booleans(), min_size=1, max_size=5))
    def append(self, new: list[bool]) -> None:
        self.matches.extend(new)

    @rule(count=st.integers(1, 5))
    def push(self, count: int) -> None:
        numbers = range(self.reader + 1, min(self.reader + count, len(self.matches)) + 1)
        self.reader = max(self.reader, numbers[-1] if numbers else 0)
        if self.merge.state is not State.NEW:
            self.merge.push([LogEntry(f"e:{n}", EVENT) for n in numbers if self.matches[n - 1]])

    @rule(count=st.integers(0, 3))
    def lose(self, count: int) -> None:
        self.reader = min(self.reader + count, len(self.matches))
        self.merge.lost()

    @precondition(lambda self: self.need_page and self.merge.state is State.REPLAYING)
    @rule(snapshot_now=st.booleans())
    def begin_read(self, snapshot_now: bool) -> None:
        self.need_page = False
        after_position = self.merge.page_after()
        after = 0 if after_position is None else key(after_position)[0]
        page = self._page(after) if snapshot_now else None
        self.read = (after, *page) if page else (after, [], -1)

    @precondition(lambda self: self.read is not None)
    @rule()
    def finish_read(self) -> None:
        assert self.read is not None
        after, matched, last = self.read
        if last == -1:  # the read happens now (any moment between begin and finish is real)
            matched, last = self._page(after)
        self.read = None
        if self.merge.state in (State.REPLAYING, State.ENDING, State.CLOSED):
            self.merge.replayed(matched, None if last is None else f"e:{last}")

    @rule()
    def receive(self) -> None:
        self._receive_one()

    def _receive_one(self) -> LogEntry | Gap | Need | None:
        try:
            item = self.merge.next()
        except (SubscriptionClosed, SubscriberOverflow):
            self.ended = True
            return None
        if isinstance(item, Need):
            self.need_page = item is Need.PAGE and self.read is None
            return item
        assert not self.ended, "something was handed out after the end"
        if isinstance(item, Gap):
            assert self.overflow == "drop_oldest", "disconnect never reports a gap"
            if item.after is not None:  # the last position handed out (or read past)
                after = key(item.after)[0]
                assert after >= self.last
                self._check_skipped(after + 1, [])  # nothing matching was passed over
                self.last = after
            self.gaps.append(item.missed)
        elif isinstance(item, LogEntry):
            number = key(item.position)[0]
            assert number > self.last, f"{item.position} after e:{self.last}: duplicate"
            assert self.matches[number - 1], "a non-matching entry was handed out"
            self._check_skipped(number, self.gaps)
            self.last = number
            self.gaps = []
        return item

    def _check_skipped(self, upto: int, gaps: list[int | None]) -> None:
        skipped = sum(self.matches[self.last : upto - 1])
        if not gaps:
            assert skipped == 0, f"{skipped} matching entries skipped silently before e:{upto}"
        elif None not in gaps:
            assert skipped == sum(g for g in gaps if g is not None), "a gap of the wrong size"

    @rule()
    def end(self) -> None:
        self.merge.end()

    @rule()
    def close(self) -> None:
        self.merge.close()

    @invariant()
    def bounded(self) -> None:
        assert len(self.merge.buffer) <= self.merge._maxlen + self.merge._markers

    def teardown(self) -> None:
        """Let everything finish: a live merge must then have handed out the whole log."""
        if self.read is not None:
            self.finish_read()
        for _ in range(500):
            self.push(5)
            item = self._receive_one()
            if item is Need.PAGE and self.need_page:
                self.begin_read(snapshot_now=True)
                self.finish_read()
            elif item is None or (item is Need.WAIT and self.reader == len(self.matches)):
                break
        else:
            raise AssertionError("the merge never caught up with the log")
        if self.merge.state is State.LIVE:
            self._check_skipped(len(self.matches) + 1, self.gaps)


EVENT = make_events(1)[0]

TestMergeMachine = MergeMachine.TestCase
TestMergeMachine.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
