"""What one state of a :class:`~eventpatterns.filters.PatternIndex` knows about one field.

A :class:`FieldIndex` files the alternatives of every leaf condition that leaves a
state through one field path, each alternative leading to a *target* (the next
state, or an entry id inside an ``anything-but``), and answers, for one leaf value
of an event, which targets it reaches:

* exact values in a hash map (numbers normalised, booleans apart from numbers,
  :func:`~eventpatterns.filters._model.canon`), lower-cased texts for
  ``equals-ignore-case``;
* prefixes and suffixes (also case-folded) in hash maps probed once per distinct
  length held; wildcards in a map keyed by their literal head and tail, probed
  once per distinct pair of lengths, then tested; wildcards with neither
  (``*x*``) by a six-character slice of their literal pieces (the one fewest
  share; 10 or 16 characters once a field holds many), probed once per distinct
  slice of the value, then tested (``*x*`` by ``in``);
* numeric ranges in a :class:`~eventpatterns.filters._ranges.RangeIndex`; CIDR
  blocks in maps per prefix length;
* ``exists``: the targets any value reaches (``present``) and those reached when
  the field has no value (``absent``, read by the caller);
* ``anything-but``: its inner alternatives in a nested index of entry ids; a value
  reaches every entry the nested index does *not* return (cached per value);
* any other predicate (a kind this index does not know) is tested with its own
  ``test`` for each value: it works, it is just not indexed.

Readers only ``get`` from the maps and iterate tuples that writers replace whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from itertools import compress
from operator import not_
from typing import Any, Final, cast

from ._model import (
    AnythingBut,
    Cidr,
    EqualsIgnoreCase,
    Exact,
    Exists,
    Numeric,
    Predicate,
    Prefix,
    Suffix,
    Wildcard,
    as_double,
    canon,
    ipv4_int,
    parse_ip,
)
from ._ranges import Pile, RangeIndex

__all__ = ["FieldIndex", "Pile"]

Targets = tuple[Hashable, ...]
# The shared empty table; never written (writers swap in a dict of their own first).
_NONE: Final[dict[Any, Any]] = {}
_EXACT: Final = 2**53
_AFFIX = ("prefix", "suffix", "prefix_ic", "suffix_ic")


def _put_one(table: dict[Any, Any], key: object, target: Hashable) -> None:
    # Most keys (exact values, affixes, networks...) lead to one target: it is held
    # as itself, not in a tuple (one object less per pattern for the garbage
    # collector to walk). Targets are states or entry ids, never tuples.
    held = table.get(key)
    if held is None:
        table[key] = target
    elif type(held) is tuple:
        table[key] = (*held, target)
    else:
        table[key] = (held, target)


def _drop_one(table: dict[Any, Any], key: object, target: Hashable) -> None:
    held = table[key]
    if type(held) is not tuple:
        if held != target:
            raise ValueError(target)
        del table[key]
        return
    rest = list(held)
    rest.remove(target)
    table[key] = rest[0] if len(rest) == 1 else tuple(rest)


class FieldIndex:
    """The alternatives leaving one state through one field (see the module docs)."""

    __slots__ = (
        "_counts",
        "absent",
        "affixes",
        "affixes_ic",
        "cells",
        "cidr",
        "cidr_lens",
        "eic",
        "exact",
        "folded",
        "infix",
        "infix_lens",
        "lens",
        "negated",
        "numeric",
        "others",
        "plain",
        "present",
        "ranges",
        "size",
        "tables",
        "textual",
        "wild",
        "wild_lens",
    )

    def __init__(self) -> None:
        # Tables other than ``exact`` start as one shared read-only empty mapping
        # and get their own dict on first write (most indexes hold one kind only).
        self.exact: dict[object, Any] = {}  # a target, or a tuple of two or more
        self.eic: dict[object, Any] = _NONE  # a target, or a tuple of two or more
        # prefix / suffix / prefix_ic / suffix_ic -> {text: targets}
        self.tables: dict[str, dict[object, Any]] = _NONE  # the same
        self.lens: dict[str, tuple[int, ...]] = _NONE
        self.wild: dict[tuple[str, str], tuple[tuple[Wildcard, Hashable], ...]] = _NONE
        self.wild_lens: tuple[tuple[int, int], ...] = ()
        # Wildcards with no literal head or tail (``*x*``), by a slice of a literal
        # piece (six characters, or a shorter piece), probed once per value slice.
        self.infix: dict[str, tuple[tuple[Wildcard, Hashable], ...]] = _NONE
        self.infix_lens: tuple[int, ...] = ()
        self.cidr: dict[object, Any] = _NONE  # the same
        self.cidr_lens: tuple[tuple[int, int], ...] = ()
        self.ranges: RangeIndex | None = None
        self.present: Targets = ()
        self.absent: Targets = ()
        self.negated: Negated | None = None
        self.others: tuple[tuple[Predicate, Hashable], ...] = ()
        # Read-side summaries: whether a string can reach beyond exact values, whether
        # a lower-cased lookup can, and whether exact values are all there is.
        self.affixes: _Probes = ()
        self.affixes_ic: _Probes = ()
        self.textual = False
        self.folded = False
        self.plain = True
        # The ranges, when they (and exact values) are all there is: a number in a
        # plain event is looked up in them directly (see PatternIndex._walk).
        self.numeric: RangeIndex | None = None
        self.size = 0
        self._counts: dict[str, Counter[object]] = _NONE
        # What a caller made of the targets of a value, per value, written by readers
        # and kept with the epoch it was made in (see PatternIndex._follow); writers
        # drop it, so that it keeps nothing they unfiled.
        self.cells: dict[object, Any] | None = None

    # ---------------------------------------------------------------- writing

    def add(self, pred: Predicate, target: Hashable) -> None:
        """File one alternative leading to ``target``."""
        self.size += 1
        self.cells = None
        if type(pred) is Exact:  # the common case: no summary changes
            _put_one(self.exact, pred.key, target)
            return
        self._edit(pred, target, +1)
        self._summarise()

    def remove(self, pred: Predicate, target: Hashable) -> None:
        """Unfile one alternative filed with :meth:`add`."""
        self.size -= 1
        self.cells = None
        if type(pred) is Exact:
            _drop_one(self.exact, pred.key, target)
            return
        self._edit(pred, target, -1)
        self._summarise()

    def _edit(self, pred: Predicate, target: Hashable, delta: int) -> None:
        kind = type(pred)
        edit = _put_one if delta > 0 else _drop_one
        if kind is EqualsIgnoreCase:
            if self.eic is _NONE:
                self.eic = {}
            edit(self.eic, pred.text, target)  # type: ignore[attr-defined]
        elif kind is Prefix or kind is Suffix:
            name = "prefix" if kind is Prefix else "suffix"
            if pred.ignore_case:  # type: ignore[attr-defined]
                name += "_ic"
            text: str = pred.text  # type: ignore[attr-defined]
            if self.tables is _NONE:
                self.tables, self.lens = {}, {}
            edit(self.tables.setdefault(name, {}), text, target)
            self.lens[name] = self._count(name, len(text), delta)
        elif kind is Wildcard and _infix(cast(Wildcard, pred)):
            pred = cast(Wildcard, pred)
            if self.infix is _NONE:
                self.infix = {}
            table, item = self.infix, (pred, target)
            if delta > 0:  # the slice fewest wildcards are filed under so far
                # Longer slices once the field holds many (see _grams): one more
                # pass over each value, far fewer wildcards tested per slice found.
                grams = _grams(pred, long=len(table) >= _LONG_FROM)
                gram = min(grams, key=lambda g: len(table.get(g, ())))
                found = [*table.get(gram, ()), item]
            else:
                grams = _grams(pred, long=False) + _grams(pred, long=True)
                gram = next(g for g in grams if item in table.get(g, ()))
                found = list(table[gram])
                found.remove(item)
            if found:
                self.infix[gram] = tuple(found)
            else:
                del self.infix[gram]
            self.infix_lens = self._count("infix", len(gram), delta)
        elif kind is Wildcard:
            pred = cast(Wildcard, pred)
            group = (pred.head, pred.tail)
            if self.wild is _NONE:
                self.wild = {}
            entries = list(self.wild.get(group, ()))
            if delta > 0:
                entries.append((pred, target))
            else:
                entries.remove((pred, target))
            if entries:
                self.wild[group] = tuple(entries)
            else:
                del self.wild[group]
            self.wild_lens = self._count("wild", (len(group[0]), len(group[1])), delta)
        elif kind is Numeric:
            pred = cast(Numeric, pred)
            if self.ranges is None:
                self.ranges = RangeIndex()
            if delta > 0:
                self.ranges.add(target, pred)
            else:
                self.ranges.remove(target, pred)
                if not self.ranges.size:
                    self.ranges = None
        elif kind is Cidr:
            pred = cast(Cidr, pred)
            net = pred.network
            bits = net.max_prefixlen - net.prefixlen
            key = (net.version, net.prefixlen, int(net.network_address) >> bits)
            if self.cidr is _NONE:
                self.cidr = {}
            edit(self.cidr, key, target)
            self.cidr_lens = self._count("cidr", key[:2], delta)
        elif kind is Exists:
            pred = cast(Exists, pred)
            name = "present" if pred.present else "absent"
            targets = list(getattr(self, name))
            if delta > 0:
                targets.append(target)
            else:
                targets.remove(target)
            setattr(self, name, tuple(targets))
        elif kind is AnythingBut:
            pred = cast(AnythingBut, pred)
            if self.negated is None:
                self.negated = Negated()
            if delta > 0:
                self.negated.add(pred, target)
            else:
                self.negated.remove(pred, target)
                if not self.negated.size:
                    self.negated = None
        else:  # a kind not indexed: tested one by one
            others = list(self.others)
            if delta > 0:
                others.append((pred, target))
            else:
                others.remove((pred, target))
            self.others = tuple(others)

    def _count(self, table: str, length: Any, delta: int) -> tuple[Any, ...]:
        if self._counts is _NONE:
            self._counts = {}
        counts = self._counts.get(table)
        if counts is None:
            counts = self._counts[table] = Counter()
        counts[length] += delta
        if not counts[length]:
            del counts[length]
        return tuple(sorted(counts))

    def _summarise(self) -> None:
        lens = self.lens
        tables = self.tables
        self.affixes = tuple(
            (name == "prefix", lens[name], tables[name])
            for name in ("prefix", "suffix")
            if lens.get(name)
        )
        self.affixes_ic = tuple(
            (name == "prefix_ic", lens[name], tables[name])
            for name in ("prefix_ic", "suffix_ic")
            if lens.get(name)
        )
        self.folded = bool(self.eic or lens.get("prefix_ic") or lens.get("suffix_ic"))
        self.textual = bool(
            self.folded
            or self.cidr_lens
            or self.wild_lens
            or self.infix_lens
            or lens.get("prefix")
            or lens.get("suffix")
        )
        self.plain = not (
            self.textual or self.ranges or self.present or self.negated or self.others
        )
        others = self.textual or self.present or self.negated or self.others
        self.numeric = None if others else self.ranges

    # ---------------------------------------------------------------- reading

    def collect(self, value: object, out: list[Any]) -> None:
        """Append the targets one leaf value reaches (duplicates possible)."""
        if type(value) is str:
            hit = self.exact.get(value)
            if hit is not None:
                if type(hit) is tuple:
                    out.extend(hit)
                else:
                    out.append(hit)
            if self.textual:
                self.strings(value, out)
        else:
            exact = self.exact
            hit = exact.get(canon(value)) if exact else None  # often ranges only
            if hit is not None:
                if type(hit) is tuple:
                    out.extend(hit)
                else:
                    out.append(hit)
            ranges = self.ranges
            if ranges is not None:
                # Ranges compare a number as its double; one a double does not hold
                # exactly (2**53 + 1, 10**400) is in none (as_double, the model's rule).
                t = type(value)
                if t is float:
                    if value - value == 0:  # type: ignore[operator]  # not NaN or infinite
                        ranges.collect(value, out)  # type: ignore[arg-type]
                elif t is int and -_EXACT <= value <= _EXACT:  # type: ignore[operator]
                    ranges.collect(value, out)  # type: ignore[arg-type]
                elif t is not bool:
                    double = as_double(value)
                    if double is not None:
                        ranges.collect(double, out)
            if self.textual and isinstance(value, str):  # a str subclass
                self.strings(str(value), out)
        if self.present:
            out.extend(self.present)
        if self.negated is not None:
            self.negated.collect(value, out)
        for pred, target in self.others:
            if pred.test(value):
                out.append(target)

    def strings(self, value: str, out: list[Any]) -> None:
        """Append the targets a string reaches beyond exact values."""
        size = len(value)
        if self.affixes:
            _probe(value, size, self.affixes, out)
        if self.folded:
            lower = value.lower()
            hit = self.eic.get(lower)
            if hit is not None:
                if type(hit) is tuple:
                    out.extend(hit)
                else:
                    out.append(hit)
            if self.affixes_ic:
                _probe(lower, len(lower), self.affixes_ic, out)
        for head, tail in self.wild_lens:
            if head + tail > size:
                continue
            group = self.wild.get((value[:head], value[size - tail :]))
            if group:
                for pred, target in group:
                    if len(pred.pieces) == 2 or pred.test(value):
                        out.append(target)
        if self.infix_lens:
            self._infixes(value, size, out)
        if self.cidr_lens:
            self._networks(value, out)

    def _infixes(self, value: str, size: int, out: list[Any]) -> None:
        # Each slice of the value of a held length, once: a wildcard is filed under
        # one slice of its literal, so it is tested at most once per value. Only the
        # wildcards filed under a slice the value holds are tested, ``*x*``
        # by ``in`` (or not at all when the slice is ``x`` itself).
        table = self.infix
        for n in self.infix_lens:
            if n > size:
                break
            for gram in {value[i : i + n] for i in range(size - n + 1)}:
                group = table.get(gram)
                if group is None:
                    continue
                for pred, target in group:
                    pieces = pred.pieces
                    if len(pieces) == 3:  # ``*x*``
                        piece = pieces[1]
                        if piece == gram or piece in value:
                            out.append(target)
                    elif pred.test(value):
                        out.append(target)

    def _networks(self, value: str, out: list[Any]) -> None:
        if ":" in value:  # only IPv6 addresses have colons, only they need ipaddress
            address = parse_ip(value)
            if address is None:
                return
            version, number, bits = address.version, int(address), address.max_prefixlen
        else:
            found = ipv4_int(value)
            if found is None:
                return
            version, number, bits = 4, found, 32
        for kind, length in self.cidr_lens:
            if kind == version:
                hit = self.cidr.get((version, length, number >> (bits - length)))
                if hit is not None:
                    if type(hit) is tuple:
                        out.extend(hit)
                    else:
                        out.append(hit)


_Probes = tuple[tuple[bool, tuple[int, ...], dict[object, Any]], ...]
_GRAM: Final = 6
_GRAMS: Final = (6, 10, 16)
_LONG_FROM: Final = 64  # slices held before a field files wildcards under longer ones


def _infix(pred: Wildcard) -> bool:
    """Tell whether a wildcard has no literal head or tail (``*x*``, ``*x*y*``)."""
    pieces = pred.pieces
    return not (pieces[0] or pieces[-1]) and len(pieces) > 2


def _grams(pred: Wildcard, *, long: bool) -> list[str]:
    """Return the slices a ``*x*`` wildcard may be filed under.

    Every six-character slice of its literal pieces (any value it matches holds
    each), or its longest pieces when none is that long; with ``long`` (a field
    holding many), slices of 10 or 16 characters where a piece is that long. The
    index files it under the one fewest others share, so literals that begin
    alike spread out.
    """
    inner = pred.pieces[1:-1]
    longest = max(map(len, inner))
    if longest >= _GRAM:
        # With ``long``, slices of the longest length in _GRAMS a piece reaches: a
        # longer slice names fewer literals (fewer wildcards tested per slice found),
        # and the lengths stay few (each distinct length is one pass over the value).
        n = max(g for g in _GRAMS if g <= longest) if long else _GRAM
        return [p[i : i + n] for p in inner for i in range(len(p) - n + 1)]
    return [p for p in inner if len(p) == longest]


def _probe(value: str, size: int, probes: _Probes, out: list[Any]) -> None:
    """Look a string's prefixes (or suffixes) of every held length up."""
    for prefix, lens, table in probes:
        for n in lens:
            if n > size:
                break
            hit = table.get(value[:n] if prefix else value[size - n :])
            if hit is not None:
                if type(hit) is tuple:
                    out.extend(hit)
                else:
                    out.append(hit)


_ENTRIES: Final = ("entries",)  # the cache's key for the flat entries (never a value's slot)


class Negated:
    """The ``anything-but`` alternatives of one field: all entries but those excluded.

    Each alternative is an entry (an id) whose inner predicates are filed in a
    nested :class:`FieldIndex`; a value reaches the targets of every entry the
    nested index does not return. The answer depends only on the value, so it is
    cached per value (the cache is replaced on every write, and bounded).
    """

    __slots__ = ("_ids", "_next", "cache", "entries", "inner", "size")

    def __init__(self) -> None:
        self.inner = FieldIndex()
        self.entries = Pile()  # (entry id, target)
        self._ids: dict[tuple[AnythingBut, Hashable], list[int]] = {}
        self._next = 0
        self.cache: dict[object, Targets] = {}
        self.size = 0

    def add(self, pred: AnythingBut, target: Hashable) -> None:
        """File one ``anything-but`` alternative."""
        entry = self._next
        self._next += 1
        self._ids.setdefault((pred, target), []).append(entry)
        for inner in pred.inner:
            self.inner.add(inner, entry)
        self.entries.append((entry, target))
        self.size += 1
        self.cache = {}

    def remove(self, pred: AnythingBut, target: Hashable) -> None:
        """Unfile one alternative filed with :meth:`add`."""
        ids = self._ids[(pred, target)]
        entry = ids.pop()
        if not ids:
            del self._ids[(pred, target)]
        self.entries.remove((entry, target))
        for inner in pred.inner:
            self.inner.remove(inner, entry)
        self.size -= 1
        self.cache = {}

    def collect(self, value: object, out: list[Any]) -> None:
        """Append the targets of the entries that do not exclude ``value``."""
        cache = self.cache  # read first: a result is stored where it was computed
        slot: tuple[type, object] | None = (type(value), value)
        try:
            hit = cache.get(slot)
        except TypeError:  # an unhashable odd value
            slot, hit = None, None
        if hit is None:
            excluded: list[Any] = []
            self.inner.collect(value, excluded)
            flat: Any = cache.get(_ENTRIES)
            if flat is None:
                # The entries as (ids, targets) in one order, made by the first reader
                # that needs them after a write and kept in the cache read above (a
                # writer replaces the cache after changing the entries).
                big, small = self.entries.runs
                pairs = big + small
                flat = cache[_ENTRIES] = (
                    tuple([e for e, _ in pairs]),
                    tuple([t for _, t in pairs]),
                )
            if excluded:
                # The targets of the ids not excluded, at C speed (many patterns
                # with anything-but on one field: most of them are reached).
                drop = set(excluded).__contains__
                hit = tuple(compress(flat[1], map(not_, map(drop, flat[0]))))
            else:
                hit = flat[1]
            if slot is not None and len(cache) < max(16, 65_536 // (self.size + 1)):
                cache[slot] = hit
        out.extend(hit)
