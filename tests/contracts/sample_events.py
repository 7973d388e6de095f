"""Event types for the schema tests (declared in their own registry)."""

from __future__ import annotations

from pydantic import BaseModel

from eventpatterns.core import EventModel, EventRegistry

REGISTRY = EventRegistry("samples")


class Address(BaseModel):
    street: str
    city: str


class OrderPlaced(EventModel, type="com.example.order.placed", version=2, registry=REGISTRY):
    """An order was placed."""

    order_id: str
    total_cents: int
    ship_to: Address


class OrderShipped(EventModel, type="com.example.order.shipped", registry=REGISTRY):
    order_id: str
    carrier: str | None = None
