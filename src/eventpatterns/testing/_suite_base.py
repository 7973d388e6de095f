"""What every conformance suite shares: the async libraries, the clock, time travel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..bus import BusBackend, EventBus
from ._clock import ManualClock

__all__ = ["BackendSuiteBase", "SuiteBase", "close"]


class SuiteBase:
    """Base of the role suites: runs each test per async library, with a manual clock.

    Subclasses implement ``make_backend(clock, *, max_entries=None,
    max_message_size=None)`` returning a fresh, empty backend that reads time from
    ``clock``: visibility timeouts, retry delays and the dedupe window must follow it.
    ``max_entries``, when given, bounds the log's history; ``max_message_size``, when
    given, is the largest event ``append`` accepts.
    """

    pytestmark = pytest.mark.anyio

    #: Subclasses narrow this to the async libraries their client supports.
    anyio_backends: tuple[str, ...] = ("asyncio", "trio")

    @classmethod
    def pytest_generate_tests(cls, metafunc: pytest.Metafunc) -> None:
        """Run each test once per async library in :attr:`anyio_backends`."""
        if "anyio_backend" in metafunc.fixturenames:
            metafunc.parametrize("anyio_backend", cls.anyio_backends)

    async def advance(self, clock: ManualClock, seconds: float) -> None:
        """Move time forward (override if the backend also needs real time to pass)."""
        clock.advance(seconds)

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()


class BackendSuiteBase(SuiteBase):
    """Base of the suites that need a whole backend: its factory and the two fixtures."""

    async def make_backend(
        self,
        clock: ManualClock,
        *,
        max_entries: int | None = None,
        max_message_size: int | None = None,
    ) -> BusBackend:
        """Return a fresh, empty backend that reads time from ``clock``.

        Args:
            clock: The test's clock; visibility timeouts and delays must follow it.
            max_entries: When given, keep at most this many entries in the log.
            max_message_size: When given, reject larger events with ``EventTooLarge``.
        """
        raise NotImplementedError("subclasses return their backend here")

    @pytest.fixture
    async def backend(self, clock: ManualClock) -> AsyncIterator[BusBackend]:
        backend = await self.make_backend(clock)
        yield backend
        await backend.aclose()

    @pytest.fixture
    async def bus(self, backend: BusBackend) -> AsyncIterator[EventBus]:
        async with EventBus(backend) as bus:
            yield bus


async def close(backend: Any) -> None:
    """Close a backend the suite made (a role protocol alone does not declare ``aclose``)."""
    aclose = getattr(backend, "aclose", None)
    if aclose is not None:
        await aclose()
