"""What a backend sends to a user: one :class:`Notification`, whatever their devices."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ArgumentTypeError, ConfigurationError

__all__ = ["MAX_DATA", "PLATFORMS", "Notification", "Urgency", "Variant"]

#: How urgent a notification is (Web Push's ``Urgency`` values; FCM/APNs priorities map
#: onto them): ``high`` goes through quiet hours.
Urgency = Literal["very-low", "low", "normal", "high"]
_URGENCIES = ("very-low", "low", "normal", "high")

#: Most entries in ``data``.
MAX_DATA = 100
#: The platform values a :class:`Notification`'s ``variants`` may name (``Platform`` values).
PLATFORMS = ("webpush", "fcm", "apns")


def _check_content(owner: str, title: object, body: object, data: object) -> None:
    for name, value in (("title", title), ("body", body)):
        if not isinstance(value, str):
            raise ArgumentTypeError(owner, name, expected="a str", got=value)
    if not isinstance(data, Mapping):
        raise ArgumentTypeError(owner, "data", expected="a mapping of str to str", got=data)
    if len(data) > MAX_DATA:
        raise ConfigurationError(f"{owner} data holds {len(data)} entries; at most {MAX_DATA}")
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ArgumentTypeError(
                owner, f"data[{key!r:.40}]", expected="str keys and values", got=value
            )


@dataclass(frozen=True, slots=True)
class Variant:
    """What the devices of one platform are shown instead of a notification's own text.

    A :class:`Notification`'s ``variants`` map a platform to one of these (or to
    ``None``: not sent to that platform's devices at all). Everything else (topic,
    urgency, collapse key, ttl, the fatigue budget, idempotency) is the notification's:
    a variant changes what is shown, not whether or when it is sent.

    Attributes:
        title: The title shown on that platform.
        body: The text shown on that platform.
        data: The app's key-value data on that platform (strings only).

    Raises:
        ConfigurationError: Too much data.
        ArgumentTypeError: A field of the wrong type.
    """

    title: str = ""
    body: str = ""
    data: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_content("Variant", self.title, self.body, self.data)
        object.__setattr__(self, "data", dict(self.data))


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
        variants: Per platform (``"webpush"``, ``"fcm"``, ``"apns"``), a
            :class:`Variant` shown there instead of ``title`` / ``body`` / ``data``, or
            ``None`` to send nothing to that platform's devices (the BFF's
            ``Profiles.notification`` fills it from each client profile).

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
    variants: Mapping[str, Variant | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_content("Notification", self.title, self.body, self.data)
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
        object.__setattr__(self, "data", dict(self.data))
        if not isinstance(self.variants, Mapping):
            raise ArgumentTypeError(
                "Notification", "variants", expected="a mapping of platform to Variant",
                got=self.variants,
            )  # fmt: skip
        for platform, variant in self.variants.items():
            if platform not in PLATFORMS:
                raise ConfigurationError(
                    f"Notification variants: {platform!r:.40} is not a platform"
                    f" (one of {', '.join(PLATFORMS)})"
                )
            if variant is not None and not isinstance(variant, Variant):
                raise ArgumentTypeError(
                    "Notification", f"variants[{platform!r}]", expected="a Variant or None",
                    got=variant,
                )  # fmt: skip
        object.__setattr__(self, "variants", dict(self.variants))

    def sends_to(self, platform: str) -> bool:
        """Whether the devices of ``platform`` (a ``Platform`` value) get this notification."""
        return platform not in self.variants or self.variants[platform] is not None

    def for_platform(self, platform: str) -> Notification:
        """Return the notification as the devices of ``platform`` are sent it.

        The platform's :class:`Variant` replaces the title, body and data; the
        dispatcher's own key (``notificationId``) is kept. Without a variant, the
        notification itself.

        Raises:
            ConfigurationError: The notification is not sent to ``platform``.
        """
        if platform not in self.variants:
            return self
        variant = self.variants[platform]
        if variant is None:
            raise ConfigurationError(f"this notification is not sent to {platform!r:.40}")
        kept = {k: v for k, v in self.data.items() if k == "notificationId"}
        return dataclasses.replace(
            self, title=variant.title, body=variant.body, data={**variant.data, **kept},
            variants={},
        )  # fmt: skip
