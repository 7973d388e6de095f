"""The EventBridge event-pattern language: validate, compile, index, explain.

Sans-I/O: plain synchronous code. See ``docs/filters.md``.

* :func:`compile` turns a pattern (EventBridge, or AppSync filter groups) into a
  :class:`Matcher`;
* :class:`PatternIndex` holds many patterns and matches an event against all of
  them at a cost that does not grow with their number;
* :func:`explain` says why an event did or did not match.
"""

from ._appsync import compile_sns, sns_message_attributes
from ._explain import BranchExplanation, Check, Explanation, explain
from ._index import PatternIndex
from ._matcher import Matcher, compile  # noqa: A004 - the contract's name
from ._parse import Limits

__all__ = [
    "BranchExplanation",
    "Check",
    "Explanation",
    "Limits",
    "Matcher",
    "PatternIndex",
    "compile",
    "compile_sns",
    "explain",
    "sns_message_attributes",
]
