"""The order in which a branch's conditions become states: the most selective first.

What a match costs is the number of partial matches it walks through, so each
branch starts with the condition an event is least likely to satisfy. The
patterns held are taken as a sample of what events carry: a value that few
patterns name on a field many patterns name (a customer id) is rare, one that
thousands share (``source``) is common. An affix, a network or a wildcard's
literal end is compared with the others of its kind on that field and tempered by
a prior that longer ones are rarer; a bounded range by its width over the spread
of the bounds seen on that field; half-open ranges, ``anything-but`` and
``exists`` are taken to hold about half the time or more.

Branches that agree on their leading conditions share states, and the estimates
move as patterns come and go; :class:`~eventpatterns.filters.PatternIndex`
re-orders every branch each time their number doubles (amortised O(1) per add).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Final, cast

from ._model import (
    AnythingBut,
    Cidr,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Leaf,
    Numeric,
    Predicate,
    Prefix,
    Suffix,
    Wildcard,
)

__all__ = ["Selectivity"]

Path = tuple[str, ...]
_HALF: Final = 0.5


def _tags(alts: tuple[Predicate, ...]) -> list[tuple[str, object]]:
    """Name what each alternative is counted as (kind, literal)."""
    tags: list[tuple[str, object]] = []
    for alt in alts:
        kind = type(alt)  # exact values are counted by the caller, without a list
        if kind is EqualsIgnoreCase:
            tags.append(("i", alt.text))  # type: ignore[attr-defined]
        elif kind is Prefix or kind is Suffix:
            tags.append((alt.op + ("i" if alt.ignore_case else ""), alt.text))  # type: ignore[attr-defined]
        elif kind is Wildcard:
            alt = cast(Wildcard, alt)
            tags.append(("w", max(alt.head, alt.tail, key=len)))
        elif kind is Cidr:
            alt = cast(Cidr, alt)
            tags.append(("c", alt.network))
    return tags


class Selectivity:
    """Counts of what held patterns name per field, and the estimates drawn from them."""

    __slots__ = ("_bounds", "_named", "_values")

    def __init__(self) -> None:
        self._named: Counter[Path] = Counter()  # leaves naming each path
        self._values: Counter[tuple[Path, str, object]] = Counter()
        self._bounds: dict[Path, tuple[float, float]] = {}  # widest spread seen

    def observe(self, leaves: tuple[Leaf, ...], delta: int) -> None:
        """Count (``delta=1``) or uncount (``-1``) the conditions of a branch."""
        named, counts = self._named, self._values
        for leaf in leaves:
            path = leaf.path
            left = named.get(path, 0) + delta
            if left:
                named[path] = left
            else:  # counts that reach zero go: patterns come and go for ever
                del named[path]
            for alt in leaf.alternatives:
                if type(alt) is Exact:  # the common case, without a list of tags
                    tag: tuple[Path, str, object] = (path, "=", alt.key)
                    left = counts.get(tag, 0) + delta
                    if left:
                        counts[tag] = left
                    else:
                        del counts[tag]
                    continue
                for kind, literal in _tags((alt,)):
                    tag = (path, kind, literal)
                    left = counts.get(tag, 0) + delta
                    if left:
                        counts[tag] = left
                    else:
                        del counts[tag]
                if delta > 0 and type(alt) is Numeric:
                    self._widen(path, alt)

    def _widen(self, path: Path, rng: Numeric) -> None:
        bounds = [b for b in (rng.low, rng.high) if b is not None]
        try:
            values = [float(b) for b in bounds]
        except OverflowError:
            return
        low, high = self._bounds.get(path, (math.inf, -math.inf))
        self._bounds[path] = (min(low, *values), max(high, *values))

    def estimate(self, leaf: Leaf) -> float:
        """Estimate the chance that an event satisfies ``leaf`` (0 to 1)."""
        if leaf.present_ok:
            return 0.95
        path = leaf.path
        named = self._named[path] + 2
        chance = 0.6 if leaf.absent_ok else 0.0
        for alt in leaf.alternatives:
            kind = type(alt)
            if kind is Exact:
                chance += (self._values[(path, "=", alt.key)] + 1) / named  # type: ignore[attr-defined]
            elif kind is EqualsIgnoreCase:
                chance += 1.2 * (self._values[(path, "i", alt.text)] + 1) / named  # type: ignore[attr-defined]
            elif kind is Prefix or kind is Suffix:
                text: str = alt.text  # type: ignore[attr-defined]
                tag = alt.op + ("i" if alt.ignore_case else "")  # type: ignore[attr-defined]
                share = (self._values[(path, tag, text)] + 1) / named
                chance += math.sqrt(share * _HALF ** min(len(text) // 2, 60))
            elif kind is Wildcard:
                alt = cast(Wildcard, alt)
                text = max(alt.head, alt.tail, key=len)
                share = (self._values[(path, "w", text)] + 1) / named
                chance += math.sqrt(share * _HALF ** min(len(text) // 2, 60))
            elif kind is Cidr:
                alt = cast(Cidr, alt)
                share = (self._values[(path, "c", alt.network)] + 1) / named
                chance += math.sqrt(share * _HALF ** (alt.network.prefixlen // 4))
            elif kind is Numeric:
                alt = cast(Numeric, alt)
                chance += self._width(path, alt)
            elif kind is AnythingBut:
                chance += 0.9
            elif kind is not Exists:
                chance += 0.8  # a kind this module does not know
        return min(chance, 1.0)

    def _width(self, path: Path, rng: Numeric) -> float:
        if rng.low is None or rng.high is None:
            return _HALF
        low, high = self._bounds.get(path, (0.0, 0.0))
        try:
            spread = high - low
            width = float(rng.high) - float(rng.low)
        except OverflowError:
            return _HALF
        if not spread > 0 or not math.isfinite(spread):
            return _HALF
        return min(_HALF, max(1e-6, width / spread))
