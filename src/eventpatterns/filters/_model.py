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

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

__all__ = [
    "MISSING",
    "AnythingBut",
    "Cidr",
    "Conjunction",
    "EqualsIgnoreCase",
    "Exact",
    "Exists",
    "Leaf",
    "Node",
    "Numeric",
    "Predicate",
    "Prefix",
    "Suffix",
    "Wildcard",
    "build_tree",
    "canon",
    "leaf_values",
    "values_at",
]


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: A field the event does not have.
MISSING: Final = _Sentinel("MISSING")
# Keys for JSON literals in exact-value sets: ``True == 1`` in Python, but
# EventBridge keeps booleans and numbers apart ("true is not 1").
_TRUE: Final = _Sentinel("true")
_FALSE: Final = _Sentinel("false")
_NULL: Final = _Sentinel("null")
_UNMATCHABLE: Final = _Sentinel("unmatchable")
_EXACT_INT = 2**53


def canon(value: object) -> object:
    """Return the hash key of a leaf value for exact matching.

    Strings are themselves; numbers compare as numbers (``5 == 5.0``) when a double
    holds them exactly and by their text otherwise; booleans and ``null`` get keys of
    their own so that ``true`` never equals ``1``.
    """
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return _TRUE if value else _FALSE
    if value is None:
        return _NULL
    if t is float:
        return value
    if isinstance(value, int):
        number = int(value)
        if -_EXACT_INT <= number <= _EXACT_INT:
            return number
        try:
            exact = float(number) == number
        except OverflowError:  # beyond any double: compare as text
            exact = False
        return number if exact else ("#", str(number))
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return _UNMATCHABLE


def is_number(value: object) -> bool:
    """Tell whether a leaf value is a JSON number (booleans are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --------------------------------------------------------------------------- predicates


@dataclass(frozen=True, slots=True)
class Predicate:
    """One alternative of a leaf: a test on a single leaf value.

    Attributes:
        op: The operator name as written in patterns (``"equals"`` for a bare value).
        spec: The alternative as it appeared in the pattern (for explanations).
    """

    op: str
    spec: Any = field(compare=False)

    def test(self, value: object) -> bool:  # pragma: no cover - overridden
        """Tell whether ``value`` satisfies this alternative."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Exact(Predicate):
    """Exact value: a string, number, boolean or ``null``."""

    key: object = None

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        return canon(value) == self.key


@dataclass(frozen=True, slots=True)
class Prefix(Predicate):
    """String starts with ``text`` (case-folded with ``ignore_case``)."""

    text: str = ""
    ignore_case: bool = False

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        if not isinstance(value, str):
            return False
        return (value.lower() if self.ignore_case else value).startswith(self.text)


@dataclass(frozen=True, slots=True)
class Suffix(Predicate):
    """String ends with ``text`` (case-folded with ``ignore_case``)."""

    text: str = ""
    ignore_case: bool = False

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        if not isinstance(value, str):
            return False
        return (value.lower() if self.ignore_case else value).endswith(self.text)


@dataclass(frozen=True, slots=True)
class EqualsIgnoreCase(Predicate):
    """String equal to ``text`` regardless of case (``text`` is lower-cased)."""

    text: str = ""

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        return isinstance(value, str) and value.lower() == self.text


@dataclass(frozen=True, slots=True)
class Wildcard(Predicate):
    """String matching a glob where ``*`` is any run of characters.

    Matching is greedy and linear (``str.find`` per literal piece), never a
    backtracking regular expression, so no pattern can make matching explode.

    Attributes:
        pieces: The literal texts between the stars (at least two).
    """

    pieces: tuple[str, ...] = ("", "")

    @property
    def head(self) -> str:
        """The literal text before the first ``*`` (used by the index)."""
        return self.pieces[0]

    @property
    def tail(self) -> str:
        """The literal text after the last ``*`` (used by the index)."""
        return self.pieces[-1]

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        if not isinstance(value, str):
            return False
        pieces = self.pieces
        first, last = pieces[0], pieces[-1]
        end = len(value) - len(last)
        if end < len(first) or not value.startswith(first) or not value.endswith(last):
            return False
        pos = len(first)
        for piece in pieces[1:-1]:
            found = value.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return True


@dataclass(frozen=True, slots=True)
class Numeric(Predicate):
    """Number inside a range; a ``None`` bound is unbounded."""

    low: float | int | None = None
    low_inclusive: bool = False
    high: float | int | None = None
    high_inclusive: bool = False

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        if not is_number(value):
            return False
        number: float = value  # type: ignore[assignment]
        if number != number:  # NaN is in no range
            return False
        low, high = self.low, self.high
        if low is not None and (number < low or (number == low and not self.low_inclusive)):
            return False
        return high is None or not (number > high or (number == high and not self.high_inclusive))


_ANY_NETWORK: Final = ipaddress.ip_network("0.0.0.0/0")


@dataclass(frozen=True, slots=True)
class Cidr(Predicate):
    """IP address (a string) inside an IPv4 or IPv6 network."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network = _ANY_NETWORK

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        address = parse_ip(value)
        return (
            address is not None
            and address.version == self.network.version
            and address in self.network
        )


def parse_ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parse a string as an IP address, or return ``None``."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Exists(Predicate):
    """Field present (``True``) or absent (``False``); handled by :class:`Leaf`."""

    present: bool = True


@dataclass(frozen=True, slots=True)
class AnythingBut(Predicate):
    """Any leaf value (``null`` included) that none of ``inner`` matches."""

    inner: tuple[Predicate, ...] = ()

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        return not any(p.test(value) for p in self.inner)


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


def values_at(root: object, path: tuple[str, ...]) -> list[object]:
    """Return every leaf value at ``path`` in ``root``, ignoring array structure."""
    level: list[object] = [root]
    for key in path:
        nxt: list[object] = []
        stack = level
        while stack:
            item = stack.pop()
            if isinstance(item, Mapping):
                if key in item:
                    nxt.append(item[key])
            elif isinstance(item, (list, tuple)):
                stack.extend(item)
        if not nxt:
            return []
        level = nxt
    out: list[object] = []
    for item in level:
        out.extend(leaf_values(item))
    return out


@dataclass(frozen=True, slots=True)
class Leaf:
    """A field condition: the path and its alternatives (satisfied if any is).

    Attributes:
        path: Keys from the root of the event.
        alternatives: The alternatives, as written.
        exact: Keys (:func:`canon`) of the exact-value alternatives, for O(1) tests.
        others: The other value-testing alternatives.
        present_ok: An ``exists: true`` alternative is present.
        absent_ok: An ``exists: false`` alternative is present.
    """

    path: tuple[str, ...]
    alternatives: tuple[Predicate, ...]
    exact: frozenset[object] = field(init=False)
    others: tuple[Callable[[object], bool], ...] = field(init=False)
    present_ok: bool = field(init=False)
    absent_ok: bool = field(init=False)

    def __post_init__(self) -> None:
        exact = frozenset(p.key for p in self.alternatives if isinstance(p, Exact))
        others = tuple(p.test for p in self.alternatives if not isinstance(p, (Exact, Exists)))
        object.__setattr__(self, "exact", exact)
        object.__setattr__(self, "others", others)
        flags = [p.present for p in self.alternatives if isinstance(p, Exists)]
        object.__setattr__(self, "present_ok", True in flags)
        object.__setattr__(self, "absent_ok", False in flags)

    def test_value(self, value: object) -> bool:
        """Tell whether one leaf value satisfies an alternative."""
        if self.present_ok:
            return True
        key = value if type(value) is str else canon(value)
        if key in self.exact:
            return True
        return any(test(value) for test in self.others)

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
            return any(self.test_value(v) for v in values)
        return self.absent_ok and not values_at(root, self.path)


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

    def __post_init__(self) -> None:
        fast = tuple(
            (
                key,
                leaf.exact if not (leaf.others or leaf.present_ok or leaf.absent_ok) else None,
                leaf,
            )
            for key, leaf in self.leaves
        )
        object.__setattr__(self, "fast", fast)

    def match(self, obj: Mapping[str, Any], root: object) -> bool:
        """Tell whether the object satisfies every condition at and below this node."""
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
            objects = [v for v in _flatten_arrays(value) if isinstance(v, Mapping)]
            if objects:
                return any(self.match(o, root) for o in objects)
        return self.match(_EMPTY, root)


_EMPTY: Final[Mapping[str, Any]] = {}


def _flatten_arrays(value: list[Any] | tuple[Any, ...]) -> list[object]:
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
    """One ``$or`` branch: all its leaves must hold (array consistency included)."""

    leaves: tuple[Leaf, ...]
    tree: Node = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tree", build_tree(self.leaves))

    def match(self, event: Mapping[str, Any]) -> bool:
        """Tell whether the event (a mapping) satisfies this branch."""
        return self.tree.match(event, event)
