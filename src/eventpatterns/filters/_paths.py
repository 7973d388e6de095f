"""Reading an event for :class:`~eventpatterns.filters.PatternIndex`: values and arrays.

:func:`values_of` returns the leaf values at a field path, ignoring array
structure (EventBridge: an array matches when any element does), and notes where
the event holds two or more objects at one level of that path (an array of
objects). Only there can "all conditions below an array hold in one element"
(array consistency) reject a pattern whose conditions each hold somewhere, so
only patterns with two conditions below such a level are verified in full
(:func:`verify`), against per-event answers for ``exists: false``.

Values are handed on as the event holds them: the model's predicates decide how
they compare (numbers a double does not hold exactly are in no range, and no
integer is ever printed, however long).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ._model import MISSING, Leaf, Node, dotted, flatten_arrays, leaf_values, values_at

__all__ = ["values_of", "verify"]

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def values_of(
    doc: Mapping[str, Any], path: tuple[str, ...], multi: set[tuple[str, ...]]
) -> tuple[object, ...]:
    """Return the leaf values at ``path``; note in ``multi`` the levels with many objects.

    Args:
        doc: The event.
        path: Keys from the root.
        multi: Receives each proper prefix of ``path`` under which the event holds
            two or more objects (through arrays).
    """
    value: Any = doc
    last = len(path) - 1
    for depth, key in enumerate(path):
        if type(value) is not dict:
            return _values_slow(doc, path, multi)
        value = value.get(key, MISSING)
        if value is MISSING:
            # The model may read a missing key another way (spelled with dots).
            return _values_slow(doc, path, multi) if depth < last else ()
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return (value,)
    if t is dict:
        return ()
    return tuple(leaf_values(value))


def _values_slow(
    doc: Mapping[str, Any], path: tuple[str, ...], multi: set[tuple[str, ...]]
) -> tuple[object, ...]:
    # The values are read as the model reads them (values_at); this walk only notes
    # the levels holding two or more objects, and, where an object lacks the key (the
    # model may find it otherwise), every level from there, to verify rather than guess.
    level: list[object] = [doc]
    last = len(path) - 1
    for depth, key in enumerate(path):
        nxt: list[object] = []
        objects = 0
        lacking = False
        stack = level
        while stack:
            item = stack.pop()
            if isinstance(item, Mapping):
                objects += 1
                if key in item:
                    nxt.append(item[key])
                else:
                    lacking = True
            elif isinstance(item, (list, tuple)):
                stack.extend(item)
        if depth and (objects > 1 or lacking):
            multi.add(path[:depth])
        if lacking and depth < last:
            multi.update(path[:d] for d in range(max(depth, 1), len(path)))
        level = nxt
    return tuple(values_at(doc, path))


def shared_levels(leaves: tuple[Leaf, ...]) -> frozenset[tuple[str, ...]]:
    """Return the levels (path prefixes) that hold two or more of the leaves."""
    seen: dict[tuple[str, ...], int] = {}
    for leaf in leaves:
        for depth in range(1, len(leaf.path)):
            prefix = leaf.path[:depth]
            seen[prefix] = seen.get(prefix, 0) + 1
    return frozenset(p for p, n in seen.items() if n > 1)


# ------------------------------------------------------------------ verification

Absent = Callable[[tuple[str, ...]], bool]


def verify(node: Node, obj: Mapping[str, Any], absent: Absent) -> bool:
    """Match a conjunction's tree as :meth:`Node.match` does, array consistency included.

    ``absent(path)`` answers ``exists: false`` for the whole event (it is global:
    no value at that path anywhere), once per path, instead of once per element.
    """
    get = obj.get
    for key, leaf in node.leaves:
        if not _leaf_holds(leaf, get(key, MISSING), absent):
            return False
    for key, child in node.children:
        value = get(key, MISSING)
        if value is MISSING:  # a key spelled with dots (as Node.match reads it)
            value = dotted(obj, key)
        if not _child_holds(child, value, absent):
            return False
    return True


def _child_holds(child: Node, value: object, absent: Absent) -> bool:
    if isinstance(value, Mapping):
        return verify(child, value, absent)
    if isinstance(value, (list, tuple)):
        objects = [v for v in flatten_arrays(value) if isinstance(v, Mapping)]
        if objects:
            return any(verify(child, o, absent) for o in objects)
    return verify(child, _EMPTY, absent)


_EMPTY: Final[Mapping[str, Any]] = {}


def _leaf_holds(leaf: Leaf, value: object, absent: Absent) -> bool:
    if type(value) in _SCALARS:
        return leaf.test_value(value)
    values = leaf_values(value)
    if values:
        return any(leaf.test_value(v) for v in values)
    return leaf.absent_ok and absent(leaf.path)
