"""``PatternIndex``: many patterns, one lookup per event.

Each pattern branch is filed under one *anchor*: the leaf condition that is
cheapest to look up and most selective at the moment it is added (an exact value
whose bucket is smallest, then prefixes, suffixes, ranges...), the way AWS's
event-ruler compiles rules into per-field hash maps and tries. Matching an event
reads only the fields some anchor names (a precomputed walk of ``get`` calls, never
iterating the event), looks each value up in that path's structures (hash maps on
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
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from ._matcher import Matcher, as_event_dict
from ._matcher import compile as compile_pattern
from ._model import Conjunction, Numeric
from ._parse import DEFAULT_LIMITS, Limits
from ._paths import AFFIX, FACTOR, PathIndex, Plan, Reg, gather, plan, registrations
from ._paths import group as key_group

__all__ = ["PatternIndex"]

K = TypeVar("K", bound=Hashable)
_REBALANCE_FROM = 8


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
        self._paths: dict[str, PathIndex] = {}
        # Each field path as patterns spell it: a key may itself hold a dot, so
        # ``{"a.b": ...}`` and ``{"a": {"b": ...}}`` share one dotted name.
        self._spellings: dict[str, set[tuple[str, ...]]] = {}
        self._walked: dict[tuple[str, ...], PathIndex] = {}
        self._plan: Plan = ()
        self._branches: dict[int, tuple[K, int, Conjunction]] = {}
        self._unanchored: tuple[int, ...] = ()
        self._current: dict[K, int] = {}
        self._filed: dict[K, list[int]] = {}
        self._anchors: dict[int, tuple[str | None, tuple[Reg, ...]]] = {}
        self._rebalance_at: dict[tuple[str, object], int] = {}
        self._rebalance_all_at = _REBALANCE_FROM
        self._seen: dict[tuple[str, str, object], Counter[object]] = {}
        self._seen_total: dict[tuple[str, str, object], int] = {}
        self._options: dict[int, tuple[tuple[str, tuple[Reg, ...]], ...]] = {}
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
        candidates = set(self._unanchored)
        gather(doc, self._plan, candidates)
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

    def _best(self, cid: int) -> tuple[float, str, tuple[Reg, ...]] | None:
        """Find the cheapest anchor of a branch: (estimated hit chance, path, regs)."""
        best: tuple[float, str, tuple[Reg, ...]] | None = None
        for path, regs in self._options[cid]:
            cost = sum(self._chance(path, r) for r in regs)
            if best is None or cost < best[0]:
                best = (cost, path, regs)
        return best

    def _chance(self, path: str, reg: Reg) -> float:
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
        group = key_group(table, key)
        seen = self._seen.get((path, table, group))
        share = (seen[key] if seen else 0) + 1
        chance = share / (self._seen_total.get((path, table, group), 0) + 2)
        if table in AFFIX:
            assert isinstance(key, str)
            chance = math.sqrt(chance * 0.5 ** min(len(key) // 2, 60))
        elif table == "cidr":
            assert isinstance(key, tuple)
            chance = math.sqrt(chance * 0.5 ** (key[1] // 4))
        return FACTOR[table] * chance

    def _observe(self, cid: int, delta: int) -> None:
        """Count (or uncount) the values a branch names, for :meth:`_chance`."""
        for path, regs in self._options[cid]:
            for table, key in regs:
                if table in FACTOR:
                    slot = (path, table, key_group(table, key))
                    self._seen.setdefault(slot, Counter())[key] += delta
                    self._seen_total[slot] = self._seen_total.get(slot, 0) + delta

    def _file(self, cid: int, branch: Conjunction) -> None:
        options = []
        for leaf in branch.leaves:
            regs = registrations(leaf)
            if regs is not None:
                dotted = ".".join(leaf.path)
                self._spellings.setdefault(dotted, set()).add(leaf.path)
                options.append((dotted, regs))
        self._options[cid] = tuple(options)
        self._observe(cid, +1)
        best = self._best(cid)
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

    def _place(self, cid: int, path: str, regs: tuple[Reg, ...]) -> None:
        pindex = self._paths.get(path)
        if pindex is None:
            pindex = PathIndex()
            self._paths[path] = pindex
        new = self._spellings[path].difference(self._walked)
        if new:
            self._walked.update(dict.fromkeys(new, pindex))
            self._plan = plan(self._walked)  # replaced whole: readers see old or new
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
        del self._branches[cid]
        self._observe(cid, -1)
        del self._options[cid]
        # Empty path structures stay: readers may hold them, and they cost little.

    def _maybe_rebalance(self, path: str, reg: Reg) -> None:
        """Move branches out of a crowded bucket to better anchors.

        A branch is filed where it is cheapest *when added*; early on every bucket
        is empty, so a rule may land on a routing field (``source``) that later
        crowds. Each time a bucket's cost doubles past a threshold its branches are
        reconsidered, and so is every branch each time their number doubles
        (both amortised O(1) per add). A moved branch is filed at its new
        place before it leaves the old one, so a concurrent match never misses it.
        """
        pindex = self._paths[path]
        slot = (path, pindex.bucket(reg))
        size = pindex.size(reg)
        if size < self._rebalance_at.get(slot, _REBALANCE_FROM):
            return
        self._rebalance_at[slot] = 2 * size
        self._reconsider(pindex.members(reg))

    def _reconsider(self, cids: list[int] | tuple[int, ...]) -> None:
        """Move each branch whose anchor costs more than twice the best one."""
        for cid in cids:
            here, regs = self._anchors[cid]
            if here is None:
                continue
            best = self._best(cid)
            assert best is not None
            current = sum(self._chance(here, r) for r in regs)
            if (best[1], best[2]) != (here, regs) and 2 * best[0] < current:
                self._place(cid, best[1], best[2])
                for old in regs:
                    self._paths[here].remove(old, cid)
