"""Typed subscriptions and handlers: events handed back as their declared models.

``bus.subscribe(OrderCreated)`` gives a :class:`TypedSubscription` whose items are
``OrderCreated`` instances; ``bus.consume(group, handler)`` with a handler annotated
``async def handler(order: OrderCreated)`` hands it ``OrderCreated`` instances. Data
that does not validate never reaches code as if it were valid: a subscription reports
it through ``on_invalid`` and counts it, a consumer dead-letters it at once (no retry
can fix it) with the validation errors as the reason.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from ..core import Event, EventModel
from ..errors import ConfigurationError, InvalidEventData
from ..observability._metrics import metrics
from ._subscription import Subscription

__all__ = ["InvalidHook", "TypedSubscription", "model_of", "typed_pattern"]

logger = logging.getLogger("eventpatterns.bus")

M = TypeVar("M", bound=EventModel)

#: Told of every event whose data did not validate: ``on_invalid(event, error)``.
InvalidHook = Callable[[Event, InvalidEventData], None]


def model_of(handler: Callable[..., Any]) -> type[EventModel] | None:
    """Return the :class:`EventModel` a handler's first parameter is annotated with."""
    try:
        hints = typing.get_type_hints(handler)
        params = list(inspect.signature(handler).parameters.values())
    except (NameError, TypeError, ValueError):
        return None
    if not params:
        return None
    hint = hints.get(params[0].name)
    if isinstance(hint, type) and issubclass(hint, EventModel) and hint.event_type:
        return hint
    return None


def typed_pattern(model: type[EventModel], pattern: Any) -> Any:
    """Return ``pattern`` narrowed to the model's ``type`` (for a dict pattern or ``None``).

    Raises:
        ConfigurationError: The pattern filters on ``type`` itself (the model does).
    """
    narrowed = {"type": [model.event_type]}
    if pattern is None:
        return narrowed
    if isinstance(pattern, Mapping):
        if "type" in pattern:
            raise ConfigurationError(
                f"a subscription typed {model.__qualname__} filters on type"
                f" {model.event_type!r} itself: leave 'type' out of the pattern"
            )
        return {**pattern, **narrowed}
    return pattern  # an object with matches(): events of other types fail to parse


class TypedSubscription(Generic[M]):
    """A live subscription whose items are ``model`` instances (enter with ``async with``).

    Attributes:
        invalid: How many events were skipped because their data did not validate.
    """

    def __init__(
        self, subscription: Subscription, model: type[M], on_invalid: InvalidHook | None
    ) -> None:
        self._sub = subscription
        self._model = model
        self._on_invalid = on_invalid
        self.invalid = 0

    @property
    def subscription(self) -> Subscription:
        """The untyped subscription underneath (for ``position``, ``missed``...)."""
        return self._sub

    async def __aenter__(self) -> TypedSubscription[M]:
        await self._sub.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._sub.__aexit__(*exc_info)

    async def aclose(self) -> None:
        """Close the subscription."""
        await self._sub.aclose()

    async def receive(self) -> M:
        """Return the next event's data as the model (skipping invalid ones, counted)."""
        while True:
            event = await self._sub.receive()
            try:
                return self._model.from_event(event)
            except InvalidEventData as error:
                self.invalid += 1
                metrics.inc("eventpatterns_bus_dropped_total", reason="invalid_data")
                if self._on_invalid is not None:
                    self._on_invalid(event, error)
                else:
                    logger.warning("skipped event %s: %s", event.id, error)

    def __aiter__(self) -> TypedSubscription[M]:
        return self

    async def __anext__(self) -> M:
        return await self.receive()


def typed_handler(model: type[EventModel], handler: Callable[[Any], Awaitable[Any]]) -> Any:
    """Wrap a typed handler to take events (parsing raises :class:`InvalidEventData`)."""

    async def handle(event: Event) -> Any:
        return await handler(model.from_event(event))

    handle.__qualname__ = getattr(handler, "__qualname__", "handler")
    return handle
