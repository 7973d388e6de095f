"""A screened group gets only new entries of its types, found by their bytes, unread."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis_helpers import REDIS_URL

from eventpatterns import Event
from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.backends.redis._receive import type_probe
from eventpatterns.testing import ManualClock

pytestmark = pytest.mark.redis

# CloudEvents strings: no control characters, surrogates or noncharacters.
types = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Co", "Cn")), min_size=1, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(type_=types, data=st.dictionaries(types, types, max_size=3))
def test_the_probe_of_a_type_is_in_every_event_of_that_type(
    type_: str, data: dict[str, str]
) -> None:
    # The screen must never drop an entry of a wanted type (a false positive is only
    # decoded, and the consumer's filter decides).
    event = Event(type=type_, source="/s", data=data, extensions={"jobkind": "k"})
    assert type_probe(type_) in event.to_json()


@pytest.mark.anyio
async def test_a_screened_group_is_handed_only_its_types_and_the_rest_is_acked(
    prefix: str, clock: ManualClock
) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)
    try:
        await backend.create_group("g", start="latest")
        await backend.create_group("all", start="latest")
        backend.screen_types("g", ["job.pending", 'née "quoted"'])
        sent = [
            Event(type=t, source="/s", data={"n": n})
            for n, t in enumerate(["job.running", "job.pending", "job.pendingx", 'née "quoted"'])
        ]
        await backend.append(sent)
        got = await backend.receive("g", "c", max_count=10, visibility_timeout=30, wait=0)
        assert [d.event.data["n"] for d in got] == [1, 3]
        await backend.ack("g", [d.receipt for d in got])
        # Only the ones of other types, all at once: the screen reads on past them.
        await backend.append([Event(type="job.running", source="/s") for _ in range(5)])
        await backend.append([Event(type="job.pending", source="/s", data={"n": 9})])
        (last,) = await backend.receive("g", "c", max_count=3, visibility_timeout=30, wait=0)
        assert last.event.data == {"n": 9}
        await backend.ack("g", [last.receipt])
        assert await backend.receive("g", "c", max_count=3, visibility_timeout=30, wait=0) == []
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.lag) == (0, 0)  # the screened-out ones acked too
        # Another group of the same backend is not screened.
        every = await backend.receive("all", "c", max_count=20, visibility_timeout=30, wait=0)
        assert len(every) == len(sent) + 6
    finally:
        await backend.aclose()
