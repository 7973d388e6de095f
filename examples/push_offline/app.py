"""Notify users of their orders: in-app when they are online, pushed when they are not,
and never during their quiet hours (in each device's own time zone).

Run: python examples/push_offline/app.py

A consumer group turns ``order.shipped`` events into notifications for a
``PushDispatcher``. Carol has the app open (her gateway connection lists her on the
presence channel ``user:carol``), so she gets it in-app and acks it; Dave is offline in
Paris in the afternoon: pushed at once; Erin is offline in Tokyo at 23:00: held until
07:00 there. Pushes go to a local Web Push service (``WebPushReceiver``, as real
browsers' push services would receive them); a ``ManualClock`` plays the night through.
Set ``EVENTPATTERNS_BACKEND=redis://127.0.0.1:6379/0`` for the bus, presence, device
registry and the dispatcher's state on Redis, shared by every process, or an ``aws://`` URL
(README.md) for EventBridge, SQS and DynamoDB.
"""

from __future__ import annotations

import base64
import json
import os
from contextlib import AsyncExitStack
from datetime import datetime, time
from zoneinfo import ZoneInfo

import anyio

from eventpatterns import Event, EventBus
from eventpatterns.backends import stores_from_url
from eventpatterns.push import (
    INAPP_TYPE,
    FatiguePolicy,
    Notification,
    PushDispatcher,
    QuietHours,
    Registration,
    Vapid,
    VapidKeys,
    WebPushAdapter,
    WebPushProvider,
    user_channel,
)
from eventpatterns.realtime import Credentials, Gateway, MemoryTransport, Principal, owner_only
from eventpatterns.testing import ManualClock, ReceivedWebPush, WebPushReceiver, eventually

AFTERNOON_IN_PARIS = 1_800_021_600.0  # 14:00 UTC: 15:00 in Paris, 23:00 in Tokyo
PUSHED = {"dave": "Europe/Paris", "erin": "Asia/Tokyo"}


async def authorizer(credentials: Credentials) -> Principal:
    return Principal(credentials.token or "anonymous")  # a demo: use JWTAuthorizer for real


def body(push: ReceivedWebPush) -> str:
    """The notification's body, as the service worker would decrypt and show it."""
    text: str = json.loads(push.payload)["body"]
    return text


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def main() -> None:
    url = os.environ.get("EVENTPATTERNS_BACKEND", "memory://")
    clock = ManualClock(start=AFTERNOON_IN_PARIS)
    vapid = Vapid(VapidKeys.generate(), subject="mailto:ops@example.com")
    async with AsyncExitStack() as stack:
        # The bus, presence, device registry and the dispatcher's state, from one URL.
        stores = await stack.enter_async_context(stores_from_url(url, clock=clock))
        bus = await stack.enter_async_context(EventBus(stores.bus))
        registry = stores.devices
        presence = await stack.enter_async_context(stores.presence)  # its expiry sweeper
        push_service = await stack.enter_async_context(WebPushReceiver(clock=clock))
        provider = await stack.enter_async_context(WebPushProvider(vapid, clock=clock))
        dispatcher = await stack.enter_async_context(
            PushDispatcher(
                registry,
                {"webpush": WebPushAdapter(provider)},
                policy=FatiguePolicy(quiet_hours=QuietHours(time(22), time(7))),
                presence=presence,
                bus=bus,
                clock=clock,
                state=stores.dispatch_state,
                dead_letters=stores.push_dead_letters,
            )
        )
        for user, zone in PUSHED.items():  # what the browsers registered earlier
            browser = push_service.subscribe()
            device = Registration(
                "webpush", browser.endpoint, p256dh=b64(browser.p256dh), auth=b64(browser.auth),
                time_zone=zone, topics={"orders"},
            )  # fmt: skip
            await registry.register(user, device, now=clock.time())

        # Carol's app is open: a gateway connection that lists her on user:carol.
        gateway = await stack.enter_async_context(
            Gateway(bus, authorizer=authorizer, presence=presence, clock=clock,
                    authorize_subscription=owner_only("data.userId"))
        )  # fmt: skip
        carol = MemoryTransport()
        conn = gateway.connect(carol, Credentials(token="carol"))
        await conn.authenticate_from()
        inbox = {"type": "subscribe", "id": "inbox", "pattern": {"type": [INAPP_TYPE]}}
        await conn.receive(json.dumps({**inbox, "presence": user_channel("carol")}))

        async def notify(event: Event) -> None:
            note = Notification(
                title="Shipped", body=f"Order {event.data['order']} is on its way",
                topic="orders", idempotency_key=event.id,  # a redelivery notifies nobody twice
            )  # fmt: skip
            result = await dispatcher.notify(event.data["user"], note)
            outcomes = [outcome.status for outcome in result.deliveries]
            print(f"order {event.data['order']} -> {event.data['user']}: {result.route} {outcomes}")

        consumer = await bus.consume("notifications", notify, pattern={"type": ["order.shipped"]})
        with anyio.fail_after(20):
            assert [(await carol.receive())["type"] for _ in range(2)] == [
                "connected",
                "subscribed",
            ]
            for n, user in enumerate(["carol", *PUSHED], start=1):
                data = {"order": n, "user": user}
                await bus.publish(Event(type="order.shipped", source="/shop", data=data))
            await consumer.drain()

            shown = (await carol.receive())["event"]["data"]
            print(f"carol's app shows: {shown['title']}: {shown['body']}")
            assert await dispatcher.ack("carol", shown["id"])  # seen: no push for her

            await eventually(lambda: len(push_service.messages) == 1)
            print(f"pushed at 15:00 in Paris: {body(push_service.messages[0])}")
            [(_, _, when)] = dispatcher.scheduled()
            tokyo = datetime.fromtimestamp(when, ZoneInfo(PUSHED["erin"])).strftime("%H:%M")
            print(f"held for Erin's quiet hours until {tokyo} in Tokyo")
            clock.advance(8 * 3600)  # 22:00 UTC: 07:00 in Tokyo
            await eventually(lambda: len(push_service.messages) == 2)
            print(f"pushed at 07:00 in Tokyo: {body(push_service.messages[1])}")
        assert [body(m) for m in push_service.messages] == [
            "Order 2 is on its way",
            "Order 3 is on its way",
        ]
        print("nobody was woken up, nobody got it twice")


if __name__ == "__main__":
    anyio.run(main)
