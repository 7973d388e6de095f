"""The worker pool: takes dispatched jobs off the bus and runs them under leases.

Per runnable kind, one member of the bus consumer group ``<group_prefix>.<kind>``
receives the kind's ``eventpatterns.job.pending`` events (the dispatch), up to 32 per
receive (on Redis the group is screened: other job events are acked unread), in one
receive loop per 32 slots of the kind's ``concurrency`` (at most four): a loop takes
its next batch while another waits for the store to start its own, so a worker holds
about as many dispatches as it has slots. Its handler only dispatches: the dispatches
that the kind's free ``concurrency`` slots in this process have room for get ``Start``
together (:meth:`JobOps.apply_many`: one read and one write of the store for the run;
a job already running elsewhere, finished, or whose retry is not due is dropped: a
duplicate or lost dispatch is harmless); each one won starts its attempt (one task)
in the pool's task group, and the deliveries are acknowledged (one whose ``Start``
failed is redelivered).

An attempt heartbeats every lease/3 (its heartbeat task starts at its first; until
then one task of the pool waits for every attempt's); it stops its handler when the
job stops being its own (lease lost, deadline passed: the result is dropped) or when
the job's cancellation is requested — heard at once (the store's cancel channel, else
``eventpatterns.job.cancelling`` on the bus) or in a heartbeat's answer — and then
applies ``Stop``. Attempts ending in the same turn of the loop write their outcomes
together (``apply(..., coalesce=True)``). See ``docs/jobs.md``, "Workers".
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import logging
import re
from collections.abc import Mapping
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ..bus import (
    Backoff,
    BatchFailure,
    Consumer,
    Retry,
    Subscription,
    Timeouts,
    check_group_name,
)
from ..core import Event
from ..errors import (
    ArgumentTypeError,
    BackendUnavailable,
    ConfigurationError,
    EventsMissed,
    InvalidJobInput,
    JobNotFound,
    SubscriptionClosed,
)
from ..observability import _trace
from ._blobs import BlobStore, check_key
from ._context import Attempt, FailJob, JobContext, Stopped
from ._events import CANCELLING, KIND_ATTRIBUTE, PENDING, dispatch_pattern
from ._files import FileResult
from ._kinds import JobKind
from ._machine import Command, Fail, Start, Stop, Succeed
from ._model import Job, JobState, ResultRef
from ._ops import JobOps
from ._steps import StepPlan, to_json
from ._store import DEFAULT_TTL

__all__ = ["WorkerPool", "group_name"]

logger = logging.getLogger("eventpatterns.jobs")

#: Longest ``error`` recorded for a failed attempt, in characters.
MAX_ERROR = 1000
#: Seconds a shut-down worker spends releasing its running attempts.
SHUTDOWN_GRACE = 5.0
#: Releasing an attempt on shutdown: retry it at once (on another worker).
NO_DELAY = Backoff(initial=0.0, maximum=0.0, jitter=0.0)
#: How dispatch deliveries that failed (the store unreachable) are retried by the bus.
DISPATCH_RETRY = Retry(max_attempts=5, backoff=Backoff(initial=0.1, maximum=5.0))
#: A dispatch waits for a free slot however long it takes; meanwhile its delivery's
#: visibility runs out and an idle worker elsewhere may take the job (then this
#: worker's ``Start`` finds it running and drops the dispatch).
DISPATCH_TIMEOUTS = Timeouts(visibility=30.0, handler=365 * 24 * 3600.0)
#: Most dispatches one receive takes (and starts at once).
DISPATCH_BATCH = 32
#: Most receive loops per kind (each takes its batches while the others start theirs).
DISPATCH_LOOPS = 4


def dispatch_loops(concurrency: int) -> int:
    """Return how many receive loops a kind with ``concurrency`` slots runs."""
    return max(1, min(DISPATCH_LOOPS, -(-concurrency // DISPATCH_BATCH)))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def group_name(prefix: str, kind: str) -> str:
    """Return the consumer group of ``kind``'s workers: ``<prefix>.<kind>``.

    A kind with characters group names refuse (or too long) gets a name derived from
    it deterministically: the safe characters and a hash of the kind.

    Raises:
        ConfigurationError: ``prefix`` is not a valid group name itself.
    """
    check_group_name(prefix)
    name = f"{prefix}.{kind}"
    if len(name) <= 128 and not _UNSAFE.search(kind):
        return name
    digest = hashlib.sha256(kind.encode()).hexdigest()[:16]
    return check_group_name(f"{prefix}.{_UNSAFE.sub('_', kind)[: 110 - len(prefix)]}-{digest}")


def describe(exc: BaseException) -> str:
    """Return ``"<type>: <message>"`` (a FailJob: its message), cut to 1,000 characters."""
    text = exc.message if isinstance(exc, FailJob) else f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


def _blob_key(job: Job) -> str:
    key = f"jobs/{job.id}/result-{job.attempts}"
    try:
        return check_key(key)
    except ConfigurationError:  # an id blob keys refuse: a digest of it
        return f"jobs/{hashlib.sha256(job.id.encode()).hexdigest()[:32]}/result-{job.attempts}"


class WorkerPool:
    """Runs the jobs of this process's runnable kinds (started by the tracker).

    Args:
        ops: Where jobs change (its bus must be entered).
        kinds: The tracker's kinds; those with a handler or steps are run here.
        blobs: Where large and ``bytes`` results go (``None``: such a result fails the
            job, not retryable, saying so).
        worker_id: This worker's name in the jobs it holds.
        inline_limit: Largest JSON-encoded result kept in the job's record, in bytes.
        group_prefix: The consumer groups are ``<group_prefix>.<kind>``.

    Raises:
        ConfigurationError: A bad ``group_prefix`` or ``inline_limit``, or a step that
            does not take ``(ctx, value)``.
    """

    def __init__(
        self,
        ops: JobOps,
        kinds: Mapping[str, JobKind],
        *,
        blobs: BlobStore | None,
        worker_id: str,
        inline_limit: int,
        group_prefix: str,
    ) -> None:
        if isinstance(inline_limit, bool) or not isinstance(inline_limit, int) or inline_limit < 0:
            raise ConfigurationError(f"inline_limit must be an int >= 0, got {inline_limit!r}")
        self.ops = ops
        self.kinds = {name: kind for name, kind in kinds.items() if kind.runnable}
        self.blobs = blobs
        self.worker_id = worker_id
        self.inline_limit = inline_limit
        self.groups = {name: group_name(group_prefix, name) for name in self.kinds}
        self._plans = {
            name: StepPlan(name, kind.steps, inline_limit=inline_limit)
            for name, kind in self.kinds.items()
            if kind.steps
        }
        self._slots = {name: anyio.Semaphore(kind.concurrency) for name, kind in self.kinds.items()}
        #: The attempts running now, by job id.
        self.running: dict[str, Attempt] = {}
        #: The bus consumers, one per kind, while the pool runs.
        self.consumers: list[Consumer] = []
        self._tg: TaskGroup | None = None
        # Attempts whose first heartbeat is due (anyio time, order, attempt): a heap.
        self._beats: list[tuple[float, int, Attempt]] = []
        self._beat_order = itertools.count()
        self._beat_wake: anyio.Event | None = None
        self._ended = 0  # attempts ended since the heap was last cleaned

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Receive and run jobs until cancelled; ready once every consumer is listening.

        On cancellation (the tracker exits), running handlers are cancelled and their
        attempts released for another worker (see :meth:`_release`).
        """
        if not self.kinds:
            task_status.started()
            return
        bus = self.ops.bus
        cancels = {"type": [CANCELLING], KIND_ATTRIBUTE: sorted(self.kinds)}
        consumers = self.consumers
        # A store with a cancel channel of its own (Redis) tells of cancellations alone;
        # else they are picked out of the bus's events.
        watch_cancels = getattr(self.ops.store, "watch_cancels", None)
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                async with contextlib.AsyncExitStack() as stack:
                    if watch_cancels is not None:
                        await tg.start(watch_cancels, self._cancel_requested)
                    else:
                        sub = await stack.enter_async_context(bus.subscribe(cancels))
                        tg.start_soon(self._watch_cancels, sub)
                    tg.start_soon(self._first_beats, tg)
                    # A backend that can tell a dispatch by its bytes (Redis) hands
                    # the consumers no other job event: they are most of the log.
                    screen = getattr(bus.backend, "screen_types", None)
                    for name, kind in self.kinds.items():
                        if screen is not None:
                            screen(self.groups[name], [PENDING])
                        consumer = await bus.consume_batches(
                            self.groups[name],
                            partial(self._dispatch_batch, kind),
                            pattern=dispatch_pattern([name]),
                            retry=DISPATCH_RETRY,
                            timeouts=DISPATCH_TIMEOUTS,
                            batch_size=min(kind.concurrency, DISPATCH_BATCH),
                            concurrency=dispatch_loops(kind.concurrency),
                            name=f"{self.worker_id}.{len(consumers)}",
                        )
                        consumers.append(consumer)
                    task_status.started()
                    await anyio.sleep_forever()
            finally:
                # No new attempt from here on; then the task group's exit cancels the
                # running ones, each releasing its job (see _release).
                self._tg = None
                for consumer in consumers:
                    consumer.stop()  # all at once: no dispatch gets past its next await
                with anyio.CancelScope(shield=True):
                    for consumer in consumers:
                        await consumer.aclose()
                consumers.clear()

    async def _watch_cancels(self, sub: Subscription) -> None:
        while True:
            try:
                event = await sub.receive()
            except EventsMissed:  # pragma: no cover - 1,000 cancels behind
                continue  # the heartbeat's answer tells the attempts it concerned
            except SubscriptionClosed:  # pragma: no cover - the bus closed under the pool
                return
            self._cancel_requested(event.subject or "")

    def _cancel_requested(self, job_id: str) -> None:
        """Stop the handler of ``job_id`` if it runs here: its cancellation was requested."""
        attempt = self.running.get(job_id)
        if attempt is not None:
            attempt.stop(Stopped.CANCELLED)

    # -- dispatch -------------------------------------------------------------------------

    def _accepting(self) -> TaskGroup | None:
        """The task group attempts start in; ``None`` once the pool is shutting down."""
        return self._tg

    def _start_decision(self, kind: JobKind, job: Job) -> Command | None:
        if job.kind != kind.kind:
            return None
        if job.state is JobState.PENDING or (
            job.state is JobState.RETRYING
            and (job.run_after is None or job.run_after <= self.ops.clock.time())
        ):
            return Start(self.worker_id, lease=kind.lease)
        return None  # running elsewhere, final, or a retry not yet due: drop

    async def _dispatch_batch(self, kind: JobKind, events: list[Event]) -> list[str] | None:
        """Start the jobs one receive took, as many at once as slots are free.

        Each run of them is one read and one write of the store (``Start`` on each,
        :meth:`JobOps.apply_many`); each dispatch is acknowledged once its ``Start``
        is stored (or the dispatch dropped), and one that failed (the store
        unreachable) is reported, to be delivered again.
        """
        slot = self._slots[kind.kind]
        todo = [event for event in events if event.subject]
        failed: list[str] = []
        errors: list[str] = []
        while todo and self._accepting() is not None:
            await slot.acquire()  # at least one slot; then all those free now
            taken = 1
            while taken < len(todo):
                try:
                    slot.acquire_nowait()
                except anyio.WouldBlock:
                    break
                taken += 1
            run, todo = todo[:taken], todo[taken:]
            await self._start_run(kind, run, failed, errors)
        if failed:
            raise BatchFailure(failed, cause=errors[0])
        return None

    async def _start_run(
        self, kind: JobKind, events: list[Event], failed: list[str], errors: list[str]
    ) -> None:
        """``Start`` the dispatches' jobs (a slot held for each) and run those won.

        Each slot is released here, or handed to the attempt that then holds it.
        """
        slot = self._slots[kind.kind]
        ids = [event.subject or "" for event in events]
        try:
            outcomes = await self.ops.apply_many(
                ids, partial(self._start_decision, kind), traces=events
            )
        except Exception as exc:  # the store unreachable: all of them again
            outcomes = [exc] * len(events)
        except BaseException:  # cancelled (the pool stops): none of them started here
            for _ in events:
                slot.release()
            raise
        worker = self.worker_id
        for event, outcome in zip(events, outcomes, strict=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, JobNotFound):
                slot.release()
                failed.append(event.id)
                errors.append(describe(outcome))
                continue
            if (
                not isinstance(outcome, Job)  # expired or never stored; or nothing to do
                or outcome.state is not JobState.RUNNING
                or outcome.worker != worker
            ):
                slot.release()  # not ours (a Start past the deadline fails the job instead)
                continue
            attempt = Attempt(self.ops, kind, outcome, worker)
            tg = self._accepting()
            if tg is None:  # pragma: no cover - stopped consumers' dispatches are cancelled
                with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_GRACE):
                    await self._release(attempt)
                slot.release()
                continue
            self._begin(tg, attempt, event, slot)

    def _begin(self, tg: TaskGroup, attempt: Attempt, event: Event, slot: anyio.Semaphore) -> None:
        """Run the attempt ``Start`` won, in the pool's task group (holding ``slot``)."""
        job = attempt.job
        self.running[job.id] = attempt
        # The dispatch is the trace context of what the handler publishes: the attempt's
        # task copies the context variable as it starts (a batch's consumer sets none).
        token = _trace.CURRENT.set(event)
        try:
            tg.start_soon(self._attempt, attempt, slot, name=f"job {job.id}")
        finally:
            _trace.CURRENT.reset(token)

    # -- one attempt ----------------------------------------------------------------------

    async def _attempt(self, attempt: Attempt, slot: anyio.Semaphore) -> None:
        try:
            self._first_beat(attempt)
            try:
                await self._execute(attempt)
            except Exception as exc:  # never let one job take the pool down
                logger.exception("job %s: the worker failed", attempt.job.id)
                if not attempt.finished and attempt.stopped is not Stopped.LOST:
                    error = describe(exc)
                    await attempt.finish(Fail(self.worker_id, error, backoff=attempt.kind.backoff))
        except anyio.get_cancelled_exc_class():
            if attempt.beats is not None:
                attempt.beats.cancel()
            with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_GRACE):
                await self._release(attempt)
            raise
        finally:
            if attempt.beats is not None:
                attempt.beats.cancel()
            if self.running.get(attempt.job.id) is attempt:
                del self.running[attempt.job.id]
            slot.release()
            self._forget_beat()

    # -- heartbeats -----------------------------------------------------------------------
    # An attempt's heartbeats (Attempt.keep_alive) run in a task of their own, started
    # only once its first wait (lease/3, or until its deadline) is over: until then
    # one task of the pool waits for every attempt. Most jobs end sooner and then cost
    # no task, no task group and no timer of their own.

    def _first_beat(self, attempt: Attempt) -> None:
        """Schedule ``attempt``'s first heartbeat (by :meth:`_first_beats`)."""
        due = anyio.current_time() + attempt.next_wait()
        heap = self._beats
        sooner = not heap or due < heap[0][0]
        heapq.heappush(heap, (due, next(self._beat_order), attempt))
        if sooner and self._beat_wake is not None:
            self._beat_wake.set()

    def _forget_beat(self) -> None:
        """Count an ended attempt; drop the ended ones from the heap once they are most."""
        self._ended += 1
        heap = self._beats
        if self._ended > 1024 and self._ended * 2 > len(heap):
            running = self.running
            heap[:] = [entry for entry in heap if running.get(entry[2].job.id) is entry[2]]
            heapq.heapify(heap)
            self._ended = 0

    async def _first_beats(self, tg: TaskGroup) -> None:
        """Start the heartbeats of the attempts still running when their first is due."""
        heap = self._beats
        while True:
            wake = self._beat_wake = anyio.Event()
            if not heap:
                await wake.wait()
                continue
            now = anyio.current_time()
            if heap[0][0] > now:
                with anyio.move_on_after(heap[0][0] - now):
                    await wake.wait()
                continue
            while heap and heap[0][0] <= now:
                attempt = heapq.heappop(heap)[2]
                if self.running.get(attempt.job.id) is attempt:
                    beats = attempt.beats = anyio.CancelScope()
                    tg.start_soon(self._keep_alive, attempt, beats)

    @staticmethod
    async def _keep_alive(attempt: Attempt, beats: anyio.CancelScope) -> None:
        with beats:  # cancelled when the attempt ends (before this started, too)
            await attempt.keep_alive(slept=True)

    async def _release(self, attempt: Attempt) -> None:
        """Give a running attempt back on shutdown, to be retried at once elsewhere.

        It is failed as retryable with no backoff (``"worker shut down"``): the
        attempt it used counts (on its last attempt the job fails, as it would when
        its lease ran out), and the reaper dispatches the retry within its interval
        instead of waiting for the lease to run out.
        """
        if attempt.finished or attempt.stopped is Stopped.LOST:
            return
        # A job whose cancellation was requested is cancelled by this Fail instead.
        await attempt.finish(Fail(self.worker_id, "worker shut down", backoff=NO_DELAY))

    async def _execute(self, attempt: Attempt) -> None:
        kind, worker = attempt.kind, self.worker_id
        try:
            value = kind.validate(attempt.started.input)
        except InvalidJobInput as exc:  # stored input its model refuses (the model changed)
            await attempt.finish(Fail(worker, describe(exc), retryable=False))
            return
        ctx: JobContext[Any] = JobContext(attempt, value)
        failure: Fail | None = None
        result: Any = None
        completed = False
        scope = attempt.scope  # stopped from outside, or by the kind's timeout
        if kind.timeout:
            scope.deadline = anyio.current_time() + kind.timeout
        with scope:
            try:
                plan = self._plans.get(kind.kind)
                if plan is not None:
                    result = await plan.run(ctx, attempt)
                elif kind.handler is not None:  # pragma: no branch - runnable: one or other
                    result = await kind.handler(ctx)
                completed = True
            except Exception as exc:
                retryable = exc.retryable if isinstance(exc, FailJob) else True
                failure = Fail(worker, describe(exc), retryable=retryable, backoff=kind.backoff)
                if not isinstance(exc, FailJob):
                    logger.warning("job %s: attempt %d failed", attempt.job.id, ctx.attempt,
                                   exc_info=exc)  # fmt: skip
        if attempt.stopped is Stopped.LOST:
            return  # no longer ours: the result, if any, is dropped
        if completed:  # it returned (if cancelled meanwhile, finished work is kept)
            await self._succeed(attempt, result)
        elif attempt.stopped is Stopped.CANCELLED:
            await attempt.finish(Stop(worker))
        elif scope.cancel_called or failure is None:  # not stopped from outside: timed out
            error = f"timed out after {kind.timeout:g} s"
            await attempt.finish(Fail(worker, error, retryable=True, backoff=kind.backoff))
        else:
            await attempt.finish(failure)

    async def _succeed(self, attempt: Attempt, result: Any) -> None:
        """Record the result: inline when small JSON, else in the blob store."""
        worker, job = self.worker_id, attempt.started
        filename: str | None = None
        is_bytes = isinstance(result, bytes | bytearray | memoryview | FileResult)
        if isinstance(result, FileResult):
            data, content_type, filename = result.data, result.content_type, result.filename
        elif isinstance(result, bytes | bytearray | memoryview):
            data, content_type = bytes(result), "application/octet-stream"
        else:
            try:
                ready, data = to_json(result)
            except (TypeError, ValueError) as exc:
                error = f"the result of job kind {job.kind!r} is not JSON-serialisable: {exc}"
                await attempt.finish(Fail(worker, error[:MAX_ERROR], retryable=False))
                return
            if len(data) <= self.inline_limit:
                await attempt.finish(Succeed(worker, result=ready))
                return
            content_type = "application/json"
        if self.blobs is None:
            why = "it is bytes" if is_bytes else (
                f"it is over inline_limit={self.inline_limit}"
            )  # fmt: skip
            error = (
                f"the result ({len(data)} bytes) must go to a blob store, as {why}, but the"
                " tracker has none: give it one (JobTracker(..., blobs=...))"
            )
            await attempt.finish(Fail(worker, error, retryable=False))
            return
        key = _blob_key(job)
        ttl = job.ttl or attempt.kind.ttl or DEFAULT_TTL
        try:
            blob = await self.blobs.put(key, data, content_type=content_type, ttl=ttl)
        except BackendUnavailable as exc:
            await attempt.finish(Fail(worker, describe(exc), backoff=attempt.kind.backoff))
            return
        except (ConfigurationError, ArgumentTypeError) as exc:  # over the store's max_size
            await attempt.finish(Fail(worker, describe(exc), retryable=False))
            return
        ref = ResultRef(key=key, size=blob.size, content_type=content_type, filename=filename)
        if await attempt.finish(Succeed(worker, result_ref=ref)) is None:
            with (  # this attempt lost the job: the blob is not its result (else: ttl)
                anyio.CancelScope(shield=True),
                anyio.move_on_after(SHUTDOWN_GRACE),
                contextlib.suppress(BackendUnavailable),
            ):
                await self.blobs.delete(key)
