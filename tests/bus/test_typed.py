"""Typed events on the bus: publish a model, subscribe and consume by model class."""

from __future__ import annotations

import pytest

from eventpatterns import Event, EventBus, Retry
from eventpatterns.core import EventModel, EventRegistry
from eventpatterns.errors import ConfigurationError, InvalidEventData
from eventpatterns.testing import eventually

pytestmark = pytest.mark.anyio

REG = EventRegistry("bus-tests")


class OrderPlaced(EventModel, type="com.example.order.placed", source="/shop", registry=REG):
    order_id: str
    total_cents: int


class OrderShipped(EventModel, type="com.example.order.shipped", source="/shop", registry=REG):
    order_id: str


def bad_order(event_id: str = "bad-1") -> Event:
    return Event(
        type="com.example.order.placed", source="/shop", id=event_id,
        data={"order_id": "o9", "total_cents": "lots"},
    )  # fmt: skip


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_typed_subscription_yields_models_of_its_type_only() -> None:
    invalid: list[tuple[str, InvalidEventData]] = []
    async with EventBus.from_url("memory://") as bus:
        sub = bus.subscribe(OrderPlaced, on_invalid=lambda e, err: invalid.append((e.id, err)))
        async with sub:
            await bus.publish(OrderShipped(order_id="o0"))
            await bus.publish(bad_order())
            await bus.publish(OrderPlaced(order_id="o1", total_cents=100))
            got: OrderPlaced = await sub.receive()
            assert got == OrderPlaced(order_id="o1", total_cents=100)
            assert got.total_cents + 1 == 101  # typed: mypy sees an OrderPlaced
        assert sub.invalid == 1
        ((event_id, error),) = invalid
        assert event_id == "bad-1"
        assert error.errors[0]["loc"] == ["total_cents"]
        assert sub.subscription.position is not None


async def test_where_narrows_a_typed_subscription_and_iteration_is_typed() -> None:
    async with (
        EventBus.from_url("memory://") as bus,
        bus.subscribe(
            OrderPlaced, where={"data": {"total_cents": [{"numeric": [">", 50]}]}}
        ) as sub,
    ):
        await bus.publish_batch(
            [
                OrderPlaced(order_id="small", total_cents=10),
                OrderPlaced(order_id="big", total_cents=99),
            ]
        )
        async for order in sub:
            assert order.order_id == "big"
            break


async def test_an_invalid_event_without_a_hook_is_logged_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with EventBus.from_url("memory://") as bus, bus.subscribe(OrderPlaced) as sub:
        await bus.publish(bad_order("bad-2"))
        await bus.publish(OrderPlaced(order_id="ok", total_cents=1))
        assert (await sub.receive()).order_id == "ok"
    assert "skipped event bad-2" in caplog.text


async def test_a_typed_consumer_gets_models_and_dead_letters_invalid_data_at_once() -> None:
    seen: list[OrderPlaced] = []

    async def handle(order: OrderPlaced) -> None:
        seen.append(order)

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("orders", handle, retry=Retry(max_attempts=5))
        await bus.publish(OrderShipped(order_id="other type"))
        await bus.publish(bad_order("bad-3"))
        await bus.publish(OrderPlaced(order_id="o1", total_cents=5))
        await eventually(lambda: len(seen) == 1 and consumer.stats.dead_lettered == 1)
        assert seen == [OrderPlaced(order_id="o1", total_cents=5)]
        (dead,) = await bus.dead_letters("orders")
        assert dead.event.id == "bad-3"
        assert dead.attempts == 1  # not retried: no retry can fix the data
        assert "total_cents" in (dead.error or "")
        assert consumer.stats.retried == 0


async def test_untyped_handlers_and_patterns_work_as_before() -> None:
    got: list[Event] = []

    async def handle(event: Event) -> None:
        got.append(event)

    async with EventBus.from_url("memory://") as bus:
        await bus.consume("all", handle, pattern={"source": ["/shop"]})
        await bus.publish(OrderPlaced(order_id="o", total_cents=1))
        await eventually(lambda: len(got) == 1)
        assert got[0].dataschema == OrderPlaced.dataschema()


async def test_filtering_on_type_beside_a_model_or_hooks_without_one_are_refused() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(ConfigurationError, match="leave 'type' out"):
            bus.subscribe(OrderPlaced, where={"type": ["x"]})
        with pytest.raises(ConfigurationError, match="go with an EventModel"):
            bus.subscribe({"type": ["x"]}, on_invalid=lambda e, err: None)  # type: ignore[call-overload]

        async def handle(order: OrderPlaced) -> None:
            pass

        with pytest.raises(ConfigurationError, match="leave 'type' out"):
            await bus.consume("g", handle, pattern={"type": ["x"]})


def test_model_of_reads_the_first_parameters_annotation() -> None:
    from eventpatterns.bus._typed import model_of

    async def typed(order: OrderPlaced) -> None: ...
    async def plain(event: Event) -> None: ...
    async def unannotated(event): ...  # type: ignore[no-untyped-def]

    assert model_of(typed) is OrderPlaced
    assert model_of(plain) is None
    assert model_of(unannotated) is None
    assert model_of(lambda: None) is None
    assert model_of(print) is None
