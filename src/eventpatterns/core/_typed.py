"""Typed events: declare an event once as a pydantic model with its CloudEvents ``type``.

A subclass of :class:`EventModel` with ``type=`` (and optionally ``version=`` and
``source=``) registers itself in an :class:`EventRegistry` (the default one unless
``registry=`` names another). Its instances are the event's ``data``: ``to_event()``
builds the CloudEvent with that data and a ``dataschema`` naming the type and version;
``from_event()`` (or the registry's :meth:`~EventRegistry.parse`) validates an incoming
event's data back into the model, upcasting older versions first.

Example:
    ```python
    from eventpatterns.core import EventModel

    class OrderCreated(EventModel, type="com.example.order.created", version=2):
        order_id: str
        total_cents: int

    @OrderCreated.upcaster(from_version=1)
    def _(data: dict[str, Any]) -> dict[str, Any]:  # v1 had a float "total"
        return {"order_id": data["order_id"], "total_cents": round(data["total"] * 100)}

    event = OrderCreated(order_id="o1", total_cents=1999).to_event(source="/shop")
    assert OrderCreated.from_event(event).total_cents == 1999
    ```
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigurationError, InvalidEventData
from ._event import Event

__all__ = ["DEFAULT_REGISTRY", "EventModel", "EventRegistry", "Upcaster", "schema_uri"]

M = TypeVar("M", bound="EventModel")

#: An upcaster: the data of version ``n`` in, the data of version ``n + 1`` out.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_SCHEMA = re.compile(r"^urn:eventpatterns:schema:(?P<type>.+):v(?P<version>[1-9][0-9]{0,8})$")


def schema_uri(type_: str, version: int) -> str:
    """Return the ``dataschema`` of version ``version`` of event type ``type_``."""
    return f"urn:eventpatterns:schema:{type_}:v{version}"


def version_of(event: Event) -> int | None:
    """Return the version an event's ``dataschema`` names (``None``: it names none)."""
    match = _SCHEMA.match(event.dataschema or "")
    return None if match is None else int(match["version"])


class EventRegistry:
    """The event types an application declared, by CloudEvents ``type``.

    Args:
        name: For messages and schema titles.
    """

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._types: dict[str, type[EventModel]] = {}

    def register(self, model: type[EventModel]) -> None:
        """Add a model (done by declaring the class); one class per ``type``.

        Declaring a class again under the same module and name (a reloaded module, a
        test run twice) replaces the old one.

        Raises:
            ConfigurationError: Another class already holds that ``type``.
        """
        held = self._types.get(model.event_type)
        if held is not None and (held.__module__, held.__qualname__) != (
            model.__module__,
            model.__qualname__,
        ):
            first = f"{held.__module__}.{held.__qualname__}"
            second = f"{model.__module__}.{model.__qualname__}"
            raise ConfigurationError(
                f"event type {model.event_type!r} is declared twice: by {first} and {second}"
            )
        self._types[model.event_type] = model

    def get(self, type_: str) -> type[EventModel] | None:
        """Return the model of ``type_``, or ``None`` if none was declared."""
        return self._types.get(type_)

    def __iter__(self) -> Iterator[type[EventModel]]:
        return iter(sorted(self._types.values(), key=lambda m: m.event_type))

    def __len__(self) -> int:
        return len(self._types)

    def __contains__(self, type_: object) -> bool:
        return type_ in self._types

    def parse(self, event: Event) -> EventModel | Event:
        """Return the event's data as its declared model, or the event itself if undeclared.

        Raises:
            InvalidEventData: The type is declared and the data does not validate.
        """
        model = self._types.get(event.type)
        return event if model is None else model.from_event(event)

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """Return the JSON Schema of every declared type's data, by ``type``."""
        return {model.event_type: model.data_schema() for model in self}


#: Where declared event types go unless their class names another ``registry=``.
DEFAULT_REGISTRY = EventRegistry()


class EventModel(BaseModel):
    """Base of typed events: subclass it with ``type=``, fields are the event's data.

    Class keywords:
        type: The CloudEvents ``type`` (required to declare a type; a subclass without
            one is an abstract base and is not registered).
        version: The data's version (1 by default); it travels in ``dataschema``.
        source: The default ``source`` of the events built from it.
        registry: The :class:`EventRegistry` to declare it in.

    Instances are frozen and refuse unknown fields.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str] = ""
    event_version: ClassVar[int] = 1
    event_source: ClassVar[str | None] = None
    event_registry: ClassVar[EventRegistry] = DEFAULT_REGISTRY
    _upcasters: ClassVar[dict[int, Upcaster]] = {}

    def __init_subclass__(
        cls,
        *,
        type: str | None = None,  # noqa: A002 - the CloudEvents attribute is called "type"
        version: int | None = None,
        source: str | None = None,
        registry: EventRegistry | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls._declared = type is not None  # type: ignore[attr-defined]
        if type is None:
            return
        if not isinstance(type, str) or not type or len(type) > 255:
            raise ConfigurationError(f"an event type is a string of 1 to 255 characters: {type!r}")
        version = 1 if version is None else version
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 10**9:
            raise ConfigurationError(f"an event version is an int >= 1, got {version!r}")
        cls.event_type = type
        cls.event_version = version
        cls.event_source = source
        cls._upcasters = {}
        if registry is not None:
            cls.event_registry = registry

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__dict__.get("_declared"):
            cls.event_registry.register(cls)

    # -- versions ----------------------------------------------------------------------------

    @classmethod
    def upcaster(cls, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning version ``from_version`` data into the next version's.

        Raises:
            ConfigurationError: ``from_version`` is not below the model's version, or one
                is registered for it already.
        """
        if not (isinstance(from_version, int) and 1 <= from_version < cls.event_version):
            raise ConfigurationError(
                f"{cls.__qualname__} is version {cls.event_version}: an upcaster converts"
                f" from a version 1 to {cls.event_version - 1}, not {from_version!r}"
            )

        def register(function: Upcaster) -> Upcaster:
            if from_version in cls._upcasters:
                raise ConfigurationError(
                    f"{cls.__qualname__} has an upcaster from version {from_version} already"
                )
            cls._upcasters[from_version] = function
            return function

        return register

    @classmethod
    def upcast(cls, data: Any, version: int) -> Any:
        """Return version-``version`` data converted to the model's version.

        Raises:
            InvalidEventData: No upcaster covers a step, or one failed.
        """
        for step in range(version, cls.event_version):
            function = cls._upcasters.get(step)
            if function is None:
                raise InvalidEventData(
                    f"{cls.event_type!r} data of version {version} cannot become version"
                    f" {cls.event_version}: no upcaster from version {step}",
                    type=cls.event_type,
                )
            if not isinstance(data, dict):
                raise InvalidEventData(
                    f"{cls.event_type!r} version {step} data is not an object", type=cls.event_type
                )
            try:
                data = function(dict(data))
            except Exception as exc:  # a user's upcaster: name it, keep the cause
                raise InvalidEventData(
                    f"upcasting {cls.event_type!r} from version {step} failed: {exc!r:.300}",
                    type=cls.event_type,
                ) from exc
        return data

    # -- to and from events ------------------------------------------------------------------

    @classmethod
    def dataschema(cls) -> str:
        """Return the ``dataschema`` URI of this type and version."""
        return schema_uri(cls.event_type, cls.event_version)

    @classmethod
    def data_schema(cls) -> dict[str, Any]:
        """Return the JSON Schema of the data (with the type and version in its ``$id``)."""
        schema = cls.model_json_schema()
        return {"$id": cls.dataschema(), "title": cls.event_type, **{
            k: v for k, v in schema.items() if k != "title"
        }}  # fmt: skip

    def to_event(
        self,
        *,
        source: str | None = None,
        subject: str | None = None,
        id: str | None = None,  # noqa: A002 - the CloudEvents attribute is called "id"
        extensions: Mapping[str, Any] | None = None,
    ) -> Event:
        """Return the CloudEvent carrying this data.

        Raises:
            ConfigurationError: The class declares no ``type`` (an abstract base), or no
                ``source`` was given here or on the class.
        """
        cls = type(self)
        if not cls.event_type:
            raise ConfigurationError(f"{cls.__qualname__} declares no event type (type=...)")
        source = source or cls.event_source
        if not source:
            raise ConfigurationError(
                f"give {cls.__qualname__} a source (class keyword source=, or to_event(source=))"
            )
        return Event(
            type=cls.event_type,
            source=source,
            id=id,
            subject=subject,
            data=self.model_dump(mode="json"),
            datacontenttype="application/json",
            dataschema=cls.dataschema(),
            extensions=extensions,
        )

    @classmethod
    def from_event(cls: type[M], event: Event) -> M:
        """Return the event's data as this model (upcast from an older version first).

        An event without this library's ``dataschema`` is taken to be the current version.

        Raises:
            InvalidEventData: Another type, a newer version, or data that does not
                validate (``errors`` says where and why).
        """
        if event.type != cls.event_type:
            raise InvalidEventData(
                f"event {event.id!r} is a {event.type!r}, not a {cls.event_type!r}",
                type=event.type,
                event_id=event.id,
            )
        version = version_of(event) or cls.event_version
        if version > cls.event_version:
            raise InvalidEventData(
                f"event {event.id!r} is {cls.event_type!r} version {version}; this code knows"
                f" versions up to {cls.event_version}",
                type=event.type,
                event_id=event.id,
            )
        data = cls.upcast(event.data, version) if version < cls.event_version else event.data
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            errors: list[dict[str, object]] = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
            ]
            raise InvalidEventData(
                f"event {event.id!r} ({cls.event_type!r}) has invalid data",
                type=event.type,
                event_id=event.id,
                errors=errors,
            ) from None
