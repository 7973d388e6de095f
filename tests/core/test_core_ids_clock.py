"""Time-sortable ids (UUIDv7) and the system clock."""

from __future__ import annotations

import os
import time
import uuid
import warnings

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


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_hand_out_its_parents_random_bits() -> None:
    new_id()  # the pool of random bytes is filled
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns of forking beside threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    parent = new_id()
    # The last 62 bits are random: from the same pool, they would be equal.
    assert child.replace("-", "")[-15:] != parent.replace("-", "")[-15:]
