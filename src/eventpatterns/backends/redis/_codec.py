"""Decode log entries fast: they were validated once, when they were published.

Every entry in a bus stream was written by :meth:`RedisBusBackend.append` from an
:class:`~eventpatterns.core.Event`, which validated it, and ``Event.to_json()``
encoded it. Decoding with the full validation of :meth:`Event.from_json` costs about
twice as much as parsing the JSON, and a consumer decodes every entry it receives, so
trusted entries skip re-validation: the event is built the way the core builds one
after validating it. The stream is the trust boundary (a process writing other JSON
into it could hand out events the constructor would refuse); still, anything
unexpected (binary data, malformed JSON or ``NaN``, extensions that break the rules,
a model this module was not written for) falls back to :meth:`Event.from_json`, which
validates and raises ``InvalidEvent``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...core import Event, parse_time
from ...core._event import _check_extensions

__all__ = ["decode_event"]

_STANDARD = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject"}
    | {"time", "data", "data_base64"}
)
_FIELDS = ("id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject")
_MODEL = (*_FIELDS, "time", "data", "extensions")
# RFC 3339 times as Event.to_json() writes them; fromisoformat reads "Z" from 3.11 on.
_parse_time: Callable[[str], datetime] = (
    datetime.fromisoformat if sys.version_info >= (3, 11) else parse_time
)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Event.to_json() never writes NaN/Infinity


# The C scanner behind json.loads, minus its str/bytes and whitespace handling: log
# entries are Event.to_json() output, a bare object. It raises StopIteration on junk.
_scan: Callable[[str, int], tuple[Any, int]] = vars(json.JSONDecoder(parse_constant=_no_constant))[
    "scan_once"
]
_new = object.__new__


def _find_orjson() -> Callable[[bytes | str], Any] | None:
    # orjson (in the redis extra) parses an entry in about a quarter of json's time.
    try:
        import orjson
    except ImportError:  # pragma: no cover - the extra installs it
        return None
    loads: Callable[[bytes | str], Any] = orjson.loads
    return loads


_orjson_loads = _find_orjson()


def _maybe_big_int(value: Any) -> bool:
    """Tell whether a parsed value holds a float that may stand for a huge integer."""
    kind = type(value)
    if kind is float:
        return bool(abs(value) >= 9.2e18)  # the edge of 64-bit integers
    if kind is dict:
        values = value.values()
    elif kind is list:
        values = value
    else:
        return False
    for item in values:
        t = type(item)
        if t is str or t is int or t is bool or item is None:
            continue
        if _maybe_big_int(item):
            return True
    return False


def _parse(raw: bytes | str) -> Any:
    """Parse one entry; ``None`` when it is not a bare JSON object (or not JSON)."""
    if _orjson_loads is not None:
        obj = _orjson_loads(raw)  # rejects NaN/Infinity; JSONDecodeError is a ValueError
        if type(obj) is dict and _maybe_big_int(obj.get("data")):
            return None  # orjson reads integers beyond 64 bits as floats: take the long way
        return obj
    text = raw.decode() if isinstance(raw, bytes) else raw
    obj, end = _scan(text, 0)
    return obj if end == len(text) else None


def _slot(name: str) -> Callable[[Event, Any], None]:
    # Setting through the descriptors pydantic's BaseModel declares skips the attribute
    # lookup of object.__setattr__: this runs once per received event.
    for klass in Event.__mro__:
        if name in vars(klass):
            setter: Callable[[Event, Any], None] = vars(klass)[name].__set__
            return setter

    def missing(event: Event, value: Any) -> None:  # another pydantic: _self_check() says no
        raise TypeError(f"pydantic models have no {name} here")

    return missing


_set_dict, _set_fields_set, _set_extra, _set_private = map(
    _slot, ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)
_ALL_SET = set(_MODEL)


def _build(values: dict[str, Any]) -> Event:
    # The same steps as Event._validate_into, minus the validation already done.
    event: Event = _new(Event)
    _set_dict(event, values)
    _set_fields_set(event, _ALL_SET.copy())
    _set_extra(event, None)
    _set_private(event, None)
    return event


# Entries without extensions or binary data (most of them) take a shorter way: every
# key is a model field, so the field values are the defaults overlaid with the entry.
_NONES = dict.fromkeys(_MODEL)  # in the model's field order, which __dict__ keeps
_FAST_KEYS = frozenset((*_FIELDS, "time", "data"))
_REQUIRED = frozenset(("id", "source", "type"))


def _trusted(raw: bytes | str) -> Event | None:
    try:
        obj = _parse(raw)
        if type(obj) is not dict:
            return None
        get = obj.get
        if get("specversion") != "1.0":
            return None
        if _FAST_KEYS.issuperset(obj) and obj.keys() >= _REQUIRED:
            values = {**_NONES, **obj}
            time = values["time"]
            if time is not None:
                values["time"] = _parse_time(time)
            values["extensions"] = {}
            return _build(values)
        if "data_base64" in obj:
            return None
        subject, time, content_type, schema, data = (
            get("subject"), get("time"), get("datacontenttype"), get("dataschema"), get("data")
        )  # fmt: skip
        # Extensions are the other members; count instead of looking for them, as most
        # events have none (an explicit null also sends us the long way, still right).
        standard = 4 + (subject is not None) + (time is not None) + (content_type is not None)
        standard += (schema is not None) + (data is not None)
        return _build(
            {
                "id": obj["id"],
                "source": obj["source"],
                "specversion": "1.0",
                "type": obj["type"],
                "datacontenttype": content_type,
                "dataschema": schema,
                "subject": subject,
                "time": None if time is None else _parse_time(time),
                "data": data,
                "extensions": {}
                if len(obj) == standard
                else _check_extensions({k: v for k, v in obj.items() if k not in _STANDARD}),
            }
        )
    except (ValueError, TypeError, KeyError, AttributeError, StopIteration):
        return None  # InvalidEvent is a ValueError


def _self_check() -> bool:
    """Tell whether the shortcut builds events equal to validated ones, on this version."""
    if tuple(Event.model_fields) != _MODEL:
        return False
    sample = Event(
        type="check",
        source="/eventpatterns",
        subject="s",
        data={"n": [1, 2.5, None, "x"]},
        extensions={"partitionkey": "k"},
    )
    try:
        built = _trusted(sample.to_json())
        return built == sample and built.to_json() == sample.to_json()
    except Exception:
        return False


_TRUSTED = _self_check()


def decode_event(raw: bytes | str) -> Event:
    """Return the event a log entry holds (``Event.to_json()`` output)."""
    if _TRUSTED:
        event = _trusted(raw)
        if event is not None:
            return event
    return Event.from_json(raw)
