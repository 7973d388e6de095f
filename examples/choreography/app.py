"""Choreography: three services cooperate over the bus, with a dead-letter queue and redrive.

Run: python examples/choreography/app.py

No orchestrator: each service is a consumer group that reacts to events and publishes
its own. *payments* charges placed orders (``payment.captured`` or ``payment.declined``);
*shipping* ships paid ones (``shipment.created``) and cannot yet ship to one country, so
that order is retried, then dead-lettered; *orders* keeps each order's state from what
the others publish (a declined payment cancels the order: the compensation). Once
shipping supports the country, the dead letters are redriven and the order completes.
Set ``EVENTPATTERNS_BACKEND`` to ``redis://127.0.0.1:6379/0`` (or an ``aws://`` bus URL)
to run it on Redis streams (or EventBridge and SQS); there each service can run in a
process of its own.
"""

from __future__ import annotations

import os

import anyio

from eventpatterns import Backoff, Event, EventBus, Retry

RETRY = Retry(max_attempts=3, backoff=Backoff(initial=0.01))
SHIPS_TO = {"FR", "DE"}
STEPS = {  # what the orders service makes of each event, in the order steps happen
    "order.placed": "placed",
    "payment.captured": "paid",
    "payment.declined": "cancelled (payment declined)",
    "shipment.created": "shipped",
}


def emit(kind: str, order: dict[str, str]) -> Event:
    # One id per order and step: a redelivered handler publishes nothing twice.
    return Event(id=f"{order['order']}.{kind}", type=kind, source="/shop", data=order)


async def run_services(bus: EventBus) -> None:
    timeline: dict[str, list[str]] = {}

    async def payments(event: Event) -> None:
        declined = event.data["card"] == "4000-0000-0000-0002"
        await bus.publish(emit("payment.declined" if declined else "payment.captured", event.data))

    async def shipping(event: Event) -> None:
        if event.data["country"] not in SHIPS_TO:
            raise LookupError(f"no carrier for {event.data['country']}")
        await bus.publish(emit("shipment.created", event.data))

    async def orders(event: Event) -> None:
        steps = timeline.setdefault(event.data["order"], [])
        steps.append(STEPS[event.type])
        # A bus without a total order (SQS queues) may deliver one order's events out of
        # order: the state is the furthest step, whatever arrived first.
        steps.sort(key=list(STEPS.values()).index)

    consumers = [
        await bus.consume("payments", payments, pattern={"type": ["order.placed"]}, retry=RETRY),
        await bus.consume(
            "shipping", shipping, pattern={"type": ["payment.captured"]}, retry=RETRY
        ),
        await bus.consume("orders", orders, pattern={"source": ["/shop"]}, retry=RETRY),
    ]

    async def settle() -> None:
        with anyio.fail_after(20):
            for consumer in consumers:  # in causal order: each drains what the last published
                await consumer.drain()

    orders_placed = [("o-1", "FR", "4242-4242-4242-4242"), ("o-2", "DE", "4000-0000-0000-0002")]
    orders_placed.append(("o-3", "IS", "4242-4242-4242-4242"))
    for order, country, card in orders_placed:
        await bus.publish(emit("order.placed", {"order": order, "country": country, "card": card}))
    await settle()
    for order, steps in sorted(timeline.items()):
        print(f"{order}: {' -> '.join(steps)}")

    letters = await bus.dead_letters("shipping")
    for letter in letters:
        order = letter.event.data["order"]
        print(f"dead letter in shipping: {order}, {letter.attempts} attempts: {letter.error}")
    assert [letter.event.data["order"] for letter in letters] == ["o-3"]

    SHIPS_TO.add("IS")  # deploy the fix, then redrive: attempts start over
    print(f"redriven: {await bus.redrive('shipping')}")
    await settle()
    print(f"o-3: {' -> '.join(timeline['o-3'])}")
    assert timeline == {
        "o-1": ["placed", "paid", "shipped"],
        "o-2": ["placed", "cancelled (payment declined)"],
        "o-3": ["placed", "paid", "shipped"],
    }, timeline
    assert await bus.dead_letters("shipping") == []
    print("every order reached its end: shipped or cancelled")


async def main() -> None:
    async with EventBus.from_url(os.environ.get("EVENTPATTERNS_BACKEND", "memory://")) as bus:
        await run_services(bus)


if __name__ == "__main__":
    anyio.run(main)
