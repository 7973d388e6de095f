"""The clock every time-dependent part of eventpatterns reads, so tests can inject one."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time and sleeping, injectable for deterministic tests.

    ``eventpatterns.testing.ManualClock`` implements it with time that only moves
    when a test advances it.
    """

    def time(self) -> float:
        """Return the current time in seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``seconds`` have passed on this clock (a checkpoint even for 0)."""
        ...


class SystemClock:
    """The real clock: :func:`time.time` and :func:`anyio.sleep`."""

    def time(self) -> float:
        """Return :func:`time.time`."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep with :func:`anyio.sleep`."""
        await anyio.sleep(max(seconds, 0.0))
