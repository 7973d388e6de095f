"""Compiled form of a pattern: predicates, leaves, trees, and how they meet an event.

A pattern compiles to a disjunction (its ``$or`` branches, expanded) of
conjunctions. A conjunction is a tree of :class:`Node` whose leaves are
:class:`Leaf` conditions: one field path and its alternatives (an OR).

Semantics follow Amazon EventBridge ("Event patterns", "Content filtering",
"Arrays in event patterns"):

* only leaf values (strings, numbers, booleans, ``null``) are *present*; objects,
  ``{}`` and ``[]`` are absent;
* an event array matches when any of its elements does, and all conditions below
  one array of objects must be satisfied by the same element (event-ruler's
  "array consistency");
* ``exists: false`` means no leaf value at that path anywhere in the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._predicates import (
    MISSING,
    AnythingBut,
    Cidr,
    Contains,
    EqualsIgnoreCase,
    Exact,
    Exists,
    NotContains,
    Numeric,
    Predicate,
    Prefix,
    StringRange,
    Suffix,
    Wildcard,
    as_double,
    brief,
    canon,
    ipv4_int,
    is_number,
    parse_ip,
)

# Re-exported: the rest of the package reads the whole model from here.
__all__ = [
    "MISSING",
    "AnythingBut",
    "Cidr",
    "Conjunction",
    "Contains",
    "EqualsIgnoreCase",
    "Exact",
    "Exists",
    "Leaf",
    "Node",
    "NotContains",
    "Numeric",
    "Predicate",
    "Prefix",
    "StringRange",
    "Suffix",
    "Wildcard",
    "as_double",
    "brief",
    "build_tree",
    "flatten_arrays",
    "canon",
    "dotted",
    "ipv4_int",
    "is_number",
    "leaf_values",
    "occurrences_at",
    "parse_ip",
    "values_at",
]


# ------------------------------------------------------------------------------ leaves


def leaf_values(value: object) -> list[object]:
    """Return the leaf values of an event value (arrays flattened, objects dropped)."""
    if value is MISSING or isinstance(value, Mapping):
        return []
    if isinstance(value, (list, tuple)):
        out: list[object] = []
        stack = [value]
        while stack:
            for item in stack.pop():
                if isinstance(item, (list, tuple)):
                    stack.append(item)
                elif not isinstance(item, Mapping):
                    out.append(item)
        return out
    return [value]


def dotted(obj: Mapping[str, Any], key: str) -> object:
    """Return what an object holds under ``key`` spelled with dots, or :data:`MISSING`.

    event-ruler names a field by its keys joined with dots, so ``{"a.b": 1}`` and
    ``{"a": {"b": 1}}`` hold the same field ``a.b``. When ``obj`` has no ``key``,
    its keys that start with ``key + "."`` are read as one object below ``key``
    (``{"a.b": 1, "a.c": 2}`` under ``"a"`` is ``{"b": 1, "c": 2}``). When ``obj``
    has ``key`` itself, that is what is read (both spellings at once are not merged).
    """
    try:
        if "." not in "".join(obj):  # the common case, in one C-level pass
            return MISSING
    except TypeError:  # a key that is not a string
        pass
    start = key + "."
    below = {k[len(start) :]: v for k, v in obj.items() if type(k) is str and k.startswith(start)}
    return below if below else MISSING


def occurrences_at(root: object, path: tuple[str, ...]) -> list[object]:
    """Return the raw values found at ``path`` (one per object holding the last key).

    Arrays are looked through; a key missing from an object is also looked for
    spelled with dots (:func:`dotted`), as the tree does.
    """
    out: list[object] = []
    stack: list[tuple[object, int]] = [(root, 0)]
    last = len(path)
    while stack:
        item, i = stack.pop()
        if i == last:
            out.append(item)
        elif isinstance(item, Mapping):
            key = path[i]
            if key in item:
                stack.append((item[key], i + 1))
            elif i + 1 < last:
                below = dotted(item, key)
                if below is not MISSING:
                    stack.append((below, i + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((x, i) for x in item)
    out.reverse()
    return out


def values_at(root: object, path: tuple[str, ...]) -> list[object]:
    """Return every leaf value at ``path`` in ``root``, ignoring array structure."""
    out: list[object] = []
    for item in occurrences_at(root, path):
        out.extend(leaf_values(item))
    return out


_NO_KEYS: Final[frozenset[object]] = frozenset()


class _Scope:
    """The event of one top-level match, with what was learnt about it.

    ``exists: false`` asks whether a path has a value anywhere in the event; below an
    array of objects that question is asked once per element, so its answer is kept
    here for the rest of the match (it was quadratic: 3,000 elements took 1.5 s).
    """

    __slots__ = ("absent", "doc")

    def __init__(self, doc: object) -> None:
        self.doc = doc
        self.absent: dict[int, bool] = {}


@dataclass(frozen=True, slots=True)
class Leaf:
    """A field condition: the path and its alternatives (satisfied if any is).

    Attributes:
        path: Keys from the root of the event.
        alternatives: The alternatives, as written.
        exact: Keys (:func:`canon`) of the exact-value alternatives, for O(1) tests.
        others: The other value-testing alternatives (predicates).
        present_ok: An ``exists: true`` alternative is present.
        absent_ok: An ``exists: false`` alternative is present.
    """

    path: tuple[str, ...]
    alternatives: tuple[Predicate, ...]
    exact: frozenset[object] = field(init=False)
    others: tuple[Predicate, ...] = field(init=False)
    present_ok: bool = field(init=False)
    absent_ok: bool = field(init=False)
    whole_array: bool = field(init=False, repr=False, compare=False)
    #: The exact values when they are all the leaf tests (``None`` otherwise), and
    #: its one key when the path has one: the fast paths of trees and the index.
    only_exact: frozenset[object] | None = field(init=False, repr=False, compare=False)
    top: str | None = field(init=False, repr=False, compare=False)
    #: ``(key, value)`` when the leaf asks exactly that one string of a top-level key:
    #: the index tests such leaves left over where a branch ends in one comparison.
    top_one: tuple[str, str] | None = field(init=False, repr=False, compare=False)
    #: Filled in by :class:`~eventpatterns.filters.PatternIndex` the first time it files
    #: the leaf (its state signature and its distinct alternatives), so that a leaf
    #: shared by many patterns is prepared once. Plain values: no reference cycle.
    index_sig: Any = field(init=False, repr=False, compare=False, default=None)
    index_alts: tuple[Predicate, ...] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    #: Its value test, specialised by the index for the kinds it knows (see
    #: ``_index._tester``): a plain function (no reference back to the leaf), or
    #: ``False`` where ``test_value`` is the test.
    index_test: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        alts = self.alternatives
        exact: frozenset[object] = _NO_KEYS
        others: tuple[Predicate, ...] = ()
        present_ok = absent_ok = whole = False
        kinds = {type(p) for p in alts}
        if kinds == {Exact}:  # the common case: exact values only
            exact = frozenset([p.key for p in alts])  # type: ignore[attr-defined]
        else:
            keys = [p.key for p in alts if isinstance(p, Exact)]
            if keys:
                exact = frozenset(keys)
            others = tuple(p for p in alts if not isinstance(p, (Exact, Exists)))
            for p in alts:
                if isinstance(p, Exists):
                    if p.present:
                        present_ok = True
                    else:
                        absent_ok = True
                if p.whole_array:
                    whole = True
        setattr_ = object.__setattr__
        setattr_(self, "exact", exact)
        setattr_(self, "others", others)
        setattr_(self, "present_ok", present_ok)
        setattr_(self, "absent_ok", absent_ok)
        setattr_(self, "whole_array", whole)
        only = None if (others or present_ok or absent_ok) else exact
        setattr_(self, "only_exact", only)
        top = self.path[0] if len(self.path) == 1 else None
        setattr_(self, "top", top)
        one = next(iter(only)) if only is not None and len(only) == 1 else None
        setattr_(self, "top_one", (top, one) if top is not None and type(one) is str else None)

    def test_value(self, value: object) -> bool:
        """Tell whether one leaf value satisfies an alternative."""
        if self.present_ok:
            return True
        key = value if type(value) is str else canon(value)
        if key in self.exact:
            return True
        for pred in self.others:  # noqa: SIM110 - a plain loop is faster here
            if pred.test(value):
                return True
        return False

    def check(self, value: object, root: object) -> bool:
        """Tell whether the event value found at this leaf satisfies it.

        Args:
            value: The value under the leaf's key in the current object, or
                :data:`MISSING`.
            root: The whole event, to decide global absence for ``exists: false``.
        """
        t = type(value)
        if t is str or t is int or t is float or t is bool or value is None:
            return self.test_value(value)
        values = leaf_values(value)
        if values:
            if self.whole_array and isinstance(value, (list, tuple)):
                return self._test_array(values)
            return any(self.test_value(v) for v in values)
        return self.absent_ok and self.absent_from(root)

    def _test_array(self, values: list[object]) -> bool:
        if self.present_ok:
            return True
        return any(p.test_array(values) for p in self.alternatives if not isinstance(p, Exists))

    def absent_from(self, root: object) -> bool:
        """Tell whether the event has no leaf value at this path anywhere."""
        if type(root) is not _Scope:
            return not values_at(root, self.path)
        found = root.absent.get(id(self))
        if found is None:
            found = not values_at(root.doc, self.path)
            root.absent[id(self)] = found
        return found


# ------------------------------------------------------------------------------- trees


@dataclass(frozen=True, slots=True)
class Node:
    """An object level of a conjunction: leaf conditions and nested objects."""

    leaves: tuple[tuple[str, Leaf], ...]
    children: tuple[tuple[str, Node], ...]
    # (key, the exact values when a leaf has only those, leaf): lets the common case,
    # a string tested against exact values, skip every call.
    fast: tuple[tuple[str, frozenset[object] | None, Leaf], ...] = field(
        init=False, repr=False, compare=False
    )
    # Whether an ``exists: false`` leaf sits at or below this node.
    has_absent: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "has_absent",
            any(leaf.absent_ok for _, leaf in self.leaves)
            or any(child.has_absent for _, child in self.children),
        )
        fast = tuple((key, leaf.only_exact, leaf) for key, leaf in self.leaves)
        object.__setattr__(self, "fast", fast)

    def match(self, obj: Mapping[str, Any], root: object) -> bool:
        """Tell whether the object satisfies every condition at and below this node.

        Args:
            obj: The object at this node's level.
            root: The whole event (``obj`` itself at the top).
        """
        if obj is root and self.has_absent:
            root = _Scope(root)
        get = obj.get
        for key, exact, leaf in self.fast:
            value = get(key, MISSING)
            if exact is not None and type(value) is str:
                if value in exact:
                    continue
                return False
            if not leaf.check(value, root):
                return False
        for key, child in self.children:
            value = get(key, MISSING)
            if value is MISSING:
                value = dotted(obj, key)
            if type(value) is dict:
                if not child.match(value, root):
                    return False
            elif not child.match_other(value, root):
                return False
        return True

    def match_other(self, value: object, root: object) -> bool:
        """Match a value that is not a plain dict (array, scalar, missing, mapping)."""
        if isinstance(value, Mapping):
            return self.match(value, root)
        if isinstance(value, (list, tuple)):
            # Conditions below an array of objects must hold in one element.
            objects = [v for v in flatten_arrays(value) if isinstance(v, Mapping)]
            if objects:
                return any(self.match(o, root) for o in objects)
        return self.match(_EMPTY, root)


_EMPTY: Final[Mapping[str, Any]] = {}


def flatten_arrays(value: list[Any] | tuple[Any, ...]) -> list[object]:
    """Return the items of nested arrays, in one flat list (objects and scalars alike)."""
    out: list[object] = []
    stack: list[Any] = [value]
    while stack:
        for item in stack.pop():
            if isinstance(item, (list, tuple)):
                stack.append(item)
            else:
                out.append(item)
    return out


def build_tree(leaves: tuple[Leaf, ...]) -> Node:
    """Assemble leaf conditions into a tree of nodes (merging shared paths)."""
    return _build(leaves, 0)


def _build(leaves: tuple[Leaf, ...] | list[Leaf], depth: int) -> Node:
    own: list[tuple[str, Leaf]] = []
    below: dict[str, list[Leaf]] = {}
    for leaf in leaves:
        key = leaf.path[depth]
        if len(leaf.path) == depth + 1:
            own.append((key, leaf))
        else:
            below.setdefault(key, []).append(leaf)
    # Cheap, selective tests first: exact-only leaves, then the rest.
    own.sort(key=lambda kl: (bool(kl[1].others) or kl[1].absent_ok, len(kl[1].others)))
    children = tuple((key, _build(group, depth + 1)) for key, group in below.items())
    return Node(tuple(own), children)


@dataclass(frozen=True, slots=True)
class Conjunction:
    """One ``$or`` branch: all its leaves must hold (array consistency included).

    Its tree is built the first time it is asked for: a
    :class:`~eventpatterns.filters.PatternIndex` rarely needs it, and ten thousand
    patterns held there would otherwise keep ten thousand trees for the garbage
    collector to walk.
    """

    leaves: tuple[Leaf, ...]
    _tree: Node | None = field(init=False, repr=False, compare=False, default=None)

    @property
    def tree(self) -> Node:
        """The leaves assembled into nodes (:func:`build_tree`), built once."""
        tree = self._tree
        if tree is None:
            tree = build_tree(self.leaves)
            object.__setattr__(self, "_tree", tree)
        return tree

    def match(self, event: Mapping[str, Any]) -> bool:
        """Tell whether the event (a mapping) satisfies this branch."""
        return self.tree.match(event, event)
