"""The device registry contract: who owns which push token, and what they consented to.

A registry only persists: the dispatcher decides what to send, and the registry's part
is to keep one owner per token, the user's consent per device, and the times that let
a dead-token report be applied safely. The checks of arguments live here, once, so
that every implementation refuses the same input with the same error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from ..errors import ArgumentTypeError, ConfigurationError, InvalidDevice, LimitExceeded
from ._devices import Device, Registration, check_topics

__all__ = [
    "DEFAULT_MAX_DEVICES",
    "MAX_USER",
    "DeviceRegistry",
    "check_device_id",
    "check_max_devices",
    "check_prune_limit",
    "check_registration",
    "check_time",
    "check_topic",
    "check_user",
    "too_many",
]

#: Devices one user may hold when a registry is not told otherwise.
DEFAULT_MAX_DEVICES = 50
#: Longest user id accepted.
MAX_USER = 256

_ID = re.compile(r"[0-9a-f]{32}")


@runtime_checkable
class DeviceRegistry(Protocol):
    """Where push devices live: by id (derived from the token) and by user.

    Guarantees every implementation gives (``eventpatterns.testing.DeviceRegistrySuite``
    checks them):

    * every method is atomic: a reader sees a device before or after a change, and
      concurrent registrations of one token leave exactly one owner;
    * a token has at most one owner: registering it for another user moves it (the
      previous owner no longer lists it), it is never duplicated;
    * per user, at most ``max_devices`` devices; a registration past that is refused
      with :class:`~eventpatterns.errors.LimitExceeded` and changes nothing;
    * the registry never reads a clock: the times it stores are the ``now`` passed in.

    Every method may raise :class:`~eventpatterns.errors.BackendUnavailable` when the
    registry cannot be reached (nothing was written then, or the write is complete),
    and :class:`~eventpatterns.errors.ArgumentTypeError` for an argument of the wrong
    type. A malformed device id is simply not found.

    The library's implementations are also :class:`~eventpatterns.core.AsyncResource`
    (``async with``, an idempotent ``aclose()``), on every backend.
    """

    #: Most devices one user may hold.
    max_devices: int

    async def register(self, user: str, registration: Registration, *, now: float) -> Device:
        """Register the device for ``user`` (idempotent) and return its record.

        Registering a token again updates the record in place: its keys, APNs
        settings, locale, time zone and topics become the registration's, and
        ``last_seen`` and ``registered_at`` become ``now`` (neither moves back: a
        later time stored stays); ``created_at`` stays. A token another user holds
        moves to ``user`` (``created_at`` is then ``now``).

        Raises:
            InvalidDevice: ``user`` is empty, too long or not printable.
            LimitExceeded: ``user`` holds ``max_devices`` other devices already
                (``limit="max_devices"``); nothing changed, a moving token stays
                with its previous owner.
        """
        ...

    async def get(self, device_id: str) -> Device | None:
        """Return the device, or ``None`` if no device has this id."""
        ...

    async def devices(self, user: str, *, topic: str | None = None) -> list[Device]:
        """Return the user's devices, oldest first (by ``created_at``, then id).

        Args:
            user: Whose devices.
            topic: Only the devices that consented to this topic.
        """
        ...

    async def unregister(self, user: str, device_id: str) -> bool:
        """Remove the user's device; return ``False`` if ``user`` holds no such device.

        Another user's device is not touched: the answer is ``False``, as for a
        device that does not exist.
        """
        ...

    async def unregister_all(self, user: str) -> int:
        """Remove every device of the user (an account deleted); return how many."""
        ...

    async def set_topics(self, user: str, device_id: str, topics: Iterable[str]) -> Device | None:
        """Replace the topics the user consented to on a device; return the new record.

        Returns ``None`` (and changes nothing) if ``user`` holds no such device.

        Raises:
            InvalidDevice: A malformed topic, or too many.
        """
        ...

    async def touch(self, device_id: str, now: float) -> bool:
        """Record that the device was seen at ``now``; ``False`` if it does not exist.

        ``last_seen`` never moves back: an older ``now`` leaves it as it is.
        """
        ...

    async def remove_if_not_registered_since(self, device_id: str, timestamp: float) -> bool:
        """Remove the device unless it was registered after ``timestamp``; tell if removed.

        The APNs rule for ``410 Unregistered``: Apple gives the time the token stopped
        being valid, and a device registered again after that time has a valid token,
        so it is kept. Registered at or before ``timestamp``, it is removed. One
        atomic step, so a registration racing the removal is never lost. Web Push and
        FCM dead tokens can pass the time the send started, for the same safety.
        """
        ...

    async def prune(self, *, seen_before: float, limit: int = 1000) -> int:
        """Remove up to ``limit`` devices last seen before ``seen_before``; return how many.

        FCM advises dropping tokens not seen for months; call it periodically.

        Raises:
            ConfigurationError: ``limit`` is not an int from 1 to 100,000.
        """
        ...


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def check_user(function: str, user: object) -> str:
    """Return ``user`` if it is 1-256 printable characters, else raise."""
    if not isinstance(user, str):
        raise ArgumentTypeError(function, "user", expected="a str", got=user)
    if not 0 < len(user) <= MAX_USER or not user.isprintable():
        raise InvalidDevice(
            f"a user id is 1-{MAX_USER} printable characters, got {_shown(user)}", field="user"
        )
    return user


def check_device_id(function: str, device_id: object) -> bool:
    """Tell whether ``device_id`` could name a device (a str that is not one never does).

    Raises:
        ArgumentTypeError: ``device_id`` is not a str.
    """
    if not isinstance(device_id, str):
        raise ArgumentTypeError(function, "device_id", expected="a str", got=device_id)
    return _ID.fullmatch(device_id) is not None


def check_registration(function: str, registration: object) -> Registration:
    """Return ``registration`` if it is a :class:`Registration`, else raise."""
    if not isinstance(registration, Registration):
        raise ArgumentTypeError(
            function, "registration", expected="a Registration", got=registration
        )
    return registration


def check_time(function: str, name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number of Unix seconds, else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentTypeError(function, name, expected="Unix seconds (a number)", got=value)
    if not math.isfinite(value):
        raise ConfigurationError(f"{function}() {name} must be finite, got {value!r}")
    return float(value)


def check_topic(function: str, topic: object) -> str | None:
    """Return ``topic`` (``None`` or a topic name), else raise."""
    if topic is None:
        return None
    if not isinstance(topic, str):
        raise ArgumentTypeError(function, "topic", expected="a str or None", got=topic)
    return next(iter(check_topics([topic])))


def check_max_devices(value: object) -> int:
    """Return a registry's ``max_devices`` if it is an int from 1 to 10,000, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ConfigurationError(f"max_devices must be an int from 1 to 10000, got {value!r}")
    return value


def check_prune_limit(value: object) -> int:
    """Return a ``prune`` limit if it is an int from 1 to 100,000, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise ConfigurationError(f"prune() limit must be an int from 1 to 100000, got {value!r}")
    return value


def too_many(user: str, limit: int) -> LimitExceeded:
    """Return the error for a user who holds ``limit`` devices already."""
    return LimitExceeded(
        f"user {_shown(user)} has {limit} devices already, the most allowed"
        " (unregister one, or raise max_devices)",
        limit="max_devices",
        value=limit,
    )
