"""Numeric ranges of one field: which ranges hold a value, output-sensitively.

Half-open ranges (``> n`` / ``< n``) sit in lists sorted by their bound, so every
entry scanned past the binary search is a match. Bounded ranges are grouped by
width class (a power of two at least their width): a range of class ``w``
holding ``x`` has its lower bound in ``[x - w, x]``, so each class is scanned in
one window found by binary search, where about half the entries match.
"""

from __future__ import annotations

import bisect
import math
from typing import Final

from ._model import Numeric

__all__ = ["RangeIndex"]

_Entries = tuple[tuple[int, Numeric], ...]
_UNBOUNDED_CLASS: Final = 1 << 20
_INF: Final = float("inf")


def _width_class(rng: Numeric) -> tuple[int, float]:
    assert rng.low is not None
    assert rng.high is not None
    try:
        width = float(rng.high - rng.low)
    except OverflowError:
        width = _INF
    exponent = math.frexp(width)[1]
    if width == _INF or exponent >= 1024:  # 2 ** 1024 is past the largest double
        return _UNBOUNDED_CLASS, _INF
    return exponent, math.ldexp(1.0, exponent)


def _insert(
    keys: tuple[float, ...], entries: _Entries, key: float, entry: tuple[int, Numeric]
) -> tuple[tuple[float, ...], _Entries]:
    at = bisect.bisect_right(keys, key)
    return (*keys[:at], key, *keys[at:]), (*entries[:at], entry, *entries[at:])


def _delete(
    keys: tuple[float, ...], entries: _Entries, entry: tuple[int, Numeric]
) -> tuple[tuple[float, ...], _Entries]:
    # One branch may file several ranges here: remove just this one.
    at = entries.index(entry)
    return (*keys[:at], *keys[at + 1 :]), (*entries[:at], *entries[at + 1 :])


class RangeIndex:
    """The numeric ranges filed under one field path (see the module docs)."""

    __slots__ = ("_classes", "bands", "lower", "size", "upper")

    def __init__(self) -> None:
        # Read side: tuples replaced whole by writers.
        self.lower: tuple[tuple[float, ...], _Entries] = ((), ())
        self.upper: tuple[tuple[float, ...], _Entries] = ((), ())
        self.bands: tuple[tuple[float, tuple[float, ...], _Entries], ...] = ()
        # Write side.
        self._classes: dict[int, tuple[float, tuple[float, ...], _Entries]] = {}
        self.size = 0

    def cost(self, rng: Numeric) -> float:
        """Estimate the chance that an event's value falls in ``rng``."""
        if rng.high is None or rng.low is None:
            return 0.5
        band = self._classes.get(_width_class(rng)[0])
        if band is None or len(band[1]) < 2:
            return 0.5  # nothing yet to compare the width with
        window, keys, _ = band
        spread = float(keys[-1] - keys[0])
        return 0.5 if window >= spread else 0.75 * window / spread

    def bucket(self, rng: Numeric) -> object:
        """Name the list ``rng`` is scanned in: lower, upper, or its width class."""
        if rng.high is None:
            return "lower"
        if rng.low is None:
            return "upper"
        return _width_class(rng)[0]

    def _entries(self, rng: Numeric) -> _Entries:
        if rng.high is None:
            return self.lower[1]
        if rng.low is None:
            return self.upper[1]
        return self._classes.get(_width_class(rng)[0], (0.0, (), ()))[2]

    def bucket_size(self, rng: Numeric) -> int:
        """How many ranges are scanned together with ``rng``."""
        return len(self._entries(rng))

    def members(self, rng: Numeric) -> tuple[int, ...]:
        """The ids of the ranges scanned together with ``rng``."""
        return tuple(cid for cid, _ in self._entries(rng))

    def add(self, cid: int, rng: Numeric) -> None:
        """File a range."""
        self.size += 1
        if rng.high is None:
            assert rng.low is not None
            self.lower = _insert(*self.lower, rng.low, (cid, rng))
        elif rng.low is None:
            self.upper = _insert(*self.upper, rng.high, (cid, rng))
        else:
            cls, window = _width_class(rng)
            _, keys, entries = self._classes.get(cls, (window, (), ()))
            self._classes[cls] = (window, *_insert(keys, entries, rng.low, (cid, rng)))
            self.bands = tuple(self._classes.values())

    def remove(self, cid: int, rng: Numeric) -> None:
        """Unfile a range."""
        self.size -= 1
        if rng.high is None:
            self.lower = _delete(*self.lower, (cid, rng))
        elif rng.low is None:
            self.upper = _delete(*self.upper, (cid, rng))
        else:
            cls, window = _width_class(rng)
            keys, entries = _delete(*self._classes[cls][1:], (cid, rng))
            if keys:
                self._classes[cls] = (window, keys, entries)
            else:
                del self._classes[cls]
            self.bands = tuple(self._classes.values())

    def collect(self, value: float, out: set[int]) -> None:
        """Add the ids of the ranges holding ``value`` (a number, not NaN)."""
        # Plain loops, not ``out.update(generator)``: no allocation per event.
        keys, entries = self.lower
        if keys:
            for cid, rng in entries[: bisect.bisect_right(keys, value)]:
                if rng.test(value):
                    out.add(cid)
        keys, entries = self.upper
        if keys:
            for cid, rng in entries[bisect.bisect_left(keys, value) :]:
                if rng.test(value):
                    out.add(cid)
        for window, keys, entries in self.bands:
            try:
                first = value - window
            except OverflowError:  # an integer beyond any double
                first = -_INF
            start = bisect.bisect_left(keys, first)
            for cid, rng in entries[start : bisect.bisect_right(keys, value, start)]:
                if rng.test(value):
                    out.add(cid)
