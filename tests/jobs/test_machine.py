"""The job state machine: unit cases and a hypothesis RuleBasedStateMachine."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventpatterns.bus import Backoff
from eventpatterns.errors import (
    ArgumentTypeError,
    ConfigurationError,
    InvalidJobTransition,
    InvalidState,
)
from eventpatterns.jobs import (
    DEADLINE_EXCEEDED,
    Cancel,
    Command,
    CompleteStep,
    DeadlinePassed,
    Dispatch,
    ExpireLease,
    Fail,
    Heartbeat,
    Job,
    JobState,
    Progress,
    ReportProgress,
    ResultRef,
    Start,
    Stop,
    Succeed,
    transition,
)
from eventpatterns.jobs._model import evolve

NO_JITTER = Backoff(initial=1.0, multiplier=2.0, maximum=60.0, jitter=0.0)


def new_job(**kw: Any) -> Job:
    return Job.new("j1", "render", owner="u1", input={"n": 1}, now=0.0, **kw)


def running(job: Job | None = None, *, worker: str = "w1", now: float = 1.0) -> Job:
    return transition(job or new_job(), Start(worker, lease=10), now)


# -- the happy path and the record ------------------------------------------------------


def test_a_job_runs_then_succeeds_and_each_step_bumps_the_version() -> None:
    job = new_job()
    assert (job.state, job.version, job.attempts) == (JobState.PENDING, 1, 0)
    job = running(job, now=1.0)
    assert (job.state, job.version, job.attempts, job.worker) == (JobState.RUNNING, 2, 1, "w1")
    assert (job.started_at, job.lease_until) == (1.0, 11.0)
    job = transition(job, ReportProgress("w1", Progress(0.5, "half")), 2.0)
    assert (job.progress.fraction, job.progress.message, job.version) == (0.5, "half", 3)
    job = transition(job, Heartbeat("w1", lease=10), 3.0)
    assert job.lease_until == 13.0
    job = transition(job, Succeed("w1", result={"url": "u"}), 4.0)
    assert job.state is JobState.SUCCEEDED
    assert job.state.final
    assert (job.result, job.finished_at, job.worker, job.lease_until) == (
        {"url": "u"},
        4.0,
        None,
        None,
    )
    assert job.progress.fraction == 1.0
    assert job.progress.message == "half"
    assert job.version == 5
    assert job.updated_at == 4.0


def test_a_large_result_is_kept_by_reference() -> None:
    ref = ResultRef("results/j1", size=10_000_000, content_type="video/mp4")
    job = transition(running(), Succeed("w1", result_ref=ref), 2.0)
    assert job.result is None
    assert job.result_ref == ref


@pytest.mark.parametrize(
    "command",
    [
        Start("w2", lease=1),
        Heartbeat("w1", lease=1),
        ReportProgress("w1", Progress()),
        CompleteStep("w1", 0),
        Succeed("w1"),
        Fail("w1", "boom"),
        Stop("w1"),
        Cancel(),
        ExpireLease(),
        DeadlinePassed(),
    ],
    ids=lambda c: type(c).__name__,
)
@pytest.mark.parametrize("final", ["succeeded", "failed", "cancelled"])
def test_a_final_job_takes_no_command(command: Command, final: str) -> None:
    job = running()
    if final == "succeeded":
        job = transition(job, Succeed("w1", result=1), 2.0)
    elif final == "failed":
        job = transition(job, Fail("w1", "boom", retryable=False), 2.0)
    else:
        job = transition(transition(job, Cancel(), 2.0), Stop("w1"), 3.0)
    assert job.state.value == final
    with pytest.raises(InvalidJobTransition) as info:
        transition(job, command, 5.0)
    err = info.value
    assert isinstance(err, InvalidState)  # callers catching the generic state error
    assert (err.job_id, err.state, err.command) == ("j1", final, type(command).__name__)
    assert f"job is {final}" in str(err)
    assert "'j1'" in str(err)


def test_the_second_worker_to_complete_finds_the_job_already_done() -> None:
    # Both workers read the same version; the store's compare-and-swap lets the first
    # write win, and the second worker's command on the stored job is refused.
    job = running(worker="w1")
    first = transition(job, Succeed("w1", result="a"), 2.0)
    with pytest.raises(InvalidJobTransition, match="job is succeeded"):
        transition(first, Succeed("w1", result="b"), 2.5)
    with pytest.raises(InvalidJobTransition, match="does not hold it"):
        transition(job, Succeed("w2", result="b"), 2.0)


def test_a_worker_whose_lease_ran_out_cannot_report() -> None:
    job = running(now=1.0)  # lease until 11
    for command in (Heartbeat("w1", lease=5), Succeed("w1"), ReportProgress("w1", Progress())):
        with pytest.raises(InvalidJobTransition, match="lease of worker 'w1' ran out"):
            transition(job, command, 11.0)
    with pytest.raises(InvalidJobTransition, match=r"its lease lasts until 11\.0"):
        transition(job, ExpireLease(NO_JITTER), 10.9)
    expired = transition(job, ExpireLease(NO_JITTER), 11.0)
    assert expired.state is JobState.RETRYING
    assert expired.worker is None
    assert expired.error == "lease expired: worker 'w1' stopped heartbeating"
    assert expired.run_after == 12.0  # attempt 1 failed: 1 s backoff


# -- retries -----------------------------------------------------------------------------


def test_failures_retry_with_backoff_then_fail_after_max_attempts() -> None:
    job = new_job(max_attempts=3)
    now = 0.0
    delays = []
    for attempt in (1, 2):
        now += 1
        job = transition(job, Start("w1", lease=10), now)
        assert job.attempts == attempt
        job = transition(job, Fail("w1", f"boom {attempt}", backoff=NO_JITTER), now)
        assert job.state is JobState.RETRYING
        assert job.error == f"boom {attempt}"
        assert job.run_after is not None
        delays.append(job.run_after - now)
        with pytest.raises(InvalidJobTransition, match="not due until"):
            transition(job, Start("w1", lease=10), job.run_after - 0.01)
        now = job.run_after
    assert delays == [1.0, 2.0]
    job = transition(job, Start("w2", lease=10), now)
    job = transition(job, Fail("w2", "boom 3", backoff=NO_JITTER), now)
    assert (job.state, job.attempts, job.error) == (JobState.FAILED, 3, "boom 3")


def test_a_non_retryable_failure_fails_at_once() -> None:
    job = transition(running(new_job(max_attempts=5)), Fail("w1", "bad input", retryable=False), 2)
    assert (job.state, job.error, job.attempts) == (JobState.FAILED, "bad input", 1)


def test_jitter_is_deterministic_per_job_and_attempt() -> None:
    jittery = Backoff(initial=10, jitter=1.0)
    a = transition(running(), Fail("w1", "x", backoff=jittery), 2.0)
    b = transition(running(), Fail("w1", "x", backoff=jittery), 2.0)
    assert a == b
    assert a.run_after is not None
    assert 2.0 <= a.run_after <= 12.0
    other = transition(
        running(dataclasses.replace(new_job(), id="j2")), Fail("w1", "x", backoff=jittery), 2.0
    )
    assert other.run_after != a.run_after


def test_a_running_job_cannot_be_started_again() -> None:
    with pytest.raises(InvalidJobTransition, match="already running on worker 'w1'"):
        transition(running(), Start("w2", lease=5), 2.0)


# -- cancellation ------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["pending", "retrying"])
def test_cancel_of_a_job_not_running_ends_it_at_once(state: str) -> None:
    job = new_job()
    if state == "retrying":
        job = transition(running(job), Fail("w1", "x", backoff=NO_JITTER), 2.0)
    assert job.state.value == state
    job = transition(job, Cancel("user asked"), 3.0)
    assert (job.state, job.error, job.finished_at) == (JobState.CANCELLED, "user asked", 3.0)


def test_cancel_of_a_running_job_asks_its_worker_then_the_worker_stops() -> None:
    job = transition(running(), Cancel("user asked"), 2.0)
    assert job.state is JobState.RUNNING
    assert job.cancel_requested
    with pytest.raises(InvalidJobTransition, match="already requested"):
        transition(job, Cancel(), 2.5)
    stopped = transition(job, Stop("w1"), 3.0)
    assert (stopped.state, stopped.error) == (JobState.CANCELLED, "user asked")
    # A failure after the request cancels too (no retry), and so does a lost lease.
    assert transition(job, Fail("w1", "interrupted"), 3.0).state is JobState.CANCELLED
    assert transition(job, ExpireLease(), 20.0).state is JobState.CANCELLED
    # Work that finished anyway is kept.
    assert transition(job, Succeed("w1", result=1), 3.0).state is JobState.SUCCEEDED


def test_stop_without_a_cancel_request_is_refused() -> None:
    with pytest.raises(InvalidJobTransition, match="was not requested"):
        transition(running(), Stop("w1"), 2.0)


# -- deadlines and steps -----------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [Start("w1", lease=5), DeadlinePassed()],
    ids=lambda c: type(c).__name__,
)
def test_a_pending_job_past_its_deadline_fails_instead(command: Command) -> None:
    job = transition(new_job(deadline=5.0), command, 5.0)
    assert (job.state, job.error, job.attempts) == (JobState.FAILED, DEADLINE_EXCEEDED, 0)


def test_a_running_job_past_its_deadline_fails_on_its_next_report() -> None:
    job = running(new_job(deadline=5.0), now=1.0)
    assert transition(job, Heartbeat("w1", lease=10), 4.9).state is JobState.RUNNING
    failed = transition(job, Succeed("w1", result=1), 5.0)
    assert (failed.state, failed.error, failed.result) == (JobState.FAILED, DEADLINE_EXCEEDED, None)
    with pytest.raises(InvalidJobTransition, match="deadline has not passed"):
        transition(job, DeadlinePassed(), 4.0)
    # Cancel still cancels a job past its deadline.
    assert transition(new_job(deadline=5.0), Cancel(), 9.0).state is JobState.CANCELLED


def test_durable_steps_are_recorded_in_order_and_survive_a_retry() -> None:
    job = running()
    job = transition(job, CompleteStep("w1", 0, {"frames": 10}), 2.0)
    job = transition(job, CompleteStep("w1", 1, "encoded"), 3.0)
    with pytest.raises(InvalidJobTransition, match="step 1 is not the next step"):
        transition(job, CompleteStep("w1", 1, "again"), 3.5)
    job = transition(job, Fail("w1", "crash", backoff=NO_JITTER), 4.0)
    job = transition(job, Start("w2", lease=10), 10.0)
    assert (job.step, job.step_outputs) == (2, ({"frames": 10}, "encoded"))


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("lease", [0, -1, float("inf"), float("nan"), True, "5"])
def test_a_bad_lease_is_refused(lease: Any) -> None:
    with pytest.raises(ConfigurationError, match="lease must be"):
        Start("w1", lease=lease)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"deadline": float("nan")}, "deadline"),
        ({"ttl": -5}, "ttl"),
    ],
)
def test_a_bad_job_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        new_job(**kwargs)
    with pytest.raises(ConfigurationError, match="kind must be a non-empty string"):
        Job.new("j1", "", owner="u1", input=None, now=0)


def test_progress_is_validated_and_long_messages_are_cut() -> None:
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigurationError, match="within"):
            Progress(bad)
    with pytest.raises(ArgumentTypeError):
        Progress("half")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError):
        Progress(0.5, detail=[1])  # type: ignore[arg-type]
    long = Progress(0.5, "x" * 5000)
    assert len(long.message) == 1024
    assert long.message.endswith("…")
    assert Progress(1).fraction == 1.0
    assert isinstance(Progress(1).fraction, float)


# -- properties --------------------------------------------------------------------------

WORKERS = st.sampled_from(["w1", "w2"])


class JobMachine(RuleBasedStateMachine):
    """Random command sequences from two workers, a user and the clock."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.job = Job.new("j", "k", owner="u", input=None, now=0.0, max_attempts=3, deadline=500)
        self.accepted_succeeds: list[object] = []

    def apply(self, command: Command) -> Job | None:
        before = self.job
        refused: InvalidJobTransition | None = None
        try:
            after = transition(before, command, self.now)
        except InvalidJobTransition as err:
            refused = err
        if refused is not None:
            assert refused.job_id == "j"
            assert refused.state == before.state.value
            assert self.job is before  # a refusal changes nothing
            if before.state.final:
                assert "job is" in str(refused)
            return None
        assert after.version == before.version + 1
        assert after.updated_at == self.now
        assert not before.state.final  # a final job never changes
        worker = getattr(command, "worker", None)
        if worker is not None and not isinstance(command, Start):
            # Only the holder, within its lease, is heard (or the deadline ended it).
            assert before.state is JobState.RUNNING
            assert worker == before.worker or after.error == DEADLINE_EXCEEDED
            assert before.lease_until is not None
            assert self.now < before.lease_until or after.error == DEADLINE_EXCEEDED
        if before.deadline is not None and self.now >= before.deadline:
            assert after.state.final
        self.job = after
        return after

    @rule(dt=st.floats(min_value=0, max_value=40, allow_nan=False))
    def wait(self, dt: float) -> None:
        self.now += dt

    @rule(worker=WORKERS, lease=st.floats(min_value=0.5, max_value=30, allow_nan=False))
    def start(self, worker: str, lease: float) -> None:
        self.apply(Start(worker, lease))

    @rule(worker=WORKERS, lease=st.floats(min_value=0.5, max_value=30, allow_nan=False))
    def heartbeat(self, worker: str, lease: float) -> None:
        self.apply(Heartbeat(worker, lease))

    @rule(worker=WORKERS, fraction=st.floats(0, 1))
    def progress(self, worker: str, fraction: float) -> None:
        self.apply(ReportProgress(worker, Progress(fraction)))

    @rule(worker=WORKERS, step=st.integers(0, 3))
    def step(self, worker: str, step: int) -> None:
        self.apply(CompleteStep(worker, step, step))

    @rule(worker=WORKERS, result=st.integers())
    def succeed(self, worker: str, result: int) -> None:
        if self.apply(Succeed(worker, result=result)) is not None and not self.job.error:
            self.accepted_succeeds.append(result)

    @rule(worker=WORKERS, retryable=st.booleans())
    def fail(self, worker: str, retryable: bool) -> None:
        self.apply(Fail(worker, "boom", retryable=retryable, backoff=NO_JITTER))

    @rule(worker=WORKERS)
    def stop(self, worker: str) -> None:
        self.apply(Stop(worker))

    @rule()
    def cancel(self) -> None:
        self.apply(Cancel())

    @rule()
    def expire(self) -> None:
        self.apply(ExpireLease(NO_JITTER))

    @precondition(lambda self: self.job.state.final)
    @rule()
    def final_is_absorbing(self) -> None:
        for command in (Start("w1", 1), Succeed("w1"), Cancel(), ExpireLease(), DeadlinePassed()):
            assert self.apply(command) is None

    @invariant()
    def consistent(self) -> None:
        job = self.job
        assert 0 <= job.attempts <= job.max_attempts
        assert len(self.accepted_succeeds) <= 1  # a job completes at most once
        if job.state is JobState.SUCCEEDED:
            assert job.result == self.accepted_succeeds[0]
        assert (job.state is JobState.RUNNING) == (job.worker is not None)
        assert (job.state is JobState.RUNNING) == (job.lease_until is not None)
        assert (job.state is JobState.RETRYING) == (job.run_after is not None)
        if job.state is JobState.RETRYING:
            assert job.attempts < job.max_attempts
            assert job.error
        assert job.state.final == (job.finished_at is not None)
        # A cancel request is kept on the record, also when the work finished anyway.
        assert job.cancel_requested <= (job.state not in (JobState.PENDING, JobState.RETRYING))
        assert job.step == len(job.step_outputs) <= 4
        assert job.state is not JobState.UNKNOWN


JobMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_job_state_machine = JobMachine.TestCase


def test_dispatch_keeps_a_pending_job_pending_and_sets_when_to_dispatch_again() -> None:
    job = Job.new("j1", "render", owner="u1", input={}, now=0.0, run_after=30.0)
    assert job.run_after == 30.0
    again = transition(job, Dispatch(recheck=60), now=31.0)
    assert (again.state, again.run_after, again.version) == (JobState.PENDING, 91.0, 2)
    started = transition(again, Start("w1", lease=10), now=32.0)
    assert started.run_after is None


def test_dispatch_turns_a_due_retry_pending_and_refuses_one_not_due_or_running() -> None:
    job = Job.new("j1", "render", owner="u1", input={}, now=0.0)
    running = transition(job, Start("w1", lease=10), now=1.0)
    with pytest.raises(InvalidJobTransition, match="running on worker 'w1'"):
        transition(running, Dispatch(recheck=60), now=2.0)
    retrying = transition(running, Fail("w1", "boom", backoff=NO_JITTER), now=2.0)
    assert retrying.state is JobState.RETRYING
    assert retrying.run_after == 3.0
    with pytest.raises(InvalidJobTransition, match=r"not due until 3\.0"):
        transition(retrying, Dispatch(recheck=60), now=2.5)
    pending = transition(retrying, Dispatch(recheck=60), now=3.0)
    assert (pending.state, pending.run_after, pending.error) == (JobState.PENDING, 63.0, "boom")


@pytest.mark.parametrize("recheck", [0, -1, float("nan"), float("inf"), True, "5"])
def test_dispatch_refuses_a_recheck_that_is_not_a_positive_number(recheck: Any) -> None:
    with pytest.raises(ConfigurationError, match="lease must be"):
        Dispatch(recheck=recheck)


def test_evolve_builds_what_dataclasses_replace_builds() -> None:
    base = Job(id="j", kind="k", owner="o", input={"n": 1}, state=JobState.PENDING,
               version=1, created_at=1.0, updated_at=1.0)  # fmt: skip
    samples: dict[str, Any] = {
        "id": "j2", "kind": "k2", "owner": "o2", "input": [1], "state": JobState.RUNNING,
        "version": 7, "created_at": 2.0, "updated_at": 3.0, "attempts": 2, "max_attempts": 9,
        "progress": Progress(0.5, "half"), "started_at": 4.0, "finished_at": 5.0,
        "deadline": 6.0, "run_after": 7.0, "worker": "w", "lease_until": 8.0,
        "cancel_requested": True, "result": {"r": 1}, "result_ref": ResultRef("key", 3),
        "error": "boom", "idempotency_key": "i", "ttl": 9.0, "step": 3, "step_outputs": (1,),
    }  # fmt: skip
    assert set(samples) == {f.name for f in dataclasses.fields(Job)}  # every field tried
    for name, value in samples.items():
        got = evolve(base, {name: value})
        assert got == dataclasses.replace(base, **{name: value})
        assert type(got) is Job
    everything = evolve(base, dict(samples))
    assert everything == dataclasses.replace(base, **samples)
    assert base.version == 1  # the original is untouched

    @dataclasses.dataclass(frozen=True)
    class Tagged(Job):
        tag: str = "t"

    tagged = Tagged(**dataclasses.asdict(base) | {"progress": base.progress}, tag="x")
    moved = evolve(tagged, {"version": 2})
    assert type(moved) is Tagged
    assert moved.tag == "x"
    assert moved.version == 2
