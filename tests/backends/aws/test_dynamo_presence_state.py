"""The channel state of DynamoPresence (no I/O) against a plain model, on random changes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.backends.aws._dynamo_presence_state import (
    EVENTS_KEPT,
    ChannelState,
    events_after,
)

MEMBERS = st.sampled_from(["alice", "bob", "zoë"])
CONNECTIONS = st.sampled_from(["c1", "c2", "c3"])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("join"), MEMBERS, CONNECTIONS, st.integers(1, 20)),
        st.tuples(st.just("leave"), MEMBERS, CONNECTIONS, st.just(0)),
        st.tuples(st.just("tick"), st.just(""), st.just(""), st.integers(0, 10)),
    ),
    max_size=60,
)


def stored(state: ChannelState) -> dict[str, Any]:
    """The item a write would store, as DynamoDB hands it back."""
    return {"pk": {"S": "p#ch#room"}, **state.item_fields()}


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_events_follow_first_joins_and_last_leaves(ops: list[tuple[str, str, str, int]]) -> None:
    model: dict[str, dict[str, float]] = {}  # member -> connection -> deadline
    item: dict[str, Any] | None = None
    now, seq = 0.0, 0
    for kind, member, connection, n in ops:
        state = ChannelState.of("room", item)
        expected: list[tuple[str, str, str, bool]] = []
        for _deadline, m, c in sorted(
            (d, m, c) for m, cs in model.items() for c, d in cs.items() if d <= now
        ):
            del model[m][c]
            if not model[m]:
                del model[m]
                expected.append(("leave", m, c, True))
        state.expire(now)
        if kind == "join":
            first = member not in model
            model.setdefault(member, {})[connection] = now + n
            assert state.join(member, connection, json.dumps({"n": n}), now + n) == first
            if first:
                expected.append(("join", member, connection, False))
        elif kind == "leave":
            held = model.get(member, {})
            last = connection in held and len(held) == 1
            held.pop(connection, None)
            if not held:
                model.pop(member, None)
            assert state.remove(member, connection, expired=False) == last
            if last:
                expected.append(("leave", member, connection, False))
        else:
            now += n
        got = [(e.type, e.member, e.connection, e.expired) for e in state.new]
        assert got == expected
        if state.changed:
            item = stored(state)
            latest, missed, events = events_after("room", item, seq)
            assert missed == 0
            assert [(e.type, e.member, e.connection, e.expired) for e in events] == expected
            seq = latest
        assert {m: set(cs) for m, cs in state.members.items()} == {
            m: set(cs) for m, cs in model.items()
        }
    assert len(ChannelState.of("room", item).events) <= EVENTS_KEPT


def test_a_stale_read_delivers_nothing_twice() -> None:
    state = ChannelState("room")
    state.join("alice", "c1", "{}", 10.0)
    older = stored(state)
    state = ChannelState.of("room", older)
    state.join("bob", "c2", "{}", 10.0)
    newer = stored(state)
    seq, _, events = events_after("room", newer, 0)
    assert [e.member for e in events] == ["alice", "bob"]
    assert events_after("room", older, seq) == (seq, 0, [])  # an older copy: skipped
