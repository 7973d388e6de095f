"""``PatternIndex``: many patterns compiled into one shared state machine.

Each pattern branch (a conjunction, once ``$or`` is expanded) becomes a path
through *states*: its leaf conditions in a canonical order (exact values first,
then affixes, ranges and wildcards, ``anything-but``, ``exists``; by field path
within each), each condition one step. Branches that agree on their first steps
share those states, the way AWS's event-ruler compiles rules into one machine. A
state holds, per field path leaving it, a
:class:`~eventpatterns.filters._fields.FieldIndex`: every condition on that field
filed once, so one lookup per event value finds every next state it reaches
(hash maps for exact values, length-probed maps for affixes, sorted bounds for
numeric ranges, complements for ``anything-but``...). Matching walks from the
root through the states the event reaches; its cost follows the partial matches,
not the number of patterns. A state where a branch ends holds its key.

The walk reads array values as a bag (any element may satisfy a condition),
except below an array of two or more objects, where conditions must hold in one
element (EventBridge's array consistency). There each value carries the element
it came from (its chain, see :mod:`._paths`) and each partial match the elements
it came through, as event-ruler's machine does: a value from another element of
the same array does not lead on, so no pattern is verified on its own. Only
where the event is read in a way chains do not follow (keys spelled with dots,
other mappings, tuples), or past a per-event budget (arrays of arrays of objects
with conditions in each can multiply the partial matches), are branches with
two conditions below such a level verified against their tree.

Concurrency: writers hold a lock; readers take none. Readers only ``get`` from
dicts and iterate tuples that writers replace whole. A branch is built on new
states, its key becomes visible in one assignment (its generation) after every
branch of the pattern is in place, and a pattern is taken apart only after its
key stopped being current, so a match sees each pattern wholly or not at all.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Final, Generic, TypeVar

from ._fields import FieldIndex, Pile
from ._matcher import Matcher, as_event_dict
from ._matcher import compile as compile_pattern
from ._model import (
    MISSING,
    Cidr,
    Conjunction,
    EqualsIgnoreCase,
    Exact,
    Leaf,
    Numeric,
    Predicate,
    Prefix,
    Suffix,
    Wildcard,
    canon,
)
from ._order import Selectivity
from ._parse import DEFAULT_LIMITS, Limits
from ._paths import Chain, Chains, merge, shared_levels, values_of, verify

__all__ = ["PatternIndex"]

K = TypeVar("K", bound=Hashable)
Path = tuple[str, ...]
Signature = tuple[Path, frozenset[object]]


class _State:
    """A point in the machine: the fields leaving it and the branches ending at it."""

    __slots__ = ("accept", "children", "fields", "moves", "parent", "refs", "sig", "via")

    def __init__(
        self, parent: _State | None = None, sig: Signature | None = None, via: Leaf | None = None
    ) -> None:
        # Read side, replaced whole: (path, field index) per field leaving here.
        self.moves: tuple[tuple[Path, FieldIndex], ...] = ()
        # Entries (key, generation, shared levels or None, branch, rest) of the
        # branches ending here; ``rest`` holds conditions still to test (see _file).
        self.accept: Pile | None = None
        # Write side (a state where branches only end has neither: shared empties).
        self.fields: dict[Path, FieldIndex] = _NONE
        self.children: dict[Signature, _State] = _NONE
        self.refs = 0  # branches through or ending at this state
        self.parent = parent
        self.sig = sig
        self.via = via  # the condition that leads here from the parent


# (final state, accept entry, the order of the branch's leaves)
_Record = tuple[_State, tuple[Any, ...], tuple[Leaf, ...]]
_REORDER_FROM = 8
# (state, chain) pairs one match may walk through arrays of objects beyond 16 per value
_TRACK_BUDGET: Final = 4096
_NONE: Final[dict[Any, Any]] = {}  # the shared empty table; never written
_NO_LEVELS: Final[frozenset[Path]] = frozenset()


def _rank(leaf: Leaf) -> int:
    """Order conditions by how selective a lookup on them is (exact values first)."""
    if leaf.absent_ok:
        return 5
    if leaf.present_ok:
        return 4
    rank = 0
    for alt in leaf.alternatives:
        kind = type(alt)
        if kind is Exact:
            continue
        if kind is Prefix or kind is Suffix or kind is EqualsIgnoreCase or kind is Cidr:
            rank = max(rank, 1)
        elif kind is Numeric or kind is Wildcard:
            rank = max(rank, 2)
        else:
            rank = 3
    return rank


def _distinct(leaf: Leaf) -> tuple[Predicate, ...]:
    """The alternatives of a leaf without repeats (a child is filed once per value)."""
    return _prepared(leaf)[2]


def _distinct_alternatives(leaf: Leaf) -> list[Predicate]:
    seen: set[object] = set()
    out: list[Predicate] = []
    for alt, sig in zip(leaf.alternatives, _alt_signatures(leaf), strict=True):
        if sig not in seen:
            seen.add(sig)
            out.append(alt)
    return out


def _alt_signatures(leaf: Leaf) -> list[object]:
    alts: list[object] = []
    for alt in leaf.alternatives:
        if type(alt) is Exact:
            alts.append(("=", alt.key))
            continue
        try:
            hash(alt)
        except TypeError:  # a predicate with unhashable fields: never shared
            alts.append(("id", id(alt)))
        else:
            alts.append(alt)
    return alts


def _signature(leaf: Leaf) -> Signature:
    """Name a condition: equal signatures accept the same values, so they share a state."""
    return _prepared(leaf)[0]


def _prepared(leaf: Leaf) -> tuple[Signature, _Check, tuple[Predicate, ...]]:
    """Return a leaf's signature, its test where a branch ends, and its distinct alternatives.

    Computed once per leaf and kept on it (leaves naming the same strings are shared
    between patterns by the parser, so this is once per distinct condition).
    """
    cache = leaf.index_cache
    if cache is None or cache[0] is not _prepared:
        sig: Signature = (leaf.path, frozenset(_alt_signatures(leaf)))
        cache = (_prepared, (sig, _make_check(leaf), tuple(_distinct_alternatives(leaf))))
        object.__setattr__(leaf, "index_cache", cache)
    return cache[1]


class PatternIndex(Generic[K]):
    """Many patterns under keys; tells which keys an event matches.

    Patterns are compiled into one shared state machine (see the module docs), so
    matching costs what the event's partial matches cost, not what the number of
    patterns held would suggest. ``add`` and ``remove`` may run while other threads
    ``match``; each match sees every pattern either wholly added or not at all.

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
        self._gens = itertools.count()
        self._root = _State()
        self._current: dict[K, int] = {}
        self._matchers: dict[K, Matcher] = {}
        self._filed: dict[K, list[_Record]] = {}
        self._stats = Selectivity()
        self._branches = 0
        self._reorder_at = _REORDER_FROM

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
            gen = next(self._gens)
            for branch in matcher.branches:
                self._stats.observe(branch.leaves, +1)
            records = [
                self._file(key, gen, branch, self._order(branch)) for branch in matcher.branches
            ]
            old = self._filed.get(key, [])
            self._matchers[key] = matcher
            self._current[key] = gen  # the switch: from here on matches see the new pattern
            self._filed[key] = records
            self._branches += len(records)
            for record in old:
                self._unfile(record)
            if self._branches >= self._reorder_at:
                self._reorder_at = 2 * self._branches
                self._reorder()

    def remove(self, key: K) -> None:
        """Stop matching the pattern under ``key``.

        Raises:
            KeyError: No pattern is held under ``key``.
        """
        with self._lock:
            del self._current[key]
            del self._matchers[key]
            for record in self._filed.pop(key):
                self._unfile(record)

    def discard(self, key: K) -> None:
        """Remove the pattern under ``key`` if there is one."""
        with self._lock:
            if key in self._current:
                del self._current[key]
                del self._matchers[key]
                for record in self._filed.pop(key):
                    self._unfile(record)

    def match(self, event: object) -> set[K]:
        """Return the keys of every pattern the event matches.

        Args:
            event: A JSON-like ``dict`` (the fast path) or an
                :class:`~eventpatterns.core.Event`.
        """
        doc: Mapping[str, Any] = event if type(event) is dict else as_event_dict(event)
        try:
            found = self._walk(doc, {})
        except _OverBudget:
            found = None
        if found is None:  # element tracking over budget: read arrays as bags, verify
            found = self._walk(doc, None)
        return found  # type: ignore[return-value]

    def _walk(self, doc: Mapping[str, Any], chains: Chains | None) -> set[K] | None:
        found: set[K] = set()
        current = self._current
        values: dict[Path, tuple[object, ...]] = {}
        multi: set[Path] = set()
        # Each state has one parent, and a parent's lookups are de-duplicated, so
        # every state reached is visited once without a visited set.
        todo: list[Any] = [self._root]  # states
        pop, push, extend = todo.pop, todo.append, todo.extend
        verdicts: dict[frozenset[Signature], bool] | None = None
        # Partial matches that came through arrays of objects: (state, chain).
        tracked: list[tuple[_State, Chain]] = []
        while todo:
            state = pop()
            pile = state.accept
            if pile is not None:
                for run in pile.runs:
                    for key, gen, shared, branch, rest in run:
                        if key in found or current.get(key) != gen:
                            continue
                        if rest and not _holds(rest, doc, values, multi, chains, ()):
                            continue
                        if shared is None or (
                            not shared[2] and (not multi or multi.isdisjoint(shared[0]))
                        ):
                            found.add(key)
                            continue
                        # Branches with the same conditions get the same verdict.
                        if verdicts is None:
                            verdicts = {}
                        verdict = verdicts.get(shared[1])
                        if verdict is None:
                            verdict = verdicts[shared[1]] = (
                                branch.tree.match(doc, doc)
                                if shared[2]
                                else self._verify(branch, doc, values, multi, chains)
                            )
                        if verdict:
                            found.add(key)
            for path, fi in state.moves:
                vals = values.get(path)
                if vals is None:
                    vals = values[path] = values_of(doc, path, multi, chains)
                if not vals:
                    if fi.absent:
                        extend(fi.absent)
                elif chains and path in chains:
                    for value, chain in chains[path]:
                        reached: list[Any] = []
                        fi.collect(value, reached)
                        tracked.extend((target, chain) for target in reached)
                elif fi.plain and len(vals) == 1:
                    value = vals[0]
                    hit = fi.exact.get(value if type(value) is str else canon(value))
                    if hit:
                        extend(hit) if len(hit) > 1 else push(hit[0])
                else:
                    reached = []
                    for value in vals:
                        fi.collect(value, reached)
                    if len(reached) == 1:
                        push(reached[0])
                    elif reached:
                        extend(set(reached))
        if (
            tracked
            and chains is not None
            and not self._follow(tracked, doc, found, values, multi, chains)
        ):
            return None
        return found

    def _follow(
        self,
        todo: list[tuple[_State, Chain]],
        doc: Mapping[str, Any],
        found: set[K],
        values: dict[Path, tuple[object, ...]],
        multi: set[Path],
        chains: Chains,
    ) -> bool:
        """Walk on from partial matches that came through arrays of objects.

        Each carries the elements its values came from (a chain): a value from
        another element of an array it already went through does not lead on, so
        conditions below one array of objects hold in one element without testing
        any pattern on its own. Returns ``False`` when the pairs (state, chain) walk
        would outgrow its budget (arrays of arrays of objects with conditions in
        each can multiply them); the caller then reads arrays as bags and verifies.
        """
        current = self._current
        seen: set[tuple[_State, Chain]] = set()
        # The states where branches end, with the chains they were reached by (needed
        # only by conditions left to test there), each taken once after the walk.
        ends: dict[_State, set[Chain]] = {}
        budget = _TRACK_BUDGET + 16 * sum(len(pairs) for pairs in chains.values())
        while todo:
            item = todo.pop()
            state, mem = item
            if state.accept is not None:
                mems = ends.get(state)
                if mems is None:
                    ends[state] = {mem}
                else:
                    mems.add(mem)
            if not state.moves or item in seen:
                continue
            seen.add(item)
            if len(seen) > budget:
                return False
            for path, fi in state.moves:
                vals = values.get(path)
                if vals is None:
                    vals = values[path] = values_of(doc, path, multi, chains)
                reached: list[Any] = []
                if not vals:
                    todo.extend((target, mem) for target in fi.absent)  # type: ignore[misc]
                elif path in chains:
                    for value, chain in chains[path]:
                        joined = merge(mem, chain)
                        if joined is not None:
                            fi.collect(value, reached)
                            todo.extend((target, joined) for target in reached)
                            reached.clear()
                else:
                    for value in vals:
                        fi.collect(value, reached)
                    todo.extend((target, mem) for target in set(reached))
        for state, mems in ends.items():
            pile = state.accept
            if pile is None:  # pragma: no cover - only states with an accept are kept
                continue
            for run in pile.runs:
                for key, gen, shared, branch, rest in run:
                    if key in found or current.get(key) != gen:
                        continue
                    if rest and not any(
                        _holds(rest, doc, values, multi, chains, mem) for mem in mems
                    ):
                        continue
                    if (
                        shared is None
                        or (not shared[2] and (not multi or multi.isdisjoint(shared[0])))
                        or (
                            branch.tree.match(doc, doc)
                            if shared[2]
                            else self._verify(branch, doc, values, multi, chains)
                        )
                    ):
                        found.add(key)
        return True

    @staticmethod
    def _verify(
        branch: Conjunction,
        doc: Mapping[str, Any],
        values: dict[Path, tuple[object, ...]],
        multi: set[Path],
        chains: Chains | None,
    ) -> bool:
        # Values are read as the walk reads them (chains recorded), since the walk
        # may read the same path afterwards from ``values``.
        def absent(path: Path) -> bool:
            vals = values.get(path)
            if vals is None:
                vals = values[path] = values_of(doc, path, multi, chains)
            return not vals

        return verify(branch.tree, doc, absent)

    # ------------------------------------------------------------------ filing

    def _order(self, branch: Conjunction) -> tuple[Leaf, ...]:
        if len(branch.leaves) < 2:  # nothing to order
            return branch.leaves
        estimate = self._stats.estimate
        return tuple(
            sorted(branch.leaves, key=lambda leaf: (estimate(leaf), _rank(leaf), leaf.path))
        )

    def _reorder(self) -> None:
        """Re-file each branch whose best order changed (new path first, then the old goes)."""
        for key, records in self._filed.items():
            for i, record in enumerate(records):
                branch = record[1][3]
                if len(branch.leaves) < 2:
                    continue
                order = self._order(branch)
                if order != record[2]:
                    records[i] = self._file(key, record[1][1], branch, order)
                    self._unfile(record, keep_stats=True)

    def _file(self, key: K, gen: int, branch: Conjunction, leaves: tuple[Leaf, ...]) -> _Record:
        """Build the path of one branch and hold its key at the end.

        The branch follows the states that earlier branches built for the same
        leading conditions, then gets one new state for its next condition; the
        conditions after that are tested directly where it ends (its ``rest``).
        A state so made carries at most one ``rest``: any later branch through it
        builds a state of its own for its next condition. So unique patterns cost
        one state, and shared ones share every state they agree on.
        """
        # A condition on an array as a whole (the model's ``whole_array`` kinds), or a
        # leaf of a kind the index does not know (a subclass with its own ``check``),
        # is not indexed: its branch is verified by the model's own tree where it ends.
        order = leaves
        whole = [leaf for leaf in leaves if leaf.whole_array or type(leaf) is not Leaf]
        if whole:
            leaves = tuple(leaf for leaf in leaves if leaf not in whole)
        state = self._root
        depth = 0
        while depth < len(leaves):
            child = state.children.get(_signature(leaves[depth]))
            if child is None:
                break
            state, depth = child, depth + 1
        levels = shared_levels(branch.leaves) if len(branch.leaves) > 1 else _NO_LEVELS
        if depth < len(leaves):
            state, depth = self._grow(state, leaves[depth]), depth + 1
        rest = tuple(_check(leaf) for leaf in leaves[depth:]) if depth < len(leaves) else ()
        # (levels where array consistency can reject the branch, its conditions' names,
        # whether only the model's own tree can tell)
        shared = (
            (levels, frozenset(map(_signature, branch.leaves)), bool(whole))
            if levels or whole
            else None
        )
        entry = (key, gen, shared, branch, rest)
        node: _State | None = state
        while node is not None and node is not self._root:
            node.refs += 1
            node = node.parent
        if state.accept is None:
            pile = Pile()
            pile.append(entry)
            state.accept = pile
        else:
            state.accept.append(entry)
        return state, entry, order

    def _grow(self, state: _State, leaf: Leaf) -> _State:
        """Add a state after ``state`` for ``leaf``, filed in the field's index."""
        sig = _signature(leaf)
        child = _State(state, sig, leaf)
        if state.children is _NONE:
            state.children, state.fields = {}, {}
        state.children[sig] = child
        fi = state.fields.get(leaf.path)
        fresh = fi is None
        if fi is None:
            fi = FieldIndex()
        for alt in _distinct(leaf):
            fi.add(alt, child)
        if fresh:
            state.fields[leaf.path] = fi
            state.moves = (*state.moves, (leaf.path, fi))
        return child

    def _unfile(self, record: _Record, *, keep_stats: bool = False) -> None:
        """Take a branch apart: drop its key, then the states no other branch uses."""
        end, entry, _ = record
        if not keep_stats:
            self._stats.observe(entry[3].leaves, -1)
            self._branches -= 1
        pile = end.accept
        if pile is not None:
            pile.remove(entry)
            if not len(pile):
                end.accept = None
        child = end
        while child is not self._root:
            parent, sig, leaf = child.parent, child.sig, child.via
            if parent is None or sig is None or leaf is None:  # pragma: no cover - root only
                break
            child.refs -= 1
            if not child.refs:
                del parent.children[sig]
                fi = parent.fields[leaf.path]
                for alt in _distinct(leaf):
                    fi.remove(alt, child)
                if not fi.size:
                    del parent.fields[leaf.path]
                    parent.moves = tuple(m for m in parent.moves if m[1] is not fi)
            child = parent


# (path, its one key if it has one, the exact values when that is all, test, absent ok)
_Check = tuple[Path, "str | None", "frozenset[object] | None", Callable[[object], bool], bool]


def _check(leaf: Leaf) -> _Check:
    """Return the test of a condition left where a branch ends (see :func:`_make_check`)."""
    return _prepared(leaf)[1]


def _make_check(leaf: Leaf) -> _Check:
    """Compile a condition left to test where a branch ends: exact values as a set."""
    only_exact = not (leaf.others or leaf.present_ok or leaf.absent_ok)
    top = leaf.path[0] if len(leaf.path) == 1 else None
    return leaf.path, top, leaf.exact if only_exact else None, leaf.test_value, leaf.absent_ok


def _holds(
    rest: tuple[_Check, ...],
    doc: Mapping[str, Any],
    values: dict[Path, tuple[object, ...]],
    multi: set[Path],
    chains: Chains | None,
    mem: Chain,
) -> bool:
    """Test the conditions a branch left unindexed (as its states would have).

    A condition whose values came through arrays of objects must hold in the
    elements the branch came through (``mem``), and such conditions together in
    one element each (see :func:`_elements_agree`).
    """
    pending: list[list[Chain]] | None = None
    plain = type(doc) is dict
    for path, top, exact, test, absent_ok in rest:
        if top is not None and plain:
            # A top-level string (the common case) is tested as it is read.
            value = doc.get(top, MISSING)
            if type(value) is str:
                if exact is not None:
                    if value in exact:
                        continue
                    return False
                if test(value):
                    continue
                return False
        vals = values.get(path)
        if vals is None:
            vals = values[path] = values_of(doc, path, multi, chains)
        if not vals:
            if not absent_ok:
                return False
        elif chains and path in chains:
            held = {
                chain
                for value, chain in chains[path]
                if (
                    (value if type(value) is str else canon(value)) in exact
                    if exact is not None
                    else test(value)
                )
            }
            if not held:
                return False
            if pending is None:
                pending = []
            pending.append(list(held))
        elif exact is not None:
            for value in vals:
                if (value if type(value) is str else canon(value)) in exact:
                    break
            else:
                return False
        else:
            for value in vals:
                if test(value):
                    break
            else:
                return False
    return pending is None or _elements_agree(pending, mem, [_AGREE_BUDGET])


_AGREE_BUDGET: Final = 4096


class _OverBudget(Exception):
    """Element tracking would cost too much on this event: read arrays as bags."""


def _elements_agree(pending: list[list[Chain]], mem: Chain, budget: list[int]) -> bool:
    """Tell whether one chain per condition can be picked, all agreeing with ``mem``.

    A depth-first search; past its budget (many elements in several nested arrays
    with conditions in each) it gives up, and the match falls back to verification.

    Raises:
        _OverBudget: The search outgrew its budget.
    """
    if not pending:
        return True
    first, others = pending[0], pending[1:]
    for chain in first:
        joined = merge(mem, chain)
        if joined is None:
            continue
        budget[0] -= 1
        if budget[0] < 0:
            raise _OverBudget
        if _elements_agree(others, joined, budget):
            return True
    return False
