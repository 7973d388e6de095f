"""What a backend sends to a user: one :class:`Notification`, whatever their devices."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ArgumentTypeError, ConfigurationError

__all__ = ["MAX_DATA", "Notification", "Urgency"]

#: How urgent a notification is (Web Push's ``Urgency`` values; FCM/APNs priorities map
#: onto them): ``high`` goes through quiet hours.
Urgency = Literal["very-low", "low", "normal", "high"]
_URGENCIES = ("very-low", "low", "normal", "high")

#: Most entries in ``data``.
MAX_DATA = 100


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification for a user, before it is shaped for each device.

    Attributes:
        title: The title shown.
        body: The text shown.
        data: Key-value data for the app (strings only: FCM takes nothing else).
        topic: The consent topic (``"orders"``, ``"marketing"``): only devices whose user
            consented to it receive it. ``None``: transactional, every device.
        urgency: ``high`` is delivered during quiet hours; the rest wait.
        collapse_key: A newer notification with the same key replaces an older one not
            yet delivered (and, on the device, the one shown).
        ttl: Seconds the push services keep it for an offline device.
        idempotency_key: Notifying again with the same key notifies nobody twice.

    Raises:
        ConfigurationError: A bad urgency, ttl, or too much data.
        ArgumentTypeError: A field of the wrong type (``data`` values must be strings).
    """

    title: str = ""
    body: str = ""
    data: Mapping[str, str] = field(default_factory=dict)
    topic: str | None = None
    urgency: Urgency = "normal"
    collapse_key: str | None = None
    ttl: float = 24 * 3600.0
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        for name in ("title", "body"):
            if not isinstance(getattr(self, name), str):
                raise ArgumentTypeError(
                    "Notification", name, expected="a str", got=getattr(self, name)
                )
        for name in ("topic", "collapse_key", "idempotency_key"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 255):
                raise ConfigurationError(
                    f"Notification {name} must be 1 to 255 characters, got {value!r:.80}"
                )
        if self.urgency not in _URGENCIES:
            raise ConfigurationError(
                f"urgency must be one of {', '.join(_URGENCIES)}, got {self.urgency!r:.40}"
            )
        ttl = self.ttl
        if (
            isinstance(ttl, bool)
            or not isinstance(ttl, int | float)
            or not (math.isfinite(ttl) and 0 <= ttl <= 28 * 24 * 3600)
        ):
            raise ConfigurationError(f"ttl must be 0 to 28 days in seconds, got {ttl!r}")
        if not isinstance(self.data, Mapping):
            raise ArgumentTypeError(
                "Notification", "data", expected="a mapping of str to str", got=self.data
            )
        if len(self.data) > MAX_DATA:
            raise ConfigurationError(
                f"Notification data holds {len(self.data)} entries; at most {MAX_DATA}"
            )
        for key, value in self.data.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ArgumentTypeError(
                    "Notification", f"data[{key!r:.40}]", expected="str keys and values", got=value
                )
        object.__setattr__(self, "data", dict(self.data))
