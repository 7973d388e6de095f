"""Predicates: the tests one pattern alternative makes on one leaf value.

Follows the EventBridge comparison operators ("Comparison operators for use in
event patterns"): exact values (numbers compared as numbers, booleans apart from
numbers), prefix, suffix, equals-ignore-case, wildcard, numeric ranges, CIDR
blocks, exists and anything-but.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Final

__all__ = [
    "MISSING",
    "AnythingBut",
    "Cidr",
    "EqualsIgnoreCase",
    "Exact",
    "Exists",
    "Numeric",
    "Contains",
    "NotContains",
    "Predicate",
    "Prefix",
    "StringRange",
    "Suffix",
    "Wildcard",
    "as_double",
    "brief",
    "canon",
    "ipv4_int",
    "is_number",
    "parse_ip",
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


def as_double(value: object) -> float | None:
    """Return the double a JSON number is compared as, or ``None`` if it has none.

    event-ruler 2.x (``ComparableNumber.generate``) compares a number numerically only
    when its decimal value equals the shortest decimal of the nearest double (Java's
    ``BigDecimal.valueOf(double)``): ``5``, ``0.1``, ``1e23`` and ``2**53`` are
    comparable; ``2**53 + 1``, ``2**60`` and ``12345678901234567891`` are not (a double
    would change them), nor is anything beyond the doubles' range. Python floats are
    doubles, so every finite one is comparable; booleans are not numbers.
    """
    t = type(value)
    if t is float:
        return value if value - value == 0 else None  # type: ignore[return-value,operator]
    if t is int:
        number: int = value  # type: ignore[assignment]
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    elif isinstance(value, float):
        return as_double(float(value))
    else:
        number = int(value)
    if -_EXACT_INT <= number <= _EXACT_INT:
        return float(number)
    if number.bit_length() > 1024:  # past the largest double: no str() of a huge int
        return None
    try:
        double = float(number)
    except OverflowError:
        return None
    return double if Decimal(repr(double)) == number else None


def canon(value: object) -> object:
    """Return the hash key of a leaf value for exact matching.

    Strings are themselves; comparable numbers (:func:`as_double`) are keyed by their
    double, so ``5 == 5.0``; other integers compare as integers among themselves (as
    event-ruler compares their text) and never equal a comparable number; booleans
    and ``null`` get keys of their own so that ``true`` never equals ``1``.
    """
    t = type(value)
    if t is str:
        return value
    if t is bool:
        return _TRUE if value else _FALSE
    if value is None:
        return _NULL
    if t is int and -_EXACT_INT <= value <= _EXACT_INT:  # type: ignore[operator]
        return value
    if t is float:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        double = as_double(value)
        if double is not None:
            return double
        if isinstance(value, int):
            return ("#", int(value))
        return _UNMATCHABLE  # NaN or an infinity: not JSON
    if isinstance(value, str):
        return str(value)
    return _UNMATCHABLE


def brief(value: object, limit: int = 80) -> str:
    """Render a value as short JSON-like text for messages, at most about ``limit`` chars.

    Never fails and never converts a huge integer to text (Python refuses past 4,300
    digits): such an integer is described by its size.
    """
    out: list[str] = []
    _render(value, out, [limit], 0)
    text = "".join(out)
    return text if len(text) <= limit else text[: max(limit - 1, 1)] + "\u2026"


def _render(value: object, out: list[str], budget: list[int], depth: int) -> None:
    if budget[0] <= 0:
        return
    if isinstance(value, str):
        piece = json.dumps(value[: budget[0] + 1], ensure_ascii=False)
    elif isinstance(value, bool) or value is None:
        piece = json.dumps(value)
    elif isinstance(value, int):
        if value.bit_length() > 3000:  # about 900 digits: describe, do not print
            piece = f"<an integer of about {int(value.bit_length() * 0.30103) + 1} digits>"
        else:
            piece = str(int(value))
    elif isinstance(value, float):
        piece = repr(float(value))
    elif isinstance(value, (list, tuple, dict)) and depth < 8:
        items = value.items() if isinstance(value, dict) else value
        opener, closer = ("{", "}") if isinstance(value, dict) else ("[", "]")
        out.append(opener)
        budget[0] -= 1
        for i, item in enumerate(items):
            if budget[0] <= 0:
                break
            if i:
                out.append(", ")
                budget[0] -= 2
            if isinstance(value, dict):
                key, item = item
                name = key if isinstance(key, str) else f"<{type(key).__name__}>"
                _render(name, out, budget, depth + 1)
                out.append(": ")
                budget[0] -= 2
            _render(item, out, budget, depth + 1)
        out.append(closer)
        budget[0] -= 1
        return
    else:
        piece = f"<{type(value).__name__}>"
    out.append(piece)
    budget[0] -= len(piece)


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
    #: Whether an event array is tested as a whole (:meth:`test_array`) rather than
    #: element by element (AppSync's ``contains`` family); EventBridge's operators
    #: all test elements one by one.
    whole_array: ClassVar[bool] = False

    def test(self, value: object) -> bool:  # pragma: no cover - overridden
        """Tell whether ``value`` satisfies this alternative."""
        raise NotImplementedError

    def test_array(self, values: list[object]) -> bool:
        """Tell whether an event array (its leaf values) satisfies this alternative."""
        return any(self.test(v) for v in values)


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
    """Number inside a range; a ``None`` bound is unbounded.

    Bounds are doubles; a value is compared as its double (:func:`as_double`), and a
    number that has none (``2**60``, ``10**400``) is in no range, as in event-ruler.
    """

    low: float | None = None
    low_inclusive: bool = False
    high: float | None = None
    high_inclusive: bool = False

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        number = as_double(value)
        if number is None:
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
    # (version, first address, last address) as integers, for the IPv4 fast path.
    span: tuple[int, int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        net = self.network
        first = int(net.network_address)
        object.__setattr__(self, "span", (net.version, first, first | int(net.hostmask)))

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        if type(value) is str and ":" not in value:
            # Without a colon only IPv4 can parse; skip building an address object.
            version, first, last = self.span
            number = ipv4_int(value)
            return number is not None and version == 4 and first <= number <= last
        address = parse_ip(value)
        return (
            address is not None
            and address.version == self.network.version
            and address in self.network
        )


def ipv4_int(text: str) -> int | None:
    """Parse dotted-quad IPv4 text as :func:`ipaddress.ip_address` does, to an integer.

    Four decimal octets of ASCII digits, at most three digits each, no leading
    zeros, none above 255; anything else is ``None``.
    """
    parts = text.split(".")
    if len(parts) != 4:
        return None
    number = 0
    for part in parts:
        if not (part.isascii() and part.isdigit()) or len(part) > 3:
            return None
        if part[0] == "0" and part != "0":
            return None
        octet = int(part)
        if octet > 255:
            return None
        number = number << 8 | octet
    return number


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


# ------------------------------------------------------------------ AppSync operators


@dataclass(frozen=True, slots=True)
class StringRange(Predicate):
    """A string inside a range of strings, by code-point order (AppSync ``gt`` on text).

    AppSync compares string values as strings (ISO dates order as times do); a
    ``None`` bound is unbounded; numbers and other values are never in it.
    """

    low: str | None = None
    low_inclusive: bool = False
    high: str | None = None
    high_inclusive: bool = False

    def test(self, value: object) -> bool:
        """See :meth:`Predicate.test`."""
        if not isinstance(value, str):
            return False
        low, high = self.low, self.high
        if low is not None and (value < low or (value == low and not self.low_inclusive)):
            return False
        return high is None or not (value > high or (value == high and not self.high_inclusive))


@dataclass(frozen=True, slots=True)
class Contains(Wildcard):
    """AppSync ``contains`` with a string: a substring of a string, an element of an array.

    On a single string it is the wildcard ``*text*``; an event array holds it when one
    of its elements *is* the text (AWS: "an element in an array"), so ``["security"]``
    does not contain ``"sec"``.

    Attributes:
        text: The string looked for.
    """

    whole_array: ClassVar[bool] = True
    text: str = ""

    def test_array(self, values: list[object]) -> bool:
        """See :meth:`Predicate.test_array`: one element equals the text."""
        text = self.text
        return any(isinstance(v, str) and v == text for v in values)


@dataclass(frozen=True, slots=True)
class NotContains(AnythingBut):
    """AppSync ``notContains``: the value does not contain it; an array, in no element.

    AWS's own example: ``seats notContains 10`` does not match ``seats: [10, 15]``
    (an ``anything-but`` would, testing 15 on its own).
    """

    whole_array: ClassVar[bool] = True

    def test_array(self, values: list[object]) -> bool:
        """See :meth:`Predicate.test_array`: no element is (or holds) the value."""
        return not any(p.test_array(values) for p in self.inner)
