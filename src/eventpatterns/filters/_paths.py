"""Per-field-path lookup structures of :class:`~eventpatterns.filters.PatternIndex`.

For one field path: hash maps on exact values (numbers normalised, booleans apart
from numbers) and on lower-cased values; prefixes and suffixes in hash maps probed
once per distinct key length; numeric ranges in a :class:`RangeIndex`; CIDR blocks in
hash maps per prefix length; and the branches that any value (or any string) hits.
Readers only ``get`` from the maps and iterate tuples that writers replace whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from ._model import (
    MISSING,
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
    ipv4_int,
    is_number,
    parse_ip,
)
from ._ranges import RangeIndex

__all__ = [
    "AFFIX",
    "FACTOR",
    "PathIndex",
    "Plan",
    "Reg",
    "gather",
    "group",
    "plan",
    "registrations",
]

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
        "folded",
        "lens",
        "prefix",
        "prefix_ic",
        "present",
        "ranges",
        "strings",
        "suffix",
        "suffix_ic",
        "textual",
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
        # Whether a string can hit anything beyond exact values (else one dict lookup).
        self.textual = False
        self.folded = False  # whether a lower-cased lookup can hit
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
        self._retext()

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
        self._retext()

    def _retext(self) -> None:
        lens = self.lens
        self.folded = bool(self.eic or lens["prefix_ic"] or lens["suffix_ic"])
        self.textual = bool(
            self.strings or self.folded or self.cidr_lens or lens["prefix"] or lens["suffix"]
        )

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

    def collect(self, value: object, out: set[int]) -> None:
        """Add the ids of every branch whose anchor the leaf value satisfies."""
        if type(value) is str:
            hit = self.exact.get(value)
            if hit:
                out.update(hit)
            if self.textual:
                self.strings_of(value, out)
        else:
            hit = self.exact.get(canon(value))
            if hit:
                out.update(hit)
            if self.ranges.size and is_number(value) and value == value:
                self.ranges.collect(value, out)  # type: ignore[arg-type]
            if isinstance(value, str):  # a str subclass
                self.strings_of(str(value), out)
        if self.present:
            out.update(self.present)

    def strings_of(self, value: str, out: set[int]) -> None:
        """Add the ids a string hits beyond exact values: affixes, cases, networks."""
        if self.strings:
            out.update(self.strings)
        lens = self.lens
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
        if self.folded:
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
            self._networks(value, out)

    def _networks(self, value: str, out: set[int]) -> None:
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


Plan = tuple[tuple[str, "PathIndex | None", "Plan"], ...]
"""What to read from an event: per key, the path's structures (if any) and the keys below."""


def plan(paths: Mapping[tuple[str, ...], PathIndex]) -> Plan:
    """Build the walk that visits exactly the indexed field paths, as a key tree."""
    below: dict[str, dict[tuple[str, ...], PathIndex]] = {}
    here: dict[str, PathIndex] = {}
    for path, pindex in paths.items():
        if len(path) == 1:
            here[path[0]] = pindex
        else:
            below.setdefault(path[0], {})[path[1:]] = pindex
    keys = dict.fromkeys([*here, *below])
    return tuple((key, here.get(key), plan(below.get(key, {}))) for key in keys)


def gather(obj: Mapping[str, Any], walk: Plan, out: set[int]) -> None:
    """Add the branch ids whose anchors the values of ``obj`` satisfy.

    Only the keys the index holds are read (``get``, never iterating the event), so
    the cost follows the patterns' fields, not the event's size. Plain strings and
    dicts, the common case, are handled inline.
    """
    get = obj.get
    for key, pindex, below in walk:
        value = get(key, MISSING)
        t = type(value)
        if t is str:
            if pindex is not None:
                hit = pindex.exact.get(value)
                if hit:
                    out.update(hit)
                if pindex.textual:
                    pindex.strings_of(value, out)
                if pindex.present:
                    out.update(pindex.present)
        elif t is dict:
            if below:
                gather(value, below, out)
        elif t is float or t is int:
            if pindex is not None:
                pindex.collect(value, out)
        elif value is not MISSING:
            _gather_other(value, pindex, below, out)


def _gather_other(value: object, pindex: PathIndex | None, below: Plan, out: set[int]) -> None:
    # Arrays are transparent and any mapping is an object (as in ``Node.match``);
    # exact types are tested first, the abstract ones only for unusual values.
    items = [value]
    while items:
        item = items.pop()
        t = type(item)
        if t is dict:
            if below:
                gather(item, below, out)  # type: ignore[arg-type]
        elif t is list or t is tuple:
            items.extend(item)  # type: ignore[arg-type]
        elif t in _SCALARS:
            if pindex is not None:
                pindex.collect(item, out)
        elif isinstance(item, Mapping):
            if below:
                gather(item, below, out)
        elif isinstance(item, (list, tuple)):
            items.extend(item)
        elif pindex is not None:
            pindex.collect(item, out)


_SCALARS = frozenset({str, int, float, bool, type(None)})
