"""The public conformance suite of :class:`~eventpatterns.jobs.JobStore`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from ..bus import Backoff
from ..errors import ArgumentTypeError, ConfigurationError, JobConflict, JobNotFound
from ..jobs import (
    Cancel,
    CompleteStep,
    Dispatch,
    Fail,
    Job,
    JobState,
    JobStore,
    Progress,
    ReportProgress,
    Start,
    Succeed,
    transition,
)
from ._clock import ManualClock
from ._suite_base import SuiteBase, close

__all__ = ["JobStoreSuite"]

NO_JITTER = Backoff(initial=1.0, jitter=0.0)


class JobStoreSuite(SuiteBase):
    """Subclass once per store and implement :meth:`make_store`.

    Example::

        class TestMyStore(JobStoreSuite):
            async def make_store(self, clock, *, default_ttl):
                return MyJobStore(clock=clock, default_ttl=default_ttl)
    """

    async def make_store(self, clock: ManualClock, *, default_ttl: float) -> JobStore:
        """Return a fresh, empty store that expires records on ``clock``."""
        raise NotImplementedError("subclasses return their store here")

    @pytest.fixture
    async def store(self, clock: ManualClock) -> AsyncIterator[JobStore]:
        store = await self.make_store(clock, default_ttl=3600.0)
        yield store
        await close(store)

    def job(self, clock: ManualClock, job_id: str = "j1", **kw: Any) -> Job:
        """A new pending job created now on ``clock``."""
        kw.setdefault("owner", "alice")
        kw.setdefault("input", {"frames": 24, "title": "été"})
        return Job.new(job_id, kw.pop("kind", "render"), now=clock.time(), **kw)

    # -- create and get --------------------------------------------------------------------

    async def test_a_created_job_reads_back_equal(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = self.job(clock, deadline=clock.time() + 60, ttl=120)
        assert await store.create(job) == job
        assert await store.get("j1") == job
        assert await store.get("never-submitted") is None

    async def test_every_field_round_trips(self, store: JobStore, clock: ManualClock) -> None:
        job = self.job(clock, max_attempts=5, idempotency_key="k")
        await store.create(job)
        now = clock.time()
        job2 = transition(job, Start("w1", lease=30), now + 1)
        await store.replace(job2, expected_version=1)
        job3 = transition(job2, ReportProgress("w1", Progress(0.25, "a", {"n": [1, 2]})), now + 2)
        await store.replace(job3, expected_version=2)
        job4 = transition(job3, CompleteStep("w1", 0, {"out": "x"}), now + 3)
        await store.replace(job4, expected_version=3)
        assert await store.get("j1") == job4

    async def test_an_existing_id_is_a_conflict(self, store: JobStore, clock: ManualClock) -> None:
        await store.create(self.job(clock))
        with pytest.raises(JobConflict, match="exists already") as info:
            await store.create(self.job(clock, owner="bob"))
        assert info.value.job_id == "j1"
        assert (await store.get("j1")) is not None
        page = await store.list("bob")
        assert page.jobs == []

    async def test_only_a_first_version_can_be_created(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        started = transition(self.job(clock), Start("w", lease=5), clock.time())
        with pytest.raises(JobConflict):
            await store.create(started)
        assert await store.get("j1") is None

    @pytest.mark.parametrize("bad", [{1, 2}, float("nan"), object(), b"bytes"])
    async def test_values_a_store_cannot_keep_are_refused(
        self, store: JobStore, clock: ManualClock, bad: Any
    ) -> None:
        with pytest.raises(ArgumentTypeError, match="JSON-serialisable"):
            await store.create(self.job(clock, input={"x": bad}))
        assert await store.get("j1") is None
        job = await store.create(self.job(clock))
        running = transition(job, Start("w", lease=5), clock.time())
        await store.replace(running, expected_version=1)
        with pytest.raises(ArgumentTypeError, match="JSON-serialisable"):
            await store.replace(
                transition(running, Succeed("w", result=bad), clock.time()), expected_version=2
            )
        assert await store.get("j1") == running

    async def test_owner_never_changes(self, store: JobStore, clock: ManualClock) -> None:
        import dataclasses

        job = await store.create(self.job(clock))
        moved = dataclasses.replace(transition(job, Cancel(), clock.time()), owner="mallory")
        with pytest.raises(ConfigurationError, match="never change"):
            await store.replace(moved, expected_version=1)
        assert await store.get("j1") == job

    # -- idempotency -------------------------------------------------------------------------

    async def test_the_same_key_from_the_same_owner_returns_the_first_job(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        first = await store.create(self.job(clock, "j1", idempotency_key="order-7"))
        again = await store.create(self.job(clock, "j2", idempotency_key="order-7"))
        assert again == first
        assert await store.get("j2") is None
        other = await store.create(self.job(clock, "j3", owner="bob", idempotency_key="order-7"))
        assert other.id == "j3"  # keys are per owner

    async def test_concurrent_submits_with_one_key_make_one_job(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        results: list[Job] = []

        async def submit(i: int) -> None:
            results.append(await store.create(self.job(clock, f"j{i}", idempotency_key="same")))

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(submit, i)
        assert len(results) == 100
        assert len({job.id for job in results}) == 1
        page = await store.list("alice", limit=1000)
        assert [job.id for job in page.jobs] == [results[0].id]

    async def test_an_expired_job_frees_its_key(self, store: JobStore, clock: ManualClock) -> None:
        job = await store.create(self.job(clock, idempotency_key="k", ttl=10))
        running = transition(job, Start("w", lease=5), clock.time())
        await store.replace(running, expected_version=1)
        done = transition(running, Succeed("w", result=1), clock.time())
        await store.replace(done, expected_version=2)
        await self.advance(clock, 11)
        assert await store.get("j1") is None
        fresh = await store.create(self.job(clock, "j2", idempotency_key="k"))
        assert fresh.id == "j2"

    # -- compare-and-swap --------------------------------------------------------------------

    async def test_two_writers_on_one_version_one_wins(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = await store.create(self.job(clock))
        now = clock.time()
        a = transition(job, Start("wa", lease=5), now)
        b = transition(job, Start("wb", lease=5), now)
        assert await store.replace(a, expected_version=1) == a
        with pytest.raises(JobConflict, match="expected version 1, found 2") as info:
            await store.replace(b, expected_version=1)
        assert (info.value.expected, info.value.actual) == (1, 2)
        stored = await store.get("j1")
        assert stored is not None
        assert stored.worker == "wa"

    async def test_concurrent_completions_succeed_exactly_once(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = await store.create(self.job(clock))
        now = clock.time()
        running = transition(job, Start("w", lease=30), now)
        await store.replace(running, expected_version=1)
        wins: list[int] = []
        conflicts: list[int] = []

        async def complete(i: int) -> None:
            done = transition(running, Succeed("w", result=i), now + 1)
            try:
                await store.replace(done, expected_version=running.version)
            except JobConflict:
                conflicts.append(i)
            else:
                wins.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(complete, i)
        assert len(wins) == 1
        assert len(conflicts) == 49
        stored = await store.get("j1")
        assert stored is not None
        assert stored.result == wins[0]

    async def test_a_skipped_version_is_refused(self, store: JobStore, clock: ManualClock) -> None:
        job = await store.create(self.job(clock))
        two = transition(job, Start("w", lease=5), clock.time())
        three = transition(two, Cancel(), clock.time())
        with pytest.raises(JobConflict):
            await store.replace(three, expected_version=1)
        assert await store.get("j1") == job

    async def test_replacing_a_missing_job_is_not_found(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        job = self.job(clock)
        with pytest.raises(JobNotFound, match="'j1'"):
            await store.replace(transition(job, Cancel(), clock.time()), expected_version=1)

    # -- listing -------------------------------------------------------------------------------

    async def test_listing_is_owner_scoped_newest_first_and_paginated(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        for i in range(25):
            await store.create(self.job(clock, f"a{i:02}"))
            await store.create(self.job(clock, f"b{i:02}", owner="bob"))
            await self.advance(clock, 1)
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await store.list("alice", limit=10, cursor=cursor)
            seen += [job.id for job in page.jobs]
            assert all(job.owner == "alice" for job in page.jobs)
            pages += 1
            cursor = page.cursor
            if cursor is None:
                break
        assert pages == 3
        assert seen == [f"a{i:02}" for i in reversed(range(25))]

    async def test_listing_filters_on_state(self, store: JobStore, clock: ManualClock) -> None:
        jobs = [await store.create(self.job(clock, f"j{i}")) for i in range(4)]
        for job in jobs[:2]:
            await store.replace(transition(job, Cancel(), clock.time()), expected_version=1)
        cancelled = await store.list("alice", state=JobState.CANCELLED)
        pending = await store.list("alice", state=JobState.PENDING)
        assert sorted(j.id for j in cancelled.jobs) == ["j0", "j1"]
        assert sorted(j.id for j in pending.jobs) == ["j2", "j3"]

    @pytest.mark.parametrize("limit", [0, -1, 1001, True, 2.5])
    async def test_a_bad_limit_is_refused(self, store: JobStore, limit: Any) -> None:
        with pytest.raises(ConfigurationError, match="limit"):
            await store.list("alice", limit=limit)

    @pytest.mark.parametrize("cursor", ["", "garbage", "nan/x", "1.0/", "x" * 5000])
    async def test_a_forged_cursor_is_refused(self, store: JobStore, cursor: str) -> None:
        with pytest.raises(ConfigurationError, match="cursor") as info:
            await store.list("alice", cursor=cursor)
        assert len(str(info.value)) < 200

    # -- leases, retries, deadlines, expiry ------------------------------------------------------

    async def test_pending_jobs_with_run_after_are_due_until_started(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        now = clock.time()
        waiting = await store.create(self.job(clock, "p", run_after=now + 30))
        await store.create(self.job(clock, "q"))  # no run_after: never due
        assert await store.due(now + 29) == []
        assert await store.due(now + 30) == ["p"]
        again = transition(waiting, Dispatch(recheck=60), now + 30)
        await store.replace(again, expected_version=1)
        assert await store.due(now + 31) == []
        assert await store.due(now + 90) == ["p"]
        started = transition(again, Start("w", lease=10), now + 40)
        await store.replace(started, expected_version=2)
        assert await store.due(now + 1000) == []

    async def test_expired_leases_due_retries_and_overdue_jobs_are_found(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        now = clock.time()
        a = await store.create(self.job(clock, "a"))
        b = await store.create(self.job(clock, "b"))
        c = await store.create(self.job(clock, "c", deadline=now + 50))
        ra = transition(a, Start("w", lease=10), now)
        rb = transition(b, Start("w", lease=30), now)
        await store.replace(ra, expected_version=1)
        await store.replace(rb, expected_version=1)
        assert await store.expired_leases(now + 9) == []
        assert await store.expired_leases(now + 10) == ["a"]
        assert await store.expired_leases(now + 40) == ["a", "b"]
        assert await store.expired_leases(now + 40, limit=1) == ["a"]
        retrying = transition(rb, Fail("w", "boom", backoff=NO_JITTER), now + 5)
        await store.replace(retrying, expected_version=2)
        assert retrying.run_after == now + 6
        assert await store.due(now + 5.5) == []
        assert await store.due(now + 6) == ["b"]
        assert await store.expired_leases(now + 40) == ["a"]
        assert await store.overdue(now + 49) == []
        assert await store.overdue(now + 50) == ["c"]
        done = transition(c, Cancel(), now + 1)
        await store.replace(done, expected_version=1)
        assert await store.overdue(now + 60) == []

    async def test_final_jobs_expire_after_their_ttl_and_are_purged(
        self, store: JobStore, clock: ManualClock
    ) -> None:
        short = await store.create(self.job(clock, "short", ttl=10))
        default = await store.create(self.job(clock, "default"))
        live = await store.create(self.job(clock, "live"))
        for job in (short, default):
            await store.replace(transition(job, Cancel(), clock.time()), expected_version=1)
        await self.advance(clock, 10)
        assert await store.purge() == 1  # "short" (10 s); "default" keeps its hour
        assert await store.get("short") is None
        assert await store.get("default") is not None
        await self.advance(clock, 3600)
        assert await store.get("default") is None
        assert await store.purge() in (0, 1)  # a store may have dropped it on reading
        assert await store.get("live") == live  # a job that has not ended never expires
        page = await store.list("alice")
        assert [job.id for job in page.jobs] == ["live"]
        assert await store.purge() == 0
