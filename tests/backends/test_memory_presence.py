"""MemoryPresence runs the public Presence suite, on asyncio and trio."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventpatterns.errors import ConfigurationError, EventsMissed, LimitExceeded
from eventpatterns.realtime import MemoryPresence, Presence, PresenceEvent
from eventpatterns.realtime._presence import LISTENER_BUFFER, check_channel, check_name, encode_info
from eventpatterns.testing import ManualClock, PresenceSuite


class TestMemoryPresence(PresenceSuite):
    async def make_presence(
        self,
        clock: ManualClock,
        *,
        ttl: float = 10.0,
        sweep_interval: float = 1.0,
        max_info_size: int = 4096,
    ) -> Presence:
        return MemoryPresence(
            clock=clock, ttl=ttl, sweep_interval=sweep_interval, max_info_size=max_info_size
        )


@pytest.mark.parametrize(
    ("option", "value"),
    [("ttl", 0), ("ttl", float("inf")), ("sweep_interval", 0), ("max_info_size", 1),
     ("max_info_size", 10.5)],
)  # fmt: skip
def test_bad_settings_are_refused(option: str, value: float) -> None:
    with pytest.raises(ConfigurationError, match=option):
        MemoryPresence(**{option: value})  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_listener_that_falls_behind_is_told_how_many_it_missed() -> None:
    presence = MemoryPresence(clock=ManualClock())
    async with presence.events("room") as events:
        for i in range(LISTENER_BUFFER + 7):
            await presence.join("room", f"u{i}", connection=f"c{i}")
        with pytest.raises(EventsMissed) as info:
            await events.__anext__()
        assert info.value.missed == 7
        first = await events.__anext__()
        assert first == PresenceEvent("join", "room", "u0", "c0", {})


@pytest.mark.anyio
async def test_heartbeats_do_not_accumulate_deadlines() -> None:
    clock = ManualClock()
    presence = MemoryPresence(clock=clock)
    for i in range(10):
        await presence.join("room", f"u{i}", connection=f"c{i}")
    for _ in range(1000):
        clock.advance(1)
        for i in range(10):
            await presence.heartbeat(f"c{i}")
    assert len(presence._due) <= 4 * 10 + 64
    assert await presence.count("room") == 10


_CHANNEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/@+=-")


@given(st.text(max_size=300))
def test_channel_names_are_accepted_exactly_by_the_rule(name: str) -> None:
    valid = 0 < len(name) <= 200 and set(name) <= _CHANNEL_CHARS
    if valid:
        assert check_channel("join", name) == name
    else:
        with pytest.raises(ConfigurationError):
            check_channel("join", name)


@given(st.text(max_size=300))
def test_member_names_are_accepted_exactly_by_the_rule(name: str) -> None:
    if 0 < len(name) <= 256 and name.isprintable():
        assert check_name("join", "member", name, limit=256) == name
        assert "\n" not in name  # the Redis layout's separator can never appear
    else:
        with pytest.raises(ConfigurationError):
            check_name("join", "member", name, limit=256)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(st.dictionaries(st.text(max_size=10), _json, max_size=5))
def test_info_is_json_bounded_in_bytes(info: dict[str, Any]) -> None:
    text = json.dumps(info, separators=(",", ":"), ensure_ascii=False)
    limit = 200
    if len(text.encode()) <= limit:
        assert json.loads(encode_info(info, limit=limit)) == info
    else:
        with pytest.raises(LimitExceeded):
            encode_info(info, limit=limit)
