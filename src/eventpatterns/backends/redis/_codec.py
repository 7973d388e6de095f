"""Decode log entries fast: they were validated once, when they were published.

Every entry in a bus stream was written by :meth:`RedisBusBackend.append` from an
:class:`~eventpatterns.core.Event`, which validated it, and ``Event.to_json()``
encoded it. Decoding with the full validation of :meth:`Event.from_json` costs about
twice as much as parsing the JSON, and a consumer decodes every entry it receives, so
trusted entries skip re-validation: the event is built the way the core builds one
after validating it. Anything unexpected (binary data, malformed JSON, a model this
module was not written for) falls back to :meth:`Event.from_json`, which validates
and raises ``InvalidEvent``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ...core import Event, parse_time

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
_raw_decode = json.JSONDecoder().raw_decode
_new = object.__new__
_set = object.__setattr__


def _build(values: dict[str, Any]) -> Event:
    # The same steps as Event._validate_into, minus the validation already done.
    event: Event = _new(Event)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", set(values))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def _trusted(raw: bytes | str) -> Event | None:
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
        obj, end = _raw_decode(text)  # json.loads minus its whitespace handling
        if end != len(text) or not isinstance(obj, dict):
            return None
        if "data_base64" in obj or obj.get("specversion") != "1.0":
            return None
        time = obj.get("time")
        return _build(
            {
                "id": obj["id"],
                "source": obj["source"],
                "specversion": "1.0",
                "type": obj["type"],
                "datacontenttype": obj.get("datacontenttype"),
                "dataschema": obj.get("dataschema"),
                "subject": obj.get("subject"),
                "time": None if time is None else _parse_time(time),
                "data": obj.get("data"),
                "extensions": {k: v for k, v in obj.items() if k not in _STANDARD},
            }
        )
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
        return None


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
