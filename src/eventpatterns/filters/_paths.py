"""Reading an event for :class:`~eventpatterns.filters.PatternIndex`: values and arrays.

:func:`values_of` returns the leaf values at a field path, ignoring array
structure (EventBridge: an array matches when any element does). Where the path
crosses an array of two or more objects, it also records, for each value, the
element it came from at each such array (its *chain*), so that the walk can hold
the conditions below one array of objects to one element ("array consistency"),
the way event-ruler's machine carries array memberships: no pattern is verified
on its own. Where the event is read in a way the chains do not follow (keys
spelled with dots, mappings other than ``dict``, tuples), the levels concerned are
noted instead, and only patterns with two conditions below such a level are
verified in full (:func:`verify`), against per-event answers for
``exists: false``.

Values are handed on as the event holds them: the model's predicates decide how
they compare (numbers a double does not hold exactly are in no range, and no
integer is ever printed, however long).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ._model import MISSING, Leaf, Node, dotted, flatten_arrays, leaf_values, values_at

__all__ = ["Chain", "Chains", "merge", "values_of", "verify"]

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
#: The elements a value came from: (array level, element number) per array of two or
#: more objects on its way, outermost first. A level is the path prefix naming the array.
#: Each element's chain is built once per event and shared by every value read below
#: it, so a partial match and a value from the same element hold the same object.
Chain = tuple[tuple[tuple[str, ...], int], ...]
_Level = tuple[list[tuple[Any, Chain]], bool]  # (object, chain) pairs; any chain?


#: ``path -> ((value, chain), ...)`` for the paths crossing arrays of objects; under
#: the key ``()`` (no field path is empty) the event's levels read so far (see
#: :func:`_tracked`). A plain dict: one is made for every event matched.
Chains = dict[tuple[str, ...], Any]
_LEVELS: Final[tuple[str, ...]] = ()


def values_of(
    doc: Mapping[str, Any],
    path: tuple[str, ...],
    multi: set[tuple[str, ...]],
    chains: Chains | None = None,
) -> tuple[object, ...]:
    """Return the leaf values at ``path``; note where arrays of objects make them differ.

    Args:
        doc: The event.
        path: Keys from the root.
        multi: Receives the proper prefixes of ``path`` where the values' elements
            are not told apart (see the module docs): every level with two or more
            objects when ``chains`` is ``None``, only the levels the chains cannot
            follow otherwise.
        chains: Receives ``path -> ((value, chain), ...)`` when the path crosses an
            array of two or more objects.
    """
    value: Any = doc
    for key in path:
        # A key missing on the way (not dict) may be read another way (spelled with
        # dots): the model's reading decides.
        if type(value) is not dict:
            return _values_elements(doc, path, multi, chains)
        value = value.get(key, MISSING)
    if value is MISSING:
        return ()
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return (value,)
    if t is dict:
        return ()
    return tuple(leaf_values(value))


def _values_elements(
    doc: Mapping[str, Any],
    path: tuple[str, ...],
    multi: set[tuple[str, ...]],
    chains: Chains | None,
) -> tuple[object, ...]:
    if chains is not None:
        found = _tracked(doc, path, chains)
        if found is not None:
            pairs, tracked = found
            if tracked:
                chains[path] = pairs
            return tuple([value for value, _ in pairs])
    return _values_slow(doc, path, multi)


def _tracked(
    doc: Mapping[str, Any], path: tuple[str, ...], chains: Chains
) -> tuple[tuple[tuple[object, Chain], ...], bool] | None:
    """Return (value, chain) pairs and whether any chain is not empty; ``None`` to bail.

    Reads plain dicts and lists only, as :meth:`Node.match` does (an array's objects,
    nested arrays flattened, scalars in it ignored below a key; a key missing from an
    object is absent there); anything else (a key spelled with dots, another mapping,
    a tuple) is left to :func:`_values_slow`. The objects the path's last key is read
    from, when they came through an array of objects, are kept (in
    ``chains[()]``) for the paths that share them: each element's chain is one
    object, whichever path its values are read by.
    """
    last = len(path) - 1
    prefix = path[:last]
    levels: dict[tuple[str, ...], _Level] | None = chains.get(_LEVELS)
    level = None if levels is None else levels.get(prefix)
    if level is None:
        level = _level(doc, path, last, levels)
        if level is None:
            return None
        if level[1]:
            if levels is None:
                levels = chains[_LEVELS] = {}
            levels[prefix] = level
    objects, tracked = level
    key = path[last]
    pairs: list[tuple[object, Chain]] = []
    for obj, chain in objects:
        value = obj.get(key, MISSING)
        if value is MISSING:
            continue
        t = type(value)
        if t in _SCALARS:
            pairs.append((value, chain))
        else:
            pairs.extend([(v, chain) for v in leaf_values(value)])
    return tuple(pairs), tracked


def _level(
    doc: Mapping[str, Any],
    path: tuple[str, ...],
    last: int,
    levels: dict[tuple[str, ...], _Level] | None,
) -> _Level | None:
    """Return the objects (with chains) the first ``last`` keys lead to; ``None`` to bail.

    It starts from the deepest prefix in ``levels``, so that an element's chain is
    made once.
    """
    if type(doc) is not dict:
        return None
    level: list[tuple[Any, Chain]] = [(doc, ())]
    tracked = False
    start = 0
    if levels:
        for depth in range(last - 1, 0, -1):
            held = levels.get(path[:depth])
            if held is not None:
                level, tracked = held
                start = depth
                break
    for depth in range(start, last):
        key = path[depth]
        nxt: list[tuple[Any, Chain]] = []
        for obj, chain in level:
            value = obj.get(key, MISSING)
            if value is MISSING:
                if dotted(obj, key) is not MISSING:
                    return None
                continue
            t = type(value)
            if t is dict:
                nxt.append((value, chain))
            elif t is list:
                objects = _objects(value)
                if objects is None:
                    return None
                if len(objects) == 1:
                    nxt.append((objects[0], chain))
                elif objects:
                    tracked = True
                    prefix = path[: depth + 1]
                    if chain:
                        nxt.extend([(o, (*chain, (prefix, i))) for i, o in enumerate(objects)])
                    else:  # the outermost array of objects (the common case)
                        nxt.extend([(o, ((prefix, i),)) for i, o in enumerate(objects)])
            elif t not in _SCALARS:
                return None
        level = nxt
        if not level:
            return level, False
    return level, tracked


def _objects(value: list[Any]) -> list[dict[str, Any]] | None:
    """Return the objects of an array (nested arrays flattened), ``None`` for odd items."""
    for item in value:
        if type(item) is not dict:
            break
    else:  # objects only (the common case)
        return value
    out: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        for item in stack.pop():
            t = type(item)
            if t is dict:
                out.append(item)
            elif t is list:
                stack.append(item)
            elif t not in _SCALARS:
                return None
    return out


def merge(mem: Chain, chain: Chain) -> Chain | None:
    """Join the elements a partial match came through with a value's; ``None`` if they differ.

    Two chains meet only at arrays both paths cross, which are levels both conditions
    sit below: there they must name the same element. (A value from the element a
    partial match came through holds the very same chain: no work.)
    """
    if not mem or chain is mem:
        return chain
    if not chain:
        return mem
    out = mem
    for level, element in chain:
        for held, other in mem:
            if held == level:
                if other != element:
                    return None
                break
        else:
            out = (*out, (level, element))
    return out


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
