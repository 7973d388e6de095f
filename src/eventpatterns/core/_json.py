"""JSON text as the library writes and reads it, by orjson where it agrees with ``json``.

Encoding a job's record and its events is a good part of a job's cost; orjson does it
in a fraction of the time of the standard library. It is used only where its output
is the standard library's (compact separators, UTF-8, no ASCII escaping; numbers may
be spelled another way, ``1e16`` for ``1e+16``, with the same value), and the standard
library takes over for everything orjson refuses or reads otherwise: integers beyond
64 bits, nesting deeper than 255 levels, subclasses it does not know. orjson is in
the ``redis`` extra; without it, this is ``json``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "loads", "may_hold_big_int"]


@functools.cache
def _orjson() -> tuple[Callable[[Any], bytes], Callable[[bytes | str], Any]] | None:
    try:
        import orjson  # imported on first use: ``import eventpatterns`` stays light
    except ImportError:
        return None
    return orjson.dumps, orjson.loads


def dumps(value: Any) -> bytes:
    """Return ``json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()``.

    ``value`` must hold no NaN or infinity (orjson would write ``null``): callers pass
    values already checked (an event's data), or check them first.

    Raises:
        TypeError, ValueError: As ``json.dumps`` (a value JSON cannot hold).
    """
    fast = _orjson()
    if fast is not None:
        try:
            return fast[0](value)
        except TypeError:  # orjson.JSONEncodeError: what it refuses, json may write
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# An integer beyond 64 bits has 19 digits or more in the text: without such a run of
# digits orjson reads every number as json does. Every digit mapped to "0", the run is
# a substring search (two C passes, ~1 us for a job record; the regular expression
# [0-9]{19} tried a match at every offset, ~20 us).
_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_RUN = b"0" * 19


def may_hold_big_int(raw: bytes | str) -> bool:
    """Tell whether JSON text may hold an integer orjson reads as a float (>= 19 digits)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    return _RUN in raw.translate(_TO_ZERO)


def loads(raw: bytes | str) -> Any:
    """Return ``json.loads(raw)``, parsed by orjson when it reads the text the same way.

    Raises:
        ValueError: As ``json.loads`` (``json.JSONDecodeError``, ``UnicodeDecodeError``).
    """
    fast = _orjson()
    if fast is not None and not may_hold_big_int(raw):
        try:
            return fast[1](raw)
        except ValueError:  # NaN, lone surrogates...: json decides, and names the error
            pass
    return json.loads(raw)
