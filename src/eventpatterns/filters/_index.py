"""``PatternIndex``: many patterns, one lookup per event.

Each pattern branch is filed under one *anchor*: the leaf condition that is
cheapest to look up and most selective at the moment it is added (an exact value
whose bucket is smallest, then prefixes, suffixes, ranges...), the way AWS's
event-ruler compiles rules into per-field hash maps and tries. Matching an event
flattens it once, looks every value up in the per-path structures (hash maps on
values, prefix/suffix maps by length, sorted numeric bounds, CIDR maps by prefix
length), and only the branches found there are verified in full. The cost
depends on the event and on how many patterns really are candidates, not on how
many patterns are held.

Concurrency: writers hold a lock; readers take none. Readers only ``get`` from
dicts and iterate tuples that writers replace whole, and a key's new branches
become visible in one assignment (its generation), so a match sees each pattern
either entirely or not at all.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from ._matcher import Matcher, as_event_dict
from ._matcher import compile as compile_pattern
from ._model import (
    AnythingBut,
    Cidr,
    Conjunction,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Leaf,
    Numeric,
    Prefix,
    Suffix,
    Wildcard,
    canon,
    is_number,
    parse_ip,
)
from ._parse import DEFAULT_LIMITS, Limits
from ._ranges import RangeIndex

__all__ = ["PatternIndex"]

K = TypeVar("K", bound=Hashable)
_Reg = tuple[str, object]  # (table, key) where a branch id is filed
# Relative price of a lookup per table, for choosing anchors (see ``_PathIndex.cost``).
_FACTOR = {
    "exact": 1.0,
    "eic": 1.2,
    "prefix": 1.5,
    "suffix": 1.5,
    "prefix_ic": 1.8,
    "suffix_ic": 1.8,
    "cidr": 1.5,
}
_AFFIX = ("prefix", "suffix", "prefix_ic", "suffix_ic")
_REBALANCE_FROM = 8


class _PathIndex:
    """The structures for one field path."""

    __slots__ = (
        "cidr",
        "cidr_lens",
        "counts",
        "eic",
        "exact",
        "lens",
        "prefix",
        "prefix_ic",
        "present",
        "ranges",
        "strings",
        "suffix",
        "suffix_ic",
    )

    def __init__(self) -> None:
        self.exact: dict[object, tuple[int, ...]] = {}
        self.eic: dict[object, tuple[int, ...]] = {}
        self.prefix: dict[object, tuple[int, ...]] = {}
        self.suffix: dict[object, tuple[int, ...]] = {}
        self.prefix_ic: dict[object, tuple[int, ...]] = {}
        self.suffix_ic: dict[object, tuple[int, ...]] = {}
        self.cidr: dict[object, tuple[int, ...]] = {}
        # Read side: the distinct key lengths of each affix table, ascending.
        self.lens: dict[str, tuple[int, ...]] = dict.fromkeys(_AFFIX, ())
        self.cidr_lens: tuple[tuple[int, int], ...] = ()
        self.strings: tuple[int, ...] = ()
        self.present: tuple[int, ...] = ()
        self.ranges = RangeIndex()
        # Write side: how many keys of each length each table holds.
        self.counts: dict[str, Counter[object]] = {}

    def members(self, reg: _Reg) -> tuple[int, ...]:
        """The branch ids sharing a bucket (for ranges: the same scan list)."""
        table, key = reg
        if table == "strings":
            return self.strings
        if table == "present":
            return self.present
        if table == "range":
            assert isinstance(key, Numeric)
            return self.ranges.members(key)
        mapping: dict[object, tuple[int, ...]] = getattr(self, table)
        return mapping.get(key, ())

    def add(self, reg: _Reg, cid: int) -> None:
        table, key = reg
        if table == "strings":
            self.strings = (*self.strings, cid)
        elif table == "present":
            self.present = (*self.present, cid)
        elif table == "range":
            assert isinstance(key, Numeric)
            self.ranges.add(cid, key)
        else:
            mapping: dict[object, tuple[int, ...]] = getattr(self, table)
            mapping[key] = (*mapping.get(key, ()), cid)
            self._count(table, key, +1)

    def remove(self, reg: _Reg, cid: int) -> None:
        table, key = reg
        if table == "strings":
            self.strings = tuple(c for c in self.strings if c != cid)
        elif table == "present":
            self.present = tuple(c for c in self.present if c != cid)
        elif table == "range":
            assert isinstance(key, Numeric)
            self.ranges.remove(cid, key)
        else:
            mapping: dict[object, tuple[int, ...]] = getattr(self, table)
            rest = tuple(c for c in mapping[key] if c != cid)
            if rest:
                mapping[key] = rest
            else:
                del mapping[key]
            self._count(table, key, -1)

    def _count(self, table: str, key: object, delta: int) -> None:
        if table in _AFFIX:
            assert isinstance(key, str)
            counts = self.counts.setdefault(table, Counter())
            counts[len(key)] += delta
            self.lens[table] = tuple(
                sorted(n for n, c in counts.items() if c > 0 and isinstance(n, int))
            )
        elif table == "cidr":
            assert isinstance(key, tuple)
            counts = self.counts.setdefault(table, Counter())
            counts[key[:2]] += delta
            self.cidr_lens = tuple(
                sorted(n for n, c in counts.items() if c > 0 and isinstance(n, tuple))
            )

    def collect(self, values: list[Any], out: set[int]) -> None:
        """Add the ids of every branch whose anchor one of ``values`` satisfies."""
        exact = self.exact
        lens = self.lens
        for value in values:
            if type(value) is str:
                hit = exact.get(value)
                if hit:
                    out.update(hit)
                self._strings(value, lens, out)
                continue
            hit = exact.get(canon(value))
            if hit:
                out.update(hit)
            if self.ranges.size and is_number(value) and value == value:
                self.ranges.collect(value, out)
            if isinstance(value, str):  # a str subclass
                self._strings(str(value), lens, out)
        if values and self.present:
            out.update(self.present)

    def _strings(self, value: str, lens: dict[str, tuple[int, ...]], out: set[int]) -> None:
        if self.strings:
            out.update(self.strings)
        size = len(value)
        for n in lens["prefix"]:
            if n > size:
                break
            hit = self.prefix.get(value[:n])
            if hit:
                out.update(hit)
        for n in lens["suffix"]:
            if n > size:
                break
            hit = self.suffix.get(value[size - n :])
            if hit:
                out.update(hit)
        if self.eic or self.prefix_ic or self.suffix_ic:
            lower = value.lower()
            hit = self.eic.get(lower)
            if hit:
                out.update(hit)
            size = len(lower)
            for n in lens["prefix_ic"]:
                if n > size:
                    break
                hit = self.prefix_ic.get(lower[:n])
                if hit:
                    out.update(hit)
            for n in lens["suffix_ic"]:
                if n > size:
                    break
                hit = self.suffix_ic.get(lower[size - n :])
                if hit:
                    out.update(hit)
        if self.cidr_lens:
            address = parse_ip(value)
            if address is not None:
                number, bits = int(address), address.max_prefixlen
                for version, length in self.cidr_lens:
                    if version == address.version:
                        hit = self.cidr.get((version, length, number >> (bits - length)))
                        if hit:
                            out.update(hit)


def _registrations(leaf: Leaf) -> tuple[_Reg, ...] | None:
    """Where a leaf can be filed, or ``None`` if it can hold with the field absent."""
    if leaf.absent_ok:
        return None
    regs: list[_Reg] = []
    for alt in leaf.alternatives:
        if isinstance(alt, (AnythingBut, Exists)):
            # Both need the field present (exists: false was ruled out above).
            return (("present", None),)
        if isinstance(alt, Exact):
            regs.append(("exact", alt.key))
        elif isinstance(alt, EqualsIgnoreCase):
            regs.append(("eic", alt.text))
        elif isinstance(alt, (Prefix, Suffix)):
            kind = "prefix" if isinstance(alt, Prefix) else "suffix"
            regs.append((kind + "_ic" if alt.ignore_case else kind, alt.text))
        elif isinstance(alt, Wildcard):
            # The longer literal end is likely the more selective one.
            if alt.head and len(alt.head) >= len(alt.tail):
                regs.append(("prefix", alt.head))
            elif alt.tail:
                regs.append(("suffix", alt.tail))
            else:
                regs.append(("strings", None))
        elif isinstance(alt, Numeric):
            regs.append(("range", alt))
        else:
            assert isinstance(alt, Cidr)
            net = alt.network
            key = (
                net.version,
                net.prefixlen,
                int(net.network_address) >> (net.max_prefixlen - net.prefixlen),
            )
            regs.append(("cidr", key))
    return tuple(dict.fromkeys(regs))


def _group(table: str, key: object) -> object:
    """The keys a key competes with: same table, and same length or prefix length."""
    if table in _AFFIX:
        assert isinstance(key, str)
        return len(key)
    if table == "cidr":
        assert isinstance(key, tuple)
        return key[:2]
    return None


class PatternIndex(Generic[K]):
    """Many patterns under keys; tells which keys an event matches.

    Matching costs about the same with ten patterns or ten thousand: patterns are
    filed in shared per-field structures (see the module docs), not looped over.
    ``add`` and ``remove`` may run while other threads ``match``; each match sees
    every pattern either wholly added or not at all.

    Example:
        >>> index = PatternIndex()
        >>> index.add("big", {"detail": {"total": [{"numeric": [">", 100]}]}})
        >>> index.add("eu", {"detail": {"region": [{"prefix": "eu-"}]}})
        >>> sorted(index.match({"detail": {"total": 250, "region": "eu-west-1"}}))
        ['big', 'eu']
    """

    def __init__(self, *, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._paths: dict[str, _PathIndex] = {}
        self._prefixes: frozenset[str] = frozenset()
        self._branches: dict[int, tuple[K, int, Conjunction]] = {}
        self._unanchored: tuple[int, ...] = ()
        self._current: dict[K, int] = {}
        self._filed: dict[K, list[int]] = {}
        self._anchors: dict[int, tuple[str | None, tuple[_Reg, ...]]] = {}
        self._rebalance_at: dict[tuple[str, _Reg], int] = {}
        self._rebalance_all_at = _REBALANCE_FROM
        self._seen: dict[tuple[str, str, object], Counter[object]] = {}
        self._seen_total: dict[tuple[str, str, object], int] = {}
        self._matchers: dict[K, Matcher] = {}

    def __len__(self) -> int:
        return len(self._current)

    def __contains__(self, key: object) -> bool:
        return key in self._current

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._current))

    def get(self, key: K) -> Matcher | None:
        """Return the compiled pattern held under ``key``, if any."""
        return self._matchers.get(key)

    def add(self, key: K, pattern: object) -> None:
        """Hold ``pattern`` under ``key``, replacing any pattern already there.

        Args:
            key: Any hashable; :meth:`match` returns it.
            pattern: A pattern (as :func:`~eventpatterns.filters.compile` takes) or
                a compiled :class:`~eventpatterns.filters.Matcher`.

        Raises:
            InvalidPattern: The pattern is malformed; the index is unchanged.
        """
        if isinstance(pattern, Matcher):
            matcher = pattern
        else:
            matcher = compile_pattern(pattern, limits=self._limits)
        with self._lock:
            gen = next(self._ids)
            cids = []
            for branch in matcher.branches:
                cid = next(self._ids)
                self._branches[cid] = (key, gen, branch)
                self._file(cid, branch)
                cids.append(cid)
            old = self._filed.get(key, [])
            self._matchers[key] = matcher
            self._current[key] = gen  # the switch: from here on matches see the new pattern
            self._filed[key] = cids
            for cid in old:
                self._unfile(cid)

    def remove(self, key: K) -> None:
        """Stop matching the pattern under ``key``.

        Raises:
            KeyError: No pattern is held under ``key``.
        """
        with self._lock:
            del self._current[key]
            del self._matchers[key]
            for cid in self._filed.pop(key):
                self._unfile(cid)

    def discard(self, key: K) -> None:
        """Remove the pattern under ``key`` if there is one."""
        if key in self._current:
            self.remove(key)

    def match(self, event: object) -> set[K]:
        """Return the keys of every pattern the event matches.

        Args:
            event: A JSON-like ``dict`` (the fast path) or an
                :class:`~eventpatterns.core.Event`.
        """
        doc = event if type(event) is dict else as_event_dict(event)
        paths = self._paths
        candidates = set(self._unanchored)
        for path, values in _flatten(doc, paths, self._prefixes):
            paths[path].collect(values, candidates)
        found: set[K] = set()
        branches, current = self._branches, self._current
        for cid in candidates:
            entry = branches.get(cid)
            if entry is None:  # pragma: no cover - removed by another thread meanwhile
                continue
            key, gen, branch = entry
            if key in found or current.get(key) != gen:
                continue
            if branch.tree.match(doc, doc):
                found.add(key)
        return found

    # ------------------------------------------------------------------ filing

    def _best(self, branch: Conjunction) -> tuple[float, str, tuple[_Reg, ...]] | None:
        """Find the cheapest anchor of a branch: (estimated hit chance, path, regs)."""
        best: tuple[float, str, tuple[_Reg, ...]] | None = None
        for leaf in branch.leaves:
            regs = _registrations(leaf)
            if regs is None:
                continue
            path = ".".join(leaf.path)
            cost = sum(self._chance(path, r) for r in regs)
            if best is None or cost < best[0]:
                best = (cost, path, regs)
        return best

    def _chance(self, path: str, reg: _Reg) -> float:
        """Estimate the chance that an event hits a branch filed at ``reg``.

        What a branch costs is how often it becomes a candidate to verify, so this
        is per branch. The values that every held pattern names at a path are
        taken as a sample of what events carry there: a value's chance is how
        often it occurs in that sample (Laplace-smoothed), so ``source``, with six
        values shared by thousands of rules, scores high and a customer id low.
        An affix or a network is compared with those of its length, tempered by a
        prior that longer ones are rarer; a range, by its width over the spread of
        ranges; presence always hits.
        """
        table, key = reg
        if table in ("strings", "present"):
            return 1.0
        if table == "range":
            assert isinstance(key, Numeric)
            pindex = self._paths.get(path)
            return pindex.ranges.cost(key) if pindex else 0.5
        group = _group(table, key)
        seen = self._seen.get((path, table, group))
        share = (seen[key] if seen else 0) + 1
        chance = share / (self._seen_total.get((path, table, group), 0) + 2)
        if table in _AFFIX:
            assert isinstance(key, str)
            chance = math.sqrt(chance * 0.5 ** min(len(key) // 2, 60))
        elif table == "cidr":
            assert isinstance(key, tuple)
            chance = math.sqrt(chance * 0.5 ** (key[1] // 4))
        return _FACTOR[table] * chance

    def _observe(self, branch: Conjunction, delta: int) -> None:
        """Count (or uncount) the values a branch names, for :meth:`_chance`."""
        for leaf in branch.leaves:
            path = ".".join(leaf.path)
            for table, key in _registrations(leaf) or ():
                if table in _FACTOR:
                    slot = (path, table, _group(table, key))
                    self._seen.setdefault(slot, Counter())[key] += delta
                    self._seen_total[slot] = self._seen_total.get(slot, 0) + delta

    def _file(self, cid: int, branch: Conjunction) -> None:
        self._observe(branch, +1)
        best = self._best(branch)
        if best is None:
            self._unanchored = (*self._unanchored, cid)
            self._anchors[cid] = (None, ())
            return
        _, path, regs = best
        self._place(cid, path, regs)
        if len(self._anchors) >= self._rebalance_all_at:
            self._rebalance_all_at = 2 * len(self._anchors)
            self._reconsider(list(self._anchors))
        else:
            for reg in regs:
                self._maybe_rebalance(path, reg)

    def _place(self, cid: int, path: str, regs: tuple[_Reg, ...]) -> None:
        pindex = self._paths.get(path)
        if pindex is None:
            pindex = _PathIndex()
            self._paths[path] = pindex
            parts = path.split(".")
            self._prefixes = self._prefixes | {
                ".".join(parts[:i]) + "." for i in range(1, len(parts))
            }
        for reg in regs:
            pindex.add(reg, cid)
        self._anchors[cid] = (path, regs)

    def _unfile(self, cid: int) -> None:
        path, regs = self._anchors.pop(cid)
        if path is None:
            self._unanchored = tuple(c for c in self._unanchored if c != cid)
        else:
            for reg in regs:
                self._paths[path].remove(reg, cid)
        _, _, branch = self._branches.pop(cid)
        self._observe(branch, -1)
        # Empty path structures stay: readers may hold them, and they cost little.

    def _maybe_rebalance(self, path: str, reg: _Reg) -> None:
        """Move branches out of a crowded bucket to better anchors.

        A branch is filed where it is cheapest *when added*; early on every bucket
        is empty, so a rule may land on a routing field (``source``) that later
        crowds. Each time a bucket's cost doubles past a threshold its branches are
        reconsidered, and so is every branch each time their number doubles
        (both amortised O(1) per add). A moved branch is filed at its new
        place before it leaves the old one, so a concurrent match never misses it.
        """
        pindex = self._paths[path]
        members = pindex.members(reg)
        slot = (path, reg)
        if len(members) < self._rebalance_at.get(slot, _REBALANCE_FROM):
            return
        self._rebalance_at[slot] = 2 * len(members)
        self._reconsider(members)

    def _reconsider(self, cids: list[int] | tuple[int, ...]) -> None:
        """Move each branch whose anchor costs more than twice the best one."""
        for cid in cids:
            here, regs = self._anchors[cid]
            if here is None:
                continue
            best = self._best(self._branches[cid][2])
            assert best is not None
            current = sum(self._chance(here, r) for r in regs)
            if (best[1], best[2]) != (here, regs) and 2 * best[0] < current:
                self._place(cid, best[1], best[2])
                for old in regs:
                    self._paths[here].remove(old, cid)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _flatten(
    doc: Mapping[str, Any], paths: dict[str, _PathIndex], prefixes: frozenset[str]
) -> Iterator[tuple[str, list[Any]]]:
    """Yield ``(dotted path, leaf values)`` for the indexed paths of an event."""
    found: dict[str, list[Any]] = {}
    stack: list[tuple[str, Mapping[str, Any]]] = [("", doc)]
    while stack:
        prefix, obj = stack.pop()
        for key, value in obj.items():
            path = prefix + key if type(key) is str else prefix + str(key)
            t = type(value)
            if t is dict:
                if path + "." in prefixes:
                    stack.append((path + ".", value))
                continue
            if t is list or (t not in _SCALARS and isinstance(value, (list, tuple, Mapping))):
                _flatten_value(value, path, paths, prefixes, found, stack)
            elif path in paths:
                bucket = found.get(path)
                if bucket is None:
                    found[path] = [value]
                else:
                    bucket.append(value)
    return iter(found.items())


def _flatten_value(
    value: object,
    path: str,
    paths: dict[str, _PathIndex],
    prefixes: frozenset[str],
    found: dict[str, list[Any]],
    stack: list[tuple[str, Mapping[str, Any]]],
) -> None:
    deeper = path + "." in prefixes
    arrays = [value]
    while arrays:
        item = arrays.pop()
        if isinstance(item, Mapping):
            if deeper:
                stack.append((path + ".", item))
        elif isinstance(item, (list, tuple)):
            arrays.extend(item)
        elif path in paths:
            found.setdefault(path, []).append(item)
