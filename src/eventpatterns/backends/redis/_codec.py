"""Decode log entries fast: they were validated once, when they were published.

Every entry in a bus stream was written by :meth:`RedisBusBackend.append` from an
:class:`~eventpatterns.core.Event`, which validated it, and ``Event.to_json()``
encoded it. Decoding with the full validation of :meth:`Event.from_json` costs
several times as much as parsing the JSON, and a consumer decodes every entry it
receives, so entries are parsed with orjson and built by core's
:func:`~eventpatterns.core.trusted_event`, which skips re-validation. The stream is
the trust boundary (a process writing other JSON into it could hand out events the
constructor would refuse); still, anything ``trusted_event`` does not take, and
anything orjson reads differently from ``json`` (integers beyond 64 bits), goes to
:meth:`Event.from_json`, which validates and raises ``InvalidEvent``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from ...bus import LogEntry
from ...core import Event, trusted_event
from ...core._json import may_hold_big_int

__all__ = ["Decoded", "RawEntry", "decode_event"]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Event.to_json() never writes NaN/Infinity


def _find_loads() -> Callable[[bytes | str], Any]:
    # orjson (in the redis extra) parses an entry in about a quarter of json's time.
    try:
        import orjson
    except ImportError:  # pragma: no cover - the extra installs it
        return functools.partial(json.loads, parse_constant=_no_constant)
    loads: Callable[[bytes | str], Any] = orjson.loads
    return loads


_loads = _find_loads()


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


def decode_event(raw: bytes | str) -> Event:
    """Return the event a log entry holds (``Event.to_json()`` output).

    Raises:
        InvalidEvent: The entry is not a valid event.
    """
    try:
        obj = _loads(raw)  # orjson refuses NaN/Infinity; its JSONDecodeError is a ValueError
        # orjson reads integers beyond 64 bits as floats: those take the validated way.
        if type(obj) is dict and not (may_hold_big_int(raw) and _maybe_big_int(obj.get("data"))):
            return trusted_event(obj)
    except ValueError:  # InvalidEvent is a ValueError too: let validation tell why
        pass
    return Event.from_json(raw)


class Decoded:
    """The events of the entries read lately, by position: each is decoded once.

    A process's subscriptions (the bus's reader) and its consumer groups read the
    same entries of the one log; an entry the other side decoded already is taken
    from here (events are immutable, and the reader hands one object to every
    subscription too). Bounded: when full it starts over.

    Args:
        size: Entries kept at most.
    """

    __slots__ = ("_events", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._events: dict[str, Event] = {}
        self._size = size

    def event(self, position: str, raw: bytes | str) -> Event:
        """Return the event of the entry at ``position`` (decoding ``raw`` if need be)."""
        events = self._events
        found = events.get(position)
        if found is not None:
            return found
        event = decode_event(raw)
        if len(events) >= self._size:
            events.clear()
        events[position] = event
        return event


class RawEntry(LogEntry):
    """A log entry that decodes its event when :attr:`event` is first read.

    ``raw`` is the entry's ``Event.to_json()`` bytes until it is decoded (then
    ``None``): the bus's reader can tell from them that no subscription wants the
    entry (see ``type_probes``) and skip it undecoded. An entry that is not a valid
    event raises ``InvalidEvent`` on that first read, as reading it eagerly would.
    """

    __slots__ = ("_decoded", "_event", "raw")

    raw: bytes | None  # None once decoded: an entry buffered keeps one form, not both
    _decoded: Decoded
    _event: Event | None

    def __init__(self, position: str, raw: bytes, decoded: Decoded) -> None:
        object.__setattr__(self, "position", position)  # frozen, as LogEntry
        object.__setattr__(self, "raw", raw)
        object.__setattr__(self, "_decoded", decoded)
        object.__setattr__(self, "_event", None)

    @property  # LogEntry's field, decoded on first read
    def event(self) -> Event:
        event: Event | None = self._event
        if event is None:
            event = self._decoded.event(self.position, self.raw or b"")
            object.__setattr__(self, "_event", event)
            object.__setattr__(self, "raw", None)
        return event
