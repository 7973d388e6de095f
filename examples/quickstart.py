"""Quickstart: an event bus on the embedded in-memory backend.

Run: python examples/quickstart.py

Publishes orders, streams the large ones to a live subscriber (filtered on the
server with an EventBridge pattern), and processes every order in a durable
consumer group where a failing handler is retried and finally dead-lettered.
"""

from __future__ import annotations

import anyio

from eventpatterns import Backoff, Event, EventBus, Retry


async def main() -> None:
    async with EventBus.from_url("memory://") as bus:
        processed: list[int] = []

        async def fulfil(event: Event) -> None:
            if event.data["total"] == 13:
                raise ValueError("unlucky order")  # retried, then dead-lettered
            processed.append(event.data["order"])

        consumer = await bus.consume(
            "fulfilment", fulfil, retry=Retry(max_attempts=2, backoff=Backoff(initial=0.01))
        )

        big_orders = {"type": ["order.placed"], "data": {"total": [{"numeric": [">=", 100]}]}}
        async with bus.subscribe(big_orders) as live:
            for order, total in enumerate([20, 250, 13, 120]):
                await bus.publish(
                    Event(
                        type="order.placed", source="/shop", data={"order": order, "total": total}
                    )
                )
            async for event in live:  # typed Event; a gap would raise EventsMissed
                print(f"live: big order {event.data['order']} ({event.data['total']})")
                if event.data["order"] == 3:  # the last big order
                    break

        with anyio.fail_after(5):
            await consumer.drain()  # handled or dead-lettered, retries included
        print(f"fulfilled orders: {sorted(processed)}")
        for letter in await bus.dead_letters("fulfilment"):
            order = letter.event.data["order"]
            print(f"dead letter: order {order} after {letter.attempts} attempts: {letter.error}")
        print(f"retried {consumer.stats.retried}, dead-lettered {consumer.stats.dead_lettered}")


if __name__ == "__main__":
    anyio.run(main)
