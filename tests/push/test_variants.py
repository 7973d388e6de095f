"""Per-platform variants of one notification, through the dispatcher to FakeFCM / FakeAPNs.

One event, one notify, one fatigue budget: each device gets its platform's text
(``Notification.variants``), a platform mapped to ``None`` gets nothing, and a variant
survives being held for quiet hours, and the dispatch state's codec keeps it.
"""

from __future__ import annotations

from datetime import time

import pytest

from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.errors import ArgumentTypeError, ConfigurationError
from eventpatterns.push import (
    NOTIFICATION_ID,
    FatiguePolicy,
    Notification,
    PushDispatcher,
    PushProvider,
    QuietHours,
    Registration,
    Variant,
)
from eventpatterns.push._dispatch_codec import _notification, _to_notification
from eventpatterns.testing import FakeAPNs, FakeFCM, ManualClock, eventually

pytestmark = pytest.mark.anyio
#: 2027-01-15 23:00 UTC: midnight in Paris (quiet hours).
NOW = 1_800_054_000.0
TOKEN = "a1" * 32
NO_BUDGET = FatiguePolicy(user_budget=None)
RICH = Variant("Order 42 shipped", "2 items, DHL, arrives Monday", {"order": "42", "items": "2"})
COMPACT = Variant("Shipped", "#42", {"o": "42"})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=NOW)


async def register_both(registry: MemoryDeviceRegistry) -> None:
    await registry.register("alice", Registration("fcm", "fcm-token-1"), now=NOW)
    await registry.register(
        "alice", Registration("apns", TOKEN, apns_environment="sandbox"), now=NOW
    )


async def test_each_platform_gets_its_variant_from_one_notify(
    adapters: dict[str, PushProvider], fcm: FakeFCM, apns: FakeAPNs, clock: ManualClock
) -> None:
    registry = MemoryDeviceRegistry()
    await register_both(registry)
    note = Notification(title="base", variants={"fcm": RICH, "apns": COMPACT})
    async with PushDispatcher(registry, adapters, clock=clock, policy=NO_BUDGET) as dispatcher:
        result = await dispatcher.notify("alice", note)
    assert sorted((o.platform, o.status) for o in result.deliveries) == [
        ("apns", "delivered"),
        ("fcm", "delivered"),
    ]
    [android] = fcm.messages
    assert android["notification"] == {"title": RICH.title, "body": RICH.body}
    assert android["data"] == {**RICH.data, NOTIFICATION_ID: result.id}
    [ios] = apns.notifications
    alert = {"title": COMPACT.title, "body": COMPACT.body}
    assert ios.payload == {"aps": {"alert": alert}, **COMPACT.data, NOTIFICATION_ID: result.id}


async def test_a_platform_mapped_to_none_gets_nothing(
    adapters: dict[str, PushProvider], fcm: FakeFCM, apns: FakeAPNs, clock: ManualClock
) -> None:
    registry = MemoryDeviceRegistry()
    await register_both(registry)
    note = Notification(title="for Android only", variants={"apns": None})
    async with PushDispatcher(registry, adapters, clock=clock, policy=NO_BUDGET) as dispatcher:
        result = await dispatcher.notify("alice", note)
    assert [(o.platform, o.status) for o in result.deliveries] == [("fcm", "delivered")]
    assert [m["notification"]["title"] for m in fcm.messages] == ["for Android only"]
    assert apns.notifications == []


async def test_a_variant_survives_quiet_hours(
    adapters: dict[str, PushProvider], fcm: FakeFCM, clock: ManualClock
) -> None:
    registry = MemoryDeviceRegistry()
    await registry.register(
        "alice", Registration("fcm", "fcm-token-1", time_zone="Europe/Paris"), now=NOW
    )
    policy = FatiguePolicy(user_budget=None, quiet_hours=QuietHours(time(22), time(7)))
    note = Notification(title="base", variants={"fcm": RICH})
    async with PushDispatcher(registry, adapters, clock=clock, policy=policy) as dispatcher:
        [held] = (await dispatcher.notify("alice", note)).deliveries
        assert held.status == "held"
        assert fcm.messages == []
        assert held.at is not None
        clock.advance(held.at - NOW)
        await eventually(lambda: len(fcm.messages) == 1)
    assert [m["notification"]["title"] for m in fcm.messages] == [RICH.title]


def test_the_codec_keeps_variants_and_reads_old_state() -> None:
    note = Notification(title="base", topic="orders", variants={"fcm": RICH, "apns": None})
    assert _to_notification(_notification(note)) == note
    plain = Notification(title="plain")
    assert len(_notification(plain)) == 8  # state written before variants reads the same
    assert _to_notification(_notification(plain)) == plain


def test_for_platform_keeps_the_notification_id_and_refuses_a_left_out_platform() -> None:
    note = Notification(title="base", data={NOTIFICATION_ID: "n1", "x": "1"}, variants={
        "fcm": RICH, "apns": None,
    })  # fmt: skip
    android = note.for_platform("fcm")
    assert (android.title, android.data) == (RICH.title, {**RICH.data, NOTIFICATION_ID: "n1"})
    assert android.variants == {}
    assert note.for_platform("webpush") is note
    assert (note.sends_to("fcm"), note.sends_to("apns"), note.sends_to("webpush")) == (
        True, False, True,
    )  # fmt: skip
    with pytest.raises(ConfigurationError, match="not sent to 'apns'"):
        note.for_platform("apns")


def test_bad_variants_are_refused_naming_what_is_wrong() -> None:
    with pytest.raises(ConfigurationError, match="'ios' is not a platform"):
        Notification(variants={"ios": COMPACT})
    with pytest.raises(ArgumentTypeError, match="variants"):
        Notification(variants={"fcm": "hello"})  # type: ignore[dict-item]
    with pytest.raises(ArgumentTypeError, match="data"):
        Variant(data={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(ArgumentTypeError, match="variants"):
        Notification(variants=[("fcm", RICH)])  # type: ignore[arg-type]
