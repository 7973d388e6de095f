"""``EventBus.explain``: why a consumer group's (or a pattern's) filter refused an event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core import Event
from ..errors import ConfigurationError
from ._matching import SupportsMatch

if TYPE_CHECKING:
    from ..filters import Explanation

__all__ = ["explain_for"]


def explain_for(
    matcher: SupportsMatch | None, event: Event | Mapping[str, Any], *, what: str
) -> Explanation:
    """Explain ``matcher``'s verdict on ``event`` (``None``: the filter of every event).

    Raises:
        ConfigurationError: ``matcher`` is a custom object, not a compiled pattern.
    """
    from ..filters import BranchExplanation, Explanation, Matcher, explain  # loaded on use

    if matcher is None:
        branch = BranchExplanation(True, (), f"{what} has no pattern: every event matches")
        return Explanation(True, (branch,))
    if not isinstance(matcher, Matcher):
        raise ConfigurationError(
            f"{what} filters with a custom {type(matcher).__name__}, which explain() cannot"
            " look into; pass the pattern dict as pattern= instead"
        )
    return explain(matcher, event)
