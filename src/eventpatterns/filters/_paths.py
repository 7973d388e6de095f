"""Per-field-path lookup structures of :class:`~eventpatterns.filters.PatternIndex`.

For one field path: hash maps on exact values (numbers normalised, booleans apart
from numbers) and on lower-cased values; prefixes and suffixes in hash maps probed
once per distinct key length; numeric ranges in a :class:`RangeIndex`; CIDR blocks in
hash maps per prefix length; and the branches that any value (or any string) hits.
Readers only ``get`` from the maps and iterate tuples that writers replace whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from ._model import (
    AnythingBut,
    Cidr,
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
from ._ranges import RangeIndex

__all__ = ["AFFIX", "FACTOR", "PathIndex", "Reg", "flatten", "group", "registrations"]

Reg = tuple[str, object]  # (table, key) where a branch id is filed
# Relative price of a lookup per table, for choosing anchors (see ``PathIndex.cost``).
FACTOR = {
    "exact": 1.0,
    "eic": 1.2,
    "prefix": 1.5,
    "suffix": 1.5,
    "prefix_ic": 1.8,
    "suffix_ic": 1.8,
    "cidr": 1.5,
}
AFFIX = ("prefix", "suffix", "prefix_ic", "suffix_ic")


class PathIndex:
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
        self.lens: dict[str, tuple[int, ...]] = dict.fromkeys(AFFIX, ())
        self.cidr_lens: tuple[tuple[int, int], ...] = ()
        self.strings: tuple[int, ...] = ()
        self.present: tuple[int, ...] = ()
        self.ranges = RangeIndex()
        # Write side: how many keys of each length each table holds.
        self.counts: dict[str, Counter[object]] = {}

    def bucket(self, reg: Reg) -> object:
        """Name the list a registration shares with others (for ranges, a scan list)."""
        table, key = reg
        if table == "range":
            assert isinstance(key, Numeric)
            return ("range", self.ranges.bucket(key))
        return reg

    def size(self, reg: Reg) -> int:
        """How many branches share the registration's list."""
        table, key = reg
        if table == "range":
            assert isinstance(key, Numeric)
            return self.ranges.bucket_size(key)
        return len(self.members(reg))

    def members(self, reg: Reg) -> tuple[int, ...]:
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

    def add(self, reg: Reg, cid: int) -> None:
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

    def remove(self, reg: Reg, cid: int) -> None:
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
        if table in AFFIX:
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


def registrations(leaf: Leaf) -> tuple[Reg, ...] | None:
    """Where a leaf can be filed, or ``None`` if it can hold with the field absent."""
    if leaf.absent_ok:
        return None
    regs: list[Reg] = []
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


def group(table: str, key: object) -> object:
    """The keys a key competes with: same table, and same length or prefix length."""
    if table in AFFIX:
        assert isinstance(key, str)
        return len(key)
    if table == "cidr":
        assert isinstance(key, tuple)
        return key[:2]
    return None


_SCALARS = frozenset({str, int, float, bool, type(None)})


def flatten(
    doc: Mapping[str, Any], paths: dict[str, PathIndex], prefixes: frozenset[str]
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
    paths: dict[str, PathIndex],
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
