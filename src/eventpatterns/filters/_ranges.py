"""Numeric ranges of one field: which ranges hold a value, output-sensitively.

Three families, each kept in sorted runs (see :class:`Runs`):

* lower bounds only (``> n``, ``>= n``), sorted by bound, inclusive and exclusive
  apart: every entry before the binary-search point holds the value, so they are
  returned in one slice, without a test;
* upper bounds only, the same on the negated bound;
* bounded ranges, grouped by *width class* ``k`` (their width is below ``2**k``),
  sorted by lower bound. A range of class ``k`` holding ``x`` has its lower bound
  in ``(x - 2**k, x]``: the candidates are one window found by two binary
  searches (widened by ``2**(k-20)`` to absorb float rounding, computed exactly
  when the value dwarfs the width), and each candidate is tested exactly. A range
  fits the window of any wider class too, so it joins a band up to two classes
  wider when there is one, or three or four wider when that band is sparse (its
  window holds the lower bounds of about two of its ranges or fewer, so the
  candidates it adds cost less than searching one more band): about a third as
  many bands to search per lookup, for windows at most four times a range's class
  where the bands are dense. For ranges spread evenly, a quarter to all of a
  window hold ``x`` in a dense band, so the work follows the ranges that hold the
  value, whatever their overlap. While a field holds few ranges (16), they are
  simply tested one by one.

Bounds are doubles (the language refuses a number a double does not hold
exactly), and a value is looked up as its double (``as_double``; the caller
leaves out numbers that have none: they are in no range).

Building is O(log n) comparisons and O(sqrt n) copying per range, amortised
(:class:`Runs`); a lookup is O(log n + candidates) per family and width class.

Once a field holds 64 bounded ranges, they are also tabulated for stabbing
(:func:`_stab`): one binary search finds every tabulated range holding a value.
Writers re-tabulate once a quarter of the ranges were filed since (amortised
O(log n) builds per range); the ranges filed since wait in the bands. Lookups that
still search the bands count themselves, and once they are four per bounded range
(about what a build costs), the lookup builds the table itself, unless a writer
holds the field's lock: a burst of additions leaves no lasting tail. While the
table holds every range of the field (no threshold, nothing in the bands), it is
also published as ``solo``, with a cell per slot for the caller to keep what it
made of that slot: :class:`~eventpatterns.filters.PatternIndex` keeps there the
keys a slot's states settle, so that overlapping ranges cost one lookup per event,
not one step per range that holds the value.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Hashable
from fractions import Fraction
from typing import Any, Final, Generic, TypeVar

from ._model import Numeric

__all__ = ["Pile", "RangeIndex", "Runs"]

T = TypeVar("T", bound=Hashable)
_INF: Final = float("inf")
_WIDE: Final = 10_000  # the class of widths too big for a double
_MIN_SMALL: Final = 16
_FLAT: Final = 16  # ranges a RangeIndex tests one by one (see RangeIndex.flat)


class Runs(Generic[T]):
    """A sorted sequence that readers search without a lock.

    It is two sorted runs, a large one and a small one, each a pair of tuples
    (sort keys, items) that writers replace whole: an insertion copies only the
    small run, which is merged into the large one once it outgrows about the
    square root of the whole, so n insertions copy O(n sqrt n) references in all
    instead of O(n**2). Readers search both runs.

    Attributes:
        runs: The runs, ``((keys, items), ...)``; read it once per lookup.
    """

    __slots__ = ("runs", "size")

    def __init__(self) -> None:
        self.runs: tuple[tuple[tuple[Any, ...], tuple[T, ...]], ...] = ()
        self.size = 0

    def insert(self, key: Any, item: T) -> None:
        """Insert ``item`` at its key's place (after equal keys)."""
        self.size += 1
        if not self.runs:
            self.runs = (((key,), (item,)),)
            return
        big = self.runs[0]
        small = self.runs[1] if len(self.runs) > 1 else ((), ())
        keys, items = small
        at = bisect.bisect_right(keys, key)
        # Concatenation, not unpacking: it copies at C speed.
        keys = keys[:at] + (key,) + keys[at:]  # noqa: RUF005
        items = items[:at] + (item,) + items[at:]  # noqa: RUF005
        # Merging costs about a hundred times more per item than copying the small
        # run, so the small run may grow to several times the square root.
        if len(keys) > _MIN_SMALL + 8 * math.isqrt(len(big[0])):
            self.runs = (_merge(big, (keys, items)),)
        else:
            self.runs = (big, (keys, items))

    def remove(self, key: Any, item: T) -> None:
        """Remove one ``item`` filed under ``key``.

        Raises:
            ValueError: It is not there.
        """
        runs = list(self.runs)
        for r, (keys, items) in enumerate(runs):
            at = bisect.bisect_left(keys, key)
            while at < len(keys) and keys[at] == key:
                if items[at] == item:
                    runs[r] = (keys[:at] + keys[at + 1 :], items[:at] + items[at + 1 :])
                    self.size -= 1
                    self.runs = tuple(run for run in runs if run[0])
                    return
                at += 1
        raise ValueError(item)


class Pile:
    """An unordered bag of items that readers iterate without a lock.

    Two tuples that writers replace whole; appending copies only the small one,
    merged into the large one once it outgrows about the square root of the whole.

    Attributes:
        runs: ``(large, small)``; read it once, iterate both.
    """

    __slots__ = ("runs",)

    def __init__(self) -> None:
        self.runs: tuple[tuple[Any, ...], tuple[Any, ...]] = ((), ())

    def append(self, item: object) -> None:
        """Add ``item``."""
        big, small = self.runs
        small = (*small, item)
        if len(small) > 8 + math.isqrt(len(big)):
            self.runs = (big + small, ())
        else:
            self.runs = (big, small)

    def remove(self, item: object) -> None:
        """Remove one ``item`` (compared by identity first, then equality).

        Raises:
            ValueError: It is not there.
        """
        big, small = self.runs
        if item in small:
            at = small.index(item)
            self.runs = (big, small[:at] + small[at + 1 :])
        else:
            at = big.index(item)
            self.runs = (big[:at] + big[at + 1 :], small)


def _merge(
    a: tuple[tuple[Any, ...], tuple[T, ...]], b: tuple[tuple[Any, ...], tuple[T, ...]]
) -> tuple[tuple[Any, ...], tuple[T, ...]]:
    # Sorting two sorted runs is one linear merge (timsort finds the runs); sorting
    # positions by key never compares items.
    keys, items = a[0] + b[0], a[1] + b[1]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return tuple(map(keys.__getitem__, order)), tuple(map(items.__getitem__, order))


_SPARSE: Final = 2.0  # candidates per lookup a band may have to join it from afar


def _sparse(band: Runs[Any], k: int) -> bool:
    """Tell whether a band of class ``k`` is sparse enough for ranges 3-4 classes narrower.

    Its window (``2**k``) then holds about ``_SPARSE`` of its ranges' lower bounds or
    fewer, so testing them costs less than searching one more band would.
    """
    if k >= _WIDE or band.size < 2:
        return False
    lows = [bound for keys, _ in band.runs for bound in (keys[0], keys[-1])]
    try:
        span = float(max(lows)) - float(min(lows))
    except OverflowError:
        return False
    return band.size * math.ldexp(1.0, k) <= _SPARSE * span


def _width_class(low: float, high: float) -> int:
    """Return ``k`` with ``high - low < 2**k`` (or :data:`_WIDE`)."""
    try:
        width = high - low
    except OverflowError:  # an integer beyond any double against a float
        return _WIDE
    if isinstance(width, int):
        k = width.bit_length()
    elif width == _INF:
        return _WIDE
    else:
        k = math.frexp(width)[1]
    return k if k < 1000 else _WIDE


def _window(k: int) -> tuple[float, float]:
    """Return (a window of at least ``2**k`` plus rounding, the magnitude it is safe to)."""
    if k == _WIDE:
        return _INF, _INF
    # The window is ``2**k`` and a spare of ``2**(k-20)``: ``value - window`` rounds by
    # at most half an ulp, below the spare, while |value| < 2**(k+30) (an ulp there is
    # at most 2**(k-19)); beyond that the window start is computed exactly. A tight
    # window keeps about three in four candidates holding the value, not one in three.
    window = math.ldexp(1.0 + 2.0**-20, k) if k < 1024 else _INF
    safe = math.ldexp(1.0, k + 30) if k + 30 < 1024 else _INF
    return window, safe


def _exact_start(value: float, k: int) -> Fraction | None:
    if value in (_INF, -_INF):
        return None  # no bounded range holds an infinity
    return Fraction(value) - Fraction(2) ** k


_Band = tuple[float, bool, float, bool, object]


def _code(event: tuple[int, Any]) -> int:
    return event[0]


_STAB_FROM: Final = 64  # bounded ranges in the bands before they are tabulated
_STAB_AGAIN: Final = 4  # re-tabulate once a quarter of the ranges are new (or dead)
_STAB_REFS: Final = 48  # references per range the table may hold (else: bands only)
# Lookups per bounded range that may search the bands (ranges filed since the table's
# last build) before a lookup re-tabulates (see RangeIndex.collect).
_REPAY: Final = 4


def _stab(
    items: list[_Band], budget: int
) -> tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...]] | None:
    """Tabulate bounded ranges for stabbing: (bounds, slots), or ``None`` past ``budget``.

    ``bounds`` are the distinct bounds, sorted; ``slots[2 * i]`` holds the targets of
    the ranges containing the values strictly between ``bounds[i - 1]`` and
    ``bounds[i]``, ``slots[2 * i + 1]`` those containing ``bounds[i]`` itself. One
    sweep over the bounds builds it, in O(n log n) plus the slots' sizes (where one
    range starts or ends at a bound, the bound shares its tuple with the values
    before or after it). Where ranges overlap too much for the slots
    to stay within ``budget`` references (nested ranges: n**2), it gives up.
    """
    # Per bound, its events (code, target), or the one event itself (most bounds):
    # at the bound, ranges ending there exclusive leave (code 0) and those starting
    # there inclusive enter (1); past it, those ending inclusive leave (2) and those
    # starting exclusive enter (3).
    at: dict[Any, Any] = {}
    for low, low_in, high, high_in, target in items:
        if high < low or (high == low and not (low_in and high_in)):
            continue  # holds no value
        for bound, event in (
            (low, (1 if low_in else 3, target)),
            (high, (2 if high_in else 0, target)),
        ):
            held = at.get(bound)
            if held is None:
                at[bound] = event
            elif type(held) is list:
                held.append(event)
            else:
                at[bound] = [held, event]
    bounds = sorted(at)
    active: dict[Any, int] = {}  # target -> ranges holding it open
    get = active.get
    slots: list[tuple[Any, ...]] = []
    between: tuple[Any, ...] = ()  # the targets open since the last bound
    held = 0
    for bound in bounds:
        events = at[bound]
        slots.append(between)
        if type(events) is tuple:
            code, t = events
            if code & 1:  # enters
                active[t] = get(t, 0) + 1
            else:
                count = active[t] - 1
                if count:
                    active[t] = count
                else:
                    del active[t]
            if code < 2:  # at the bound: it and the values past it alike
                between = tuple(active)
                slots.append(between)
            else:  # past the bound only: the bound is as the values before it
                slots.append(between)
                between = tuple(active)
            held += len(between)
        else:
            events.sort(key=_code)
            point = None
            for code, t in events:
                if code >= 2 and point is None:
                    point = tuple(active)
                if code & 1:
                    active[t] = get(t, 0) + 1
                else:
                    count = active[t] - 1
                    if count:
                        active[t] = count
                    else:
                        del active[t]
            between = tuple(active)
            slots.append(between if point is None else point)
            held += len(between) + (0 if point is None else len(point))
        if held > budget:
            return None
    slots.append(())
    return tuple(bounds), tuple(slots)


class RangeIndex:
    """The numeric ranges of one field, each leading to a target (see the module docs)."""

    __slots__ = (
        "_bands",
        "_bounded",
        "_by_target",
        "_cells",
        "_lock",
        "_recent",
        "_retry_at",
        "_snapped",
        "_tail_lookups",
        "bands",
        "flat",
        "lower",
        "lower_in",
        "size",
        "snap",
        "solo",
        "upper",
        "upper_in",
    )

    def __init__(self) -> None:
        # Lower bounds, exclusive (``>``) and inclusive (``>=``): keys are the bounds,
        # items the targets. Upper bounds the same, keyed by the negated bound.
        self.lower: Runs[Any] = Runs()
        self.lower_in: Runs[Any] = Runs()
        self.upper: Runs[Any] = Runs()
        self.upper_in: Runs[Any] = Runs()
        # (class, window, safe magnitude, runs keyed by low), replaced whole; items
        # (low, low inclusive, high, high inclusive, target), tested inline.
        self.bands: tuple[tuple[int, float, float, Runs[_Band]], ...] = ()
        self._bands: dict[int, Runs[_Band]] = {}
        # Every range as (low, low inclusive, high, high inclusive, target) while there
        # are few (replaced whole): testing each beats searching the families then.
        self.flat: tuple[_Band, ...] | None = ()
        self.size = 0
        # The stabbing table of the bounded ranges filed before its last build (see
        # _stab): (bounds, slots, dead targets), replaced whole; the ranges filed
        # since are in the bands. ``None`` while there are few (or too dense a set).
        self.snap: tuple[tuple[Any, ...], tuple[tuple[Any, ...], ...], frozenset[Any]] | None
        self.snap = None
        self._snapped: dict[_Band, None] = {}  # the live ranges in ``snap``
        self._by_target: dict[Any, list[_Band]] = {}  # the same, by target
        self._bounded = 0  # bounded ranges filed (in ``snap`` or the bands)
        self._recent = 0  # of which in the bands
        self._retry_at = 0  # bounded ranges before the table is tried again (too dense)
        # Lookups that searched the bands since the last build (a count a reader may
        # race on: off by a few at worst), and the lock that makes a lookup's re-build
        # exclusive with writers (which take it too) and other lookups.
        self._tail_lookups = 0
        self._lock = threading.Lock()
        # ``snap`` and a cell per slot, when the table holds every range (no other
        # family, nothing in the bands): then one slot is the whole answer, and its
        # cell keeps what the caller made of it (see PatternIndex._walk). Readers
        # write the cells (one assignment each); a new table brings new cells.
        self.solo: tuple[Any, ...] | None = None
        self._cells: list[Any] = []

    def add(self, target: object, rng: Numeric) -> None:
        """File ``rng``, leading to ``target``."""
        with self._lock:
            self._add(target, rng)
            self._refresh()

    def remove(self, target: object, rng: Numeric) -> None:
        """Unfile ``rng`` (filed with ``target``)."""
        with self._lock:
            self._remove(target, rng)
            self._refresh()

    def _refresh(self) -> None:
        """Publish ``solo``: the table and its cells if it holds every range, else ``None``."""
        snap = self.snap
        self.solo = (
            None
            if snap is None
            or self.flat is not None
            or self.bands
            or self.lower.runs
            or self.lower_in.runs
            or self.upper.runs
            or self.upper_in.runs
            else (*snap, self._cells)
        )

    def _add(self, target: object, rng: Numeric) -> None:
        self.size += 1
        low, high = rng.low, rng.high
        if high is None:
            if low is None:  # pragma: no cover - the parser never builds one
                raise ValueError("a range needs a bound")
            (self.lower_in if rng.low_inclusive else self.lower).insert(low, target)
        elif low is None:
            (self.upper_in if rng.high_inclusive else self.upper).insert(-high, target)
        else:
            self._band((low, rng.low_inclusive, high, rng.high_inclusive, target))
            self._bounded += 1
            self._recent += 1
            if (
                self._recent >= _STAB_FROM
                and _STAB_AGAIN * self._recent > self._bounded
                and self._bounded >= self._retry_at
            ):
                self._restab()
        self._flatten()

    def _remove(self, target: object, rng: Numeric) -> None:
        self.size -= 1
        low, high = rng.low, rng.high
        if high is None:
            (self.lower_in if rng.low_inclusive else self.lower).remove(low, target)
        elif low is None:
            (self.upper_in if rng.high_inclusive else self.upper).remove(-high, target)
        else:
            item = (low, rng.low_inclusive, high, rng.high_inclusive, target)
            self._bounded -= 1
            if item in self._snapped:
                self._unstab(item)
                self._flatten()
                return
            self._recent -= 1
            self._unband(item)
        self._flatten()

    def _unband(self, item: _Band) -> None:
        """Take a bounded range out of the bands (where :meth:`add` filed it)."""
        low, _, high, _, target = item
        k = _width_class(low, high)
        for wider in (k, k + 1, k + 2, k + 3, k + 4):  # where add filed it
            band = self._bands.get(wider)
            if band is None:
                continue
            try:
                band.remove(low, item)
            except ValueError:
                continue
            if not band.size:
                del self._bands[wider]
                self._publish()
            break
        else:
            raise ValueError(target)

    def _band(self, item: _Band) -> None:
        """File a bounded range in the bands.

        A range fits the window of any wider class: it joins a band up to two
        classes wider if there is one (four if that band is sparse, see _sparse),
        so a lookup searches about a third as many bands, each window at most four
        times its range's class.
        """
        low, high = item[0], item[2]
        k = _width_class(low, high)
        for wider in (k, k + 1, k + 2, k + 3, k + 4):
            band = self._bands.get(wider)
            if band is not None and (wider <= k + 2 or _sparse(band, wider)):
                band.insert(low, item)
                return
        band = self._bands[k] = Runs()
        band.insert(low, item)
        self._publish()

    def _restab(self) -> None:
        """Build the stabbing table of every bounded range; empty the bands.

        The table is published before the bands are emptied: a reader in between
        finds some ranges twice (its caller de-duplicates), never none.
        """
        self._tail_lookups = 0
        items = list(self._snapped)
        for _, _, _, band in self.bands:
            for _, entries in band.runs:
                items.extend(entries)
        # (Two equal ranges to one target would be one in ``_snapped``: never here,
        # as targets are states or entry ids, but then the bands keep them all.)
        built = (
            None
            if len(dict.fromkeys(items)) < len(items)
            else _stab(items, _STAB_REFS * len(items) + 1024)
        )
        if built is None:  # too dense to tabulate: bands only, until it doubles
            self._retry_at = 2 * self._bounded
            return
        self._cells = [None] * len(built[1])
        self.snap = (*built, frozenset())
        self._snapped = dict.fromkeys(items)
        by_target: dict[Any, list[_Band]] = {}
        for item in items:
            by_target.setdefault(item[4], []).append(item)
        self._by_target = by_target
        self._bands = {}
        self._publish()
        self._recent = 0

    def _unstab(self, item: _Band) -> None:
        """Unfile a range held by the table: its target is no longer read from it.

        The target's other ranges in the table (if any) move to the bands; the table
        is rebuilt once dead targets are a fair share of it.
        """
        del self._snapped[item]
        target = item[4]
        others = self._by_target.pop(target)
        others.remove(item)
        for other in others:  # still filed: from the bands now
            del self._snapped[other]
            self._band(other)
            self._recent += 1
        snap = self.snap
        if snap is None:  # pragma: no cover - _snapped is empty without a table
            return
        dead = snap[2] | {target}
        if len(dead) > _STAB_FROM and _STAB_AGAIN * len(dead) > len(self._snapped):
            self._restab()  # also when the bands are empty: drops the dead
            if self.snap is snap:  # too dense now: the rest go to the bands
                self.snap = (snap[0], snap[1], dead)
                for other in list(self._snapped):
                    self._band(other)
                self.snap = None
                self._recent += len(self._snapped)
                self._snapped, self._by_target = {}, {}
            return
        self.snap = (snap[0], snap[1], dead)

    def _flatten(self) -> None:
        if self.size > _FLAT:
            self.flat = None
            return
        if self.snap is not None:  # few left: back to the bands, then tested one by one
            for item in list(self._snapped):
                self._band(item)
            self.snap = None
            self._recent += len(self._snapped)
            self._snapped, self._by_target = {}, {}
        flat: list[_Band] = []
        for runs, inclusive in ((self.lower, False), (self.lower_in, True)):
            for keys, items in runs.runs:
                flat.extend(
                    (key, inclusive, _INF, False, t) for key, t in zip(keys, items, strict=True)
                )
        for runs, inclusive in ((self.upper, False), (self.upper_in, True)):
            for keys, items in runs.runs:
                flat.extend(
                    (-_INF, False, -key, inclusive, t) for key, t in zip(keys, items, strict=True)
                )
        for _, _, _, band in self.bands:
            for _, entries in band.runs:
                flat.extend(entries)
        self.flat = tuple(flat)

    def _publish(self) -> None:
        self.bands = tuple((k, *_window(k), b) for k, b in sorted(self._bands.items()))

    def collect(self, value: float, out: list[object]) -> None:
        """Append the targets of the ranges holding ``value`` (a number, not NaN)."""
        flat = self.flat
        if flat is not None:
            # Unbounded sides are infinities here: a finite value is inside them.
            for low, low_in, high, high_in, target in flat:
                if (value < high or (high_in and value == high)) and (
                    low < value or (low_in and value == low)
                ):
                    out.append(target)
            return
        snap = self.snap
        if snap is not None:
            # One search: the slot of the value (a point between two bounds, or a
            # bound) holds every tabulated range that contains it.
            bounds, slots, dead = snap
            at = bisect.bisect_left(bounds, value)
            hit = slots[2 * at + 1] if at < len(bounds) and bounds[at] == value else slots[2 * at]
            if hit:
                if dead:
                    out.extend([t for t in hit if t not in dead])
                else:
                    out.extend(hit)
        # ``> n`` holds for n < value, ``>= n`` for n <= value: one slice each.
        for keys, items in self.lower.runs:
            end = bisect.bisect_left(keys, value)
            if end:
                out.extend(items[:end])
        for keys, items in self.lower_in.runs:
            end = bisect.bisect_right(keys, value)
            if end:
                out.extend(items[:end])
        if self.upper.runs or self.upper_in.runs:
            neg = -value
            for keys, items in self.upper.runs:
                end = bisect.bisect_left(keys, neg)
                if end:
                    out.extend(items[:end])
            for keys, items in self.upper_in.runs:
                end = bisect.bisect_right(keys, neg)
                if end:
                    out.extend(items[:end])
        for k, window, safe, band in self.bands:
            # A range of class k holding value has its low in (value - 2**k, value].
            first: Any
            if window == _INF:
                first = -_INF
            elif -safe < value < safe:
                first = value - window
            else:
                first = _exact_start(value, k)
                if first is None:
                    continue
            for keys, entries in band.runs:
                start = bisect.bisect_left(keys, first)
                stop = bisect.bisect_right(keys, value, start)
                # Every candidate has low <= value; test the rest inline.
                for low, low_in, high, high_in, target in entries[start:stop]:
                    if (value < high or (high_in and value == high)) and (low_in or low < value):
                        out.append(target)
        if self.bands and self._bounded >= _STAB_FROM:
            # The ranges filed since the table's last build cost each lookup a search
            # per band (writers re-tabulate once a quarter of the ranges are new, so a
            # burst of additions can leave up to a quarter there for good). Once such
            # lookups have cost about as much as building the table again would
            # (_REPAY per range), this lookup builds it, if no writer holds the lock:
            # a one-off pause (about 25 ms for 10,000 ranges) for every later lookup
            # spared the bands, as a writer's build would (see _restab).
            self._tail_lookups += 1
            if self._tail_lookups > _REPAY * self._bounded and self._lock.acquire(blocking=False):
                try:
                    if self.bands and self._bounded >= self._retry_at:
                        self._restab()
                        self._refresh()
                    else:
                        self._tail_lookups = 0
                finally:
                    self._lock.release()
