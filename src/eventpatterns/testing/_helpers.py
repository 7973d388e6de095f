"""Small helpers the conformance suites use, and your tests can too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio

from ..core import Event

__all__ = ["TypeMatcher", "eventually", "make_events"]


class TypeMatcher:
    """A minimal matcher (``matches(event_json)``) selecting one event type.

    For tests that should not depend on the filter engine. (It was called ``TypeIs``,
    which shadowed :data:`typing.TypeIs`.)

    Example:
        >>> TypeMatcher("order.placed").matches({"type": "order.placed"})
        True
    """

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    def matches(self, event: dict[str, Any]) -> bool:
        """Tell whether the event has this type."""
        return bool(event.get("type") == self.event_type)


async def eventually(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait (in real time, bounded) until ``predicate()`` holds; fail the test if it never does.

    It polls because the states tests wait for (counters, stats) have no event to
    wait on; the bound turns a hang into a failure. To wait until a consumer has
    handled what was published, prefer ``await consumer.drain()``.
    """
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - see above
            await anyio.sleep(0.002)


def make_events(count: int, *, type: str = "test.event", start: int = 0) -> list[Event]:  # noqa: A002
    """Build ``count`` small events numbered in ``data["n"]``."""
    return [Event(type=type, source="/conformance", data={"n": start + i}) for i in range(count)]
