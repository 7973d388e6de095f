"""Deliver one notification to one device: retries, the breaker, pruning, dead letters.

The :class:`Sender` is the per-device half of the dispatcher. Each send's answer
decides what happens next, in one place: ``Delivered`` is done; ``RetryLater`` is
tried again at its ``Retry-After`` (or after the backoff), within ``max_attempts``
and the provider's retry budget, later still while the provider's breaker is open;
``DeadToken`` removes the device unless it was registered again since (the APNs
timestamp, or the time the send started); ``PermanentFailure``, an exhausted retry
and a notification the adapter refuses go to the dead letters.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import anyio
import anyio.abc

from ..core import Clock
from ..errors import EventPatternsError
from ._adapters import NOTIFICATION_ID, PushProvider
from ._breaker import Breaker, BreakerPolicy
from ._devices import Device, Platform
from ._dispatch_state import (
    DeliveryOutcome,
    DeliveryStatus,
    PushDeadLetter,
    PushDeadLetters,
    PushRetry,
)
from ._fatigue import Bucket, QuietHours
from ._notification import Notification
from ._registry import DeviceRegistry
from ._result import DeadToken, Delivered, PermanentFailure, SendResult, count_result

__all__ = ["Sender", "with_id"]

logger = logging.getLogger("eventpatterns.push")


@dataclass(frozen=True, slots=True)
class _Job:
    """One notification for one device, on its ``attempt``-th send."""

    user: str
    device: Device
    notification: Notification
    id: str
    attempt: int
    created: float


class Sender:
    """Send to devices and own what follows each answer (see the module docstring)."""

    def __init__(
        self,
        registry: DeviceRegistry,
        providers: dict[Platform, PushProvider],
        *,
        quiet_hours: QuietHours | None,
        retry: PushRetry,
        breaker: BreakerPolicy,
        dead_letters: PushDeadLetters,
        clock: Clock,
        rng: random.Random,
        running: Callable[[], anyio.abc.TaskGroup],
    ) -> None:
        self.registry = registry
        self.providers = providers
        self.quiet_hours = quiet_hours
        self.retry = retry
        self.breaker_policy = breaker
        self.dead_letters = dead_letters
        self._clock = clock
        self._rng = rng
        self._running = running
        self._breakers: dict[str, Breaker] = {}
        self._budgets: dict[str, Bucket] = {}
        self._latest: dict[tuple[str, str], str] = {}  # (device, collapse key) -> newest id
        self.pending: dict[int, tuple[_Job, float]] = {}
        self._keys = itertools.count()
        self._trials: dict[str, anyio.Event] = {}  # provider -> set when its trial answers

    def breaker(self, name: str) -> Breaker:
        """Return the breaker of provider ``name``."""
        return self._breakers.get(name, Breaker())

    def scheduled(self) -> list[tuple[str, str, float]]:
        """Return ``(notification id, device id, when)`` of each waiting delivery."""
        items = ((job.id, job.device.id, at) for job, at in self.pending.values())
        return sorted(items, key=lambda item: item[2])

    async def flush(self) -> None:
        """Dead-letter every delivery still waiting (the dispatcher is closing)."""
        for job, _ in list(self.pending.values()):
            await self.dead_letter(
                job.user, job.device, job.notification, job.id, "dispatcher closed",
                job.attempt - 1, None,
            )  # fmt: skip
        self.pending.clear()

    async def fan_out(self, user: str, notification: Notification) -> list[DeliveryOutcome]:
        """Send to each of the user's devices that consented to the topic, at once."""
        nid = notification.data.get(NOTIFICATION_ID)
        if nid is None:  # a digest: an id of its own
            nid = uuid.uuid4().hex
            notification = with_id(notification, nid)
        devices = await self.registry.devices(user, topic=notification.topic)
        if notification.variants:  # a platform's variant of None: not sent there
            devices = [d for d in devices if notification.sends_to(d.platform.value)]
        now = self._clock.time()
        outcomes: list[DeliveryOutcome | None] = [None] * len(devices)
        if notification.collapse_key is not None:
            for device in devices:
                self._latest[(device.id, notification.collapse_key)] = nid

        async def one(index: int, device: Device) -> None:
            outcomes[index] = await self._attempt(_Job(user, device, notification, nid, 1, now))

        async with anyio.create_task_group() as tg:
            for index, device in enumerate(devices):
                tg.start_soon(one, index, device)
        return [outcome for outcome in outcomes if outcome is not None]

    async def send_one(
        self, user: str, device: Device, notification: Notification, nid: str
    ) -> DeliveryOutcome:
        """Send to one device with fresh attempts (a redriven dead letter)."""
        if notification.collapse_key is not None:
            self._latest[(device.id, notification.collapse_key)] = nid
        return await self._attempt(_Job(user, device, notification, nid, 1, self._clock.time()))

    # -- one send -------------------------------------------------------------------

    def _outcome(
        self,
        job: _Job,
        status: DeliveryStatus,
        *,
        message_id: str | None = None,
        reason: str | None = None,
        at: float | None = None,
    ) -> DeliveryOutcome:
        device = job.device
        return DeliveryOutcome(
            device.id, device.platform.value, job.id, status, message_id, reason, at
        )

    def _schedule(self, at: float, job: _Job, *, wake: anyio.Event | None = None) -> None:
        """Attempt ``job`` again at ``at`` (or as soon as ``wake`` is set, if given)."""
        key = next(self._keys)
        self.pending[key] = (job, at)

        async def later() -> None:
            await self._wait(at, wake)
            del self.pending[key]
            try:
                await self._attempt(job)
            except EventPatternsError as exc:  # the registry failed pruning, say
                await self._give_up(job, f"{type(exc).__name__}: {exc}", None)

        self._running().start_soon(later)

    async def _attempt(self, job: _Job) -> DeliveryOutcome:
        """Send one job, or hold it; forget its collapse key once it is settled."""
        outcome = await self._send(job)
        slot = (job.device.id, job.notification.collapse_key or "")
        settled = outcome.status not in ("retrying", "held")
        if settled and self._latest.get(slot) == job.id:
            del self._latest[slot]  # nothing newer waits for this device: no leak
        return outcome

    async def _wait(self, at: float, wake: anyio.Event | None) -> None:
        if wake is None:
            await self._clock.sleep(max(0.0, at - self._clock.time()))
            return
        async with anyio.create_task_group() as tg:

            async def cap() -> None:
                await self._clock.sleep(max(0.0, at - self._clock.time()))
                tg.cancel_scope.cancel()

            tg.start_soon(cap)
            await wake.wait()
            tg.cancel_scope.cancel()

    async def _send(self, job: _Job) -> DeliveryOutcome:
        """Send one job, or hold it; decide what its answer means."""
        device, notification = job.device, job.notification
        now = self._clock.time()
        key = notification.collapse_key
        if key is not None and self._latest.get((device.id, key)) != job.id:
            return self._outcome(job, "collapsed", reason="replaced by a newer notification")
        if job.attempt > 1 and now > job.created + notification.ttl:
            return await self._give_up(job, "expired: its ttl passed before delivery", None)
        quiet = self.quiet_hours
        zone = device.zone
        if quiet is not None and notification.urgency != "high" and zone is not None:
            until = quiet.until(now, zone)
            if until is not None:
                self._schedule(until, job)
                return self._outcome(job, "held", reason="quiet hours", at=until)
        provider = self.providers.get(device.platform)
        if provider is None:
            return await self._give_up(job, f"no provider for {device.platform.value}", None)
        name = device.platform.value
        policy = self.breaker_policy
        breaker, allowed = self._breakers.get(name, Breaker()).allow(policy, now)
        self._breakers[name] = breaker
        if allowed and breaker.state == "half-open":
            self._trials[name] = anyio.Event()  # the others wait for this trial's answer
        if not allowed:
            # Open: until its cooldown ends. Half-open with the trial out: until the
            # trial answers (a cooldown at most), then the breaker decides again.
            trial = self._trials.get(name) if breaker.state == "half-open" else None
            at = breaker.retry_at() or now + policy.cooldown
            self._schedule(at, job, wake=trial)
            return self._outcome(job, "retrying", reason=f"circuit breaker {breaker.state}", at=at)
        if not notification.sends_to(name):  # a redriven letter of a platform left out since
            return await self._give_up(job, f"not sent to {name} (its variant is None)", None)
        try:
            result = await provider.send(device, notification.for_platform(name))
            count_result(result)
        except (EventPatternsError, ValueError) as exc:
            self._record(name, ok=True)
            return await self._give_up(job, f"{type(exc).__name__}: {exc}", None)
        return await self._answer(job, result, started=now)

    def _record(self, name: str, *, ok: bool) -> Breaker:
        breaker = self._breakers.get(name, Breaker())
        breaker = breaker.record(self.breaker_policy, ok=ok, now=self._clock.time())
        self._breakers[name] = breaker
        trial = self._trials.pop(name, None)
        if trial is not None:
            trial.set()
        return breaker

    async def _answer(self, job: _Job, result: SendResult, *, started: float) -> DeliveryOutcome:
        name = job.device.platform.value
        if isinstance(result, Delivered):
            self._record(name, ok=True)
            return self._outcome(job, "delivered", message_id=result.message_id)
        if isinstance(result, DeadToken):
            self._record(name, ok=True)
            # APNs gives when the token stopped being valid; for the others the time
            # this send started is as safe: a registration after it is kept.
            since = result.timestamp if result.timestamp is not None else started
            removed = await self.registry.remove_if_not_registered_since(job.device.id, since)
            reason = result.reason if removed else f"{result.reason}; kept: registered again"
            return self._outcome(job, "pruned" if removed else "kept", reason=reason)
        if isinstance(result, PermanentFailure):
            self._record(name, ok=True)
            return await self._give_up(job, result.reason, result)
        breaker = self._record(name, ok=False)
        if job.attempt >= self.retry.max_attempts:
            return await self._give_up(job, f"retries exhausted: {result.reason}", result)
        if not self._take_retry(name):
            return await self._give_up(job, f"retry budget spent: {result.reason}", result)
        now = self._clock.time()
        at = result.at if result.at is not None else now + self._backoff(job.attempt)
        at = max(at, breaker.retry_at() or at)
        self._schedule(at, dataclasses.replace(job, attempt=job.attempt + 1))
        return self._outcome(job, "retrying", reason=result.reason, at=at)

    def _backoff(self, attempt: int) -> float:
        return self.retry.backoff.delay(attempt, self._rng)

    def _take_retry(self, name: str) -> bool:
        budget = self.retry.budget
        if budget is None:
            return True
        now = self._clock.time()
        bucket = self._budgets.get(name) or Bucket.full(budget, now)
        bucket = bucket.refill(budget, now)
        if bucket.tokens < 1:
            self._budgets[name] = bucket
            return False
        self._budgets[name] = dataclasses.replace(bucket, tokens=bucket.tokens - 1)
        return True

    async def _give_up(self, job: _Job, reason: str, result: SendResult | None) -> DeliveryOutcome:
        await self.dead_letter(
            job.user, job.device, job.notification, job.id, reason, job.attempt, result
        )
        return self._outcome(job, "dead-lettered", reason=reason)

    async def dead_letter(
        self,
        user: str,
        device: Device | None,
        notification: Notification,
        nid: str,
        reason: str,
        attempts: int,
        result: SendResult | None,
    ) -> None:
        store = self.dead_letters
        letter = PushDeadLetter(
            store.new_id(), user, None if device is None else device.id,
            None if device is None else device.platform.value, notification, nid, reason,
            attempts, self._clock.time(), result,
        )  # fmt: skip
        logger.warning("push dead letter %s for user %r: %s", letter.id, user, reason)
        await store.add(letter)


def with_id(notification: Notification, nid: str) -> Notification:
    """Return ``notification`` with ``nid`` in its data under ``notificationId``."""
    if notification.data.get(NOTIFICATION_ID) == nid:
        return notification
    return dataclasses.replace(notification, data={**notification.data, NOTIFICATION_ID: nid})
