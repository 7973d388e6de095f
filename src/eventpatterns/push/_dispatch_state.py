"""What the dispatcher keeps and reports: retry settings, results, dead letters, state.

Two small contracts with memory implementations: :class:`PushDeadLetters` (what could
not be delivered, to list and inspect; nothing is lost silently) and
:class:`DispatchState` (idempotency keys and each user's fatigue state).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import anyio

from ..bus import Backoff
from ..errors import ConfigurationError
from ._fatigue import Budget, Release, UserFatigue
from ._notification import Notification
from ._result import SendResult

__all__ = [
    "DeliveryOutcome",
    "DeliveryStatus",
    "DispatchState",
    "MemoryDispatchState",
    "MemoryPushDeadLetters",
    "NotifyResult",
    "PushDeadLetter",
    "PushDeadLetters",
    "PushRetry",
]


@dataclass(frozen=True, slots=True)
class PushRetry:
    """How the dispatcher retries a transient failure (``RetryLater``).

    Attributes:
        max_attempts: Sends per device before the notification is dead-lettered.
        backoff: The delay after each failed attempt, when the service gave no
            ``Retry-After`` (a ``Retry-After`` later than the backoff wins).
        budget: Retries allowed per provider (a token bucket): past it, a failure
            is dead-lettered at once instead of piling retries onto a struggling
            service. ``None``: no budget.
    """

    max_attempts: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=600.0))
    budget: Budget | None = field(default_factory=lambda: Budget(1000, 60.0))

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigurationError(f"max_attempts must be an int >= 1, got {attempts!r}")
        if not isinstance(self.backoff, Backoff):
            raise ConfigurationError("PushRetry backoff must be an eventpatterns.bus.Backoff")


#: What happened to one device: sent, waiting for a retry or quiet hours' end, gone.
DeliveryStatus = Literal[
    "delivered", "retrying", "held", "pruned", "kept", "dead-lettered", "collapsed"
]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """One device's outcome of a notification, as far as it got during the call.

    Attributes:
        device_id: The device.
        platform: Its platform value.
        notification_id: The notification (a digest has its own id).
        status: ``delivered``; ``retrying`` (the send failed transiently, or the
            provider's breaker is open: tried again at ``at``); ``held`` (quiet hours
            on the device until ``at``); ``pruned`` (a dead token, the device removed);
            ``kept`` (a dead token, but the device registered again since: not removed);
            ``dead-lettered`` (a permanent failure); ``collapsed`` (replaced by a newer
            notification with the same collapse key before it went).
        message_id: The push service's id, when delivered.
        reason: Why it is not delivered.
        at: When it is tried next (``retrying``, ``held``).
    """

    device_id: str
    platform: str
    notification_id: str
    status: DeliveryStatus
    message_id: str | None = None
    reason: str | None = None
    at: float | None = None


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """What :meth:`PushDispatcher.notify` did.

    Attributes:
        id: The notification's id (the in-app event's ``data.id`` and the push's
            ``data.notificationId``).
        user: The user.
        route: ``inapp`` (published to the connected user; pushed only if not acked
            in time), ``push`` (sent to devices), ``held`` (by the fatigue budget:
            released later, collapsed or in a digest), ``duplicate`` (its idempotency
            key was used already: nothing sent), ``no-devices``.
        deliveries: Per device, for the notifications sent now (a digest may stand
            for this one and others held before it).
        duplicate_of: For a duplicate, the id of the notification first sent.
    """

    id: str
    user: str
    route: Literal["inapp", "push", "held", "duplicate", "no-devices"]
    deliveries: tuple[DeliveryOutcome, ...] = ()
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class PushDeadLetter:
    """A notification that could not be delivered to a device (or at all).

    Attributes:
        id: The dead letter's id in its store.
        user: The user.
        device_id: The device, or ``None`` when no device was tried (closed before
            delivery).
        platform: The device's platform value, if any.
        notification: The notification, as it would have been sent.
        notification_id: Its id.
        reason: Why: the service's error, ``"retries exhausted: ..."``, ``"retry budget
            spent: ..."``, ``"expired"``, ``"dispatcher closed"``...
        attempts: Sends tried.
        at: When it was dead-lettered (Unix seconds).
        result: The last answer of the service, if one came.
    """

    id: str
    user: str
    device_id: str | None
    platform: str | None
    notification: Notification
    notification_id: str
    reason: str
    attempts: int
    at: float
    result: SendResult | None = None


@runtime_checkable
class PushDeadLetters(Protocol):
    """Where undeliverable notifications go, to be listed, inspected and discarded.

    The library's implementations are also :class:`~eventpatterns.core.AsyncResource`
    (``async with``, an idempotent ``aclose()``), on every backend.
    """

    async def add(self, letter: PushDeadLetter) -> None:
        """Store ``letter`` (its ``id`` is unique: ``new_id()`` made it)."""
        ...

    def new_id(self) -> str:
        """Return a fresh dead letter id."""
        ...

    async def list(self, *, user: str | None = None, limit: int = 100) -> list[PushDeadLetter]:
        """Return up to ``limit`` dead letters, oldest first (only ``user``'s if given)."""
        ...

    async def get(self, letter_id: str) -> PushDeadLetter | None:
        """Return one dead letter, or ``None``."""
        ...

    async def discard(self, letter_ids: Sequence[str]) -> int:
        """Remove these dead letters; return how many existed."""
        ...


class MemoryPushDeadLetters:
    """Dead letters in this process's memory, oldest first."""

    def __init__(self) -> None:
        self._letters: dict[str, PushDeadLetter] = {}
        self._ids = itertools.count(1)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryPushDeadLetters:
        """Build from ``memory://``, as the Redis stores build from ``redis://``.

        The other memory stores' options are skipped, so one URL serves every store.

        Raises:
            ConfigurationError: Not a ``memory://`` URL, or a bad or unknown option.
        """
        from ..backends.memory._url import parse_memory_url

        return cls(**parse_memory_url(url, "MemoryPushDeadLetters", options))

    async def __aenter__(self) -> MemoryPushDeadLetters:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release: idempotent, and the state stays (as the stores' lifecycle)."""

    def new_id(self) -> str:
        """Return a fresh dead letter id."""
        return f"pdl-{next(self._ids)}"

    async def add(self, letter: PushDeadLetter) -> None:
        """Store ``letter``."""
        self._letters[letter.id] = letter

    async def list(self, *, user: str | None = None, limit: int = 100) -> list[PushDeadLetter]:
        """Return up to ``limit`` dead letters, oldest first (only ``user``'s if given)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"limit must be an int >= 1, got {limit!r}")
        out = [x for x in self._letters.values() if user is None or x.user == user]
        return out[:limit]

    async def get(self, letter_id: str) -> PushDeadLetter | None:
        """Return one dead letter, or ``None``."""
        return self._letters.get(letter_id)

    async def discard(self, letter_ids: Sequence[str]) -> int:
        """Remove these dead letters; return how many existed."""
        return sum(self._letters.pop(i, None) is not None for i in letter_ids)


@runtime_checkable
class DispatchState(Protocol):
    """The dispatcher's memory: idempotency keys and each user's fatigue state.

    The library's implementations are also :class:`~eventpatterns.core.AsyncResource`
    (``async with``, an idempotent ``aclose()``), on every backend.
    """

    async def claim(self, user: str, key: str, notification_id: str, *, now: float) -> str | None:
        """Claim ``key`` for ``user`` atomically; return the id that holds it already.

        ``None``: claimed now for ``notification_id``. A key is kept ``key_ttl``
        seconds (the implementation's setting), then it may be claimed again.
        """
        ...

    async def fatigue(self, user: str) -> UserFatigue:
        """Return the user's fatigue state (a fresh one for a new user)."""
        ...

    async def update_fatigue(self, user: str, change: Callable[[UserFatigue], Release]) -> Release:
        """Apply ``change`` to the user's fatigue state atomically; return its release.

        ``change`` is pure (``admit`` or ``release`` with the policy bound); it may be
        called more than once when another process changed the state meanwhile (a
        compare-and-set retried), and only the call whose result is stored returns.
        """
        ...


class MemoryDispatchState:
    """Dispatch state in this process's memory.

    Args:
        key_ttl: Seconds an idempotency key is remembered (one day by default).
    """

    def __init__(self, *, key_ttl: float = 24 * 3600.0) -> None:
        if isinstance(key_ttl, bool) or not isinstance(key_ttl, int | float):
            raise ConfigurationError(f"key_ttl must be seconds, got {key_ttl!r}")
        if not (math.isfinite(key_ttl) and key_ttl > 0):
            raise ConfigurationError(f"key_ttl must be positive seconds, got {key_ttl!r}")
        self.key_ttl = float(key_ttl)
        self._keys: dict[tuple[str, str], tuple[str, float]] = {}
        self._fatigue: dict[str, UserFatigue] = {}
        self._lock = anyio.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryDispatchState:
        """Build from ``memory://`` (``?key_ttl=3600``), as the Redis stores build from ``redis://``.

        The other memory stores' options are skipped, so one URL serves every store.

        Raises:
            ConfigurationError: Not a ``memory://`` URL, or a bad or unknown option.
        """
        from ..backends.memory._url import parse_memory_url

        return cls(**parse_memory_url(url, "MemoryDispatchState", options))

    async def __aenter__(self) -> MemoryDispatchState:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release: idempotent, and the state stays (as the stores' lifecycle)."""

    async def claim(self, user: str, key: str, notification_id: str, *, now: float) -> str | None:
        """Claim ``key`` for ``user``; return the id holding it already, else ``None``."""
        held = self._keys.get((user, key))
        if held is not None and held[1] > now:
            return held[0]
        if len(self._keys) > 10_000:  # drop the expired ones now and then
            self._keys = {k: v for k, v in self._keys.items() if v[1] > now}
        self._keys[(user, key)] = (notification_id, now + self.key_ttl)
        return None

    async def fatigue(self, user: str) -> UserFatigue:
        """Return the user's fatigue state."""
        return self._fatigue.get(user, UserFatigue())

    async def update_fatigue(self, user: str, change: Callable[[UserFatigue], Release]) -> Release:
        """Apply ``change`` to the user's state under this process's lock; return it."""
        async with self._lock:
            decided = change(await self.fatigue(user))
            if decided.state == UserFatigue():
                self._fatigue.pop(user, None)
            else:
                self._fatigue[user] = decided.state
            return decided
