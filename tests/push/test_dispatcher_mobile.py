"""PushDispatcher through FCMAdapter / APNsAdapter to FakeFCM / FakeAPNs over sockets.

The APNs timestamp rule for ``410 Unregistered``, the shapes each adapter sends, and
the adapters' refusals.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.errors import ArgumentTypeError, ConfigurationError
from eventpatterns.push import (
    NOTIFICATION_ID,
    APNsAdapter,
    FatiguePolicy,
    FCMProvider,
    Notification,
    PushDispatcher,
    PushProvider,
    Registration,
    WebPushAdapter,
)
from eventpatterns.push._adapters import collapse_id
from eventpatterns.testing import FakeAPNs, FakeFCM, ManualClock

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0
TOKEN = "a1" * 32
NO_BUDGET = FatiguePolicy(user_budget=None)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=NOW)


@pytest.fixture
def registry() -> MemoryDeviceRegistry:
    return MemoryDeviceRegistry()


@pytest.fixture
async def dispatcher(
    registry: MemoryDeviceRegistry, adapters: dict[str, PushProvider], clock: ManualClock
) -> AsyncIterator[PushDispatcher]:
    async with PushDispatcher(registry, adapters, clock=clock, policy=NO_BUDGET) as dispatcher:
        yield dispatcher


async def test_fcm_and_apns_devices_get_their_own_shapes(
    registry: MemoryDeviceRegistry,
    dispatcher: PushDispatcher,
    fcm: FakeFCM,
    apns: FakeAPNs,
) -> None:
    await registry.register("alice", Registration("fcm", "fcm-token-1"), now=NOW)
    await registry.register(
        "alice", Registration("apns", TOKEN, apns_environment="sandbox"), now=NOW
    )
    note = Notification(
        title="Shipped", body="Order 42", data={"order": "42"}, urgency="low",
        collapse_key="order-42", ttl=3600,
    )  # fmt: skip
    result = await dispatcher.notify("alice", note)
    assert sorted((o.platform, o.status) for o in result.deliveries) == [
        ("apns", "delivered"),
        ("fcm", "delivered"),
    ]
    data = {"order": "42", NOTIFICATION_ID: result.id}
    assert fcm.messages == [
        {
            "token": "fcm-token-1",
            "notification": {"title": "Shipped", "body": "Order 42"},
            "data": data,
            "android": {"priority": "normal", "ttl": "3600s", "collapse_key": "order-42"},
        }
    ]
    [sent] = apns.notifications
    assert sent.token == TOKEN
    assert sent.payload == {"aps": {"alert": {"title": "Shipped", "body": "Order 42"}}, **data}
    headers = sent.headers
    assert headers["apns-topic"] == "com.example.app"
    assert headers["apns-priority"] == "5"  # low urgency: power-friendly
    assert headers["apns-expiration"] == str(int(NOW) + 3600)
    assert headers["apns-collapse-id"] == "order-42"


async def test_apns_410_prunes_only_a_token_not_registered_again_since(
    registry: MemoryDeviceRegistry, dispatcher: PushDispatcher, apns: FakeAPNs
) -> None:
    stale = await registry.register("alice", Registration("apns", TOKEN), now=NOW - 500)
    fresh = await registry.register("bob", Registration("apns", "b2" * 32), now=NOW)
    # Apple says both stopped being valid at NOW - 100: alice's registration is older,
    # bob registered again after it (his token is valid again).
    apns.fail("Unregistered", times=2, timestamp=NOW - 100)
    [gone] = (await dispatcher.notify("alice", Notification(title="x"))).deliveries
    [kept] = (await dispatcher.notify("bob", Notification(title="x"))).deliveries
    assert (gone.status, gone.reason) == ("pruned", "Unregistered")
    assert (kept.status, kept.reason) == ("kept", "Unregistered; kept: registered again")
    assert await registry.get(stale.id) is None
    assert await registry.get(fresh.id) is not None


async def test_fcm_unregistered_prunes_and_high_urgency_is_high_priority(
    registry: MemoryDeviceRegistry, dispatcher: PushDispatcher, fcm: FakeFCM
) -> None:
    dead = await registry.register("alice", Registration("fcm", "gone"), now=NOW)
    fcm.fail("UNREGISTERED")
    [outcome] = (await dispatcher.notify("alice", Notification(title="x"))).deliveries
    assert (outcome.status, outcome.reason) == ("pruned", "UNREGISTERED")
    assert await registry.get(dead.id) is None
    await registry.register("alice", Registration("fcm", "live"), now=NOW)
    await dispatcher.notify("alice", Notification(title="code", urgency="high", ttl=0))
    assert fcm.messages[-1]["android"] == {"priority": "high", "ttl": "0s"}


async def test_an_apns_device_without_a_topic_is_dead_lettered(
    registry: MemoryDeviceRegistry, fcm: FakeFCM, clock: ManualClock
) -> None:
    async with FCMProvider(fcm.service_account, base_url=fcm.base_url, clock=clock) as sender:
        adapter = APNsAdapter(sender, clock=clock)  # type: ignore[arg-type]
        await registry.register("alice", Registration("apns", TOKEN), now=NOW)
        async with PushDispatcher(
            registry, {"apns": adapter}, clock=clock, policy=NO_BUDGET
        ) as dispatcher:
            [outcome] = (await dispatcher.notify("alice", Notification(title="x"))).deliveries
        assert outcome.status == "dead-lettered"
        assert outcome.reason is not None
        assert "APNsAdapter(topic=...)" in outcome.reason


async def test_adapters_refuse_another_platform_or_a_non_device(
    registry: MemoryDeviceRegistry, adapters: dict[str, PushProvider]
) -> None:
    device = await registry.register("alice", Registration("fcm", "tok"), now=NOW)
    with pytest.raises(ConfigurationError, match="apns adapter cannot send to a fcm device"):
        await adapters["apns"].send(device, Notification(title="x"))
    with pytest.raises(ArgumentTypeError, match="device"):
        await adapters["fcm"].send("tok", Notification())  # type: ignore[arg-type]
    assert isinstance(adapters["fcm"], PushProvider)
    assert WebPushAdapter.platform.value == "webpush"


def test_collapse_ids_that_do_not_fit_become_stable_digests() -> None:
    assert collapse_id("order-42", limit=64) == "order-42"
    long = collapse_id("é" * 40, limit=64)  # 80 bytes
    assert len(long) == 43
    assert long == collapse_id("é" * 40, limit=64)
    assert len(collapse_id("x" * 40, limit=32)) == 32
    short = collapse_id("a b", limit=32, pattern=re.compile(r"[a-z]+"))
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", short)
