"""``compile``: a pattern in, a :class:`Matcher` out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Union

from ._model import Conjunction, Node, brief
from ._parse import DEFAULT_LIMITS, Limits, check_size, load_json, parse_pattern

if TYPE_CHECKING:
    from ..core import Event

__all__ = ["EventLike", "Matcher", "as_event_dict", "compile"]

EventLike = Union[Mapping[str, Any], "Event"]


def as_event_dict(event: object) -> Mapping[str, Any]:
    """Return the JSON object a pattern is matched against.

    An :class:`~eventpatterns.core.Event` becomes its CloudEvents structured form
    (``to_dict()``); a mapping is used as is; any other JSON value (an array, a
    string...) is an event with no fields.
    """
    if isinstance(event, Mapping):
        return event
    from ..core import Event  # light; imported lazily to keep this module sans-I/O

    if isinstance(event, Event):
        return event.to_dict()
    return {}


class Matcher:
    """A compiled pattern: tells whether an event matches.

    Build one with :func:`compile`; it is immutable and safe to share between
    threads.

    Example:
        >>> m = compile({"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}})
        >>> m.matches({"source": "shop", "detail": {"total": 250}})
        True
    """

    __slots__ = ("_branches", "_pattern", "_trees")

    def __init__(self, branches: tuple[Conjunction, ...], pattern: object) -> None:
        self._branches = branches
        self._trees: tuple[Node, ...] | None = None  # built on the first match
        self._pattern = pattern

    @property
    def pattern(self) -> object:
        """The pattern this matcher was compiled from."""
        return self._pattern

    @property
    def top_level_keys(self) -> frozenset[str]:
        """The event's top-level keys the pattern reads; no other key affects the verdict.

        Callers holding an event in another form (the bus holds :class:`Event`
        objects) may build a dict of just these keys instead of the whole JSON form.
        """
        return frozenset(leaf.path[0] for branch in self._branches for leaf in branch.leaves)

    @property
    def branches(self) -> tuple[Conjunction, ...]:
        """The conjunctions (``$or`` expanded); the event matches if any does."""
        return self._branches

    def matches(self, event: EventLike | object) -> bool:
        """Tell whether the event matches the pattern.

        Args:
            event: A JSON-like ``dict`` (the fast path) or an
                :class:`~eventpatterns.core.Event`.
        """
        doc = event if type(event) is dict else as_event_dict(event)
        trees = self._trees
        if trees is None:
            trees = self._trees = tuple(b.tree for b in self._branches)
        for tree in trees:  # noqa: SIM110 - a plain loop is faster here
            if tree.match(doc, doc):
                return True
        return False

    __call__ = matches

    def __repr__(self) -> str:
        return f"Matcher({brief(self._pattern, 200)})"


def compile(  # noqa: A001 - the public name is the contract (issue 3)
    pattern: object, *, limits: Limits = DEFAULT_LIMITS
) -> Matcher:
    """Validate and compile an event pattern.

    Accepts an EventBridge event pattern, or AppSync enhanced subscription
    filters (``{"filterGroup": [...]}``), as a ``dict`` or JSON text.

    Args:
        pattern: The pattern.
        limits: Size and complexity bounds.

    Returns:
        A reusable matcher.

    Raises:
        InvalidPattern: The pattern is malformed; ``path`` names the offending part.

    Example:
        >>> compile({"detail-type": [{"prefix": "Order"}]}).matches({"detail-type": "OrderPlaced"})
        True
    """
    from ._appsync import is_appsync, parse_appsync

    if isinstance(pattern, (str, bytes)):
        pattern = load_json(pattern, limit=limits.max_pattern_chars)
    if isinstance(pattern, dict) and is_appsync(pattern):
        check_size(pattern, limits.max_pattern_chars, what="filter")
        return Matcher(parse_appsync(pattern), pattern)
    return Matcher(parse_pattern(pattern, limits), pattern)
