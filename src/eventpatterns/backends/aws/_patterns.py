"""Translate a filter pattern into the EventBridge pattern of a consumer group's rule.

The filter engine speaks the EventBridge pattern language over the CloudEvent's JSON,
plus a few extensions of its own. The AWS bus carries the CloudEvent whole in
``detail``, so a pattern translates by nesting it under ``detail`` — once every
operator it uses is one EventBridge itself evaluates. Anything else is refused with
:class:`~eventpatterns.errors.InvalidPattern` naming the path: a rule that matched
more or less than the pattern would silently change what a group receives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ...errors import InvalidPattern

__all__ = ["EVENTBRIDGE_OPERATORS", "MAX_RULE_PATTERN", "MATCH_ALL", "to_eventbridge"]

#: Operators EventBridge evaluates (AWS EventBridge User Guide, "Content filtering in
#: Amazon EventBridge event patterns"); the engine's extensions are not among them.
EVENTBRIDGE_OPERATORS = frozenset(
    {"prefix", "suffix", "equals-ignore-case", "anything-but", "exists", "wildcard",
     "numeric", "cidr"}
)  # fmt: skip

#: Inside ``anything-but``, EventBridge takes values, lists or these operators.
_ANYTHING_BUT = frozenset({"prefix", "suffix", "equals-ignore-case", "wildcard"})

#: EventBridge's limit on a rule's ``EventPattern`` (API reference, ``PutRule``).
MAX_RULE_PATTERN = 4096

#: Every CloudEvent the bus publishes (its ``specversion`` is ``"1.0"``).
MATCH_ALL: dict[str, Any] = {"detail": {"specversion": ["1.0"]}}


def to_eventbridge(pattern: object) -> dict[str, Any]:
    """Return the EventBridge pattern that selects what ``pattern`` matches.

    Args:
        pattern: ``None`` (every event), an EventBridge-style pattern over the
            CloudEvent as a dict or JSON text, or a compiled
            :class:`~eventpatterns.filters.Matcher`.

    Returns:
        The rule's ``EventPattern``, as a dict.

    Raises:
        InvalidPattern: The pattern is malformed, uses an operator EventBridge does
            not evaluate (``path`` names it), is AppSync filter groups, or is longer
            than EventBridge accepts.
    """
    if pattern is None:
        return {"detail": {"specversion": ["1.0"]}}  # a fresh copy of MATCH_ALL
    from ...filters import Matcher
    from ...filters import compile as compile_pattern

    if isinstance(pattern, Matcher):
        pattern = pattern.pattern
    elif not isinstance(pattern, (Mapping, str, bytes)):
        raise InvalidPattern(
            f"a {type(pattern).__name__} cannot be translated into an EventBridge rule; "
            "pass a pattern dict",
        )
    compile_pattern(pattern)  # validates with the engine's own parser first
    if isinstance(pattern, (str, bytes)):
        pattern = json.loads(pattern)
    assert isinstance(pattern, Mapping)  # noqa: S101 - compile() accepted it as a pattern
    if "filterGroup" in pattern:
        raise InvalidPattern("AppSync filter groups cannot be translated into an EventBridge rule")
    _check(pattern, "$")
    detail = dict(pattern)
    if "specversion" not in detail:
        detail["specversion"] = ["1.0"]
    translated = {"detail": detail}
    size = len(json.dumps(translated, separators=(",", ":")))
    if size > MAX_RULE_PATTERN:
        raise InvalidPattern(
            f"the translated rule pattern is {size} characters; EventBridge accepts at "
            f"most {MAX_RULE_PATTERN}"
        )
    return translated


def _check(node: Mapping[str, Any], path: str) -> None:
    for key, value in node.items():
        where = f"{path}.{key}"
        if key == "$or":
            for index, branch in enumerate(value):
                _check(branch, f"{where}[{index}]")
        elif isinstance(value, Mapping):
            _check(value, where)
        else:
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    _check_operator(item, f"{where}[{index}]")


def _check_operator(spec: Mapping[str, Any], path: str) -> None:
    for op, operand in spec.items():
        if op not in EVENTBRIDGE_OPERATORS:
            raise InvalidPattern(
                f"operator {op!r} is an extension of eventpatterns' filter engine that "
                "EventBridge rules do not evaluate; filter in the consumer instead",
                path=path,
            )
        if op == "anything-but" and isinstance(operand, Mapping):  # pragma: no cover
            # The engine accepts only these inside anything-but today; kept so that an
            # engine extension there is refused here rather than sent to EventBridge.
            for inner in operand:
                if inner not in _ANYTHING_BUT:
                    raise InvalidPattern(
                        f"'anything-but' with {inner!r} is not evaluated by EventBridge",
                        path=path,
                    )
