"""Filters as the bus uses them: compiled once per distinct pattern, fed field views."""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from ..core import ATTRIBUTES, Event, format_time
from ..errors import ConfigurationError

__all__ = ["SupportsMatch", "as_matcher", "event_view", "type_probe", "type_probes"]


@runtime_checkable
class SupportsMatch(Protocol):
    """Anything with ``matches(event_json) -> bool``, e.g. a compiled filter."""

    def matches(self, event: dict[str, Any], /) -> bool:
        """Tell whether the event (CloudEvents JSON form) is wanted."""
        ...


def as_matcher(pattern: SupportsMatch | Mapping[str, Any] | None) -> SupportsMatch | None:
    """Compile an EventBridge-style pattern dict, or pass a matcher through."""
    if pattern is None or isinstance(pattern, SupportsMatch):
        return pattern
    if isinstance(pattern, Mapping):
        if _string_keys(pattern):
            return _compile_cached(json.dumps(pattern, sort_keys=True, default=str))
        # A key that is not a string has no canonical JSON form (json.dumps would coerce
        # it, or fail sorting mixed keys with a bare TypeError): the compiler rejects it
        # with InvalidPattern naming its path.
        from ..filters import compile as compile_pattern

        matcher: SupportsMatch = compile_pattern(pattern)
        return matcher
    raise ConfigurationError(
        f"pattern must be a dict (an EventBridge event pattern) or have a matches() method,"
        f" got {type(pattern).__name__}"
    )


def _string_keys(value: object) -> bool:
    """Tell whether every object key in a JSON-like value is a string."""
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _string_keys(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_string_keys(v) for v in value)
    return True


#: Attributes whose JSON form is the attribute's value as it is (``time`` is formatted).
_PLAIN_ATTRIBUTES = frozenset(ATTRIBUTES) - {"time"}


def event_view(event: Event, keys: frozenset[str]) -> dict[str, Any]:
    """Return the part of ``event.to_dict()`` under ``keys`` (same values, less work)."""
    out: dict[str, Any] = {}
    for key in keys:
        if key in _PLAIN_ATTRIBUTES:
            value = getattr(event, key)
            if value is not None:
                out[key] = value
        elif key == "data":
            if event.data is not None and not isinstance(event.data, bytes):
                out[key] = event.data
        elif key == "data_base64":
            if isinstance(event.data, bytes):
                out[key] = base64.b64encode(event.data).decode("ascii")
        elif key == "time":
            if event.time is not None:
                out[key] = format_time(event.time)
        elif key in event.extensions:
            out[key] = event.extensions[key]
    return out


def type_probe(type_: str, *, prefix: bool = False) -> bytes:
    """Return the bytes ``Event.to_json()`` writes for an event of type ``type_``.

    ``prefix``: of a type starting with ``type_`` (JSON escapes each character on its
    own, so the text of a prefix is a prefix of the text).

    Raises:
        UnicodeEncodeError: ``type_`` holds a lone surrogate (no event's type does).
    """
    text = json.dumps(type_, ensure_ascii=False)
    return b'"type":' + (text[:-1] if prefix else text).encode()


def type_probes(matcher: SupportsMatch | None) -> tuple[bytes, ...] | None:
    """Return byte strings one of which the JSON form of every wanted event holds.

    A pattern whose top-level ``type`` condition lists only exact strings and
    ``prefix`` conditions wants only events whose ``Event.to_json()`` text holds
    ``"type":"<value>"`` (or ``"type":"<prefix>``) for one of them, so an entry of
    the log without any can be skipped without decoding it. A text holding one may
    still not match (the bytes can sit inside ``data``): it is decoded and matched.
    ``None``: the pattern wants other events too (or reads the matcher's own way).
    """
    pattern = getattr(matcher, "pattern", None)
    if not isinstance(pattern, dict):
        return None
    values = pattern.get("type")
    if not isinstance(values, list) or not values:
        return None
    probes: list[bytes] = []
    for value in values:
        try:
            if isinstance(value, str):
                probes.append(type_probe(value))
            elif isinstance(value, dict) and len(value) == 1 and type(value.get("prefix")) is str:
                probes.append(type_probe(value["prefix"], prefix=True))
            else:
                return None
        except UnicodeEncodeError:  # a lone surrogate: screening is not worth the doubt
            return None
    return tuple(probes)


@functools.lru_cache(maxsize=4096)
def _compile_cached(canonical: str) -> SupportsMatch:
    # Equal patterns share one matcher, so the hub evaluates each distinct pattern once.
    from ..filters import compile as compile_pattern

    matcher: SupportsMatch = compile_pattern(json.loads(canonical))
    return matcher
