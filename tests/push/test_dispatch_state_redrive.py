"""PushDispatcher.redrive: dead letters sent again through the normal path."""

from __future__ import annotations

import pytest

from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.errors import ConfigurationError, InvalidState
from eventpatterns.push import (
    Budget,
    FatiguePolicy,
    Notification,
    PushDeadLetter,
    PushDispatcher,
    WebPushProvider,
)
from eventpatterns.testing import ManualClock, WebPushReceiver, eventually

from .test_dispatcher import (
    NOW,
    browser,
    clock,
    dead_letters,
    dispatcher,
    dispatcher_for,
    provider,
    receiver,
    registry,
    shown,
)

__all__ = ["clock", "dispatcher", "provider", "receiver", "registry"]  # fixtures

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_redrive_sends_chosen_letters_again_and_discards_them(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    _, sub = await browser(registry, receiver, "alice")
    _, other = await browser(registry, receiver, "alice")
    receiver.fail(413, times=2, subscription=sub)
    for title in ("one", "two"):
        await dispatcher.notify("alice", Notification(title=title))
    one, two = await dead_letters(dispatcher, 2)
    assert [shown(m)["title"] for m in receiver.messages] == ["one", "two"]  # the other device
    assert await dispatcher.redrive([two.id, "pdl-unknown", two.id]) == 1
    assert [shown(m)["title"] for m in receiver.messages] == ["one", "two", "two"]
    assert receiver.messages[-1].endpoint == sub.endpoint  # only the device that failed
    assert shown(receiver.messages[-1])["data"]["notificationId"] == two.notification_id
    assert await dispatcher.dead_letters.list() == [one]
    assert await dispatcher.redrive([two.id]) == 0  # gone: not sent twice
    assert other.endpoint != sub.endpoint


async def test_a_redrive_that_fails_again_is_a_new_dead_letter(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    _, sub = await browser(registry, receiver, "alice")
    receiver.fail(413, times=2, subscription=sub)
    await dispatcher.notify("alice", Notification(title="big"))
    [first] = await dead_letters(dispatcher, 1)
    assert await dispatcher.redrive() == 1
    [again] = await dead_letters(dispatcher, 1)
    assert again.id != first.id
    assert (again.notification_id, again.reason) == (first.notification_id, first.reason)
    assert receiver.messages == []


async def test_a_letter_whose_device_is_gone_stays(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    device, sub = await browser(registry, receiver, "alice")
    receiver.fail(413, subscription=sub)
    await dispatcher.notify("alice", Notification(title="lost device"))
    [letter] = await dead_letters(dispatcher, 1)
    await registry.unregister("alice", device.id)
    assert await dispatcher.redrive() == 0
    moved, _ = await browser(registry, receiver, "bob")
    gone_to_bob = PushDeadLetter(
        dispatcher.dead_letters.new_id(), "alice", moved.id, "webpush", letter.notification,
        letter.notification_id, "test", 1, NOW,
    )  # fmt: skip
    await dispatcher.dead_letters.add(gone_to_bob)
    assert await dispatcher.redrive() == 0  # the token is bob's now: not alice's to send
    assert await dispatcher.dead_letters.list() == [letter, gone_to_bob]
    assert receiver.messages == []


async def test_a_letter_of_no_device_goes_through_the_fatigue_budget(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, provider: WebPushProvider,
    clock: ManualClock,
) -> None:  # fmt: skip
    policy = FatiguePolicy(user_budget=Budget(1, 3600.0))
    async with dispatcher_for(registry, provider, clock, policy=policy) as dispatcher:
        await browser(registry, receiver, "alice")
        await dispatcher.notify("alice", Notification(title="spends the budget"))
        letter = PushDeadLetter(
            dispatcher.dead_letters.new_id(), "alice", None, None,
            Notification(title="closed before delivery"), "", "dispatcher closed", 0, NOW,
        )  # fmt: skip
        await dispatcher.dead_letters.add(letter)
        assert await dispatcher.redrive(limit=10) == 1
        assert len(receiver.messages) == 1  # held by the budget, not sent past it
        assert [n.title for n in (await dispatcher.state.fatigue("alice")).held] == [
            "closed before delivery"
        ]
        clock.advance(3600)
        await eventually(lambda: len(receiver.messages) == 2)
        assert shown(receiver.messages[1])["title"] == "closed before delivery"
        assert shown(receiver.messages[1])["data"]["notificationId"]  # a fresh id
        with pytest.raises(ConfigurationError, match="limit"):
            await dispatcher.redrive(limit=0)
    with pytest.raises(InvalidState):
        await dispatcher.redrive()
