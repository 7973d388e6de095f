"""Typed events: declaration, CloudEvent round trips, validation, versions and upcasting."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field

from eventpatterns.core import Event, EventModel, EventRegistry, schema_uri
from eventpatterns.errors import ConfigurationError, InvalidEventData

REG = EventRegistry("tests")


class Shipped(EventModel, type="com.example.shipped", version=3, source="/shop", registry=REG):
    order_id: str
    total_cents: int = Field(ge=0)
    carrier: str = "post"


@Shipped.upcaster(from_version=1)
def _v1(data: dict[str, Any]) -> dict[str, Any]:  # v1: {"order": ..., "total": 12.5}
    return {"order_id": data["order"], "total": data["total"]}


@Shipped.upcaster(from_version=2)
def _v2(data: dict[str, Any]) -> dict[str, Any]:  # v2: a float total
    return {"order_id": data["order_id"], "total_cents": round(data["total"] * 100)}


class Base(EventModel):  # no type: an abstract base, not registered
    tenant: str


class Refunded(Base, type="com.example.refunded", registry=REG):
    amount: int


def test_a_model_becomes_a_cloudevent_with_its_schema_and_back() -> None:
    event = Shipped(order_id="o1", total_cents=1250).to_event(subject="o1")
    assert (event.type, event.source, event.subject) == ("com.example.shipped", "/shop", "o1")
    assert event.dataschema == schema_uri("com.example.shipped", 3)
    assert event.data == {"order_id": "o1", "total_cents": 1250, "carrier": "post"}
    again = Event.from_json(event.to_json())
    assert Shipped.from_event(again) == Shipped(order_id="o1", total_cents=1250)
    assert REG.parse(again) == Shipped(order_id="o1", total_cents=1250)


def test_older_versions_are_upcast_through_every_step() -> None:
    old = Event(type="com.example.shipped", source="/x", data={"order": "o9", "total": 3.5},
                dataschema=schema_uri("com.example.shipped", 1))  # fmt: skip
    assert Shipped.from_event(old) == Shipped(order_id="o9", total_cents=350)


@given(order=st.text(min_size=1, max_size=20), cents=st.integers(0, 10**9))
def test_upcasting_v1_data_gives_what_v3_data_says(order: str, cents: int) -> None:
    v1 = Event(type="com.example.shipped", source="/x", data={"order": order, "total": cents / 100},
               dataschema=schema_uri("com.example.shipped", 1))  # fmt: skip
    current = Shipped(order_id=order, total_cents=cents).to_event()
    assert Shipped.from_event(v1) == Shipped.from_event(current)


def test_invalid_data_names_the_field_and_the_event() -> None:
    event = Event(type="com.example.shipped", source="/x", id="e1",
                  data={"order_id": "o1", "total_cents": -5})  # fmt: skip
    with pytest.raises(InvalidEventData, match="total_cents") as info:
        Shipped.from_event(event)
    assert (info.value.event_id, info.value.type) == ("e1", "com.example.shipped")
    assert info.value.errors[0]["loc"] == ["total_cents"]
    with pytest.raises(InvalidEventData, match="x: Extra inputs"):
        Shipped.from_event(
            event.model_copy(update={"data": {"order_id": "o", "total_cents": 1, "x": 1}})
        )


def test_a_newer_version_or_another_type_is_refused() -> None:
    newer = Event(type="com.example.shipped", source="/x", data={},
                  dataschema=schema_uri("com.example.shipped", 4))  # fmt: skip
    with pytest.raises(InvalidEventData, match="versions up to 3"):
        Shipped.from_event(newer)
    with pytest.raises(InvalidEventData, match=r"not a 'com\.example\.shipped'"):
        Shipped.from_event(Event(type="other", source="/x"))


def test_an_upcaster_that_fails_or_is_missing_is_named() -> None:
    class Thing(EventModel, type="com.example.thing", version=2, registry=EventRegistry()):
        n: int

    v1 = Event(type="com.example.thing", source="/x", data={"m": 1},
               dataschema=schema_uri("com.example.thing", 1))  # fmt: skip
    with pytest.raises(InvalidEventData, match="no upcaster from version 1"):
        Thing.from_event(v1)

    @Thing.upcaster(from_version=1)
    def boom(data: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("n")

    with pytest.raises(InvalidEventData, match=r"upcasting 'com\.example\.thing' from version 1"):
        Thing.from_event(v1)
    with pytest.raises(InvalidEventData, match="not an object"):
        Thing.from_event(v1.model_copy(update={"data": [1]}))
    with pytest.raises(ConfigurationError, match="already"):
        Thing.upcaster(from_version=1)(boom)
    for bad in (0, 2, 5):
        with pytest.raises(ConfigurationError, match="upcaster converts"):
            Thing.upcaster(from_version=bad)


def test_undeclared_types_pass_through_untyped_and_bases_are_not_registered() -> None:
    plain = Event(type="com.example.unknown", source="/x", data={"a": 1})
    assert REG.parse(plain) is plain
    assert [m.event_type for m in REG] == ["com.example.refunded", "com.example.shipped"]
    assert len(REG) == 2
    assert "com.example.refunded" in REG
    assert REG.get("nope") is None
    assert Refunded(tenant="t", amount=1).to_event(source="/r").data == {"tenant": "t", "amount": 1}
    with pytest.raises(ConfigurationError, match="declares no event type"):
        Base(tenant="t").to_event(source="/r")


def test_a_type_declared_twice_by_two_classes_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="declared twice"):

        class Again(EventModel, type="com.example.shipped", registry=REG):
            x: int


def test_a_source_is_needed_and_bad_declarations_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="source"):
        Refunded(tenant="t", amount=1).to_event()
    with pytest.raises(ConfigurationError, match="version"):

        class BadVersion(EventModel, type="com.example.v", version=0, registry=EventRegistry()):
            pass

    with pytest.raises(ConfigurationError, match="1 to 255"):

        class BadType(EventModel, type="", registry=EventRegistry()):
            pass


def test_json_schemas_carry_the_type_and_version() -> None:
    schemas = REG.json_schemas()
    shipped = schemas["com.example.shipped"]
    assert shipped["$id"] == "urn:eventpatterns:schema:com.example.shipped:v3"
    assert shipped["title"] == "com.example.shipped"
    assert shipped["required"] == ["order_id", "total_cents"]
    assert shipped["properties"]["total_cents"]["minimum"] == 0


def test_models_are_frozen() -> None:
    shipped = Shipped(order_id="o", total_cents=1)
    with pytest.raises(Exception, match="frozen"):
        shipped.order_id = "p"  # type: ignore[misc]
