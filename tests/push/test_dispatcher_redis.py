"""One PushDispatcher run on the Redis device registry and Redis presence (real server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from eventpatterns import EventBus
from eventpatterns.push import (
    NOTIFICATION_ID,
    Notification,
    PushDispatcher,
    WebPushAdapter,
    WebPushProvider,
    user_channel,
)
from eventpatterns.testing import ManualClock, WebPushReceiver, eventually

from .test_dispatcher import NO_BUDGET, browser, clock, provider, receiver, shown

__all__ = ["clock", "provider", "receiver"]  # fixtures, used by name

pytestmark = [pytest.mark.anyio, pytest.mark.redis]
REDIS_URL = os.environ.get("EVENTPATTERNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    redis = pytest.importorskip("redis.asyncio")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI requires Redis: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    value = f"eptest:dispatch:{uuid.uuid4().hex[:12]}"
    yield value
    keys = [key async for key in client.scan_iter(match="{" + value + "}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_in_app_then_push_with_a_dead_token_pruned_on_redis(
    prefix: str, receiver: WebPushReceiver, provider: WebPushProvider, clock: ManualClock
) -> None:
    from eventpatterns.backends.redis import RedisDeviceRegistry, RedisPresence

    async with (
        RedisDeviceRegistry(REDIS_URL, prefix=prefix) as registry,
        RedisPresence(REDIS_URL, prefix=prefix, clock=clock) as presence,
        EventBus.from_url("memory://") as bus,
    ):
        live, _ = await browser(registry, receiver, "alice")
        dead, dead_sub = await browser(registry, receiver, "alice")
        receiver.unsubscribe(dead_sub)
        await presence.join(user_channel("alice"), "alice", connection="tab")
        async with PushDispatcher(
            registry,
            {"webpush": WebPushAdapter(provider)},
            presence=presence,
            bus=bus,
            clock=clock,
            policy=NO_BUDGET,
            ack_timeout=10,
        ) as dispatcher:
            online = await dispatcher.notify("alice", Notification(title="in app"))
            assert online.route == "inapp"
            await presence.leave(user_channel("alice"), "alice", connection="tab")
            offline = await dispatcher.notify("alice", Notification(title="pushed"))
            statuses = {o.device_id: o.status for o in offline.deliveries}
            assert statuses == {live.id: "delivered", dead.id: "pruned"}
            assert [d.id for d in await registry.devices("alice")] == [live.id]
            clock.advance(10)  # the in-app one was never acked: pushed to what is left
            await eventually(lambda: len(receiver.messages) == 2)
        ids = [shown(m)["data"][NOTIFICATION_ID] for m in receiver.messages]
        assert ids == [offline.id, online.id]
