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
    canon,
    is_number,
)

__all__ = ["DEFAULT_LIMITS", "Limits", "field_path", "load_json", "parse_pattern"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a pattern may ask for; over a bound is ``InvalidPattern``.

    Attributes:
        max_pattern_chars: Longest pattern, as compact JSON (EventBridge: 4096).
        max_wildcards: Most ``*`` in one ``wildcard`` value (its complexity).
        max_combinations: Most branches once every ``$or`` is expanded.
        max_depth: Deepest nesting of objects.
    """

    max_pattern_chars: int = 4096
    max_wildcards: int = 10
    max_combinations: int = 1000
    max_depth: int = 64


DEFAULT_LIMITS: Final = Limits()
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_\-$]+")
_NUMERIC_OPS: Final = frozenset({"<", "<=", "=", ">", ">="})


def field_path(base: str, key: str) -> str:
    """Append an object key to a JSON path (``$.detail`` + ``price``)."""
    if _SIMPLE_KEY.fullmatch(key):
        return f"{base}.{key}"
    return f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def load_json(text: str | bytes, *, what: str = "pattern") -> Any:
    """Decode JSON text, raising ``InvalidPattern`` when it is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidPattern(f"the {what} is not valid JSON ({exc})") from exc


def parse_pattern(pattern: object, limits: Limits = DEFAULT_LIMITS) -> tuple[Conjunction, ...]:
    """Validate a pattern and expand it into its ``$or`` branches.

    Args:
        pattern: The pattern, a JSON object (a ``dict``) or its JSON text.
        limits: Size and complexity bounds.

    Returns:
        The branches; the event matches when any branch does.

    Raises:
        InvalidPattern: The pattern is malformed or over a limit.
    """
    if isinstance(pattern, (str, bytes)):
        pattern = load_json(pattern)
    if not isinstance(pattern, dict):
        raise InvalidPattern("a pattern must be a JSON object")
    try:
        size = len(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        size = 0  # not JSON: the walk below says where
    parser = _Parser(limits)
    branches = parser.parse_object(pattern, (), "$", 0) if pattern else [[]]
    if size > limits.max_pattern_chars:
        raise InvalidPattern(
            f"the pattern is {size} characters long; the limit is {limits.max_pattern_chars}"
        )
    return tuple(Conjunction(tuple(leaves)) for leaves in branches)


class _Parser:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits

    def parse_object(
        self, obj: dict[Any, Any], keys: tuple[str, ...], path: str, depth: int
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
                raise InvalidPattern(f"object keys must be strings, not {key!r}", path=path)
            here = field_path(path, key)
            if key == "$or":
                factors.append(self.disjunction(value, keys, here, depth))
            elif isinstance(value, dict):
                factors.append(self.parse_object(value, (*keys, key), here, depth + 1))
            elif isinstance(value, list):
                base.append(self.leaf(value, (*keys, key), here))
            else:
                raise InvalidPattern(
                    f"a field must hold an array of alternatives or an object, not {_kind(value)}",
                    path=here,
                )
        result = [base]
        for alternatives in factors:
            result = [r + a for r in result for a in alternatives]
            if len(result) > self.limits.max_combinations:
                raise InvalidPattern(
                    f"the $or branches expand to more than {self.limits.max_combinations}"
                    " combinations",
                    path=path,
                )
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
            out.extend(self.parse_object(item, keys, here, depth + 1))
        return out

    def leaf(self, values: list[Any], keys: tuple[str, ...], path: str) -> Leaf:
        if not values:
            raise InvalidPattern("an array of alternatives must not be empty", path=path)
        return Leaf(keys, tuple(self.alternative(v, f"{path}[{i}]") for i, v in enumerate(values)))

    def alternative(self, item: object, path: str) -> Predicate:
        if item is None or isinstance(item, (str, bool)):
            return Exact("equals", item, canon(item))
        if is_number(item):
            _finite(item, path)
            return Exact("equals", item, canon(item))
        if isinstance(item, dict):
            if len(item) != 1:
                raise InvalidPattern("an operator object must hold exactly one operator", path=path)
            ((op, operand),) = item.items()
            if not isinstance(op, str) or op not in _OPERATORS:
                raise InvalidPattern(f"unrecognized operator {op!r}", path=path)
            return _OPERATORS[op](self, item, operand, field_path(path, op))
        if isinstance(item, list):
            raise InvalidPattern("alternatives cannot be arrays", path=path)
        raise InvalidPattern(f"unsupported value {_kind(item)}", path=path)

    # ------------------------------------------------------------------ operators

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
        inner: tuple[Predicate, ...]
        if isinstance(operand, str) or is_number(operand):
            _finite(operand, path)
            inner = (Exact("equals", operand, canon(operand)),)
        elif isinstance(operand, list):
            if not operand:
                raise InvalidPattern("anything-but takes a non-empty list", path=path)
            strings = all(isinstance(v, str) for v in operand)
            if not strings and not all(is_number(v) for v in operand):
                raise InvalidPattern(
                    "anything-but takes a list of only strings or only numbers", path=path
                )
            for i, v in enumerate(operand):
                _finite(v, f"{path}[{i}]")
            inner = tuple(Exact("equals", v, canon(v)) for v in operand)
        elif isinstance(operand, dict) and len(operand) == 1:
            ((op, value),) = operand.items()
            here = field_path(path, str(op))
            if op in ("prefix", "suffix"):
                text = _string(value, op, here)
                if not text:
                    raise InvalidPattern(f"anything-but {op} must not be empty", path=here)
                cls = Prefix if op == "prefix" else Suffix
                inner = (cls(op, value, text),)
            elif op in ("equals-ignore-case", "wildcard"):
                texts = _strings(value, op, here)
                if op == "wildcard":
                    inner = tuple(
                        self.glob(t, t, f"{here}[{i}]" if isinstance(value, list) else here)
                        for i, t in enumerate(texts)
                    )
                else:
                    inner = tuple(EqualsIgnoreCase(op, t, t.lower()) for t in texts)
            else:
                raise InvalidPattern(f"unsupported operator {op!r} inside anything-but", path=here)
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
        for i in range(0, len(operand), 2):
            op, number = operand[i], operand[i + 1]
            if not isinstance(op, str) or op not in _NUMERIC_OPS:
                raise InvalidPattern(
                    f"unknown numeric operator {op!r}; use <, <=, =, >, >=", path=f"{path}[{i}]"
                )
            if not is_number(number):
                raise InvalidPattern(f"{op} needs a number", path=f"{path}[{i + 1}]")
            _finite(number, f"{path}[{i + 1}]")
        first, low = operand[0], operand[1]
        if len(operand) == 2:
            if first == "=":
                return Exact("numeric", spec, canon(low))
            if first in (">", ">="):
                return Numeric("numeric", spec, low, first == ">=", None, False)
            return Numeric("numeric", spec, None, False, low, first == "<=")
        second, high = operand[2], operand[3]
        if first not in (">", ">=") or second not in ("<", "<="):
            raise InvalidPattern(
                "a numeric range is a lower bound (> or >=) then an upper bound (< or <=)",
                path=path,
            )
        if not low < high:
            raise InvalidPattern(
                f"the lower bound {low} must be less than the upper bound {high}", path=path
            )
        return Numeric("numeric", spec, low, first == ">=", high, second == "<=")

    def exists(self, spec: object, operand: object, path: str) -> Predicate:
        if not isinstance(operand, bool):
            raise InvalidPattern("exists takes true or false", path=path)
        return Exists("exists", spec, operand)

    def cidr(self, spec: object, operand: object, path: str) -> Predicate:
        text = _string(operand, "cidr", path)
        try:
            network = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError as exc:
            raise InvalidPattern(f"invalid CIDR block {text!r}", path=path) from exc
        return Cidr("cidr", spec, network)


_OPERATORS: Final = {
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
