"""AppSync enhanced subscription filters and SNS filter policies, on the same engine.

AppSync ("Defining enhanced subscriptions filters in AWS AppSync"): a
``filterGroup`` list of groups, OR-ed; each group's ``filters`` are AND-ed; each
filter is ``{"fieldName", "operator", "value"}``. Limits: 10 groups, 5 filters per
group, 5 values for ``in``/``notIn``, 20 for ``containsAny``, field paths of at
most 5 levels and 256 characters.

SNS filter policies use EventBridge's syntax; they differ in scope
(``MessageAttributes``, flat, or ``MessageBody``) and limits (5 keys, 150
combinations).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from ..errors import InvalidPattern
from ._matcher import Matcher
from ._model import (
    AnythingBut,
    Conjunction,
    Contains,
    Exact,
    Exists,
    Leaf,
    NotContains,
    Numeric,
    Predicate,
    Prefix,
    StringRange,
    as_double,
    brief,
    canon,
    is_number,
)
from ._parse import DEFAULT_LIMITS, Limits, field_path, load_json, parse_pattern

__all__ = ["compile_sns", "is_appsync", "parse_appsync", "sns_message_attributes"]

MAX_GROUPS: Final = 10
MAX_FILTERS: Final = 5
MAX_IN_VALUES: Final = 5
MAX_CONTAINS_ANY: Final = 20
MAX_FIELD_DEPTH: Final = 5
MAX_FIELD_CHARS: Final = 256
SNS_MAX_KEYS: Final = 5
SNS_MAX_COMBINATIONS: Final = 150

_SCALAR = (str, int, float, bool, type(None))


def is_appsync(pattern: object) -> bool:
    """Tell whether a pattern is in AppSync's ``{"filterGroup": [...]}`` form."""
    return (
        isinstance(pattern, dict)
        and set(pattern) == {"filterGroup"}
        and (
            isinstance(pattern["filterGroup"], list)
            and all(isinstance(g, dict) and "filters" in g for g in pattern["filterGroup"])
        )
    )


def parse_appsync(spec: Mapping[str, Any]) -> tuple[Conjunction, ...]:
    """Compile AppSync filter groups into branches (one per group).

    Raises:
        InvalidPattern: The filter breaks AppSync's rules or limits.
    """
    groups = spec.get("filterGroup")
    if not isinstance(groups, list) or not groups:
        raise InvalidPattern("filterGroup takes a non-empty array", path="$.filterGroup")
    if len(groups) > MAX_GROUPS:
        raise InvalidPattern(
            f"at most {MAX_GROUPS} filter groups are allowed", path="$.filterGroup"
        )
    branches = []
    for g, group in enumerate(groups):
        gpath = f"$.filterGroup[{g}]"
        if not isinstance(group, dict) or set(group) != {"filters"}:
            raise InvalidPattern('a filter group is {"filters": [...]}', path=gpath)
        filters = group["filters"]
        if not isinstance(filters, list) or not filters:
            raise InvalidPattern("filters takes a non-empty array", path=f"{gpath}.filters")
        if len(filters) > MAX_FILTERS:
            raise InvalidPattern(
                f"at most {MAX_FILTERS} filters are allowed in a group", path=f"{gpath}.filters"
            )
        leaves = tuple(_filter(f, f"{gpath}.filters[{i}]") for i, f in enumerate(filters))
        branches.append(Conjunction(leaves))
    return tuple(branches)


def _filter(spec: object, path: str) -> Leaf:
    if (
        not isinstance(spec, dict)
        or not {"fieldName", "operator"} <= set(spec)
        or not set(spec) <= {"fieldName", "operator", "value"}
    ):
        raise InvalidPattern(
            'a filter is {"fieldName": ..., "operator": ..., "value": ...}', path=path
        )
    name, op = spec["fieldName"], spec["operator"]
    if not isinstance(name, str) or not name or len(name) > MAX_FIELD_CHARS:
        raise InvalidPattern(
            f"fieldName must be a string of 1 to {MAX_FIELD_CHARS} characters",
            path=f"{path}.fieldName",
        )
    keys = tuple(name.split("."))
    if len(keys) > MAX_FIELD_DEPTH or not all(keys):
        raise InvalidPattern(
            f"fieldName must be a dotted path of at most {MAX_FIELD_DEPTH} non-empty names",
            path=f"{path}.fieldName",
        )
    if not isinstance(op, str) or op not in _OPERATORS:
        raise InvalidPattern(
            f"unknown operator {brief(op, 40)}; use one of {', '.join(_OPERATORS)}",
            path=f"{path}.operator",
        )
    if "value" not in spec:
        raise InvalidPattern(f"{op} needs a value", path=f"{path}.value")
    alternatives = _OPERATORS[op](op, spec["value"], f"{path}.value")
    return Leaf(keys, alternatives)


def _scalar(op: str, value: object, path: str) -> object:
    if not isinstance(value, _SCALAR) or (isinstance(value, float) and value != value):
        raise InvalidPattern(f"{op} takes a string, number, boolean or null", path=path)
    return value


def _ordered(op: str, value: object, path: str) -> str | float:
    """A comparison operand: a number (compared as a double) or a string."""
    if isinstance(value, str):
        return value
    if is_number(value):
        double = as_double(value)
        if double is not None:
            return double
        raise InvalidPattern(
            f"{op}: {brief(value, 40)} cannot be compared as a number (a double does not hold it)",
            path=path,
        )
    raise InvalidPattern(f"{op} takes a number or a string", path=path)


def _values(op: str, value: object, path: str, limit: int) -> list[object]:
    # AWS: in / notIn take strings and numbers (not booleans, not null), at most 5.
    if not isinstance(value, list) or not value or len(value) > limit:
        raise InvalidPattern(f"{op} takes an array of 1 to {limit} values", path=path)
    for i, v in enumerate(value):
        if not (isinstance(v, str) or (is_number(v) and v == v)):
            raise InvalidPattern(f"{op} takes strings and numbers", path=f"{path}[{i}]")
    return value


# The negative operators (ne, notIn, notContains) also match an event that lacks the
# field, as AppSync's JavaScript-like comparison of a missing value does (it is not
# equal to anything); EventBridge's anything-but never matches a missing field.
_ABSENT = Exists("exists", {"exists": False}, False)


def _eq(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    return (Exact(op, value, canon(_scalar(op, value, path))),)


def _ne(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    return (AnythingBut(op, value, _eq(op, value, path)), _ABSENT)


def _in(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    return tuple(Exact(op, v, canon(v)) for v in _values(op, value, path, MAX_IN_VALUES))


def _not_in(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    return (AnythingBut(op, value, _in(op, value, path)), _ABSENT)


def _range(
    op: str,
    spec: object,
    bounds: tuple[str | float | None, str | float | None],
    inclusive: tuple[bool, bool],
) -> Predicate:
    low, high = bounds
    if isinstance(low, str) or isinstance(high, str):
        return StringRange(op, spec, low, inclusive[0], high, inclusive[1])  # type: ignore[arg-type]
    return Numeric(op, spec, low, inclusive[0], high, inclusive[1])


def _compare(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    # AWS orders numbers as numbers and strings as strings (ISO dates, say).
    bound = _ordered(op, value, path)
    if op in ("gt", "ge"):
        return (_range(op, value, (bound, None), (op == "ge", False)),)
    return (_range(op, value, (None, bound), (False, op == "le")),)


def _between(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    if not isinstance(value, list) or len(value) != 2:
        raise InvalidPattern("between takes [low, high]", path=path)
    low, high = (_ordered(op, v, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(low, str) is not isinstance(high, str):
        raise InvalidPattern("between takes two numbers or two strings", path=path)
    if low > high:  # type: ignore[operator]
        raise InvalidPattern(
            f"between: {brief(value[0], 40)} is greater than {brief(value[1], 40)}", path=path
        )
    return (_range(op, value, (low, high), (True, True)),)


def _begins_with(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    if not isinstance(value, str):
        raise InvalidPattern("beginsWith takes a string", path=path)
    return (Prefix(op, value, value),)


def _contains_one(op: str, value: object, path: str) -> Predicate:
    # AWS: a substring of a string, an element of an array (the whole element).
    if isinstance(value, str):
        return Contains(op, value, ("", value, ""), value)
    if is_number(value) and value == value:
        return Exact(op, value, canon(value))
    raise InvalidPattern(f"{op} takes a string or a number", path=path)


def _contains(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    return (_contains_one(op, value, path),)


def _not_contains(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    return (NotContains(op, value, _contains(op, value, path)), _ABSENT)


def _contains_any(op: str, value: object, path: str) -> tuple[Predicate, ...]:
    # AWS: the set intersection of an array with the values, element by whole element.
    if not isinstance(value, list) or not value or len(value) > MAX_CONTAINS_ANY:
        raise InvalidPattern(
            f"containsAny takes an array of 1 to {MAX_CONTAINS_ANY} values", path=path
        )
    return tuple(_contains_one(op, v, f"{path}[{i}]") for i, v in enumerate(value))


_OPERATORS: Final = {
    "eq": _eq,
    "ne": _ne,
    "in": _in,
    "notIn": _not_in,
    "gt": _compare,
    "ge": _compare,
    "lt": _compare,
    "le": _compare,
    "between": _between,
    "beginsWith": _begins_with,
    "contains": _contains,
    "notContains": _not_contains,
    "containsAny": _contains_any,
}


def compile_sns(
    policy: object,
    *,
    scope: Literal["MessageAttributes", "MessageBody"] = "MessageAttributes",
    limits: Limits = DEFAULT_LIMITS,
) -> Matcher:
    """Compile an SNS subscription filter policy.

    With ``scope="MessageAttributes"`` (SNS's default) the policy is flat and is
    matched against :func:`sns_message_attributes` of a message's attributes; with
    ``"MessageBody"`` it is matched against the (JSON) message body, like an
    EventBridge pattern.

    Raises:
        InvalidPattern: The policy is malformed, nests objects in attribute scope, or
            is over SNS's limits (5 keys, 150 combinations).
    """
    if isinstance(policy, (str, bytes)):
        policy = load_json(policy, what="filter policy", limit=limits.max_pattern_chars)
    branches = parse_pattern(policy, limits)
    if scope == "MessageAttributes":
        _flat(policy, "$")
    keys = {leaf.path for branch in branches for leaf in branch.leaves}
    if len(keys) > SNS_MAX_KEYS:
        raise InvalidPattern(f"an SNS filter policy may use at most {SNS_MAX_KEYS} keys")
    combinations = 0
    for branch in branches:
        product = 1
        for leaf in branch.leaves:
            product *= len(leaf.alternatives)
        combinations += product
    if combinations > SNS_MAX_COMBINATIONS:
        raise InvalidPattern(
            f"the filter policy has {combinations} combinations; SNS allows {SNS_MAX_COMBINATIONS}"
        )
    return Matcher(branches, policy)


def _flat(policy: object, path: str) -> None:
    """Refuse a nested object in a MessageAttributes policy (``$or`` branches too)."""
    if not isinstance(policy, dict):
        return
    for key, value in policy.items():
        if key == "$or" and isinstance(value, list):
            for i, branch in enumerate(value):
                _flat(branch, f"{path}.$or[{i}]")
        elif isinstance(value, dict):
            raise InvalidPattern(
                "a MessageAttributes filter policy cannot nest objects",
                path=field_path(path, str(key)),
            )


def sns_message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Turn SNS message attributes into the object an attribute policy matches.

    ``{"n": {"Type": "Number", "Value": "5"}}`` becomes ``{"n": 5}``; ``String.Array``
    values are decoded; ``Binary`` attributes are left out (SNS never matches them);
    plain values pass through.
    """
    out: dict[str, Any] = {}
    for name, attr in attributes.items():
        if not isinstance(attr, Mapping):
            out[name] = attr
            continue
        kind = str(attr.get("Type", attr.get("DataType", "String")))
        raw = attr.get("Value", attr.get("StringValue"))
        if kind.startswith("Binary") or raw is None:
            continue
        if kind.startswith("Number"):
            out[name] = _sns_number(raw)
        elif kind.startswith("String.Array"):
            try:
                out[name] = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                out[name] = raw
        else:
            out[name] = raw
    return out


def _sns_number(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw
