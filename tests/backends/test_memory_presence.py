"""MemoryPresence runs the public Presence suite, on asyncio and trio."""

from __future__ import annotations

import pytest

from eventpatterns.errors import ConfigurationError, EventsMissed
from eventpatterns.realtime import MemoryPresence, Presence, PresenceEvent
from eventpatterns.realtime._presence import LISTENER_BUFFER
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
