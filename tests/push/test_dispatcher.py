"""PushDispatcher through the real WebPushProvider and WebPushReceiver over sockets.

Every outcome path: delivered, Retry-After honoured on a ManualClock, backoff, the
breaker, dead tokens pruned, permanent failures and exhausted retries dead-lettered,
idempotent notify (50 concurrent calls), quiet hours, digests and collapse keys.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import time
from typing import Any

import anyio
import pytest

from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.bus import Backoff
from eventpatterns.errors import (
    ArgumentTypeError,
    BackendUnavailable,
    ConfigurationError,
    InvalidDevice,
    InvalidState,
)
from eventpatterns.push import (
    NOTIFICATION_ID,
    Budget,
    Device,
    FatiguePolicy,
    MemoryDispatchState,
    MemoryPushDeadLetters,
    Notification,
    PermanentFailure,
    PushDeadLetter,
    PushDispatcher,
    PushRetry,
    QuietHours,
    Registration,
    RetryLater,
    Vapid,
    VapidKeys,
    WebPushAdapter,
    WebPushProvider,
    WebPushSubscription,
)
from eventpatterns.push._breaker import BreakerPolicy
from eventpatterns.testing import ManualClock, ReceivedWebPush, WebPushReceiver, eventually

pytestmark = pytest.mark.anyio
#: 2027-01-15 23:00 UTC: midnight in Paris (quiet hours), 18:00 in New York.
NOW = 1_800_054_000.0
#: 07:00 in Paris the next morning.
PARIS_MORNING = 1_800_079_200.0
VAPID = Vapid(VapidKeys.generate(), subject="mailto:ops@example.com")
NO_BUDGET = FatiguePolicy(user_budget=None)
RETRY = PushRetry(max_attempts=3, backoff=Backoff(initial=10, jitter=0), budget=None)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=NOW)


@pytest.fixture
async def receiver(clock: ManualClock) -> AsyncIterator[WebPushReceiver]:
    async with WebPushReceiver(clock=clock) as receiver:
        yield receiver


@pytest.fixture
async def provider(clock: ManualClock) -> AsyncIterator[WebPushProvider]:
    async with WebPushProvider(VAPID, clock=clock, deadline=5, padding=0) as provider:
        yield provider


@pytest.fixture
def registry() -> MemoryDeviceRegistry:
    return MemoryDeviceRegistry()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def browser(
    registry: Any, receiver: WebPushReceiver, user: str, *, now: float = NOW, **fields: Any
) -> tuple[Device, WebPushSubscription]:
    """Subscribe a browser at the receiver and register it for ``user``."""
    sub = receiver.subscribe()
    registration = Registration(
        "webpush", sub.endpoint, p256dh=b64(sub.p256dh), auth=b64(sub.auth), **fields
    )
    return await registry.register(user, registration, now=now), sub


def shown(message: ReceivedWebPush) -> dict[str, Any]:
    """The decrypted payload a service worker reads."""
    payload: dict[str, Any] = json.loads(message.payload)
    return payload


async def dead_letters(dispatcher: PushDispatcher, count: int) -> list[PushDeadLetter]:
    """Wait (bounded) until ``count`` dead letters are stored; return them."""
    with anyio.fail_after(10):
        while len(letters := await dispatcher.dead_letters.list()) < count:  # noqa: ASYNC110
            await anyio.sleep(0.002)
    return letters


def dispatcher_for(
    registry: Any, provider: WebPushProvider, clock: ManualClock, **options: Any
) -> PushDispatcher:
    options.setdefault("policy", NO_BUDGET)
    options.setdefault("retry", RETRY)
    return PushDispatcher(registry, {"webpush": WebPushAdapter(provider)}, clock=clock, **options)


@pytest.fixture
async def dispatcher(
    registry: MemoryDeviceRegistry, provider: WebPushProvider, clock: ManualClock
) -> AsyncIterator[PushDispatcher]:
    async with dispatcher_for(registry, provider, clock) as dispatcher:
        yield dispatcher


async def test_delivered_to_the_consented_devices_only(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    laptop, sub = await browser(registry, receiver, "alice", topics={"orders"})
    await browser(registry, receiver, "alice", topics={"marketing"})
    await browser(registry, receiver, "bob", topics={"orders"})
    note = Notification(
        title="Shipped", body="Order 42", data={"order": "42"}, topic="orders",
        urgency="high", collapse_key="order-42", ttl=600,
    )  # fmt: skip
    result = await dispatcher.notify("alice", note)
    assert result.route == "push"
    [outcome] = result.deliveries
    assert (outcome.device_id, outcome.status, outcome.notification_id) == (
        laptop.id,
        "delivered",
        result.id,
    )
    assert outcome.message_id is not None
    assert outcome.message_id.startswith("http://")
    [message] = receiver.messages
    assert message.endpoint == sub.endpoint
    assert (message.ttl, message.urgency, message.topic) == (600, "high", "order-42")
    assert shown(message) == {
        "title": "Shipped",
        "body": "Order 42",
        "data": {"order": "42", NOTIFICATION_ID: result.id},
        "topic": "orders",
    }


async def test_a_user_without_devices_gets_no_devices(dispatcher: PushDispatcher) -> None:
    result = await dispatcher.notify("nobody", Notification(title="hi"))
    assert (result.route, result.deliveries) == ("no-devices", ())


async def test_retry_after_is_honoured_on_the_clock(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    clock: ManualClock,
) -> None:
    _, sub = await browser(registry, receiver, "alice")
    receiver.fail(429, retry_after=120, subscription=sub)
    result = await dispatcher.notify("alice", Notification(title="later"))
    [outcome] = result.deliveries
    assert (outcome.status, outcome.reason, outcome.at) == ("retrying", "429", NOW + 120)
    assert dispatcher.pending == 1
    clock.advance(120)
    await eventually(lambda: len(receiver.messages) == 1)
    assert shown(receiver.messages[0])["data"][NOTIFICATION_ID] == result.id
    await eventually(lambda: dispatcher.pending == 0)


async def test_without_retry_after_the_backoff_grows(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    _, sub = await browser(registry, receiver, "alice")
    receiver.fail(503, times=2, subscription=sub)
    retry = PushRetry(max_attempts=5, backoff=Backoff(initial=10, multiplier=3, jitter=0))
    async with dispatcher_for(registry, provider, clock, retry=retry) as dispatcher:
        [outcome] = (await dispatcher.notify("alice", Notification(title="x"))).deliveries
        assert (outcome.status, outcome.at) == ("retrying", NOW + 10)
        assert dispatcher.scheduled() == [(outcome.notification_id, outcome.device_id, NOW + 10)]
        clock.advance(10)
        second = [(outcome.notification_id, outcome.device_id, NOW + 40)]  # 10, then 30
        await eventually(lambda: dispatcher.scheduled() == second)
        clock.advance(30)
        await eventually(lambda: len(receiver.messages) == 1)
        assert receiver.requests == 3


async def test_exhausted_retries_go_to_the_dead_letters(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    clock: ManualClock,
) -> None:
    device, sub = await browser(registry, receiver, "alice")
    receiver.fail(503, times=3, subscription=sub)
    result = await dispatcher.notify("alice", Notification(title="doomed"))
    clock.advance(10)
    await eventually(lambda: [at for *_, at in dispatcher.scheduled()] == [NOW + 30])
    clock.advance(20)
    [letter] = await dead_letters(dispatcher, 1)
    assert (dispatcher.pending, receiver.requests) == (0, 3)
    assert (letter.device_id, letter.notification_id, letter.attempts) == (device.id, result.id, 3)
    assert letter.reason == "retries exhausted: 503"
    assert isinstance(letter.result, RetryLater)
    assert letter.result.status == 503
    assert letter.notification.title == "doomed"
    assert await dispatcher.dead_letters.get(letter.id) == letter
    assert receiver.messages == []


async def test_the_retry_budget_dead_letters_past_it(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    for _ in range(3):
        await browser(registry, receiver, "alice")
    receiver.fail(500, times=3)
    retry = PushRetry(max_attempts=5, backoff=Backoff(initial=10, jitter=0), budget=Budget(2, 60))
    async with dispatcher_for(registry, provider, clock, retry=retry) as dispatcher:
        result = await dispatcher.notify("alice", Notification(title="x"))
        statuses = sorted(outcome.status for outcome in result.deliveries)
        assert statuses == ["dead-lettered", "retrying", "retrying"]
        [letter] = await dispatcher.dead_letters.list()
        assert letter.reason == "retry budget spent: 500"
        clock.advance(10)
        await eventually(lambda: len(receiver.messages) == 2)


async def test_the_breaker_opens_and_holds_sends_until_its_cooldown(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    await browser(registry, receiver, "alice")
    await browser(registry, receiver, "alice")
    await browser(registry, receiver, "bob")
    receiver.fail(500, times=2)
    breaker = BreakerPolicy(threshold=2, cooldown=60)
    async with dispatcher_for(registry, provider, clock, breaker=breaker) as dispatcher:
        first = await dispatcher.notify("alice", Notification(title="a"))
        assert [o.status for o in first.deliveries] == ["retrying", "retrying"]
        assert {o.at for o in first.deliveries} == {NOW + 10, NOW + 60}  # the 2nd opened it
        [held] = (await dispatcher.notify("bob", Notification(title="b"))).deliveries
        assert (held.status, held.reason, held.at) == ("retrying", "circuit breaker open", NOW + 60)
        assert receiver.requests == 2  # bob's was not tried
        assert dispatcher.breaker("webpush").state == "open"
        clock.advance(10)  # alice's first retry: still open, moved to the cooldown's end
        await eventually(lambda: {at for *_, at in dispatcher.scheduled()} == {NOW + 60})
        clock.advance(50)  # half-open: one trial goes, the others wait for its answer
        await eventually(lambda: len(receiver.messages) == 3)  # it closed: they went too
        assert dispatcher.breaker("webpush").state == "closed"
        assert await dispatcher.dead_letters.list() == []


async def test_a_dead_token_is_pruned_from_the_registry(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    device, sub = await browser(registry, receiver, "alice")
    receiver.unsubscribe(sub)  # the user revoked permission: 410
    [outcome] = (await dispatcher.notify("alice", Notification(title="x"))).deliveries
    assert (outcome.status, outcome.reason) == ("pruned", "410")
    assert await registry.get(device.id) is None
    assert await dispatcher.dead_letters.list() == []


async def test_a_dead_token_registered_again_after_the_send_is_kept(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    clock: ManualClock,
) -> None:
    # The send starts at NOW; the device registers again at NOW + 5 while the 404 is
    # on its way: the registration is newer than the send, so the device stays.
    device, sub = await browser(registry, receiver, "alice")
    registration = Registration("webpush", sub.endpoint, p256dh=b64(sub.p256dh), auth=b64(sub.auth))
    await registry.register("alice", registration, now=NOW + 5)
    receiver.fail(404, subscription=sub)
    [outcome] = (await dispatcher.notify("alice", Notification(title="x"))).deliveries
    assert (outcome.status, outcome.reason) == ("kept", "404; kept: registered again")
    assert await registry.get(device.id) is not None


async def test_a_permanent_failure_is_dead_lettered(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    device, sub = await browser(registry, receiver, "alice")
    receiver.fail(413, subscription=sub)
    result = await dispatcher.notify("alice", Notification(title="big"))
    [outcome] = result.deliveries
    assert (outcome.status, outcome.reason) == ("dead-lettered", "payload too large")
    [letter] = await dispatcher.dead_letters.list(user="alice")
    assert isinstance(letter.result, PermanentFailure)
    assert letter.result.status == 413
    assert (letter.device_id, letter.platform, letter.attempts) == (device.id, "webpush", 1)
    assert await dispatcher.dead_letters.list(user="bob") == []
    assert await dispatcher.dead_letters.discard([letter.id, "nope"]) == 1
    assert await dispatcher.dead_letters.list() == []


async def test_a_notification_the_adapter_refuses_is_dead_lettered(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    await browser(registry, receiver, "alice")
    [outcome] = (await dispatcher.notify("alice", Notification(body="x" * 5000))).deliveries
    assert outcome.status == "dead-lettered"
    assert outcome.reason is not None
    assert outcome.reason.startswith("LimitExceeded: ")
    assert receiver.requests == 0


async def test_fifty_concurrent_notifies_with_one_key_deliver_once_per_device(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    await browser(registry, receiver, "alice")
    await browser(registry, receiver, "alice")
    note = Notification(title="once", idempotency_key="order-42-shipped")
    results = []

    async def one() -> None:
        results.append(await dispatcher.notify("alice", note))

    async with anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(one)
    [first] = [r for r in results if r.route != "duplicate"]
    assert len(first.deliveries) == 2
    assert {r.duplicate_of for r in results if r.route == "duplicate"} == {first.id}
    assert len(receiver.messages) == 2
    # The key is per user: bob's notify with the same key is his own.
    assert (await dispatcher.notify("bob", note)).route == "no-devices"


async def test_quiet_hours_hold_in_each_device_time_zone(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    paris, paris_sub = await browser(registry, receiver, "alice", time_zone="Europe/Paris")
    await browser(registry, receiver, "alice", time_zone="America/New_York")
    policy = FatiguePolicy(user_budget=None, quiet_hours=QuietHours(time(22), time(7)))
    async with dispatcher_for(registry, provider, clock, policy=policy) as dispatcher:
        result = await dispatcher.notify("alice", Notification(title="news"))
        by_device = {o.device_id: o for o in result.deliveries}
        assert (by_device[paris.id].status, by_device[paris.id].at) == ("held", PARIS_MORNING)
        [other] = [o for o in result.deliveries if o.device_id != paris.id]
        assert other.status == "delivered"
        urgent = await dispatcher.notify("alice", Notification(title="code", urgency="high"))
        assert [o.status for o in urgent.deliveries] == ["delivered", "delivered"]
        clock.advance(PARIS_MORNING - NOW)
        await eventually(lambda: len(receiver.messages) == 4)
        last = receiver.messages[-1]
        assert (last.endpoint, shown(last)["title"]) == (paris_sub.endpoint, "news")


async def test_a_newer_collapse_key_replaces_one_held_for_quiet_hours(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    await browser(registry, receiver, "alice", time_zone="Europe/Paris")
    policy = FatiguePolicy(user_budget=None, quiet_hours=QuietHours(time(22), time(7)))
    async with dispatcher_for(registry, provider, clock, policy=policy) as dispatcher:
        await dispatcher.notify("alice", Notification(title="score 1-0", collapse_key="match"))
        await dispatcher.notify("alice", Notification(title="score 2-0", collapse_key="match"))
        await dispatcher.notify("alice", Notification(title="other"))
        clock.advance(PARIS_MORNING - NOW)
        await eventually(lambda: len(receiver.messages) == 2)
        assert sorted(shown(m)["title"] for m in receiver.messages) == ["other", "score 2-0"]
        await eventually(lambda: dispatcher.pending == 0)


async def test_over_budget_is_held_then_sent_as_one_digest(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    await browser(registry, receiver, "alice")
    policy = FatiguePolicy(user_budget=Budget(2, 3600))
    async with dispatcher_for(registry, provider, clock, policy=policy) as dispatcher:
        routes = [
            (await dispatcher.notify("alice", Notification(title=f"n{i}"))).route for i in range(5)
        ]
        assert routes == ["push", "push", "held", "held", "held"]
        assert len(receiver.messages) == 2
        clock.advance(1800)  # one token back: the three held go as one digest
        await eventually(lambda: len(receiver.messages) == 3)
        digest = shown(receiver.messages[-1])
        assert (digest["title"], digest["body"], digest["data"]["digest"]) == (
            "3 new notifications",
            "n4",
            "3",
        )
        assert len(digest["data"][NOTIFICATION_ID]) == 32


async def test_a_held_notification_is_replaced_by_a_newer_one_with_its_collapse_key(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    await browser(registry, receiver, "alice")
    policy = FatiguePolicy(user_budget=Budget(1, 600))
    async with dispatcher_for(registry, provider, clock, policy=policy) as dispatcher:
        await dispatcher.notify("alice", Notification(title="first"))
        held = [
            await dispatcher.notify("alice", Notification(title=t, collapse_key="eta"))
            for t in ("eta 10 min", "eta 5 min")
        ]
        assert [r.route for r in held] == ["held", "held"]
        clock.advance(600)
        await eventually(lambda: len(receiver.messages) == 2)
        last = shown(receiver.messages[-1])
        assert (last["title"], last["data"][NOTIFICATION_ID]) == ("eta 5 min", held[1].id)


async def test_closing_dead_letters_what_still_waits(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    device, _ = await browser(registry, receiver, "alice", time_zone="Europe/Paris")
    policy = FatiguePolicy(user_budget=None, quiet_hours=QuietHours(time(22), time(7)))
    letters = MemoryPushDeadLetters()
    async with dispatcher_for(
        registry, provider, clock, policy=policy, dead_letters=letters
    ) as dispatcher:
        result = await dispatcher.notify("alice", Notification(title="tomorrow"))
        assert dispatcher.pending == 1
    [letter] = await letters.list()
    assert (letter.reason, letter.device_id, letter.notification_id) == (
        "dispatcher closed",
        device.id,
        result.id,
    )
    with pytest.raises(InvalidState, match="closed"):
        await dispatcher.notify("alice", Notification())


async def test_bad_calls_and_settings_are_refused(
    registry: MemoryDeviceRegistry, provider: WebPushProvider, clock: ManualClock
) -> None:
    dispatcher = dispatcher_for(registry, provider, clock)
    with pytest.raises(InvalidState, match="new"):
        await dispatcher.notify("alice", Notification())
    async with dispatcher:
        with pytest.raises(InvalidState, match="entered only once"):
            await dispatcher.__aenter__()
        with pytest.raises(ArgumentTypeError, match="notification"):
            await dispatcher.notify("alice", {"title": "hi"})  # type: ignore[arg-type]
        with pytest.raises(InvalidDevice):
            await dispatcher.notify("", Notification())
        full = Notification(data={str(i): "x" for i in range(100)})
        with pytest.raises(ConfigurationError, match="notificationId"):
            await dispatcher.notify("alice", full)
        assert await dispatcher.ack("alice", "x") is False  # no presence: nothing waits
        with pytest.raises(ArgumentTypeError, match="notification_id"):
            await dispatcher.ack("alice", 1)  # type: ignore[arg-type]
    await dispatcher.aclose()  # idempotent
    with pytest.raises(ConfigurationError, match="DeviceRegistry"):
        PushDispatcher(object(), {})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="PushProvider"):
        PushDispatcher(registry, {"webpush": provider})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="bus="):
        PushDispatcher(registry, {}, presence=object())  # type: ignore[arg-type]
    for bad in (0, -1, True, 1e9):
        with pytest.raises(ConfigurationError, match="ack_timeout"):
            PushDispatcher(registry, {}, ack_timeout=bad)
    for attempts in (0, True, 1.5):
        with pytest.raises(ConfigurationError, match="max_attempts"):
            PushRetry(max_attempts=attempts)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="Backoff"):
        PushRetry(backoff=1.0)  # type: ignore[arg-type]


async def test_a_platform_without_a_provider_is_dead_lettered(
    registry: MemoryDeviceRegistry, clock: ManualClock
) -> None:
    await registry.register("alice", Registration("fcm", "tok"), now=NOW)
    async with PushDispatcher(registry, {}, clock=clock, policy=NO_BUDGET) as dispatcher:
        [outcome] = (await dispatcher.notify("alice", Notification(title="x"))).deliveries
        assert (outcome.status, outcome.reason) == ("dead-lettered", "no provider for fcm")


class FlakyRegistry(MemoryDeviceRegistry):
    """The memory registry, which can be told to be unreachable."""

    down = False

    async def devices(self, user: str, *, topic: str | None = None) -> list[Device]:
        if self.down:
            raise BackendUnavailable("the registry is down")
        return await super().devices(user, topic=topic)

    async def remove_if_not_registered_since(self, device_id: str, timestamp: float) -> bool:
        if self.down:
            raise BackendUnavailable("the registry is down")
        return await super().remove_if_not_registered_since(device_id, timestamp)


async def test_a_registry_outage_dead_letters_instead_of_losing(
    receiver: WebPushReceiver, provider: WebPushProvider, clock: ManualClock
) -> None:
    registry = FlakyRegistry()
    _, sub = await browser(registry, receiver, "alice")
    policy = FatiguePolicy(user_budget=Budget(1, 600))
    async with dispatcher_for(registry, provider, clock, policy=policy) as dispatcher:
        receiver.fail(429, retry_after=30, subscription=sub)
        [retrying] = (await dispatcher.notify("alice", Notification(title="a"))).deliveries
        held = await dispatcher.notify("alice", Notification(title="b"))  # over budget
        assert (retrying.status, held.route) == ("retrying", "held")
        registry.down = True
        with pytest.raises(BackendUnavailable):  # the caller is told, and it is kept
            await dispatcher.notify("alice", Notification(title="c", urgency="high"))
        receiver.unsubscribe(sub)
        clock.advance(30)  # the retry gets 410, and pruning fails
        clock.advance(570)  # the budget's wake-up cannot fan out "b"
        letters = await dead_letters(dispatcher, 3)
    assert sorted(letter.notification.title for letter in letters) == ["a", "b", "c"]
    reasons = sorted(letter.reason for letter in letters)
    assert reasons[0] == "BackendUnavailable: the registry is down"
    assert reasons[1:] == ["fan-out failed: BackendUnavailable: the registry is down"] * 2


async def test_a_retry_past_the_notification_ttl_is_dead_lettered_as_expired(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    clock: ManualClock,
) -> None:
    _, sub = await browser(registry, receiver, "alice")
    receiver.fail(503, subscription=sub)
    await dispatcher.notify("alice", Notification(title="soon stale", ttl=5))
    clock.advance(10)
    [letter] = await dead_letters(dispatcher, 1)
    assert (letter.reason, letter.attempts) == ("expired: its ttl passed before delivery", 2)


async def test_memory_stores_check_their_settings_and_forget_old_keys() -> None:
    for bad in (0, -1.0, float("inf"), True, "1"):
        with pytest.raises(ConfigurationError, match="key_ttl"):
            MemoryDispatchState(key_ttl=bad)  # type: ignore[arg-type]
    state = MemoryDispatchState(key_ttl=10)
    assert await state.claim("alice", "k", "n1", now=0) is None
    assert await state.claim("alice", "k", "n2", now=5) == "n1"
    assert await state.claim("alice", "k", "n3", now=10) is None  # expired: claimable
    for i in range(10_001):
        await state.claim("bob", f"k{i}", f"n{i}", now=100)
    assert await state.claim("carol", "k", "n", now=200) is None  # swept the expired
    assert len(state._keys) == 1
    letters = MemoryPushDeadLetters()
    with pytest.raises(ConfigurationError, match="limit"):
        await letters.list(limit=0)


async def test_a_retry_overtaken_by_a_newer_notification_with_its_key_is_dropped(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    clock: ManualClock,
) -> None:
    _, sub = await browser(registry, receiver, "alice")
    receiver.fail(503, subscription=sub)
    old = await dispatcher.notify("alice", Notification(title="eta 10", collapse_key="eta"))
    assert old.deliveries[0].status == "retrying"
    new = await dispatcher.notify("alice", Notification(title="eta 5", collapse_key="eta"))
    assert new.deliveries[0].status == "delivered"
    clock.advance(10)  # the old one's retry: replaced meanwhile, so not sent
    await eventually(lambda: dispatcher.pending == 0)
    assert [shown(m)["title"] for m in receiver.messages] == ["eta 5"]
    assert dispatcher._sender._latest == {}  # nothing kept per device once settled


async def test_a_failed_trial_opens_the_breaker_again_for_longer(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    clock: ManualClock,
    provider: WebPushProvider,
) -> None:
    for _ in range(3):
        await browser(registry, receiver, "alice")
    receiver.fail(500, times=4)  # the three first sends (at once), then the trial
    breaker = BreakerPolicy(threshold=2, cooldown=60, max_cooldown=600)
    retry = PushRetry(max_attempts=5, backoff=Backoff(initial=60, jitter=0), budget=None)
    async with dispatcher_for(
        registry, provider, clock, breaker=breaker, retry=retry
    ) as dispatcher:
        result = await dispatcher.notify("alice", Notification(title="x"))
        assert [o.reason for o in result.deliveries] == ["500"] * 3
        assert {o.at for o in result.deliveries} == {NOW + 60}
        clock.advance(60)  # one trial, which fails: open for twice as long, all wait
        reopened = {NOW + 60 + 120}
        await eventually(lambda: {at for *_, at in dispatcher.scheduled()} == reopened)
        assert len(dispatcher.scheduled()) == 3
        assert dispatcher.breaker("webpush").state == "open"
        clock.advance(120)
        await eventually(lambda: len(receiver.messages) == 3)
