"""Durable steps on the memory backend: order, checkpoints, resumption, bad outputs."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from eventpatterns import Backoff
from eventpatterns.errors import ConfigurationError
from eventpatterns.jobs import (
    Command,
    CompleteStep,
    ExpireLease,
    Job,
    JobContext,
    JobState,
    Start,
    transition,
)
from eventpatterns.jobs._steps import StepPlan
from eventpatterns.testing import ManualClock, eventually

from .worker_helpers import FlakyStore, Harness, kind, running_pool

pytestmark = pytest.mark.anyio

NOW = Backoff(initial=0.0, maximum=0.0, jitter=0.0)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Order(BaseModel):
    items: list[str]


class Priced(BaseModel):
    items: list[str]
    total: int


class Pipeline:
    """Three steps counting their runs: price -> pack -> ship."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.fail_pack_once = False

    async def price(self, ctx: JobContext[Order], value: Order) -> Priced:
        self.runs.append("price")
        return Priced(items=value.items, total=10 * len(value.items))

    async def pack(self, ctx: JobContext[Order], value: Priced) -> dict[str, Any]:
        self.runs.append("pack")
        if self.fail_pack_once:
            self.fail_pack_once = False
            raise RuntimeError("the packer jammed")
        assert isinstance(value, Priced)  # the stored JSON, validated by the annotation
        return {"boxes": len(value.items), "total": value.total}

    async def ship(self, ctx: JobContext[Order], value: dict[str, Any]) -> str:
        self.runs.append("ship")
        return f"{value['boxes']} boxes for {value['total']} to {ctx.input.items[0]}"

    @property
    def steps(self) -> list[Any]:
        return [self.price, self.pack, self.ship]


async def test_steps_run_in_order_each_output_feeding_the_next() -> None:
    p = Pipeline()
    async with running_pool(kind("order", steps=p.steps)) as h:
        job = await h.submit("order", {"items": ["home", "car"]})
        done = await h.final(job.id)
        types = await h.announced(job.id, "succeeded")
    assert done.state is JobState.SUCCEEDED
    assert done.result == "2 boxes for 20 to home"
    assert p.runs == ["price", "pack", "ship"]
    # Every step but the last is a checkpoint; the last output is the result.
    assert done.step == 2
    assert done.step_outputs == ({"items": ["home", "car"], "total": 20}, {"boxes": 2, "total": 20})
    assert types == ["pending", "running", "step", "progress", "step", "progress", "succeeded"]
    progress = [e.data["progress"] for e in h.events if e.type.endswith("progress")]
    assert [(x["fraction"], x["message"]) for x in progress] == [(1 / 3, "price"), (2 / 3, "pack")]


async def start_as_dead_worker(
    h: Harness, clock: ManualClock, job_id: str, outputs: list[Any]
) -> Job | None:
    """Run ``job_id`` on a worker that records ``outputs`` as steps, then dies."""
    job = await h.get(job_id)
    commands: list[Command] = [Start("dead", lease=1.0)]
    commands += [CompleteStep("dead", i, output) for i, output in enumerate(outputs)]
    for command in commands:
        new = transition(job, command, clock.time())
        job = await h.store.replace(new, expected_version=job.version)
    clock.advance(2.0)
    return await h.ops.apply(job_id, lambda j: ExpireLease(backoff=NOW))


async def test_a_crash_between_two_steps_resumes_at_the_second() -> None:
    p = Pipeline()
    clock = ManualClock(start=time.time())
    async with running_pool(kind("order", steps=p.steps), clock=clock) as h:
        # Stored, not announced: "dead" runs it, records step 0 with its output, and dies.
        job = await h.store.create(
            Job.new("crashed", "order", owner="alice", input={"items": ["park"]}, now=clock.time())
        )
        expired = await start_as_dead_worker(h, clock, job.id, [{"items": ["park"], "total": 77}])
        await h.dispatch(job.id)  # what the reaper does once the retry is due
        done = await h.final(job.id)
    assert expired is not None
    assert expired.state is JobState.RETRYING
    assert expired.step == 1
    assert p.runs == ["pack", "ship"]  # step 0 was not run again
    assert done.result == "1 boxes for 77 to park"  # its recorded output fed step 1
    assert done.attempts == 2


async def test_a_failing_step_is_retried_from_that_step() -> None:
    p = Pipeline()
    p.fail_pack_once = True
    async with running_pool(kind("order", steps=p.steps, backoff=NOW)) as h:
        job = await h.submit("order", {"items": ["a", "b", "c"]})
        retrying = await h.in_state(job.id, JobState.RETRYING)
        await h.dispatch(job.id)
        done = await h.final(job.id)
    assert retrying.step == 1
    assert retrying.error == "RuntimeError: the packer jammed"
    assert p.runs == ["price", "pack", "pack", "ship"]
    assert done.result == "3 boxes for 30 to a"


async def step_one(ctx: JobContext[Any], value: Any) -> Any:
    return ctx.input


async def last(ctx: JobContext[None], value: Any) -> str:
    return "done"


@pytest.mark.parametrize(
    ("output", "error"),
    [
        (b"raw", "step 'bad' returned bytes: only the last step may"),
        ({"when": object()}, "step 'bad' returned a value that is not JSON"),
        ("x" * 200, "step 'bad' returned 202 bytes of JSON, over inline_limit=100"),
    ],
)
async def test_an_output_that_cannot_be_recorded_fails_the_job(output: Any, error: str) -> None:
    async def bad(ctx: JobContext[None], value: Any) -> Any:
        return output

    async with running_pool(kind("bad", steps=[bad, last]), inline_limit=100) as h:
        job = await h.submit("bad")
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.error is not None
    assert done.error.startswith(error)


async def test_a_step_refusing_its_value_fails_the_job_naming_the_step() -> None:
    async def wants_priced(ctx: JobContext[None], value: Priced) -> str:
        return "never"

    async with running_pool(kind("mismatch", steps=[step_one, wants_priced])) as h:
        job = await h.submit("mismatch", {"items": "not a list"})
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.error is not None
    assert done.error.startswith("step 'wants_priced' of job kind 'mismatch' refused its value")
    assert "items: Input should be a valid list" in done.error


async def test_a_job_with_more_steps_recorded_than_the_kind_has_fails() -> None:
    clock = ManualClock(start=time.time())
    async with running_pool(kind("short", steps=[step_one, last]), clock=clock) as h:
        job = await h.store.create(
            Job.new("long", "short", owner="alice", input=None, now=clock.time())
        )
        await start_as_dead_worker(h, clock, job.id, [1, 2, 3])
        await h.dispatch(job.id)
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.error == (
        "job 'long' recorded 3 steps but kind 'short' has 2 (the last one is never"
        " recorded): the kind's steps changed under it"
    )


async def test_a_checkpoint_waits_for_the_store_to_come_back() -> None:
    clock = ManualClock(start=time.time())  # the lease holds while the store is down
    flaky: list[FlakyStore] = []
    gate = anyio.Event()

    async def first(ctx: JobContext[None], value: Any) -> int:
        await gate.wait()
        return 1

    async def second(ctx: JobContext[None], value: int) -> int:
        return value + 1

    def wrap(store: Any) -> Any:
        flaky.append(FlakyStore(store))
        return flaky[0]

    async with running_pool(
        kind("pair", steps=[first, second], lease=0.3), clock=clock, wrap=wrap
    ) as h:
        job = await h.submit("pair")
        await h.in_state(job.id, JobState.RUNNING)
        flaky[0].down = True
        gate.set()
        await eventually(lambda: flaky[0].refused >= 3)
        flaky[0].down = False
        done = await h.final(job.id)
    assert done.result == 2
    assert done.step_outputs == (1,)


async def test_a_checkpoint_the_store_refuses_past_the_lease_loses_the_attempt() -> None:
    flaky: list[FlakyStore] = []
    gate = anyio.Event()
    runs: list[str] = []

    async def first(ctx: JobContext[None], value: Any) -> int:
        await gate.wait()
        return 1

    async def second(ctx: JobContext[None], value: int) -> int:
        runs.append("second")  # pragma: no cover - never reached
        return value

    def wrap(store: Any) -> Any:
        flaky.append(FlakyStore(store))
        return flaky[0]

    async with running_pool(kind("pair", steps=[first, second], lease=0.3), wrap=wrap) as h:
        job = await h.submit("pair")
        await h.in_state(job.id, JobState.RUNNING)
        flaky[0].down = True
        gate.set()  # step 0 is done, its checkpoint cannot be written
        await eventually(lambda: not h.pool.running)
        left = await h.get(job.id)
    assert runs == []
    assert left.state is JobState.RUNNING  # left for the reaper to expire
    assert left.step == 0


async def test_a_lost_lease_stops_the_steps_before_the_next_one() -> None:
    clock = ManualClock(start=time.time())
    runs: list[str] = []
    gate = anyio.Event()

    async def first(ctx: JobContext[None], value: Any) -> int:
        runs.append("first")
        with anyio.CancelScope(shield=True):
            await gate.wait()
        return 1

    async def second(ctx: JobContext[None], value: int) -> int:
        runs.append("second")  # pragma: no cover - never reached
        return value

    async with running_pool(kind("pair", steps=[first, second], lease=0.3), clock=clock) as h:
        job = await h.submit("pair")
        await h.in_state(job.id, JobState.RUNNING)
        clock.advance(1.0)
        await h.ops.apply(job.id, lambda j: ExpireLease(backoff=NOW))
        gate.set()  # the first step returns; its CompleteStep is refused
        await eventually(lambda: not h.pool.running)
        left = await h.get(job.id)
    assert runs == ["first"]
    assert left.state is JobState.RETRYING
    assert left.step == 0


def test_steps_must_take_the_context_and_a_value() -> None:
    async def lonely(ctx: JobContext[None]) -> None:
        pass

    with pytest.raises(ConfigurationError, match="must take \\(ctx, value\\)"):
        StepPlan("k", [lonely], inline_limit=10)  # type: ignore[list-item]


def test_an_unresolvable_step_annotation_is_a_configuration_error() -> None:
    async def broken(ctx: JobContext[None], value: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        pass

    with pytest.raises(ConfigurationError, match="cannot read the annotations of step"):
        StepPlan("k", [broken], inline_limit=10)
