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

A state files the branches ending at it in two piles: those reaching the state
settles (nothing left to test, no tree to verify) and the others. For the first,
the state keeps the keys whose generation was current in the index's *epoch*
(see below), made by the first match that needs them: with many patterns ending
at one state, later matches take them in one step.

Concurrency: writers hold a lock; readers take none. Readers only ``get`` from
dicts and iterate tuples that writers replace whole. A branch is built on new
states, its key becomes visible in one assignment (its generation) after every
branch of the pattern is in place, and a pattern is taken apart only after its
key stopped being current, so a match sees each pattern wholly or not at all.
Every change moves the epoch on when it starts and when it ends; a match uses a
state's kept keys only if they were made in the epoch it started in (so only a
match concurrent with a change can see keys made during it, as it could see
either generation anyway), and a writer drops the keys a state kept whenever it
changes that state's piles. Readers write nothing else, but for one thing: a
field's numeric ranges filed since their table's last build (see
:meth:`~eventpatterns.filters._ranges.RangeIndex.collect`) are built into it by a
lookup once searching them apart has cost about as much, under that field's own
lock (which its writers take too) and published as a writer's build is; and the
cells of a field's range table (see
:attr:`~eventpatterns.filters._ranges.RangeIndex.solo`), where a match keeps, per
epoch as a state keeps its keys, the keys a slot's states settle.
"""

from __future__ import annotations

import itertools
import math
import threading
from bisect import bisect_left
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, Final, Generic, TypeVar, cast

from ._fields import FieldIndex
from ._matcher import Matcher, as_event_dict
from ._matcher import compile as compile_pattern
from ._model import (
    MISSING,
    AnythingBut,
    Cidr,
    Conjunction,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Leaf,
    Numeric,
    Predicate,
    Prefix,
    Suffix,
    Wildcard,
    as_double,
    canon,
)
from ._order import Selectivity
from ._parse import DEFAULT_LIMITS, Limits
from ._paths import Chain, Chains, merge, shared_levels, values_of, verify

__all__ = ["PatternIndex"]

K = TypeVar("K", bound=Hashable)
Path = tuple[str, ...]
Signature = tuple[Path, object]
# A branch ending at a state: (key, generation, shared levels or None, branch, rest,
# order, depth, more). ``order`` holds the indexed conditions: the first ``depth`` are
# states, the rest (``order[depth:]``, ``None`` if empty) are tested where it ends
# (see PatternIndex._file);
# the first branch of a pattern holds the entries of the others in ``more`` (the
# index keeps no other record of a pattern's branches).
_Entry = tuple[Any, int, Any, Conjunction, tuple[Leaf, ...] | None, tuple[Leaf, ...], int, Any]


class _State:
    """A point in the machine: the fields leaving it and the branches ending at it.

    It holds no reference back to its parent (no reference cycle: a state dropped
    is freed at once, and the garbage collector has less to walk); writers find
    the states of a branch again from the root, by its conditions' signatures.
    """

    __slots__ = (
        "accept",
        "check",
        "check_more",
        "children",
        "ending",
        "fields",
        "memo",
        "more",
        "moves",
        "refs",
    )

    def __init__(self) -> None:
        # Read side, replaced whole: (path, field index) per field leaving here.
        self.moves: tuple[tuple[Path, FieldIndex], ...] = ()
        # The entries of the branches ending here, each pile a small run and a large
        # one (see _pile_add), each replaced whole: those a match reaching this state
        # settles (``accept``, ``more``: only the key's generation is left to check,
        # unless some level was read as a bag), and the others (``check``,
        # ``check_more``: conditions left to test, or the tree to verify).
        self.accept: tuple[_Entry, ...] | None = None
        self.more: tuple[_Entry, ...] = ()
        self.check: tuple[_Entry, ...] | None = None
        self.check_more: tuple[_Entry, ...] = ()
        # Which piles hold entries: _SETTLED | _CHECK (set after an entry is added,
        # cleared after the last one went): one test where nothing ends.
        self.ending = 0
        # (epoch, keys): the keys of the settled entries that were current in that
        # epoch of the index (see PatternIndex._epoch), kept by the matches that
        # read them, so that later ones take them in one step.
        self.memo: tuple[int, tuple[Any, ...]] | None = None
        # Write side (a state where branches only end has neither: shared empties).
        self.fields: dict[Path, FieldIndex] = _NONE
        self.children: dict[Signature, _State] = _NONE
        self.refs = 0  # branches through or ending at this state


_REORDER_FROM = 8
# (state, chain) pairs one match may walk through arrays of objects beyond 16 per value
_TRACK_BUDGET: Final = 4096
_NONE: Final[dict[Any, Any]] = {}  # the shared empty table; never written
_NO_LEVELS: Final[frozenset[Path]] = frozenset()
_SMALL_RUN: Final = 8
# Values a field keeps what it gave for (FieldIndex.cells), and the keys and states a
# kept answer may hold (more: looked up each time, as before).
_CELLS: Final = 64
_CELL_MAX: Final = 256
_NO_DEAD: Final[frozenset[Any]] = frozenset()
# Entry notes (see _shared) by the shape of the branch (its paths): each held once.
_NOTES: dict[tuple[tuple[Path, ...], bool], tuple[frozenset[Path], bool] | None] = {}
_UNSEEN: Final = object()
_ODD: Final = object()  # a value the walk leaves to values_of
_NOTES_MAX = 4096


def _settled(entry: _Entry) -> bool:
    """Tell whether reaching its state settles a branch (see _State): no rest, no tree."""
    shared = entry[2]
    return entry[4] is None and (shared is None or not shared[1])


def _pile_add(state: _State, entry: _Entry) -> None:
    """Hold ``entry`` at ``state`` (copy-on-write: readers take no lock).

    Appending copies only the small run (``accept``), merged into the large one
    (``more``) once it outgrows about the square root of the whole, so n appends
    copy O(n sqrt n) references, not O(n**2); one entry is one tuple. The large run
    is written before the small one is emptied: a reader (which reads ``accept``
    first) may see an entry twice, never miss one. (The same for ``check`` and
    ``check_more``, for the entries not settled.)
    """
    if _settled(entry):
        small, big = state.accept or (), state.more
        if len(small) < _SMALL_RUN + math.isqrt(len(big)):
            state.accept = (*small, entry)
        else:
            state.more = big + small + (entry,)
            state.accept = None
    else:
        small, big = state.check or (), state.check_more
        if len(small) < _SMALL_RUN + math.isqrt(len(big)):
            state.check = (*small, entry)
        else:
            state.check_more = big + small + (entry,)
            state.check = None
    state.ending = _ending(state)
    state.memo = None


def _pile_drop(state: _State, entry: _Entry) -> None:
    """Let go of ``entry`` held at ``state``.

    Raises:
        ValueError: It is not there.
    """
    settled = _settled(entry)
    small = (state.accept if settled else state.check) or ()
    if entry in small:
        at = small.index(entry)
        if settled:
            state.accept = small[:at] + small[at + 1 :] or None
        else:
            state.check = small[:at] + small[at + 1 :] or None
    else:
        big = state.more if settled else state.check_more
        at = big.index(entry)
        if settled:
            state.more = big[:at] + big[at + 1 :]
        else:
            state.check_more = big[:at] + big[at + 1 :]
    state.ending = _ending(state)
    state.memo = None


_SETTLED: Final = 1
_CHECK: Final = 2


def _ending(state: _State) -> int:
    return (_SETTLED if state.accept or state.more else 0) | (
        _CHECK if state.check or state.check_more else 0
    )


def _settled_keys(state: _State, cur: Any) -> tuple[Any, ...]:
    """Return the keys of the settled entries at ``state`` whose generation is current."""
    accept = state.accept  # read before ``more`` (see _pile_add)
    more = state.more
    keys = [e[0] for e in accept if cur(e[0]) == e[1]] if accept is not None else []
    if more:
        keys += [e[0] for e in more if cur(e[0]) == e[1]]
    return tuple(keys)


def _settle(targets: list[_State], found: set[Any], epoch: int, cur: Any, push: Any) -> None:
    """Take the keys of the states reached that only settle branches; hand on the others.

    Many states reached by one lookup (overlapping ranges, ``anything-but``, a
    wildcard found in many texts) are mostly such leaves: each costs a memo read
    and one ``update`` here, instead of a round through the walk's queue. (Only
    while no level was read as a bag: then the entries' notes decide, in the walk.)
    A state reached twice is settled twice (the same keys) but handed on once.
    """
    update = found.update
    handed: set[_State] | None = None
    for state in targets:
        if state.ending == _SETTLED and not state.moves:
            memo = state.memo
            if memo is None or memo[0] != epoch:
                memo = state.memo = (epoch, _settled_keys(state, cur))
            if memo[1]:
                update(memo[1])
        elif handed is None:
            handed = {state}
            push(state)
        elif state not in handed:
            handed.add(state)
            push(state)


def _slot_memo(
    slot: tuple[_State, ...], dead: frozenset[Any], epoch: int, cur: Any
) -> tuple[int, tuple[Any, ...], tuple[_State, ...]]:
    """Return what reaching the states of one range-table slot gives in ``epoch``.

    That is (epoch, the keys of the states there that only settle branches, the
    other states to walk on): the walk keeps it in the slot's cell (see
    :attr:`~eventpatterns.filters._ranges.RangeIndex.solo`), so values falling in one
    slot (overlapping ranges: many states each) settle in one ``update``. A slot's
    states are distinct; those of ranges unfiled since the table's build (``dead``)
    are left out.
    """
    keys: list[Any] = []
    others: list[_State] = []
    for state in slot:
        if dead and state in dead:
            continue
        if state.ending == _SETTLED and not state.moves:
            memo = state.memo
            if memo is None or memo[0] != epoch:
                memo = state.memo = (epoch, _settled_keys(state, cur))
            keys += memo[1]
        else:
            others.append(state)
    return (epoch, tuple(keys), tuple(others))


def _indexable(leaf: Leaf) -> bool:
    # A condition on an array as a whole (the model's ``whole_array`` kinds), or a leaf
    # of a kind the index does not know (a subclass with its own ``check``), is not
    # indexed: its branch is verified by the model's own tree where it ends.
    return type(leaf) is Leaf and not leaf.whole_array


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


def _alt_signature(alt: Predicate) -> object:
    """Name one alternative by plain values (cheap to hash: states are looked up by it)."""
    kind = type(alt)
    if kind is Exact:
        return ("=", alt.key)  # type: ignore[attr-defined]
    if kind is Numeric:
        rng = cast(Numeric, alt)
        return ("n", rng.low, rng.low_inclusive, rng.high, rng.high_inclusive)
    if kind is Prefix or kind is Suffix:
        return ("p" if kind is Prefix else "s", alt.text, alt.ignore_case)  # type: ignore[attr-defined]
    if kind is EqualsIgnoreCase:
        return ("i", alt.text)  # type: ignore[attr-defined]
    if kind is Wildcard:
        return ("w", alt.pieces)  # type: ignore[attr-defined]
    if kind is Cidr:
        net = cast(Cidr, alt).network
        return ("c", net.version, net.prefixlen, int(net.network_address))
    if kind is Exists:
        return ("e", alt.present)  # type: ignore[attr-defined]
    if kind is AnythingBut:
        return ("!", tuple(_alt_signature(p) for p in alt.inner))  # type: ignore[attr-defined]
    try:  # a kind this module does not know: named by itself
        hash(alt)
    except TypeError:  # a predicate with unhashable fields: never shared
        return ("id", id(alt))
    return alt


def _signature(leaf: Leaf) -> Signature:
    """Name a condition: equal signatures accept the same values, so they share a state.

    Computed once per leaf and kept on it (leaves naming the same values are shared
    between patterns by the parser, so this is once per distinct condition), with
    the leaf's distinct alternatives (a child is filed once per value).
    """
    sig = leaf.index_sig
    if sig is None:
        alts = leaf.alternatives
        distinct = alts
        if leaf.only_exact is not None and all(type(alt) is Exact for alt in alts):
            # Exact values only: the leaf's own set of keys names it (a frozenset of
            # keys never equals the other forms, which hold a tuple or a predicate).
            sig = (leaf.path, leaf.only_exact)
            if len(leaf.only_exact) < len(alts):
                first: dict[object, Predicate] = {}
                for alt in alts:
                    first.setdefault(alt.key, alt)  # type: ignore[attr-defined]
                distinct = tuple(first.values())
        elif len(alts) == 1:
            sig = (leaf.path, _alt_signature(alts[0]))
        else:
            sigs = [_alt_signature(alt) for alt in alts]
            names = frozenset(sigs)
            if len(names) < len(sigs):
                seen: set[object] = set()
                kept: list[Predicate] = []
                for alt, name in zip(alts, sigs, strict=True):
                    if name not in seen:
                        seen.add(name)
                        kept.append(alt)
                distinct = tuple(kept)
            # A frozenset never equals the one-alternative form (a tuple or a predicate).
            sig = (leaf.path, names)
        object.__setattr__(leaf, "index_alts", distinct)
        object.__setattr__(leaf, "index_sig", sig)
    return sig  # type: ignore[no-any-return]


def _below(path: Path, levels: frozenset[Path]) -> bool:
    """Tell whether ``path`` goes through one of ``levels``."""
    return any(path[: len(level)] == level for level in levels)


def _shared(branch: Conjunction, *, whole: bool) -> Any:
    """Return what a branch's entry notes where one match alone cannot tell, or ``None``.

    That is (the levels holding two or more of its conditions, where array
    consistency can reject it; whether only the model's own tree can tell). These
    are few and repeated (patterns of one shape have the same): each is held once.
    """
    leaves = branch.leaves
    if len(leaves) < 2:
        return (_NO_LEVELS, True) if whole else None
    shape = (tuple([leaf.path for leaf in leaves]), whole)
    found = _NOTES.get(shape, _UNSEEN)
    if found is _UNSEEN:
        if len(_NOTES) >= _NOTES_MAX:  # bounded: shapes are few, unless someone makes many
            _NOTES.clear()
        levels = shared_levels(leaves)
        found = None
        if levels or whole:  # shapes in another order have the same note: one object
            note = (levels, whole)
            found = _NOTES.setdefault(note, note)  # type: ignore[arg-type]
        _NOTES[shape] = found
    return found


_EXACT_INT: Final = 2**53
_INF: Final = math.inf


def _tester(leaf: Leaf) -> Any:
    """Return ``leaf.test_value`` as a function specialised for its kinds, kept on it.

    The leaf keeps the function (or ``False``: its own method is the test), so a leaf
    shared by many patterns is prepared once.

    Numeric ranges only (thresholds, the common unindexed rest) compare a float or a
    small int at once, as :func:`~eventpatterns.filters._model.as_double` would
    convert it (an int within 2**53 compares with a double exactly); ``anything-but``
    lists of values look the value's key up; any other leaf keeps its own method.
    """
    test = leaf.index_test
    if test is not None:
        return test or leaf.test_value
    alts = leaf.alternatives
    if alts and all(type(alt) is Numeric for alt in alts):
        bounds = tuple(
            (
                -_INF if alt.low is None else alt.low,  # type: ignore[attr-defined]
                alt.low_inclusive,  # type: ignore[attr-defined]
                _INF if alt.high is None else alt.high,  # type: ignore[attr-defined]
                alt.high_inclusive,  # type: ignore[attr-defined]
            )
            for alt in alts
        )

        def test(value: object) -> bool:
            kind = type(value)
            number: Any
            if kind is float:
                if value - value != 0:  # type: ignore[operator]  # NaN or infinite
                    return False
                number = value
            elif kind is int and -_EXACT_INT <= value <= _EXACT_INT:  # type: ignore[operator]
                number = value
            else:
                number = as_double(value)
                if number is None:
                    return False
            for low, low_in, high, high_in in bounds:
                if (low < number or (low_in and number == low)) and (
                    number < high or (high_in and number == high)
                ):
                    return True
            return False

    elif (
        alts
        and not leaf.present_ok
        and all(
            type(alt) is AnythingBut and all(type(p) is Exact for p in alt.inner) for alt in alts
        )
    ):
        # ``anything-but`` a list of values: a value none of some list names.
        # (A set finds NaN by identity where ``Exact`` compares: NaN equals nothing.)
        lists = tuple(frozenset(p.key for p in alt.inner) for alt in alts)  # type: ignore[attr-defined]
        if len(lists) == 1:
            (excluded,) = lists

            def test(value: object) -> bool:
                key = value if type(value) is str else canon(value)
                return key not in excluded or key != key

        else:

            def test(value: object) -> bool:
                key = value if type(value) is str else canon(value)
                return key != key or any(key not in excluded for excluded in lists)

    else:  # its own method (not kept: a bound method would be a reference cycle)
        object.__setattr__(leaf, "index_test", False)
        return leaf.test_value
    object.__setattr__(leaf, "index_test", test)
    return test


def _distinct(leaf: Leaf) -> tuple[Predicate, ...]:
    """The alternatives of a leaf without repeats (see :func:`_signature`)."""
    _signature(leaf)  # prepares both, once
    return leaf.index_alts  # type: ignore[return-value]


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
        # Changed at the start and at the end of every change (under the lock): a
        # state's memo (see _State) is used only by a match that started in the
        # epoch it was made in, so no match started after a change sees one from
        # before it. A match concurrent with a change may see either.
        self._epoch = 0
        self._current: dict[K, int] = {}
        self._matchers: dict[K, Matcher] = {}
        self._filed: dict[K, _Entry | None] = {}  # the entry of each pattern's first branch
        self._stats = Selectivity()
        self._branches = 0
        self._reorder_at = _REORDER_FROM
        # Each leaf's estimate, kept until the next re-ordering (shared leaves, such
        # as one ``source`` named by thousands, are estimated once), and the leaves
        # themselves, so that their ids stay theirs.
        self._memo: dict[int, tuple[float, int]] = {}
        self._memo_held: list[Leaf] = []

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
            self._epoch += 1
            try:
                gen = next(self._gens)
                branches = matcher.branches
                for branch in branches:
                    self._stats.observe(branch.leaves, +1)
                first: _Entry | None = None
                if branches:
                    more = tuple(
                        self._file(key, gen, b, self._order(b), promote=True) for b in branches[1:]
                    )
                    first = self._file(
                        key, gen, branches[0], self._order(branches[0]), more=more, promote=True
                    )
                old = self._filed.get(key, None)
                self._matchers[key] = matcher
                self._current[key] = gen  # the switch: from here on matches see the new pattern
                self._filed[key] = first
                self._branches += len(branches)
                if old is not None:
                    self._unfile_all(old)
                if self._branches >= self._reorder_at:
                    # Each time the branches quadruple: O(1) amortised per add, and the
                    # counts the estimates come from move little in between.
                    self._reorder_at = 4 * self._branches
                    self._reorder()
            finally:
                self._epoch += 1

    def remove(self, key: K) -> None:
        """Stop matching the pattern under ``key``.

        Raises:
            KeyError: No pattern is held under ``key``.
        """
        with self._lock:
            if key not in self._current:
                raise KeyError(key)
            self._drop(key)

    def _drop(self, key: K) -> None:
        self._epoch += 1
        try:
            del self._current[key]
            del self._matchers[key]
            first = self._filed.pop(key)
            if first is not None:
                self._unfile_all(first)
        finally:
            self._epoch += 1

    def discard(self, key: K) -> None:
        """Remove the pattern under ``key`` if there is one."""
        with self._lock:
            if key in self._current:
                self._drop(key)

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
        epoch = self._epoch  # before anything is read (see _State.memo)
        found: set[K] = set()
        current = self._current
        values: dict[Path, tuple[object, ...]] = {}
        multi: set[Path] = set()
        # Each state has one parent, and a parent's lookups are de-duplicated, so
        # every state reached is visited once without a visited set.
        todo: list[Any] = [self._root]  # states
        pop, push, extend = todo.pop, todo.append, todo.extend
        verdicts: dict[tuple[int, ...], bool] | None = None
        # Partial matches that came through arrays of objects: (state, chain).
        tracked: list[tuple[_State, Chain]] | None = None
        value: Any
        while todo:
            state = pop()
            ending = state.ending
            if ending:
                if ending & _SETTLED and not multi:
                    # Settled: the keys current in this epoch, in one step (unless a
                    # level was read as a bag: then the entries' notes decide, below).
                    memo = state.memo
                    if memo is None or memo[0] != epoch:
                        memo = state.memo = (epoch, _settled_keys(state, current.get))
                    if memo[1]:
                        found.update(memo[1])
                    runs: tuple[tuple[_Entry, ...] | None, ...] = (
                        (state.check, state.check_more) if ending & _CHECK else ()
                    )
                elif multi:  # read before ``more``, ``check_more`` (see _pile_add)
                    runs = (state.check, state.check_more, state.accept, state.more)
                else:
                    check = state.check  # read before ``check_more``
                    check_more = state.check_more
                    runs = (check, check_more) if check_more else (check,)
                for run in runs:
                    if not run:
                        continue
                    for key, gen, shared, branch, rest, _, _, _ in run:
                        if key in found or current.get(key) != gen:
                            continue
                        if rest is not None:
                            if len(rest) == 1 and not chains:
                                # One condition left (the common case), no element
                                # tracking: tested here as _holds would.
                                leaf = rest[0]
                                vals = values.get(leaf.path)
                                if vals is None:
                                    vals = values[leaf.path] = _read(doc, leaf.path, multi, chains)
                                if vals:
                                    test = leaf.index_test or leaf.test_value
                                    for value in vals:
                                        if test(value):
                                            break
                                    else:
                                        continue
                                elif not leaf.absent_ok:
                                    continue
                            else:
                                # Top-level strings asked exactly (the common leftovers of
                                # branches that share their other conditions) are compared
                                # here: another string fails the branch, as _holds would
                                # decide on a plain dict; anything else goes to _holds.
                                held = True
                                for leaf in rest:
                                    pair = leaf.top_one
                                    if pair is None or type(value := doc.get(pair[0])) is not str:
                                        held = _holds(rest, doc, values, multi, chains, ())
                                        break
                                    if value != pair[1]:
                                        held = type(doc) is not dict and _holds(
                                            rest, doc, values, multi, chains, ()
                                        )
                                        break
                                if not held:
                                    continue
                        if shared is None or (
                            not shared[1] and (not multi or multi.isdisjoint(shared[0]))
                        ):
                            found.add(key)
                            continue
                        # Branches with the same conditions (leaves are shared between
                        # patterns by the parser) get the same verdict.
                        if verdicts is None:
                            verdicts = {}
                        alike = tuple(map(id, branch.leaves))
                        verdict = verdicts.get(alike)
                        if verdict is None:
                            verdict = verdicts[alike] = (
                                branch.tree.match(doc, doc)
                                if shared[1]
                                else self._verify(branch, doc, values, multi, chains)
                            )
                        if verdict:
                            found.add(key)
            for path, fi in state.moves:
                vals = values.get(path)
                if vals is None:
                    # Plain dicts down to a scalar (the common case) are read here;
                    # anything else as values_of reads it.
                    value = doc
                    for part in path:
                        if type(value) is not dict:
                            value = _ODD
                            break
                        value = value.get(part, MISSING)
                    kind = type(value)
                    if kind is str or kind is int or kind is float or kind is bool or value is None:
                        vals = (value,)
                    elif value is MISSING:  # the last key only: a missing object is odd
                        vals = ()
                    else:
                        vals = values_of(doc, path, multi, chains)
                    values[path] = vals
                if not vals:
                    if fi.absent:
                        extend(fi.absent)
                elif chains and path in chains:
                    if tracked is None:
                        tracked = []
                    reached: list[Any] = []
                    for value, chain in chains[path]:
                        fi.collect(value, reached)
                        if reached:
                            for target in reached:
                                tracked.append((target, chain))
                            reached.clear()
                elif len(vals) == 1:
                    value = vals[0]
                    if fi.plain:
                        hit = fi.exact.get(value if type(value) is str else canon(value))
                        if hit is not None:
                            extend(hit) if type(hit) is tuple else push(hit)
                    else:
                        reached = []
                        numeric = fi.numeric
                        if (
                            numeric is not None
                            and not fi.exact
                            and (
                                (
                                    (kind := type(value)) is float and value - value == 0
                                )  # not NaN or infinite
                                or (kind is int and -_EXACT_INT <= value <= _EXACT_INT)
                            )
                        ):  # ranges only, and a number they compare as fi.collect would
                            solo = numeric.solo
                            if solo is not None and not multi:
                                # Every range in the table: the value's slot is the
                                # answer, and its cell what this epoch made of it (the
                                # keys it settles, the states to walk on).
                                bounds, slots, dead, cells = solo
                                at = bisect_left(bounds, value)
                                at = (
                                    2 * at + 1
                                    if at < len(bounds) and bounds[at] == value
                                    else 2 * at
                                )
                                memo = cells[at]
                                if memo is None or memo[0] != epoch:
                                    memo = cells[at] = _slot_memo(
                                        slots[at], dead, epoch, current.get
                                    )
                                if memo[1]:
                                    found.update(memo[1])
                                if memo[2]:
                                    extend(memo[2])
                                continue
                            numeric.collect(value, reached)
                        else:
                            fi.collect(value, reached)
                        if len(reached) == 1:
                            push(reached[0])
                        elif reached:
                            if multi:
                                extend(set(reached))
                            else:
                                _settle(reached, found, epoch, current.get, push)
                else:
                    reached = []
                    for value in vals:
                        fi.collect(value, reached)
                    if len(reached) == 1:
                        push(reached[0])
                    elif reached:
                        if multi:
                            extend(set(reached))
                        else:
                            _settle(reached, found, epoch, current.get, push)
        if (
            tracked
            and chains is not None
            and not self._follow(tracked, doc, found, values, multi, chains, epoch)
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
        epoch: int,
    ) -> bool:
        """Walk on from partial matches that came through arrays of objects.

        Each carries the elements its values came from (a chain): a value from
        another element of an array it already went through does not lead on, so
        conditions below one array of objects hold in one element without testing
        any pattern on its own. Returns ``False`` when the pairs (state, chain) walk
        would outgrow its budget (arrays of arrays of objects with conditions in
        each can multiply them); the caller then reads arrays as bags and verifies.
        """
        cur = self._current.get
        seen: set[tuple[_State, Chain]] = set()
        # The states where branches end, with the chains they were reached by (needed
        # only by conditions left to test there), each taken once after the walk.
        ends: dict[_State, list[Chain]] = {}
        pop, push = todo.pop, todo.append
        reached: list[Any] = []
        update = found.update
        # Per path below one array of objects: its pairs by element (see _by_element).
        groups: dict[Path, Any] | None = None
        while todo:
            item = pop()
            state, mem = item
            ending = state.ending
            if ending == _SETTLED and not state.moves and not multi:
                # Only settles branches (no condition left, no tree): its kept keys now,
                # whatever the chain (as _settle does in the walk).
                memo = state.memo
                if memo is None or memo[0] != epoch:
                    memo = state.memo = (epoch, _settled_keys(state, cur))
                if memo[1]:
                    update(memo[1])
                continue
            if ending:
                mems = ends.get(state)
                if mems is None:
                    ends[state] = [mem]
                elif mem not in mems:
                    mems.append(mem)
            if not state.moves:
                continue
            walked = len(seen)
            seen.add(item)  # one hash of the pair (a chain is a tuple of tuples)
            if len(seen) == walked:
                continue
            if walked >= _TRACK_BUDGET and len(seen) > _TRACK_BUDGET + 16 * sum(
                len(pairs) for pairs in chains.values()
            ):
                return False
            for path, fi in state.moves:
                vals = values.get(path)
                if vals is None:
                    vals = values[path] = values_of(doc, path, multi, chains)
                if not vals:
                    for target in fi.absent:
                        push((target, mem))  # type: ignore[arg-type]  # states
                    continue
                pairs = chains.get(path)
                if pairs is None:
                    for value in vals:
                        fi.collect(value, reached)
                    if reached:
                        for target in set(reached) if len(reached) > 1 else reached:
                            push((target, mem))
                        reached.clear()
                    continue
                if len(mem) == 1 and len(pairs) > 1:
                    # Came through one element of one array: of the values below that
                    # array, only its element's can lead on (grouped once per path).
                    if groups is None:
                        groups = {}
                    group = groups.get(path, _UNSEEN)
                    if group is _UNSEEN:
                        group = groups[path] = _by_element(pairs)
                    if group and group[0] == mem[0][0]:
                        pairs = group[1].get(mem[0][1]) or ()
                numeric = fi.numeric
                for value, chain in pairs:
                    # merge(), its common cases first: a value from the element the
                    # match came through holds the very chain object the match does.
                    if not mem or chain is mem:
                        joined: Chain = chain
                    elif not chain:
                        joined = mem
                    elif len(chain) == 1 and len(mem) == 1:  # one array each
                        if chain[0][0] != mem[0][0]:
                            joined = (*mem, *chain)
                        elif chain[0][1] == mem[0][1]:
                            joined = mem
                        else:
                            continue  # another element of the same array
                    else:
                        merged = merge(mem, chain)
                        if merged is None:
                            continue
                        joined = merged
                    kind = type(value)
                    if (kind is str or kind is int) and not multi:
                        # What the field gives this value (the keys its states settle,
                        # the states to walk on), kept for the epoch: a value found in
                        # many elements, or by many partial matches, is looked up once.
                        cells = fi.cells
                        if cells is None:
                            cells = fi.cells = {}
                        cell = cells.get(value)
                        if cell is None or cell[0] != epoch:
                            fi.collect(value, reached)
                            cell = _slot_memo(tuple(dict.fromkeys(reached)), _NO_DEAD, epoch, cur)
                            reached.clear()
                            if len(cell[1]) + len(cell[2]) <= _CELL_MAX:
                                if len(cells) >= _CELLS:
                                    cells.clear()
                                cells[value] = cell
                        if cell[1]:
                            update(cell[1])
                        for target in cell[2]:
                            push((target, joined))
                        continue
                    if (
                        numeric is not None
                        and kind is int
                        and -_EXACT_INT <= value <= _EXACT_INT
                        and not fi.exact
                    ):  # a ranges-only field and an int a double holds: as fi.collect
                        numeric.collect(value, reached)
                    else:
                        fi.collect(value, reached)
                    if reached:
                        for target in reached:
                            if target.ending == _SETTLED and not target.moves and not multi:
                                # Only settles branches: its kept keys now, as when
                                # popped above (no pair made, pushed and popped).
                                memo = target.memo
                                if memo is None or memo[0] != epoch:
                                    memo = target.memo = (epoch, _settled_keys(target, cur))
                                if memo[1]:
                                    update(memo[1])
                            else:
                                push((target, joined))
                        reached.clear()
        add = found.add
        for state, mems in ends.items():
            ending = state.ending
            if ending & _SETTLED and not multi:
                # Settled: the keys current in this epoch, in one step (unless a level
                # was read as a bag: then the entries' notes decide, below).
                memo = state.memo
                if memo is None or memo[0] != epoch:
                    memo = state.memo = (epoch, _settled_keys(state, cur))
                if memo[1]:
                    found.update(memo[1])
                runs: tuple[tuple[_Entry, ...] | None, ...] = (
                    (state.check, state.check_more) if ending & _CHECK else ()
                )
            elif multi:  # read before ``more``, ``check_more`` (see _pile_add)
                runs = (state.check, state.check_more, state.accept, state.more)
            else:
                runs = (state.check, state.check_more)
            if runs:
                for run in runs:
                    if not run:
                        continue
                    for key, gen, shared, branch, rest, _, _, _ in run:
                        if cur(key) != gen or key in found:
                            continue
                        if rest is not None:
                            if len(rest) == 1:
                                if not _holds_one(rest, doc, values, multi, chains, mems):
                                    continue
                            else:
                                for mem in mems:
                                    if _holds(rest, doc, values, multi, chains, mem):
                                        break
                                else:
                                    continue
                        if (
                            shared is None
                            or (not shared[1] and (not multi or multi.isdisjoint(shared[0])))
                            or (
                                branch.tree.match(doc, doc)
                                if shared[1]
                                else self._verify(branch, doc, values, multi, chains)
                            )
                        ):
                            add(key)
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
        """Return the branch's indexed conditions, the most selective first."""
        leaves = branch.leaves
        if len(leaves) < 2:  # nothing to order
            return leaves if not leaves or _indexable(leaves[0]) else ()
        memo = self._memo
        keyed: list[tuple[tuple[float, int], Path, int]] = []
        for at, leaf in enumerate(leaves):
            if type(leaf) is not Leaf or leaf.whole_array:  # not _indexable
                continue
            score = memo.get(id(leaf))
            if score is None:
                if len(memo) > 2 * self._branches + 1024:  # patterns come and go
                    memo.clear()
                    self._memo_held.clear()
                score = memo[id(leaf)] = (self._stats.estimate(leaf), _rank(leaf))
                self._memo_held.append(leaf)
            # The position breaks ties: the sort is stable on (score, path), as it
            # was, and never compares leaves.
            keyed.append((score, leaf.path, at))
        if len(keyed) > 1:
            keyed.sort()
        return tuple([leaves[item[2]] for item in keyed])

    def _reorder(self) -> None:
        """Re-file each pattern whose best order changed (new paths first, then the old go)."""
        self._memo.clear()
        self._memo_held.clear()
        for key, first in self._filed.items():
            if first is None:
                continue
            entries = (first, *first[7])
            orders = [self._order(e[3]) if len(e[3].leaves) > 1 else e[5] for e in entries]
            if all(new == e[5] for new, e in zip(orders, entries, strict=True)):
                continue
            gen = first[1]
            more = tuple(
                self._file(key, gen, e[3], order, e[2], promote=True)
                for e, order in zip(entries[1:], orders[1:], strict=True)
            )
            # Assigning to a key already there (here or in _promote) does not disturb
            # the iteration.
            self._filed[key] = self._file(
                key, gen, first[3], orders[0], first[2], more, promote=True
            )
            for e in entries:
                self._unfile(e, keep_stats=True)

    def _file(
        self,
        key: K,
        gen: int,
        branch: Conjunction,
        order: tuple[Leaf, ...],
        shared: Any = False,
        more: tuple[_Entry, ...] = (),
        *,
        promote: bool = False,
    ) -> _Entry:
        """Build the path of one branch and hold its key at the end.

        The branch follows the states that earlier branches built for the same
        leading conditions, then gets one new state for its next condition; the
        conditions after that are tested directly where it ends (its ``rest``).
        A state so made carries at most one ``rest``: any later branch through it
        builds a state of its own for its next condition. So unique patterns cost
        one state, and shared ones share every state they agree on.

        Args:
            key: The pattern's key.
            gen: The pattern's generation.
            branch: The branch.
            order: Its indexed conditions, in the order they become states.
            shared: What the entry notes about array consistency (see
                :func:`_shared`), when the branch was filed before.
            more: The entries of the pattern's other branches (for its first).
            promote: When the branch grows the first state after one where another
                branch was left with conditions below an array of objects, give that
                one a state for its next condition too (see :meth:`_promote`).

        Returns:
            The branch's entry.
        """
        state = self._root
        depth, size = 0, len(order)
        while depth < size:
            child = state.children.get(_signature(order[depth]))
            if child is None:
                break
            child.refs += 1
            state, depth = child, depth + 1
        if depth < size:
            # A state's one branch left with conditions (the branch that made it) can
            # move deeper when the state gets its first child: look then, not at every
            # child (the state may hold many branches to verify, never more than one
            # with conditions left).
            parent, first_child = state, not state.children
            state, depth = self._grow(state, order[depth]), depth + 1
            if promote and first_child and (parent.check or parent.check_more):
                self._promote(parent, key)
        if shared is False:  # not known yet (a re-filed branch brings its own)
            shared = _shared(branch, whole=size != len(branch.leaves))
        # The conditions after the first ``depth`` (its rest) are tested where it ends,
        # each by its specialised test, prepared here (readers only read it).
        for leaf in order[depth:]:
            _tester(leaf)
        entry: _Entry = (key, gen, shared, branch, order[depth:] or None, order, depth, more)
        _pile_add(state, entry)
        return entry

    def _promote(self, state: _State, key: K) -> None:
        """Re-file the branches at ``state`` left with a condition below an array of objects.

        A unique branch costs one state, its other conditions tested where it ends;
        below an array of objects that test runs for every element the state was
        reached through, on every event. Once a second branch grows the state's first
        child (patterns that share their first condition), the single-branch
        patterns ending there so are re-filed one state deeper, as that second
        branch is: new entry first, then the old one goes (a match in between may
        see both, never neither). Patterns of several branches are left as they are.
        """
        for entry in (*(state.check or ()), *state.check_more):
            other, shared, rest = entry[0], entry[2], entry[4]
            if (
                rest is None
                or entry[7]
                or shared is None
                or not shared[0]
                or other == key
                or self._filed.get(other) is not entry
                or not _below(rest[0].path, shared[0])
            ):
                continue
            self._filed[other] = self._file(other, entry[1], entry[3], entry[5], shared)
            self._unfile(entry, keep_stats=True)

    def _grow(self, state: _State, leaf: Leaf) -> _State:
        """Add a state after ``state`` for ``leaf``, filed in the field's index."""
        sig = _signature(leaf)
        child = _State()
        child.refs = 1
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

    def _unfile_all(self, first: _Entry) -> None:
        for entry in (first, *first[7]):
            self._unfile(entry)

    def _unfile(self, entry: _Entry, *, keep_stats: bool = False) -> None:
        """Take a branch apart: drop its key, then the states no other branch uses."""
        order, depth = entry[5], entry[6]
        if not keep_stats:
            self._stats.observe(entry[3].leaves, -1)
            self._branches -= 1
        path = [self._root]
        for leaf in order[:depth]:
            path.append(path[-1].children[_signature(leaf)])
        end = path[-1]
        _pile_drop(end, entry)
        for at in range(depth, 0, -1):
            child, parent, leaf = path[at], path[at - 1], order[at - 1]
            child.refs -= 1
            if child.refs:
                continue
            del parent.children[_signature(leaf)]
            fi = parent.fields[leaf.path]
            for alt in _distinct(leaf):
                fi.remove(alt, child)
            if not fi.size:
                del parent.fields[leaf.path]
                parent.moves = tuple(m for m in parent.moves if m[1] is not fi)


def _read(
    doc: Mapping[str, Any], path: Path, multi: set[Path], chains: Chains | None
) -> tuple[object, ...]:
    """Read the values at ``path``: plain dicts down to a scalar here, the rest by values_of.

    (The walk has this inline: it reads a path per field leaving each state.)
    """
    value: Any = doc
    for part in path:
        if type(value) is not dict:
            return values_of(doc, path, multi, chains)
        value = value.get(part, MISSING)
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return (value,)
    if value is MISSING:  # the last key only: a missing object was handed on above
        return ()
    return values_of(doc, path, multi, chains)


def _holds(
    rest: tuple[Leaf, ...],
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
    for leaf in rest:
        top, exact = leaf.top, leaf.only_exact
        test = leaf.index_test or leaf.test_value  # prepared by _file (see _tester)
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
        path = leaf.path
        vals = values.get(path)
        if vals is None:
            vals = values[path] = _read(doc, path, multi, chains)
        if not vals:
            if not leaf.absent_ok:
                return False
        elif chains and path in chains:
            # The elements holding a value that passes, among those the branch came
            # through (values of one element are read together and share one chain).
            held: list[Chain] = []
            for value, chain in chains[path]:
                if held and held[-1] is chain:
                    continue
                if mem and chain is not mem and chain and merge(mem, chain) is None:
                    continue
                if (
                    (value if type(value) is str else canon(value)) in exact
                    if exact is not None
                    else test(value)
                ):
                    held.append(chain)
            if not held:
                return False
            if pending is None:
                pending = [held]
            else:
                pending.append(held)
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
    return pending is None or len(pending) == 1 or _elements_agree(pending, mem, [_AGREE_BUDGET])


def _holds_one(
    rest: tuple[Leaf, ...],
    doc: Mapping[str, Any],
    values: dict[Path, tuple[object, ...]],
    multi: set[Path],
    chains: Chains,
    mems: list[Chain],
) -> bool:
    """Tell whether one condition left holds in an element some match came through.

    :func:`_holds` for a rest of one condition and every chain the state was
    reached by at once (the common case below arrays of objects): each value is
    tested once, if it came from an element one of ``mems`` agrees with.
    """
    leaf = rest[0]
    path = leaf.path
    vals = values.get(path)
    if vals is None:
        vals = values[path] = _read(doc, path, multi, chains)
    if not vals:
        return leaf.absent_ok
    pairs = chains.get(path)
    if pairs is None:  # not below an array of objects: any value will do
        return _holds(rest, doc, values, multi, chains, ())
    exact = leaf.only_exact
    test = leaf.index_test or leaf.test_value  # prepared by _file (see _tester)
    for value, chain in pairs:
        for mem in mems:
            if not (mem and chain and chain is not mem):
                break
            if len(chain) == 1 and len(mem) == 1:  # one array each
                if chain[0][0] != mem[0][0] or chain[0][1] == mem[0][1]:
                    break
            elif merge(mem, chain) is not None:
                break
        else:
            continue  # from an element no match came through
        if exact is not None:
            if (value if type(value) is str else canon(value)) in exact:
                return True
        elif test(value):
            return True
    return False


def _by_element(
    pairs: tuple[tuple[object, Chain], ...],
) -> tuple[Path, dict[int, list[tuple[object, Chain]]]] | None:
    """Group the (value, chain) pairs of a path by the element they came from.

    Returns (the array's level, {element number: its pairs}) when every value came
    through one element of one array of objects (the common case: one array on the
    way), else ``None`` (nested arrays: every pair is merged with the match's chain).
    """
    level: Path | None = None
    by: dict[int, list[tuple[object, Chain]]] = {}
    for pair in pairs:
        chain = pair[1]
        if len(chain) != 1:
            return None
        here, element = chain[0]
        if level is None:
            level = here
        elif here != level:
            return None
        held = by.get(element)
        if held is None:
            by[element] = [pair]
        else:
            held.append(pair)
    return None if level is None else (level, by)


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
