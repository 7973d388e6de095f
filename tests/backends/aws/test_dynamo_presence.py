"""DynamoPresence runs the public Presence suite against moto_server, and its own cases."""

from __future__ import annotations

import itertools
import json
import socket
from typing import Any

import anyio
import pytest

from eventpatterns.backends.aws import AWSConfigurationError, AWSUnavailable, DynamoPresence
from eventpatterns.backends.aws._dynamo_presence_state import ChannelState, events_after
from eventpatterns.errors import BusClosed, ConfigurationError, EventsMissed
from eventpatterns.realtime import Presence, PresenceEvent
from eventpatterns.testing import ManualClock, PresenceSuite

from . import _dynamo_moto
from .conftest import REGION

serial_moto, dynamo = _dynamo_moto.serial_moto, _dynamo_moto.dynamo  # the fixtures
_prefixes = itertools.count()


class TestDynamoPresence(PresenceSuite):
    anyio_backends = ("asyncio",)  # aiobotocore runs on asyncio only

    @pytest.fixture(autouse=True)
    def _endpoint(self, dynamo: str) -> None:
        self.endpoint = dynamo

    async def make_presence(
        self,
        clock: ManualClock,
        *,
        ttl: float = 10.0,
        sweep_interval: float = 1.0,
        max_info_size: int = 4096,
    ) -> Presence:
        return DynamoPresence(
            "presence",
            prefix=f"suite{next(_prefixes)}",
            ttl=ttl,
            sweep_interval=sweep_interval,
            max_info_size=max_info_size,
            poll_interval=0.02,
            region=REGION,
            endpoint_url=self.endpoint,
            create_table=True,
            clock=clock,
        )

    async def make_peer(self, presence: Presence, clock: ManualClock) -> Presence:
        assert isinstance(presence, DynamoPresence)
        return DynamoPresence(
            presence.table,
            prefix=presence.prefix,
            ttl=presence.ttl,
            poll_interval=0.02,
            region=REGION,
            endpoint_url=self.endpoint,
            clock=clock,
        )


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def presence(endpoint: str, clock: ManualClock, **kwargs: object) -> DynamoPresence:
    options: dict[str, object] = {
        "region": REGION, "endpoint_url": endpoint, "create_table": True,
        "poll_interval": 0.02, "clock": clock, **kwargs,
    }  # fmt: skip
    return DynamoPresence("presence", **options)  # type: ignore[arg-type]


async def test_two_prefixes_share_a_table_and_never_meet(dynamo: str) -> None:
    clock = ManualClock()  # no sweeper runs: expiry happens when asked
    a, b = presence(dynamo, clock, prefix="a"), presence(dynamo, clock, prefix="b")
    try:
        async with b.events("room") as theirs:
            assert await a.join("room", "alice", connection="c1", ttl=5)
            assert await b.members("room") == {}
            assert await b.heartbeat("c1") == 0
            clock.advance(6)
            assert await b.expire() == 0
            assert await b.join("room", "bob", connection="c2")
            with anyio.fail_after(10):
                assert await theirs.__anext__() == PresenceEvent("join", "room", "bob", "c2")
        assert await a.expire() == 1
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_listener_far_behind_is_told_how_many_it_missed(dynamo: str) -> None:
    clock = ManualClock()
    async with presence(dynamo, clock) as store, store.events("room") as events:
        for i in range(105):  # the channel item keeps the latest 100 events
            await store.join("room", f"u{i}", connection=f"c{i}")
        with anyio.fail_after(10), pytest.raises(EventsMissed) as info:
            await events.__anext__()
        assert info.value.missed == 5
        with anyio.fail_after(10):
            assert (await events.__anext__()).member == "u5"


async def test_a_missing_table_is_a_configuration_error_naming_it(dynamo: str) -> None:
    store = DynamoPresence("no-such-table", region=REGION, endpoint_url=dynamo)
    async with store:
        with pytest.raises(AWSConfigurationError, match="no-such-table") as info:
            await store.count("room")
        assert info.value.code == "ResourceNotFoundException"


async def test_an_unreachable_endpoint_is_unavailable(moto_endpoint: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = DynamoPresence("presence", region=REGION, endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(AWSUnavailable, match="cannot reach"):
        await store.join("room", "alice", connection="c1")
    await store.aclose()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": "ab"},
        {"prefix": "a#b"},
        {"poll_interval": 0},
        {"poll_interval": "1"},
        {"grace": float("inf")},
        {"ttl": 0},
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    options: dict[str, object] = {"table": "presence", **kwargs}
    with pytest.raises(ConfigurationError):
        DynamoPresence(**options)  # type: ignore[arg-type]


async def test_expire_pages_through_many_due_channels(dynamo: str) -> None:
    clock = ManualClock()
    store = presence(dynamo, clock)
    try:
        for i in range(105):  # more than one page of the due index
            await store.join(f"room{i}", "alice", connection="c1", ttl=5)
        clock.advance(6)
        assert await store.expire() == 105
        assert await store.expire() == 0
    finally:
        await store.aclose()


async def test_a_channel_past_the_item_size_limit_is_refused_whole(dynamo: str) -> None:
    clock = ManualClock()
    async with presence(dynamo, clock) as store:
        info = {"k": "x" * 4000}

        async def fill() -> None:
            for i in range(120):  # 120 x 4 KB > DynamoDB's 400 KB item limit
                await store.join("big", f"u{i}", connection=f"c{i}", info=info)

        with pytest.raises(AWSConfigurationError, match="size") as error:
            await fill()
        assert error.value.operation == "PutItem"
        accepted = await store.count("big")
        assert 50 <= accepted < 120  # what was accepted stays
        assert await store.join("big", "small", connection="s")  # a smaller one fits


async def test_closing_inside_the_context_stops_the_sweeper(dynamo: str) -> None:
    clock = ManualClock()
    async with presence(dynamo, clock, sweep_interval=1) as store:
        await store.join("room", "alice", connection="c1")
        await store.aclose()
        clock.advance(1)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(BusClosed):
            await store.count("room")


def test_the_event_log_keeps_the_latest_events_within_its_byte_budget() -> None:
    state = ChannelState("room")
    big = json.dumps({"k": "x" * 3000})
    for i in range(40):  # 40 x 3 KB of events: over the 64 KB budget
        state.join(f"u{i}", "c", big, 10.0)
    fields = state.item_fields()
    kept = json.loads(fields["e"]["S"])
    assert 15 < len(kept) < 25
    assert kept[-1][0] == 40  # the latest stays
    assert events_after("room", None, 7) == (7, 0, [])


async def test_requests_per_call_are_as_documented(dynamo: str) -> None:
    clock = ManualClock()
    store = presence(dynamo, clock)
    try:
        await store.count("warm-up")  # creates the table
        calls: list[str] = []
        db = await store._pool.client("dynamodb")

        def record(model: Any, **kwargs: Any) -> None:
            calls.append(model.name)

        db.meta.events.register("before-call.dynamodb", record)
        await store.join("room", "alice", connection="c1")
        assert calls == ["UpdateItem", "GetItem", "PutItem"]
        calls.clear()
        assert await store.count("room") == 1  # nothing changed: a read
        assert calls == ["GetItem"]
        calls.clear()
        clock.advance(1)
        assert await store.heartbeat("c1") == 1
        assert calls == ["GetItem", "GetItem", "PutItem"]
    finally:
        await store.aclose()
