"""Partial batch failure: retry only the events of a batch that failed.

Run: python examples/batch_failures/app.py

A consumer imports stock updates in batches of up to 10 through a bulk API that, like
DynamoDB's ``BatchWriteItem`` or a search index's bulk endpoint, accepts some items and
refuses others. The handler returns the ids of the refused events: only those are
retried (with backoff); the rest are acknowledged, never written twice. An item that
keeps failing ends in the group's dead letters after ``max_attempts``. Set
``EVENTPATTERNS_BACKEND`` to ``redis://127.0.0.1:6379/0`` (or an ``aws://`` bus URL) to
run it on Redis streams (or EventBridge and SQS).
"""

from __future__ import annotations

import os
from collections import Counter

import anyio

from eventpatterns import Backoff, Event, EventBus, Retry


class Warehouse:
    """A bulk API: writes what it can and reports the items it refused."""

    def __init__(self) -> None:
        self.stock: dict[str, int] = {}
        self.writes: Counter[str] = Counter()
        self.busy = {"sku-3", "sku-7"}  # throttled once each: fine when retried

    def bulk_upsert(self, items: list[tuple[str, int]]) -> set[str]:
        refused = set()
        for sku, quantity in items:
            if sku in self.busy or sku == "sku-bad":  # sku-bad: malformed, always refused
                self.busy.discard(sku)
                refused.add(sku)
            else:
                self.stock[sku] = quantity
                self.writes[sku] += 1
        return refused


async def main() -> None:
    warehouse = Warehouse()

    async def import_stock(events: list[Event]) -> list[str]:
        items = [(event.data["sku"], event.data["quantity"]) for event in events]
        refused = warehouse.bulk_upsert(items)
        skus = " ".join(sku.removeprefix("sku-") for sku, _ in items)
        print(f"batch [{skus}]: refused {sorted(refused) or 'nothing'}")
        return [event.id for event in events if event.data["sku"] in refused]  # retry these

    url = os.environ.get("EVENTPATTERNS_BACKEND", "memory://")
    async with EventBus.from_url(url) as bus:
        consumer = await bus.consume_batches(
            "stock-import",
            import_stock,
            batch_size=10,
            retry=Retry(max_attempts=3, backoff=Backoff(initial=0.05, jitter=0)),
        )
        updates = [{"sku": f"sku-{n}", "quantity": n * 10} for n in range(10)]
        updates.append({"sku": "sku-bad", "quantity": -1})
        await bus.publish_batch(Event(type="stock.updated", source="/erp", data=u) for u in updates)
        with anyio.fail_after(20):
            await consumer.drain()
        letters = await bus.dead_letters("stock-import")

    stats = consumer.stats
    print(
        f"written: {len(warehouse.stock)} items, each once: {set(warehouse.writes.values()) == {1}}"
    )
    print(f"retried {stats.retried}, dead-lettered {stats.dead_lettered}")
    for letter in letters:
        print(f"dead letter: {letter.event.data['sku']} after {letter.attempts} attempts")
    assert sorted(warehouse.stock) == sorted(f"sku-{n}" for n in range(10))
    assert set(warehouse.writes.values()) == {1}
    assert [letter.event.data["sku"] for letter in letters] == ["sku-bad"]


if __name__ == "__main__":
    anyio.run(main)
