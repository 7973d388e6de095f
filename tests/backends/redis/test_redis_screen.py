"""A screened group gets only new entries of its types, found by their bytes, unread."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis_helpers import REDIS_URL

from eventpatterns import Event, EventBus
from eventpatterns.backends.redis import RedisBusBackend, _codec
from eventpatterns.bus._matching import as_matcher, type_probe, type_probes
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


patterns = st.lists(
    st.one_of(types, st.builds(lambda p: {"prefix": p}, types)), min_size=1, max_size=4
)


@settings(max_examples=300, deadline=None)
@given(type_=types, wanted=patterns, data=st.dictionaries(types, types, max_size=3))
def test_an_event_a_type_pattern_matches_holds_one_of_its_probes(
    type_: str, wanted: list[Any], data: dict[str, Any]
) -> None:
    # The bus's reader skips an undecoded entry holding none of the probes of every
    # subscription: never one that a subscription's pattern matches.
    matcher = as_matcher({"type": wanted, "data": {"n": [{"exists": False}]}})
    probes = type_probes(matcher)
    assert probes is not None
    event = Event(type=type_, source="/s", data=data)
    if matcher is not None and matcher.matches(event.to_dict()):
        assert any(p in event.to_json() for p in probes)
    # A type wanted by exact value or by its prefix is found.
    assert any(p in event.to_json() for p in type_probes(as_matcher({"type": [type_]})) or ())
    assert any(
        p in event.to_json()
        for p in type_probes(as_matcher({"type": [{"prefix": type_[:1]}]})) or ()
    )


@pytest.mark.parametrize(
    "pattern",
    [
        None,
        {"source": ["/s"]},
        {"type": [{"anything-but": "a"}]},
        {"type": ["a", {"suffix": "b"}]},
        {"type": [{"prefix": {"equals-ignore-case": "a"}}]},
        {"type": ["a", 1]},
        {"type": ["a\ud800"]},
    ],
)
def test_a_pattern_that_may_want_other_types_has_no_probes(pattern: Any) -> None:
    assert type_probes(as_matcher(pattern)) is None


@pytest.mark.anyio
async def test_the_bus_reader_skips_undecoded_the_entries_no_subscription_wants(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[bytes] = []
    real = _codec.decode_event

    def counting(raw: bytes | str) -> Event:
        decoded.append(raw if isinstance(raw, bytes) else raw.encode())
        return real(raw)

    monkeypatch.setattr(_codec, "decode_event", counting)
    bus = EventBus(RedisBusBackend(REDIS_URL, prefix=prefix))
    async with bus, bus.subscribe({"type": ["b", {"prefix": "c."}]}) as wanted:
        types_sent = ["a", "b", "a", "c.x", "ab", "a"]
        events = [Event(type=t, source="/s", data={"n": n}) for n, t in enumerate(types_sent)]
        await bus.publish_batch(events)
        with anyio.fail_after(5):
            got = [await wanted.receive(), await wanted.receive()]
        assert [e.data["n"] for e in got] == [1, 3]
        assert sorted(json.loads(r)["type"] for r in decoded) == ["b", "c.x"]
        # With a subscription that wants every type, a new entry is decoded whatever it is.
        async with bus.subscribe(None) as every:
            await bus.publish(Event(type="a", source="/s", data={"n": 9}))
            with anyio.fail_after(5):
                assert (await every.receive()).data == {"n": 9}
        assert sorted(json.loads(r)["type"] for r in decoded) == ["a", "b", "c.x"]
