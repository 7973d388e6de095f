"""Dispatchers sharing Redis state: one delivery per device, lasting dead letters, one budget.

Separate :class:`PushDispatcher` instances (as in two processes: each with its own
Redis connections) share a device registry, dispatch state and dead letters on the real
server, and send through the real WebPushProvider to the WebPushReceiver over sockets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest

from eventpatterns.push import (
    Budget,
    FatiguePolicy,
    Notification,
    NotifyResult,
    PushDispatcher,
    WebPushProvider,
)
from eventpatterns.testing import ManualClock, WebPushReceiver, eventually

from .test_dispatcher import NO_BUDGET, RETRY, browser, clock, provider, receiver, shown
from .test_dispatcher_redis import REDIS_URL, prefix

__all__ = ["clock", "prefix", "provider", "receiver"]  # fixtures, used by name

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client


class Process:
    """What one process holds: its own Redis clients on the shared prefix, one dispatcher."""

    def __init__(self, stack: AsyncExitStack, prefix: str) -> None:
        self.stack, self.prefix = stack, prefix

    async def dispatcher(
        self, provider: WebPushProvider, clock: ManualClock, **options: Any
    ) -> PushDispatcher:
        from eventpatterns.backends.redis import (
            RedisDeviceRegistry,
            RedisDispatchState,
            RedisPushDeadLetters,
        )
        from eventpatterns.push import WebPushAdapter

        p = self.prefix
        registry = await self.stack.enter_async_context(RedisDeviceRegistry(REDIS_URL, prefix=p))
        state = await self.stack.enter_async_context(RedisDispatchState(REDIS_URL, prefix=p))
        letters = await self.stack.enter_async_context(RedisPushDeadLetters(REDIS_URL, prefix=p))
        options.setdefault("policy", NO_BUDGET)
        options.setdefault("retry", RETRY)
        made = PushDispatcher(
            registry, {"webpush": WebPushAdapter(provider)}, clock=clock,
            state=state, dead_letters=letters, **options,
        )  # fmt: skip
        return await self.stack.enter_async_context(made)


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as stack:
        yield stack


async def test_two_dispatchers_notify_each_device_once_per_idempotency_key(
    prefix: str, stack: AsyncExitStack, receiver: WebPushReceiver, provider: WebPushProvider,
    clock: ManualClock,
) -> None:  # fmt: skip
    first = await Process(stack, prefix).dispatcher(provider, clock)
    second = await Process(stack, prefix).dispatcher(provider, clock)
    for _ in range(2):
        await browser(first.registry, receiver, "alice")
    results: list[NotifyResult] = []
    once = Notification(title="Order shipped", idempotency_key="order-42-shipped")

    async def notify(dispatcher: PushDispatcher) -> None:
        results.append(await dispatcher.notify("alice", once))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(notify, first)
            tg.start_soon(notify, second)
    [sent] = [r for r in results if r.route != "duplicate"]
    assert [d.status for d in sent.deliveries] == ["delivered", "delivered"]
    assert {r.duplicate_of for r in results if r.route == "duplicate"} == {sent.id}
    assert len(results) == 20
    messages = receiver.messages
    tokens = sorted(d.token for d in await first.registry.devices("alice"))
    assert sorted(m.endpoint for m in messages) == tokens  # one each, none twice
    assert {shown(m)["data"]["notificationId"] for m in messages} == {sent.id}


async def test_a_restarted_dispatcher_keeps_its_dead_letters_and_redrives_them(
    prefix: str, receiver: WebPushReceiver, provider: WebPushProvider, clock: ManualClock
) -> None:
    async with AsyncExitStack() as stack:
        before = await Process(stack, prefix).dispatcher(provider, clock)
        _, sub = await browser(before.registry, receiver, "alice")
        receiver.fail(413, subscription=sub)  # permanent: dead-lettered
        await before.notify("alice", Notification(title="too big, once"))
        receiver.fail(503, subscription=sub)  # a retry, waiting when the process stops
        await before.notify("alice", Notification(title="waiting"))
        assert before.pending == 1
    # The process is gone; a new one finds both letters on Redis.
    async with AsyncExitStack() as stack:
        after = await Process(stack, prefix).dispatcher(provider, clock)
        letters = await after.dead_letters.list()
        assert [(x.notification.title, x.reason) for x in letters] == [
            ("too big, once", "payload too large"),
            ("waiting", "dispatcher closed"),
        ]
        assert await after.redrive() == 2
        await eventually(lambda: len(receiver.messages) == 2)
        assert [shown(m)["title"] for m in receiver.messages] == ["too big, once", "waiting"]
        assert await after.dead_letters.list() == []


async def test_the_fatigue_budget_is_shared_by_two_dispatchers(
    prefix: str, stack: AsyncExitStack, receiver: WebPushReceiver, provider: WebPushProvider,
    clock: ManualClock,
) -> None:  # fmt: skip
    policy = FatiguePolicy(user_budget=Budget(3, 3600.0))
    first = await Process(stack, prefix).dispatcher(provider, clock, policy=policy)
    second = await Process(stack, prefix).dispatcher(provider, clock, policy=policy)
    await browser(first.registry, receiver, "alice")
    results: list[NotifyResult] = []

    async def notify(dispatcher: PushDispatcher, title: str) -> None:
        results.append(await dispatcher.notify("alice", Notification(title=title)))

    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(notify, first, f"first {i}")
            tg.start_soon(notify, second, f"second {i}")
    assert Counter(r.route for r in results) == {"push": 3, "held": 3}
    assert len(receiver.messages) == 3
    assert len((await second.state.fatigue("alice")).held) == 3
    clock.advance(3600)  # both dispatchers wake; each held one is released once
    await eventually(lambda: len(receiver.messages) == 6)
    titles = [shown(m)["title"] for m in receiver.messages]
    assert sorted(titles) == sorted(f"{who} {i}" for who in ("first", "second") for i in range(3))
    await eventually(lambda: not first._wakes and not second._wakes)
    assert (await first.state.fatigue("alice")).held == ()  # released, by one of them
    assert len(receiver.messages) == 6


async def test_two_dispatchers_redriving_at_once_send_each_letter_once(
    prefix: str, stack: AsyncExitStack, receiver: WebPushReceiver, provider: WebPushProvider,
    clock: ManualClock,
) -> None:  # fmt: skip
    first = await Process(stack, prefix).dispatcher(provider, clock)
    second = await Process(stack, prefix).dispatcher(provider, clock)
    _, sub = await browser(first.registry, receiver, "alice")
    receiver.fail(413, times=6, subscription=sub)
    for i in range(6):
        await first.notify("alice", Notification(title=f"n{i}"))
    assert len(await second.dead_letters.list()) == 6
    counts: list[int] = []

    async def redrive(dispatcher: PushDispatcher) -> None:
        counts.append(await dispatcher.redrive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(redrive, first)
        tg.start_soon(redrive, second)
    assert sum(counts) == 6
    assert sorted(shown(m)["title"] for m in receiver.messages) == [f"n{i}" for i in range(6)]
    assert await first.dead_letters.list() == []
