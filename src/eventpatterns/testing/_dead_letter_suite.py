"""The conformance suite of the :class:`~eventpatterns.bus.DeadLetters` role."""

from __future__ import annotations

import anyio
import pytest

from ..bus import Backoff, BusBackend, DeadLetter, EventBus, Retry
from ..core import Event
from ..errors import DeadLetterNotFound, GroupNotFound
from ._clock import ManualClock
from ._helpers import eventually, make_events
from ._suite_base import BackendSuiteBase

__all__ = ["DeadLetterSuite"]


async def _dead(backend: BusBackend, group: str, count: int, *, error: str) -> list[DeadLetter]:
    """Publish ``count`` events to a new group and dead-letter each at its first delivery."""
    await backend.create_group(group, start="latest")
    await backend.append(make_events(count))
    deliveries = await backend.receive(group, "c", max_count=count, visibility_timeout=30, wait=0)
    return [await backend.dead_letter(group, d.receipt, error=error) for d in deliveries]


class DeadLetterSuite(BackendSuiteBase):
    """Conformance tests of dead letters: record, list, redrive, discard, id checks."""

    async def test_dead_letter_keeps_event_error_and_attempts(
        self, backend: BusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        (position,) = await backend.append(make_events(1))
        (first,) = await backend.receive("g", "c", max_count=1, visibility_timeout=5, wait=0)
        await self.advance(clock, 6)  # not acked: delivered again, attempt 2
        (second,) = await backend.receive("g", "c", max_count=1, visibility_timeout=5, wait=0)
        letter = await backend.dead_letter("g", second.receipt, error="ValueError: bad")
        assert (letter.group, letter.position, letter.event) == ("g", position, first.event)
        assert (letter.error, letter.attempts) == ("ValueError: bad", 2)
        assert letter.failed_at == clock.time()
        assert await backend.dead_letters("g", limit=10) == [letter]
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.dead_letters) == (0, 1)  # dead-lettering acked it

    async def test_dead_letters_are_listed_oldest_first_up_to_limit(
        self, backend: BusBackend
    ) -> None:
        letters = await _dead(backend, "g", 5, error="boom")
        assert len({letter.id for letter in letters}) == 5
        assert await backend.dead_letters("g", limit=3) == letters[:3]
        assert await backend.dead_letters("g", limit=100) == letters

    async def test_dead_letter_of_an_unknown_receipt_raises(self, backend: BusBackend) -> None:
        await backend.create_group("g", start="latest")
        with pytest.raises(LookupError):
            await backend.dead_letter("g", "no-such-receipt", error="x")
        assert await backend.dead_letters("g", limit=10) == []

    async def test_redrive_delivers_again_with_fresh_attempts(self, backend: BusBackend) -> None:
        letters = await _dead(backend, "g", 3, error="boom")
        assert await backend.redrive("g", [letters[1].id]) == 1
        (again,) = await backend.receive("g", "c", max_count=10, visibility_timeout=30, wait=0)
        assert (again.event, again.attempt) == (letters[1].event, 1)
        assert await backend.dead_letters("g", limit=10) == [letters[0], letters[2]]
        assert await backend.redrive("g", None) == 2
        rest = await backend.receive("g", "c", max_count=10, visibility_timeout=30, wait=0)
        assert sorted(d.event.data["n"] for d in rest) == [0, 2]

    async def test_unknown_ids_change_nothing(self, backend: BusBackend) -> None:
        letters = await _dead(backend, "g", 2, error="boom")
        with pytest.raises(DeadLetterNotFound) as info:
            await backend.redrive("g", [letters[0].id, "no-such-id"])
        assert info.value.dead_letter_id == "no-such-id"
        with pytest.raises(DeadLetterNotFound):
            await backend.discard_dead_letters("g", ["no-such-id", letters[1].id])
        assert await backend.dead_letters("g", limit=10) == letters  # nothing changed
        assert await backend.discard_dead_letters("g", [letters[0].id]) == 1
        assert await backend.discard_dead_letters("g", None) == 1
        assert await backend.dead_letters("g", limit=10) == []
        assert (await backend.group_stats("g")).dead_letters == 0

    async def test_unknown_group_raises(self, backend: BusBackend) -> None:
        with pytest.raises(GroupNotFound):
            await backend.dead_letters("nope", limit=1)
        with pytest.raises(GroupNotFound):
            await backend.redrive("nope", None)
        with pytest.raises(GroupNotFound):
            await backend.discard_dead_letters("nope", None)

    async def test_dead_letter_after_max_attempts_then_redrive(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        calls: list[int] = []
        healthy = False

        async def handler(event: Event) -> None:
            calls.append(event.data["n"])
            if not healthy:
                raise ValueError("cannot handle this")

        consumer = await bus.consume(
            "dlq", handler, retry=Retry(max_attempts=3, backoff=Backoff(initial=1, jitter=0))
        )
        event = make_events(1)[0]
        await bus.publish(event)
        await eventually(lambda: consumer.stats.retried == 1)
        await self.advance(clock, 10)
        await eventually(lambda: consumer.stats.retried == 2)
        await self.advance(clock, 10)
        with anyio.fail_after(10):
            await consumer.drain()
        assert consumer.stats.dead_lettered == 1
        assert len(calls) == 3  # exactly max_attempts
        (letter,) = await bus.dead_letters("dlq")
        assert letter.event == event
        assert letter.attempts == 3
        assert letter.error == "ValueError: cannot handle this"
        assert letter.group == "dlq"
        assert await bus.get_dead_letter("dlq", letter.id) == letter
        with pytest.raises(DeadLetterNotFound):
            await bus.get_dead_letter("dlq", "no-such-id")
        healthy = True
        assert await bus.redrive("dlq", [letter.id]) == 1
        with anyio.fail_after(10):
            await consumer.drain()
        assert consumer.stats.succeeded == 1
        assert await bus.dead_letters("dlq") == []
        assert len(calls) == 4
        assert await bus.discard_dead_letters("dlq") == 0
