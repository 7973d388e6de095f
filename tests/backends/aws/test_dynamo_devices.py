"""DynamoDeviceRegistry runs the public DeviceRegistry suite against moto_server, and more."""

from __future__ import annotations

import itertools
import socket
from typing import Any

import pytest

from eventpatterns.backends.aws import AWSConfigurationError, AWSUnavailable, DynamoDeviceRegistry
from eventpatterns.errors import ConfigurationError, LimitExceeded
from eventpatterns.push import DEFAULT_MAX_DEVICES, DeviceRegistry, Registration
from eventpatterns.testing import DeviceRegistrySuite

from . import _dynamo_moto
from .conftest import REGION

serial_moto, dynamo = _dynamo_moto.serial_moto, _dynamo_moto.dynamo  # the fixtures

_prefixes = itertools.count()
T0 = 1_700_000_000.0


class TestDynamoDeviceRegistry(DeviceRegistrySuite):
    anyio_backends = ("asyncio",)  # aiobotocore runs on asyncio only

    @pytest.fixture(autouse=True)
    def _endpoint(self, dynamo: str) -> None:
        self.endpoint = dynamo

    async def make_registry(self, *, max_devices: int = DEFAULT_MAX_DEVICES) -> DeviceRegistry:
        return DynamoDeviceRegistry(
            "devices",
            prefix=f"suite{next(_prefixes)}",
            max_devices=max_devices,
            region=REGION,
            endpoint_url=self.endpoint,
            create_table=True,
        )


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def fcm(token: str) -> Registration:
    return Registration("fcm", token)


def registry(endpoint: str, **kwargs: object) -> DynamoDeviceRegistry:
    options: dict[str, object] = {
        "region": REGION, "endpoint_url": endpoint, "create_table": True, **kwargs
    }  # fmt: skip
    return DynamoDeviceRegistry("devices", **options)  # type: ignore[arg-type]


async def test_two_prefixes_share_a_table_and_never_meet(dynamo: str) -> None:
    async with registry(dynamo, prefix="a") as a, registry(dynamo, prefix="b") as b:
        mine = await a.register("alice", fcm("t1"), now=T0)
        assert await b.get(mine.id) is None
        assert await b.devices("alice") == []
        theirs = await b.register("bob", fcm("t1"), now=T0 + 1)  # the same token
        assert await a.get(mine.id) == mine
        assert await a.devices("bob") == []
        assert await b.prune(seen_before=T0 + 10) == 1
        assert await a.get(mine.id) == mine
        assert await b.get(theirs.id) is None


async def test_a_missing_table_is_a_configuration_error_naming_it(dynamo: str) -> None:
    async with DynamoDeviceRegistry("no-such-table", region=REGION, endpoint_url=dynamo) as store:
        with pytest.raises(AWSConfigurationError, match="no-such-table") as info:
            await store.register("alice", fcm("t1"), now=T0)
        assert info.value.code == "ResourceNotFoundException"


async def test_an_unreachable_endpoint_is_unavailable(moto_endpoint: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = DynamoDeviceRegistry("devices", region=REGION, endpoint_url=f"http://127.0.0.1:{port}")
    async with store:
        with pytest.raises(AWSUnavailable, match="cannot reach") as info:
            await store.get(fcm("t1").id)
        assert info.value.operation == "GetItem"


async def test_a_slot_left_by_a_lost_registration_is_reclaimed_after_the_grace(
    dynamo: str,
) -> None:
    async with registry(dynamo, max_devices=2, slot_grace=60) as store:
        await store.register("alice", fcm("t1"), now=T0)
        # A registration that claimed its slot and died before writing its device:
        await store._claim("alice", fcm("lost").id, T0)
        with pytest.raises(LimitExceeded):
            await store.register("alice", fcm("t2"), now=T0 + 30)  # maybe on its way
        added = await store.register("alice", fcm("t2"), now=T0 + 61)
        assert [d.id for d in await store.devices("alice")] == [fcm("t1").id, added.id]


async def test_a_moved_token_frees_the_old_owners_slot(dynamo: str) -> None:
    async with registry(dynamo, max_devices=1) as store:
        await store.register("alice", fcm("t1"), now=T0)
        await store.register("bob", fcm("t1"), now=T0 + 1)
        assert await store.register("alice", fcm("t2"), now=T0 + 2)  # alice's slot is free
        assert await store.unregister_all("alice") == 1
        assert [d.user for d in await store.devices("bob")] == ["bob"]


async def test_prune_pages_through_many_devices(dynamo: str) -> None:
    async with registry(dynamo, max_devices=200) as store:
        for i in range(120):
            await store.register(f"u{i % 3}", fcm(f"t{i}"), now=T0 + i)
        assert await store.prune(seen_before=T0 + 100, limit=30) == 30
        assert await store.get(fcm("t0").id) is None
        assert await store.get(fcm("t30").id) is not None
        assert await store.prune(seen_before=T0 + 100) == 70
        remaining = [d for u in ("u0", "u1", "u2") for d in await store.devices(u)]
        assert sorted(d.last_seen for d in remaining) == [T0 + i for i in range(100, 120)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": "ab"},
        {"prefix": ""},
        {"prefix": "a#b"},
        {"max_devices": 0},
        {"max_devices": 5001},
        {"slot_grace": 0},
        {"slot_grace": "1"},
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    options: dict[str, object] = {"table": "devices", **kwargs}
    with pytest.raises(ConfigurationError):
        DynamoDeviceRegistry(**options)  # type: ignore[arg-type]


async def test_creating_the_table_on_an_unreachable_endpoint_is_unavailable(
    moto_endpoint: str,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    async with DynamoDeviceRegistry(
        "devices", region=REGION, endpoint_url=url, create_table=True
    ) as store:
        with pytest.raises(AWSUnavailable) as info:
            await store.devices("alice")
        assert info.value.operation == "CreateTable"


async def count_calls(store: DynamoDeviceRegistry) -> list[str]:
    """Record the name of every DynamoDB operation the store's client makes from now on."""
    calls: list[str] = []
    db = await store._db()

    def record(model: Any, **kwargs: Any) -> None:
        calls.append(model.name)

    db.meta.events.register("before-call.dynamodb", record)
    return calls


async def test_requests_per_call_are_as_documented(dynamo: str) -> None:
    async with registry(dynamo) as store:
        calls = await count_calls(store)
        await store.register("alice", fcm("t1"), now=T0)  # new: try, claim, put
        assert calls == ["UpdateItem", "UpdateItem", "PutItem"]
        calls.clear()
        await store.register("alice", fcm("t1"), now=T0 + 1)  # known: one write
        assert calls == ["UpdateItem"]
        calls.clear()
        await store.register("bob", fcm("t1"), now=T0 + 2)  # moved: + free alice's slot
        assert calls == ["UpdateItem", "UpdateItem", "PutItem", "UpdateItem"]
        calls.clear()
        await store.devices("bob")
        assert calls == ["GetItem", "BatchGetItem"]
