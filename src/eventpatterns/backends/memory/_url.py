"""``memory://`` URLs, so that code building its stores from one URL runs in memory too.

``memory://?max_entries=1000&ttl=30``: each store's ``from_url`` reads its own options
(:data:`STORE_OPTIONS`, one table for every memory store) and skips, still checking,
the others'; ``prefix`` is accepted and ignored (the stores of one process share
nothing). A name in none of them is refused, naming it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from ...errors import ConfigurationError

__all__ = ["STORE_OPTIONS", "Closeable", "parse_memory_url"]


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError("an integer") from None


def _number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("a number") from None
    if not math.isfinite(number):
        raise ValueError("a finite number")
    return number


def _text(value: str) -> str:
    if not value:
        raise ValueError("a non-empty value")
    return value


#: Every memory store's own query options, by the class whose ``from_url`` reads them.
STORE_OPTIONS: Mapping[str, Mapping[str, Callable[[str], Any]]] = {
    "MemoryBusBackend": {
        "max_entries": _int,
        "max_message_size": _int,
        "dedupe_window": _number,
    },
    "MemoryJobStore": {"default_ttl": _number},
    "MemoryBlobStore": {"max_size": _int},
    "MemoryDeviceRegistry": {"max_devices": _int},
    "MemoryPresence": {"ttl": _number, "sweep_interval": _number, "max_info_size": _int},
    "MemoryDispatchState": {"key_ttl": _number},
    "MemoryPushDeadLetters": {},
}
_IGNORED: Mapping[str, Callable[[str], Any]] = {"prefix": _text}
_KNOWN = sorted({name for table in STORE_OPTIONS.values() for name in table} | set(_IGNORED))


def parse_memory_url(url: str, store: str, options: dict[str, Any]) -> dict[str, Any]:
    """Return ``store``'s constructor keywords from a ``memory://`` URL and ``options``.

    Keyword ``options`` win over the URL.

    Raises:
        ConfigurationError: Not a ``memory://`` URL, an unknown or repeated option, or
            a bad value; the message names it.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"the URL must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme != "memory":
        raise ConfigurationError(f"not a memory:// URL: {url!r}")
    own = STORE_OPTIONS[store]
    parsed: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        parsers = [table[key] for table in (*STORE_OPTIONS.values(), _IGNORED) if key in table]
        if not parsers:
            raise ConfigurationError(
                f"unknown memory:// option {key!r}; expected one of {', '.join(_KNOWN)}"
            )
        if key in seen:
            raise ConfigurationError(f"memory:// option {key} is given twice")
        seen.add(key)
        for parser in parsers:  # another store's option is skipped, but still checked
            try:
                result = parser(value)
            except ValueError as exc:
                raise ConfigurationError(
                    f"memory:// option {key} must be {exc}, got {value!r}"
                ) from None
        if key in own:
            parsed[key] = result
    return {**parsed, **options}


C = TypeVar("C", bound="Closeable")


class Closeable:
    """The lifecycle every store has: ``async with``, and ``aclose()`` (here nothing).

    A memory store holds no connection: closing it is idempotent and keeps its data,
    so code written for the Redis or AWS stores runs unchanged on memory.
    """

    async def __aenter__(self: C) -> C:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release (idempotent)."""
