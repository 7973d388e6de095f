"""Time-sortable ids (UUIDv7) and the system clock."""

from __future__ import annotations

import time
import uuid

import anyio
import pytest

from eventpatterns.core import Clock, SystemClock, _ids, new_id


def test_ids_are_uuid_version_7_with_rfc_variant() -> None:
    for _ in range(100):
        parsed = uuid.UUID(new_id())
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122


def test_ids_are_unique_and_strictly_increasing() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_id_timestamp_is_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    stamp = uuid.UUID(new_id()).int >> 80
    after = time.time_ns() // 1_000_000
    assert before <= stamp <= after + 1


def test_exhausted_counter_borrows_the_next_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    future = time.time_ns() // 1_000_000 + 60_000
    monkeypatch.setattr(_ids, "_last_ms", future)
    monkeypatch.setattr(_ids, "_counter", 0xFFF)
    borrowed = uuid.UUID(new_id()).int
    assert borrowed >> 80 == future + 1
    assert (borrowed >> 64) & 0xFFF == 0
    following = uuid.UUID(new_id()).int
    assert following >> 80 == future + 1
    assert (following >> 64) & 0xFFF == 1


def test_system_clock_reads_time_and_sleeps() -> None:
    clock = SystemClock()
    assert isinstance(clock, Clock)
    assert abs(clock.time() - time.time()) < 1.0

    async def nap() -> float:
        start = time.monotonic()
        await clock.sleep(-1)  # negative means "just yield"
        await clock.sleep(0.01)
        return time.monotonic() - start

    assert anyio.run(nap) >= 0.009
