"""The EventBridge event-pattern language: validate, compile, index, explain.

Sans-I/O: plain synchronous code. See ``docs/filters.md``.

* :func:`compile` turns a pattern (EventBridge, or AppSync filter groups) into a
  :class:`Matcher`;
* :class:`PatternIndex` holds many patterns in one shared state machine: matching
  costs what the event's partial matches cost, not one test per pattern (it grows
  with the matches returned, ranges holding the value, and, the weakest case,
  conditions below an array of objects, verified element by element);
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
