"""Push notifications: a device registry, Web Push / FCM / APNs providers, a dispatcher.

See ``docs/push.md``.
"""

from ._auth import Mint, TokenAuth
from ._devices import MAX_TOPICS, Device, Environment, Platform, Registration, device_id
from ._devices_json import device_to_json, registration_from_json
from ._registry import DEFAULT_MAX_DEVICES, DeviceRegistry
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult

__all__ = [
    "DEFAULT_MAX_DEVICES",
    "MAX_TOPICS",
    "DeadToken",
    "Delivered",
    "Device",
    "DeviceRegistry",
    "Environment",
    "Mint",
    "PermanentFailure",
    "Platform",
    "Registration",
    "RetryLater",
    "SendResult",
    "TokenAuth",
    "device_id",
    "device_to_json",
    "registration_from_json",
]
