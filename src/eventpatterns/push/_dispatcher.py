"""The push dispatcher: one notification to a user, on every device they allowed, once.

:class:`PushDispatcher` owns what a single provider call cannot: retries (exponential
backoff with jitter, ``Retry-After`` honoured, a retry budget and a circuit breaker per
provider), dead-token pruning, dead letters, idempotency keys, the fatigue policy
(:func:`~eventpatterns.push.admit` / :func:`~eventpatterns.push.release`, quiet hours
per device) and in-app first delivery (``_dispatch_inapp.py``). Everything that waits
(a retry, quiet hours, a budget wake-up, an ack deadline) is a task in the
dispatcher's task group sleeping on the injected clock.
"""

from __future__ import annotations

import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ..bus import Consumer, EventBus
from ..core import Clock, Event, SystemClock
from ..errors import ArgumentTypeError, ConfigurationError, EventPatternsError, InvalidState
from ._adapters import NOTIFICATION_ID, PushProvider
from ._breaker import Breaker, BreakerPolicy
from ._devices import Platform
from ._dispatch_inapp import JOB_TYPES, InApp, job_notification, user_channel
from ._dispatch_send import Sender, with_id
from ._dispatch_state import (
    DeliveryOutcome,
    DispatchState,
    MemoryDispatchState,
    MemoryPushDeadLetters,
    NotifyResult,
    PushDeadLetters,
    PushRetry,
)
from ._fatigue import FatiguePolicy, admit, release
from ._notification import MAX_DATA, Notification
from ._registry import DeviceRegistry, check_user

if TYPE_CHECKING:
    from ..realtime import Presence

__all__ = ["PushDispatcher"]

logger = logging.getLogger("eventpatterns.push")


class PushDispatcher:
    """Send notifications to users' devices: retries, pruning, fatigue, in-app first.

    Use it as an async context manager: the retries, quiet-hours holds, budget
    wake-ups and ack deadlines run in its task group. On exit, whatever still waits
    goes to the dead letters (``reason="dispatcher closed"``): nothing is lost silently.

    Args:
        registry: Where the users' devices are (a :class:`DeviceRegistry`).
        providers: One :class:`~eventpatterns.push.PushProvider` per platform
            (``WebPushAdapter``, ``FCMAdapter``, ``APNsAdapter``).
        policy: The fatigue policy (budget, quiet hours, digests).
        presence: Who is connected (:class:`~eventpatterns.realtime.Presence`): a user
            present on ``channel(user)`` gets the notification in-app first.
        bus: Where in-app notifications are published and acks read (needed with
            ``presence``).
        clock: The time source of every wait (``ManualClock`` in tests).
        retry: Attempts, backoff and retry budget (:class:`PushRetry`).
        breaker: The circuit breaker policy, one breaker per provider.
        dead_letters: Where undeliverable notifications go (memory by default;
            ``RedisPushDeadLetters`` keeps them across restarts and processes).
        state: Idempotency keys and fatigue state (memory by default;
            ``RedisDispatchState`` shares them between dispatchers).
        ack_timeout: Seconds an in-app notification waits for its ack before it is pushed.
        channel: The presence channel of a user (``user:<id>`` by default).
        rng: The random source of the backoff jitter.

    Raises:
        ConfigurationError: ``presence`` without ``bus``, a provider that is not a
            :class:`PushProvider`, or a bad ``ack_timeout``.
    """

    def __init__(
        self,
        registry: DeviceRegistry,
        providers: Mapping[Platform | str, PushProvider],
        *,
        policy: FatiguePolicy | None = None,
        presence: Presence | None = None,
        bus: EventBus | None = None,
        clock: Clock | None = None,
        retry: PushRetry | None = None,
        breaker: BreakerPolicy | None = None,
        dead_letters: PushDeadLetters | None = None,
        state: DispatchState | None = None,
        ack_timeout: float = 30.0,
        channel: Callable[[str], str] = user_channel,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(registry, DeviceRegistry):
            raise ConfigurationError("PushDispatcher needs a DeviceRegistry")
        self._providers: dict[Platform, PushProvider] = {}
        for platform, provider in providers.items():
            if not isinstance(provider, PushProvider):
                raise ConfigurationError(
                    f"the provider for {platform!s} is not a PushProvider (wrap a provider"
                    " in WebPushAdapter, FCMAdapter or APNsAdapter)"
                )
            self._providers[Platform(platform)] = provider
        if presence is not None and bus is None:
            raise ConfigurationError("in-app delivery (presence=) needs the bus= to publish on")
        if isinstance(ack_timeout, bool) or not isinstance(ack_timeout, int | float):
            raise ConfigurationError(f"ack_timeout must be seconds, got {ack_timeout!r}")
        if not 0 < ack_timeout <= 24 * 3600:
            raise ConfigurationError(f"ack_timeout must be 0 to 86400 seconds, got {ack_timeout}")
        self.registry = registry
        self.policy = policy or FatiguePolicy()
        self.retry = retry or PushRetry()
        self.breaker_policy = breaker or BreakerPolicy()
        self.dead_letters: PushDeadLetters = dead_letters or MemoryPushDeadLetters()
        self.state: DispatchState = state or MemoryDispatchState()
        self._bus = bus
        self._clock = clock or SystemClock()
        self._inapp: InApp | None = None
        if presence is not None and bus is not None:
            self._inapp = InApp(
                bus,
                presence,
                clock=self._clock,
                channel=channel,
                ack_timeout=float(ack_timeout),
                escalate=self._escalate,
            )
        self._sender = Sender(
            registry,
            self._providers,
            quiet_hours=self.policy.quiet_hours,
            retry=self.retry,
            breaker=self.breaker_policy,
            dead_letters=self.dead_letters,
            clock=self._clock,
            rng=rng or random.Random(),  # noqa: S311 - jitter, not security
            running=self._running,
        )
        self._wakes: dict[str, float] = {}  # user -> earliest budget wake-up scheduled
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> PushDispatcher:
        if self._tg is not None or self._closed:
            raise InvalidState("a PushDispatcher can be entered only once", state="running")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        if self._inapp is not None:
            await tg.start(self._inapp.listen)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop waiting work and dead-letter what it held. Idempotent."""
        if self._closed or self._tg is None:
            self._closed = True
            return
        self._closed = True
        tg, self._tg = self._tg, None
        tg.cancel_scope.cancel()
        try:
            await tg.__aexit__(None, None, None)
        finally:
            await self._flush()

    async def _flush(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._sender.flush()
            waiting = {} if self._inapp is None else self._inapp.waiting
            for nid, item in list(waiting.items()):
                await self._sender.dead_letter(
                    item.user, None, item.notification, nid, "dispatcher closed before ack", 0, None
                )
            waiting.clear()

    def _running(self) -> anyio.abc.TaskGroup:
        if self._tg is None:
            state = "closed" if self._closed else "new"
            raise InvalidState(f"the PushDispatcher is {state}: use it in async with", state=state)
        return self._tg

    @property
    def pending(self) -> int:
        """How many device deliveries wait (for a retry, a breaker or quiet hours)."""
        return len(self._sender.pending)

    def breaker(self, platform: Platform | str) -> Breaker:
        """Return the circuit breaker of a platform's provider (closed until it fails)."""
        return self._sender.breaker(Platform(platform).value)

    def awaiting_ack(self) -> list[str]:
        """Return the ids of the in-app notifications waiting for their ack."""
        return [] if self._inapp is None else list(self._inapp.waiting)

    def scheduled(self) -> list[tuple[str, str, float]]:
        """Return ``(notification id, device id, when)`` of each waiting delivery, soonest first."""
        return self._sender.scheduled()

    # -- notify ---------------------------------------------------------------------

    async def notify(self, user: str, notification: Notification) -> NotifyResult:
        """Notify ``user``: in-app if connected, else on each consented device, once.

        Args:
            user: The user (a device registry owner).
            notification: What to say; with an ``idempotency_key``, notifying again
                with the same key (also concurrently) notifies nobody twice.

        Returns:
            A :class:`NotifyResult`: the notification's id, the route taken and the
            outcome per device of what was sent during the call.

        Raises:
            ArgumentTypeError: ``notification`` is not a :class:`Notification`.
            InvalidDevice: A malformed ``user``.
            ConfigurationError: ``notification.data`` is full (it needs room for
                ``notificationId``).
            InvalidState: The dispatcher is not running.
        """
        check_user("notify", user)
        if not isinstance(notification, Notification):
            raise ArgumentTypeError(
                "notify", "notification", expected="a Notification", got=notification
            )
        if NOTIFICATION_ID not in notification.data and len(notification.data) >= MAX_DATA:
            raise ConfigurationError(
                f"notification data holds {MAX_DATA} entries: leave room for {NOTIFICATION_ID!r}"
            )
        self._running()
        nid = uuid.uuid4().hex
        key = notification.idempotency_key
        if key is not None:
            first = await self.state.claim(user, key, nid, now=self._clock.time())
            if first is not None:
                return NotifyResult(nid, user, "duplicate", duplicate_of=first)
        notification = with_id(notification, nid)
        inapp = self._inapp
        if (
            inapp is not None
            and await inapp.online(user)
            and await inapp.publish(self._running(), user, notification, nid)
        ):
            return NotifyResult(nid, user, "inapp")
        return await self._push(user, notification, nid)

    async def ack(self, user: str, notification_id: str) -> bool:
        """Acknowledge an in-app notification: it will not be pushed.

        Call it from the app's HTTP route (``POST /notifications/{id}/ack``, with the
        authenticated user); the ack is also published on the bus as
        ``eventpatterns.push.ack``, so that the dispatcher waiting for it in another
        process sees it too.

        Returns:
            Whether this dispatcher was waiting for this user's ack of it.

        Raises:
            InvalidDevice: A malformed ``user``.
            ArgumentTypeError: ``notification_id`` is not a str.
            InvalidState: The dispatcher is not running.
        """
        check_user("ack", user)
        if not isinstance(notification_id, str):
            raise ArgumentTypeError("ack", "notification_id", expected="a str", got=notification_id)
        self._running()
        if self._inapp is None:
            return False
        applied = self._inapp.apply_ack(user, notification_id)
        await self._inapp.publish_ack(user, notification_id)
        return applied

    async def redrive(self, ids: Sequence[str] | None = None, *, limit: int = 1000) -> int:
        """Send dead letters again through the normal path, with fresh attempts.

        A letter of one device is sent to that device again (quiet hours, retries and
        the breaker apply; its fatigue budget was spent when it was first sent); a
        letter of no device (closed before delivery, a failed fan-out) is notified
        anew, through the fatigue budget, to the user's consented devices. Each letter
        is discarded before it is sent, so a new failure is a new dead letter, and
        dispatchers sharing the store never redrive one letter twice. A letter whose
        device is gone (pruned, or now another user's) is left in the store.

        Args:
            ids: The letters to redrive (unknown ids are skipped); ``None``: the
                oldest ``limit`` of the store.
            limit: How many letters at most, when ``ids`` is ``None``.

        Returns:
            How many letters were redriven.

        Raises:
            InvalidState: The dispatcher is not running.
            ConfigurationError: A bad ``limit``.
            BackendUnavailable: The dead letter store, state or registry failed (the
                letters not redriven yet stay stored).
        """
        self._running()
        if ids is None:
            letters = await self.dead_letters.list(limit=limit)
        else:
            found = [await self.dead_letters.get(i) for i in dict.fromkeys(ids)]
            letters = [letter for letter in found if letter is not None]
        redriven = 0
        for letter in letters:
            device = None
            if letter.device_id is not None:
                device = await self.registry.get(letter.device_id)
                if device is None or device.user != letter.user:
                    continue
            if not await self.dead_letters.discard([letter.id]):
                continue  # another dispatcher redrove (or discarded) it meanwhile
            redriven += 1
            nid = letter.notification_id or uuid.uuid4().hex
            notification = with_id(letter.notification, nid)
            if device is not None:
                await self._sender.send_one(letter.user, device, notification, nid)
            else:
                await self._push(letter.user, notification, nid, keep=True)
        return redriven

    async def _escalate(self, user: str, notification: Notification, nid: str) -> None:
        """No ack in time: push it (a failure is dead-lettered by ``_push``)."""
        with contextlib.suppress(EventPatternsError):
            await self._push(user, notification, nid, keep=True)

    async def notify_jobs(
        self, bus: EventBus, *, group: str = "eventpatterns-push-jobs", topic: str | None = None
    ) -> Consumer:
        """Send each job's completion to its owner when the owner is offline.

        Consumes ``eventpatterns.job.succeeded`` / ``failed`` events in ``group``; the
        owner is the ``jobowner`` extension. An owner connected to the gateway sees
        the job event there already, so only offline owners get a push (the event id
        is the idempotency key: a redelivery notifies nobody twice).

        Args:
            bus: The bus the job events are published on.
            group: The consumer group.
            topic: The consent topic of these notifications (``None``: every device).

        Returns:
            The running consumer (it stops with the bus or its ``aclose()``).
        """
        self._running()

        async def handle(event: Event) -> None:
            made = job_notification(event, topic=topic)
            if made is None:
                return
            owner, notification = made
            if self._inapp is not None and await self._inapp.online(owner):
                return
            await self.notify(owner, notification)

        return await bus.consume(group, handle, pattern={"type": list(JOB_TYPES)})

    async def _push(
        self, user: str, notification: Notification, nid: str, *, keep: bool = False
    ) -> NotifyResult:
        """Apply the fatigue budget, then fan out what it lets through now.

        A failure of the state store or the registry raises; what was accepted by then
        (and, with ``keep``, the notification itself) goes to the dead letters first.
        """
        try:
            now = self._clock.time()
            decided = await self.state.update_fatigue(
                user, lambda state: admit(self.policy, state, notification, now)
            )
        except EventPatternsError as exc:
            if keep:  # an escalation: nobody else holds it
                await self._lost(user, notification, exc)
            raise
        self._wake(user, decided.wake_at)
        deliveries: list[DeliveryOutcome] = []
        for item in decided.deliver:
            try:
                deliveries.extend(await self._sender.fan_out(user, item))
            except EventPatternsError as exc:
                await self._lost(user, item, exc)  # kept for a redrive, and the caller told
                raise
        if not decided.deliver:
            return NotifyResult(nid, user, "held")
        return NotifyResult(nid, user, "push" if deliveries else "no-devices", tuple(deliveries))

    def _wake(self, user: str, at: float | None) -> None:
        if at is None or self._wakes.get(user, float("inf")) <= at:
            return
        self._wakes[user] = at
        self._running().start_soon(self._release_at, user, at)

    async def _release_at(self, user: str, at: float) -> None:
        await self._clock.sleep(max(0.0, at - self._clock.time()))
        if self._wakes.get(user) == at:
            del self._wakes[user]
        now = self._clock.time()
        decided = await self.state.update_fatigue(
            user, lambda state: release(self.policy, state, now)
        )
        self._wake(user, decided.wake_at)
        for item in decided.deliver:
            try:
                await self._sender.fan_out(user, item)
            except EventPatternsError as exc:
                await self._lost(user, item, exc)

    async def _lost(self, user: str, notification: Notification, exc: Exception) -> None:
        """Dead-letter a notification whose fan-out failed (the registry is down)."""
        nid = notification.data.get(NOTIFICATION_ID, "")
        reason = f"fan-out failed: {type(exc).__name__}: {exc}"
        await self._sender.dead_letter(user, None, notification, nid, reason, 0, None)
