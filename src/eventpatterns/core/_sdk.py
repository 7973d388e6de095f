"""Bridge to the ``cloudevents`` SDK's event classes, imported lazily.

The SDK has two APIs: ``cloudevents.core`` (2.x; attributes hold native types,
``time`` is a ``datetime``) and the 1.x API, ``cloudevents.http.CloudEvent`` in 1.x,
``cloudevents.v1.http.CloudEvent`` in 2.x (``time`` is an RFC 3339 string). Both
expose ``get_attributes()`` and ``get_data()``, which is all :func:`from_sdk` needs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

from ..errors import ArgumentTypeError, ConfigurationError, InvalidEvent, MissingDependency
from ._event import Event
from ._rules import OPTIONAL_STRINGS, format_time, shown

__all__ = ["from_sdk", "to_sdk"]

E = TypeVar("E", bound=Event)

_CORE = "cloudevents.core.v1.event"
_LEGACY = ("cloudevents.v1.http", "cloudevents.http")


def _import_first(*modules: str) -> Any:
    for name in modules:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise MissingDependency(f"cloudevents (module {' or '.join(modules)})", extra="cloudevents")


def _attributes(event: Event, *, time_as_text: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "specversion": event.specversion,
        "id": event.id,
        "source": event.source,
        "type": event.type,
    }
    for name in OPTIONAL_STRINGS:
        value = getattr(event, name)
        if value is not None:
            attrs[name] = value
    if event.time is not None:
        attrs["time"] = format_time(event.time) if time_as_text else event.time
    attrs.update(event.extensions)
    return attrs


def to_sdk(event: Event, *, api: Literal["auto", "core", "legacy"] = "auto") -> Any:
    """Convert an event to a ``cloudevents`` SDK event object.

    Args:
        event: The event to convert.
        api: ``"core"`` for ``cloudevents.core.v1.event.CloudEvent`` (SDK 2.x),
            ``"legacy"`` for the 1.x ``CloudEvent``, ``"auto"`` for core if present.

    Returns:
        The SDK event, with the same attributes and data.

    Raises:
        MissingDependency: The SDK, or the asked-for API, is not installed.
        ConfigurationError: Unknown ``api`` (a ``ValueError``).
    """
    if api not in ("auto", "core", "legacy"):
        raise ConfigurationError(f"api must be 'auto', 'core' or 'legacy', got {shown(api)}")
    if api != "legacy":
        try:
            module = importlib.import_module(_CORE)
        except ImportError as exc:
            if api == "core":
                raise MissingDependency(
                    "cloudevents>=2 (cloudevents.core)", extra="cloudevents"
                ) from exc
        else:
            sdk_event = module.CloudEvent(_attributes(event, time_as_text=False), event.data)
            if event.time is None:
                # The SDK fills in a missing time; this event has none, so keep it absent.
                del sdk_event.get_attributes()["time"]
            return sdk_event
    legacy = _import_first(*_LEGACY)
    sdk_event = legacy.CloudEvent(_attributes(event, time_as_text=True), event.data)
    if event.time is None:
        del sdk_event["time"]
    return sdk_event


def from_sdk(cls: type[E], obj: Any) -> E:
    """Convert a ``cloudevents`` SDK event (either API) to an event.

    Args:
        cls: The event class to build.
        obj: A ``cloudevents.core`` event, a 1.x-API ``CloudEvent`` (plain or
            pydantic), or anything with ``get_attributes()`` and ``get_data()``.

    Raises:
        InvalidEvent: The SDK event breaks a CloudEvents 1.0 rule (e.g. it is 0.3).
        ArgumentTypeError: ``obj`` is not an SDK event (a ``TypeError``).
    """
    get_attributes = getattr(obj, "get_attributes", None)
    get_data = getattr(obj, "get_data", None)
    if not callable(get_attributes) or not callable(get_data):
        raise ArgumentTypeError(
            "Event.from_sdk", "obj", expected="a cloudevents SDK event", got=obj
        )
    attrs = get_attributes()
    if not isinstance(attrs, Mapping):
        raise ArgumentTypeError(
            "Event.from_sdk",
            "obj",
            expected="a cloudevents SDK event (get_attributes() returning a mapping)",
            got=attrs,
        )
    attrs = dict(attrs)
    # The 1.x API keeps time as text and lets it be an empty string; 2.x uses datetime.
    time = attrs.get("time")
    if time is not None and not isinstance(time, (str, datetime)):
        try:
            time = str(time)  # a timestamp type of its own, whose str() is RFC 3339
        except Exception:  # any failure means the value is no timestamp
            kind = type(time).__name__
            reason = f"must be a datetime or RFC 3339 string, got {kind}"
            raise InvalidEvent(reason, attribute="time") from None
    attrs["time"] = time or None
    return cls._from_attributes(attrs, get_data())  # type: ignore[return-value]
