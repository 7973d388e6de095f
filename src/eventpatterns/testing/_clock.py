"""A clock that moves only when a test says so."""

from __future__ import annotations

import heapq
import itertools

import anyio
import anyio.lowlevel

__all__ = ["ManualClock"]


class ManualClock:
    """Deterministic :class:`~eventpatterns.core.Clock` for tests.

    ``time()`` stays put until :meth:`advance`; ``sleep()`` returns once the clock has
    been advanced past its deadline. Inject it into backends and pattern façades to
    test visibility timeouts, backoff and retention without real sleeps.

    Example:
        >>> clock = ManualClock(start=100.0)
        >>> clock.advance(2.5)
        >>> clock.time()
        102.5
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()

    def time(self) -> float:
        """Return the current (manual) time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock is advanced ``seconds`` past now."""
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), event))
        await event.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        sleepers = self._sleepers
        while sleepers and sleepers[0][0] <= self._now:
            heapq.heappop(sleepers)[2].set()

    @property
    def sleepers(self) -> int:
        """How many sleepers are waiting (including cancelled ones not yet due)."""
        return len(self._sleepers)
