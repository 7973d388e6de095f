"""Validate an EventBridge event pattern and compile it to conjunctions.

The rules are those of Amazon EventBridge's ``PutRule`` / ``TestEventPattern``
("Creating event patterns", "Comparison operators for use in event patterns"):
every field is an object or a non-empty array of alternatives; an alternative is a
string, number, boolean, ``null`` or an object holding exactly one operator.
Every rejection is an :class:`~eventpatterns.errors.InvalidPattern` naming the JSON
path of the offending part.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from ..errors import InvalidPattern
from ._model import (
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
    brief,
    canon,
    is_number,
    parse_ip,
)

__all__ = [
    "DEFAULT_LIMITS",
    "RESERVED_IN_OR",
    "Limits",
    "check_size",
    "field_path",
    "load_json",
    "parse_pattern",
]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a pattern may ask for; over a bound is ``InvalidPattern``.

    Attributes:
        max_pattern_chars: Longest pattern, as compact JSON (EventBridge: 4096).
        max_wildcards: Most ``*`` in one ``wildcard`` value (its complexity).
        max_combinations: Most branches once every ``$or`` is expanded.
        max_depth: Deepest nesting of objects.
        max_conditions: Most field conditions summed over the expanded branches (the
            size of the compiled form; 1000 branches of 10 conditions each is the
            default's worth). An eventpatterns bound: without it a pattern under
            4096 characters could expand to 280,000 conditions.
    """

    max_pattern_chars: int = 4096
    max_wildcards: int = 10
    max_combinations: int = 1000
    max_depth: int = 64
    max_conditions: int = 10_000


DEFAULT_LIMITS: Final = Limits()
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_\-$]+")
_NUMERIC_OPS: Final = frozenset({"<", "<=", "=", ">", ">="})
# event-ruler's Constants.RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP: inside a ``$or``
# branch these cannot be field names (JsonRuleCompiler refuses "<name> is Ruler
# reserved fieldName which cannot be used inside $or.").
RESERVED_IN_OR: Final = frozenset(
    {
        "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists",
        "wildcard", "numeric", "cidr", "=", "<", "<=", ">", ">=", "regex",
        "not-wildcard", "not-equals-ignore-case", "date-after", "date-on-or-after",
        "date-before", "date-on-or-before", "in-date-range", "ip-address-in-range",
        "ip-address-not-in-range",
    }
)  # fmt: skip
# event-ruler's CIDR.isIPv4OrIPv6: what it tries to read as an IP address at all.
_IPV4_TEXT = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_IPV6_TEXT = re.compile(r"[0-9a-fA-F:]*:[0-9a-fA-F:]*")
_MASK = re.compile(r"[+-]?[0-9]+")
# JSON text is parsed before it is measured; text this many times the limit is
# refused unread (whitespace and escapes can make text longer than its compact form).
_TEXT_SLACK = 16
_KEY_IN_PATH = 64


# Leaves naming only strings, shared between patterns (see _Parser.leaf); bounded.
_SHARED_LEAVES: dict[tuple[Any, ...], Leaf] = {}
_SHARED_MAX: Final = 8192  # entries; a few MB at most
_PATHS: dict[tuple[str, str], str] = {}
# check_circular off: a pattern has passed check_size (a cycle would not have).
_dumps = json.JSONEncoder(ensure_ascii=False, check_circular=False, allow_nan=False).encode


def field_path(base: str, key: str) -> str:
    """Append an object key to a JSON path (``$.detail`` + ``price``), remembered."""
    found = _PATHS.get((base, key))
    if found is None:
        if len(_PATHS) >= _SHARED_MAX:
            _PATHS.clear()
        found = _PATHS[(base, key)] = _field_path(base, key)
    return found


def _field_path(base: str, key: str) -> str:
    """Append an object key to a JSON path (``$.detail`` + ``price``).

    Keys longer than 64 characters are cut (with an ellipsis) so that no path, and
    no message holding one, grows with the input.
    """
    if _SIMPLE_KEY.fullmatch(key):
        if len(key) <= _KEY_IN_PATH:
            return f"{base}.{key}"
        return f"{base}.{key[:_KEY_IN_PATH]}\u2026"
    if len(key) > _KEY_IN_PATH:
        return f'{base}[{json.dumps(key[:_KEY_IN_PATH], ensure_ascii=False)[:-1]}\u2026"]'
    return f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def load_json(text: str | bytes, *, what: str = "pattern", limit: int | None = None) -> Any:
    """Decode JSON text, raising ``InvalidPattern`` when it is not JSON.

    Args:
        text: The JSON text.
        what: What it is, for the message.
        limit: The pattern-size limit: text over 16 times as long is refused before
            it is parsed.
    """
    if limit is not None and len(text) > _TEXT_SLACK * limit:
        raise InvalidPattern(
            f"the {what} is {len(text)} characters of JSON text; the limit is {limit}"
            " (as compact JSON)"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidPattern(f"the {what} is not valid JSON ({brief(str(exc), 120)})") from exc


def check_size(pattern: object, limit: int, *, what: str = "pattern") -> None:
    """Refuse a pattern longer than ``limit`` characters as compact JSON, unparsed.

    The walk stops as soon as the limit is passed, so refusing a huge pattern costs
    about as much as reading ``limit`` characters of it; no integer is converted to
    text (Python refuses past 4,300 digits). Escapes are measured in one pass over
    the strings seen, once the walk is done (they are at most ``limit`` long).

    Raises:
        InvalidPattern: The pattern is over the limit (path ``$``).
    """
    size = 0
    texts: list[str] = []
    stack: list[object] = [pattern]
    pop, extend, keep = stack.pop, stack.extend, texts.append
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            size += len(item) + 2  # type: ignore[arg-type]
            keep(item)  # type: ignore[arg-type]
        elif kind is dict or (kind is not list and isinstance(item, dict)):
            size = _dict_size(item, size, limit, extend, keep)  # type: ignore[arg-type]
        elif kind is list or kind is tuple or isinstance(item, (list, tuple)):
            n = len(item)  # type: ignore[arg-type]
            size += n + 1 if n else 2
            if size <= limit:
                extend(item)  # type: ignore[arg-type]
        else:
            size += _scalar_size(item, keep)
        if size > limit:
            _over(what, limit, size)
    if texts:
        joined = "".join(texts)
        # Printable text without quotes or backslashes has no escapes (the common case).
        if not (joined.isprintable() and '"' not in joined and "\\" not in joined):
            size += sum(len(json.dumps(t, ensure_ascii=False)) - len(t) - 2 for t in texts)
            if size > limit:
                _over(what, limit, size)


def _over(what: str, limit: int, size: int) -> None:
    raise InvalidPattern(
        f"the {what} is over {limit} characters long as compact JSON (at least"
        f" {size}); the limit is {limit}"
    )


def _dict_size(item: dict[Any, Any], size: int, limit: int, extend: Any, keep: Any) -> int:
    n = len(item)
    size += 2 * n + 1 if n else 2  # braces, commas, colons
    if size <= limit:
        extend(item.values())
        for key in item:
            if type(key) is str:
                size += len(key) + 2
                keep(key)
            else:  # not JSON (refused by the parser): counted as ""
                size += 2
    return size


def _scalar_size(item: object, keep: Any) -> int:
    """Measure a leaf value (a str subclass, a number, a boolean, ``null``...)."""
    if isinstance(item, str):
        keep(str(item))
        return len(item) + 2
    if isinstance(item, bool) or item is None:
        return 4 if item is not False else 5
    if isinstance(item, int):
        bits = item.bit_length()
        return int(bits * 0.30103) + 1 if bits > 3000 else len(str(int(item)))
    if isinstance(item, float):
        return len(repr(float(item)))
    return 0


def parse_pattern(pattern: object, limits: Limits = DEFAULT_LIMITS) -> tuple[Conjunction, ...]:
    """Validate a pattern and expand it into its ``$or`` branches.

    The size limit is checked first, before anything is compiled, and the ``$or``
    expansion is checked as it grows, so no input can make this slow.

    Args:
        pattern: The pattern, a JSON object (a ``dict``) or its JSON text.
        limits: Size and complexity bounds.

    Returns:
        The branches; the event matches when any branch does.

    Raises:
        InvalidPattern: The pattern is malformed or over a limit.
    """
    if isinstance(pattern, (str, bytes)):
        pattern = load_json(pattern, limit=limits.max_pattern_chars)
    if not isinstance(pattern, dict):
        raise InvalidPattern("a pattern must be a JSON object")
    check_size(pattern, limits.max_pattern_chars)
    parser = _Parser(limits)
    branches = parser.parse_object(pattern, (), "$", 0, in_or=False) if pattern else [[]]
    return tuple(Conjunction(tuple(leaves)) for leaves in branches)


class _Parser:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def too_many(self, path: str) -> InvalidPattern:
        return InvalidPattern(
            f"the $or branches expand to more than {self.limits.max_combinations} combinations",
            path=path,
        )

    def too_big(self, path: str) -> InvalidPattern:
        return InvalidPattern(
            f"the $or branches expand to more than {self.limits.max_conditions} field"
            " conditions in all",
            path=path,
        )

    def parse_object(
        self, obj: dict[Any, Any], keys: tuple[str, ...], path: str, depth: int, *, in_or: bool
    ) -> list[list[Leaf]]:
        if depth >= self.limits.max_depth:
            raise InvalidPattern(
                f"the pattern nests deeper than {self.limits.max_depth} levels", path=path
            )
        if not obj:
            raise InvalidPattern("an object in a pattern must not be empty", path=path)
        base: list[Leaf] = []
        factors: list[list[list[Leaf]]] = []
        for key, value in obj.items():
            if not isinstance(key, str):
                raise InvalidPattern(f"object keys must be strings, not {brief(key)}", path=path)
            here = field_path(path, key)
            if key == "$or":
                factors.append(self.disjunction(value, keys, here, depth))
                continue
            if in_or and key in RESERVED_IN_OR:
                raise InvalidPattern(
                    f"{key!r} is a reserved operator name and cannot be a field name inside $or",
                    path=here,
                )
            if isinstance(value, dict):
                factors.append(
                    self.parse_object(value, (*keys, *key.split(".")), here, depth + 1, in_or=in_or)
                )
            elif isinstance(value, list):
                # A field is its dotted name, as in event-ruler: {"a.b": ...} is
                # {"a": {"b": ...}} (and either matches either spelling in events).
                base.append(self.leaf(value, (*keys, *key.split(".")), here))
            else:
                raise InvalidPattern(
                    f"a field must hold an array of alternatives or an object, not {_kind(value)}",
                    path=here,
                )
        # Multiply the factors out, refusing before building anything over the limit.
        result = [base]
        for alternatives in factors:
            if len(result) * len(alternatives) > self.limits.max_combinations:
                raise self.too_many(path)
            conditions = len(alternatives) * sum(map(len, result)) + len(result) * sum(
                map(len, alternatives)
            )
            if conditions > self.limits.max_conditions:
                raise self.too_big(path)
            result = [r + a for r in result for a in alternatives]
        return result

    def disjunction(
        self, value: object, keys: tuple[str, ...], path: str, depth: int
    ) -> list[list[Leaf]]:
        if not isinstance(value, list) or len(value) < 2:
            raise InvalidPattern("$or takes an array of at least two objects", path=path)
        out: list[list[Leaf]] = []
        for i, item in enumerate(value):
            here = f"{path}[{i}]"
            if not isinstance(item, dict):
                raise InvalidPattern(
                    f"a $or branch must be an object, not {_kind(item)}", path=here
                )
            out.extend(self.parse_object(item, keys, here, depth + 1, in_or=True))
            if len(out) > self.limits.max_combinations:
                raise self.too_many(path)
            if sum(map(len, out)) > self.limits.max_conditions:
                raise self.too_big(path)
        return out

    def leaf(self, values: list[Any], keys: tuple[str, ...], path: str) -> Leaf:
        if not values:
            raise InvalidPattern("an array of alternatives must not be empty", path=path)
        # Leaves are immutable: one is shared by every pattern that names the same
        # alternatives at the same path, so ten thousand subscriptions to one
        # ``source`` hold one leaf (and the index prepares it once). Strings name
        # themselves; other alternatives are named by their JSON text (which keeps
        # 1, 1.0 and true apart), with the one limit a leaf depends on.
        shared: tuple[Any, ...] | None
        if all(type(v) is str for v in values):
            shared = (keys, *values)
        else:
            try:
                shared = (keys, self.limits.max_wildcards, _dumps(values))
            except (TypeError, ValueError, RecursionError):  # not JSON: not shared
                shared = None
        if shared is not None:
            found = _SHARED_LEAVES.get(shared)
            if found is not None:
                return found
        leaf = Leaf(keys, tuple(self.alternative(v, f"{path}[{i}]") for i, v in enumerate(values)))
        if shared is not None:
            if len(_SHARED_LEAVES) >= _SHARED_MAX:
                _SHARED_LEAVES.clear()
            _SHARED_LEAVES[shared] = leaf
        return leaf

    def alternative(self, item: object, path: str) -> Predicate:
        if isinstance(item, str):
            # event-ruler (JsonRuleCompiler.writeRules) turns a string that is an IP
            # address into an address match: "2001:db8::1" matches "2001:DB8:0::1".
            address = _ip_literal(item)
            if address is not None:
                return Cidr("equals", item, ipaddress.ip_network(address))
            return Exact("equals", item, item)
        if item is None or isinstance(item, bool):
            return Exact("equals", item, canon(item))
        if is_number(item):
            _finite(item, path)
            return Exact("equals", item, canon(item))
        if isinstance(item, dict):
            if len(item) != 1:
                raise InvalidPattern("an operator object must hold exactly one operator", path=path)
            ((op, operand),) = item.items()
            if not isinstance(op, str) or op not in _OPERATORS:
                raise InvalidPattern(f"unrecognized operator {brief(op)}", path=path)
            return _OPERATORS[op](self, item, operand, field_path(path, op))
        if isinstance(item, list):
            raise InvalidPattern("alternatives cannot be arrays", path=path)
        raise InvalidPattern(f"unsupported value {_kind(item)}", path=path)

    # ------------------------------------------------------------------ operators

    def exactly(self, spec: object, operand: object, path: str) -> Predicate:
        # event-ruler's "exactly": a string compared as written (not as an address).
        return Exact("exactly", spec, _string(operand, "exactly", path))

    def prefix(self, spec: object, operand: object, path: str) -> Predicate:
        return _affix(Prefix, "prefix", spec, operand, path)

    def suffix(self, spec: object, operand: object, path: str) -> Predicate:
        return _affix(Suffix, "suffix", spec, operand, path)

    def equals_ignore_case(self, spec: object, operand: object, path: str) -> Predicate:
        text = _string(operand, "equals-ignore-case", path)
        return EqualsIgnoreCase("equals-ignore-case", spec, text.lower())

    def wildcard(self, spec: object, operand: object, path: str) -> Predicate:
        return self.glob(spec, _string(operand, "wildcard", path), path)

    def glob(self, spec: object, text: str, path: str) -> Predicate:
        pieces: list[str] = []
        buf: list[str] = []
        i, after_star = 0, False
        while i < len(text):
            char = text[i]
            if char == "\\":
                if i + 1 < len(text) and text[i + 1] in "*\\":
                    buf.append(text[i + 1])
                    i, after_star = i + 2, False
                    continue
                raise InvalidPattern(
                    f"invalid escape at position {i}: only \\* and \\\\ are allowed", path=path
                )
            if char == "*":
                if after_star:
                    raise InvalidPattern(
                        f"consecutive wildcard characters at position {i}", path=path
                    )
                pieces.append("".join(buf))
                buf, after_star = [], True
            else:
                buf.append(char)
                after_star = False
            i += 1
        pieces.append("".join(buf))
        stars = len(pieces) - 1
        if stars > self.limits.max_wildcards:
            raise InvalidPattern(
                f"the wildcard is too complex: {stars} '*' (the limit is"
                f" {self.limits.max_wildcards})",
                path=path,
            )
        if not stars:
            return Exact("wildcard", spec, pieces[0])
        return Wildcard("wildcard", spec, tuple(pieces))

    def anything_but(self, spec: object, operand: object, path: str) -> Predicate:
        # event-ruler's forms (JsonRuleCompiler.processMatchExpression): a string or a
        # number; a list of only strings or only numbers; or an object with one of
        # prefix, suffix, equals-ignore-case, wildcard holding a string or a list of
        # strings (prefixes and suffixes not empty).
        inner: tuple[Predicate, ...]
        if isinstance(operand, str):
            inner = (Exact("equals", operand, operand),)
        elif is_number(operand):
            inner = (Exact("equals", operand, _comparable(operand, path)),)
        elif isinstance(operand, list):
            if not operand:
                raise InvalidPattern("anything-but takes a non-empty list", path=path)
            strings = all(isinstance(v, str) for v in operand)
            if not strings and not all(is_number(v) for v in operand):
                raise InvalidPattern(
                    "anything-but takes a list of only strings or only numbers", path=path
                )
            inner = tuple(
                Exact("equals", v, v if strings else _comparable(v, f"{path}[{i}]"))
                for i, v in enumerate(operand)
            )
        elif isinstance(operand, dict) and len(operand) == 1:
            ((op, value),) = operand.items()
            here = field_path(path, str(op))
            texts = _strings(value, str(op), here) if op in _AB_FORMS else []
            at = [f"{here}[{i}]" if isinstance(value, list) else here for i in range(len(texts))]
            if op in ("prefix", "suffix"):
                for text, where in zip(texts, at, strict=True):
                    if not text:
                        raise InvalidPattern(f"anything-but {op} must not be empty", path=where)
                cls = Prefix if op == "prefix" else Suffix
                inner = tuple(cls(op, t, t) for t in texts)
            elif op == "wildcard":
                inner = tuple(self.glob(t, t, where) for t, where in zip(texts, at, strict=True))
            elif op == "equals-ignore-case":
                inner = tuple(EqualsIgnoreCase(op, t, t.lower()) for t in texts)
            else:
                raise InvalidPattern(
                    f"unsupported operator {brief(op)} inside anything-but", path=here
                )
        else:
            raise InvalidPattern(
                "anything-but takes a string, a number, a list of them, or an object with"
                " prefix, suffix, equals-ignore-case or wildcard",
                path=path,
            )
        return AnythingBut("anything-but", spec, inner)

    def numeric(self, spec: object, operand: object, path: str) -> Predicate:
        if not isinstance(operand, list) or len(operand) not in (2, 4):
            raise InvalidPattern(
                "numeric takes [operator, number] or [operator, number, operator, number]",
                path=path,
            )
        bounds: list[float] = []
        for i in range(0, len(operand), 2):
            op, number = operand[i], operand[i + 1]
            if not isinstance(op, str) or op not in _NUMERIC_OPS:
                raise InvalidPattern(
                    f"unknown numeric operator {brief(op)}; use <, <=, =, >, >=",
                    path=f"{path}[{i}]",
                )
            if not is_number(number):
                raise InvalidPattern(f"{op} needs a number", path=f"{path}[{i + 1}]")
            bounds.append(_comparable(number, f"{path}[{i + 1}]"))
        first = operand[0]
        if len(operand) == 2:
            (low,) = bounds
            if first == "=":
                return Exact("numeric", spec, canon(low))
            if first in (">", ">="):
                return Numeric("numeric", spec, low, first == ">=", None, False)
            return Numeric("numeric", spec, None, False, low, first == "<=")
        second = operand[2]
        low, high = bounds
        if first not in (">", ">=") or second not in ("<", "<="):
            raise InvalidPattern(
                "a numeric range is a lower bound (> or >=) then an upper bound (< or <=)",
                path=path,
            )
        if not low < high:
            raise InvalidPattern(
                f"the lower bound {brief(operand[1])} must be less than the upper bound"
                f" {brief(operand[3])}",
                path=path,
            )
        return Numeric("numeric", spec, low, first == ">=", high, second == "<=")

    def exists(self, spec: object, operand: object, path: str) -> Predicate:
        if not isinstance(operand, bool):
            raise InvalidPattern("exists takes true or false", path=path)
        return Exists("exists", spec, operand)

    def cidr(self, spec: object, operand: object, path: str) -> Predicate:
        # event-ruler's CIDR.cidr: one "/", an integer mask, an IP literal; an IPv4
        # mask below 32 and an IPv6 mask below 128 (a single address is refused).
        text = _string(operand, "cidr", path)
        address, slash, mask = text.partition("/")
        if not slash or "/" in mask:
            raise InvalidPattern(
                f"invalid CIDR block {brief(text)}: it needs exactly one '/'", path=path
            )
        if not _MASK.fullmatch(mask):
            raise InvalidPattern(
                f"invalid CIDR block {brief(text)}: the mask must be an integer", path=path
            )
        bits = int(mask)
        ip = _ip_literal(address)
        if ip is None:
            raise InvalidPattern(
                f"invalid CIDR block {brief(text)}: {brief(address)} is not an IP address",
                path=path,
            )
        most = 31 if ip.version == 4 else 127
        if not 0 <= bits <= most:
            raise InvalidPattern(
                f"invalid CIDR block {brief(text)}: an IPv{ip.version} mask must be 0 to {most}",
                path=path,
            )
        return Cidr("cidr", spec, ipaddress.ip_network((ip, bits), strict=False))


_AB_FORMS: Final = frozenset({"prefix", "suffix", "equals-ignore-case", "wildcard"})


_OPERATORS: Final = {
    "exactly": _Parser.exactly,
    "prefix": _Parser.prefix,
    "suffix": _Parser.suffix,
    "equals-ignore-case": _Parser.equals_ignore_case,
    "wildcard": _Parser.wildcard,
    "anything-but": _Parser.anything_but,
    "numeric": _Parser.numeric,
    "exists": _Parser.exists,
    "cidr": _Parser.cidr,
}


def _affix(
    cls: type[Prefix | Suffix], op: str, spec: object, operand: object, path: str
) -> Predicate:
    if isinstance(operand, dict):
        if len(operand) == 1 and "equals-ignore-case" in operand:
            here = field_path(path, "equals-ignore-case")
            text = _string(operand["equals-ignore-case"], "equals-ignore-case", here)
            return cls(op, spec, text.lower(), True)
        raise InvalidPattern(f'{op} takes a string or {{"equals-ignore-case": string}}', path=path)
    return cls(op, spec, _string(operand, op, path))


def _string(value: object, op: str, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidPattern(f"{op} takes a string, not {_kind(value)}", path=path)
    return value


def _strings(value: object, op: str, path: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        for i, item in enumerate(value):
            _string(item, op, f"{path}[{i}]")
        return value
    raise InvalidPattern(f"{op} takes a string or a non-empty list of strings", path=path)


def _finite(value: object, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidPattern(f"{value} is not a JSON number", path=path)


def _comparable(value: object, path: str) -> float:
    """Return the double a pattern's number is compared as, or refuse it.

    event-ruler refuses a number it cannot compare ("Cannot compare number"): one a
    double does not hold as written (``2**53 + 1``) or beyond the doubles' range.
    """
    _finite(value, path)
    double: float | None = as_double(value)
    if double is None:
        raise InvalidPattern(
            f"{brief(value, 40)} cannot be compared as a number: a double does not hold it exactly",
            path=path,
        )
    return double


def _ip_literal(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Read text as event-ruler does an IP address literal (its regexes first)."""
    if not (_IPV4_TEXT.fullmatch(text) or _IPV6_TEXT.fullmatch(text)):
        return None
    return parse_ip(text)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if is_number(value):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
