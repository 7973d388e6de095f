"""The memory device registry runs the public DeviceRegistry suite, on asyncio and trio."""

from __future__ import annotations

import pytest

from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.errors import ConfigurationError
from eventpatterns.push import DEFAULT_MAX_DEVICES, DeviceRegistry
from eventpatterns.testing import DeviceRegistrySuite


class TestMemoryDeviceRegistry(DeviceRegistrySuite):
    async def make_registry(self, *, max_devices: int = DEFAULT_MAX_DEVICES) -> DeviceRegistry:
        return MemoryDeviceRegistry(max_devices=max_devices)


@pytest.mark.parametrize("value", [0, -1, 10_001, True, 2.5, "3"])
def test_a_bad_max_devices_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match="max_devices"):
        MemoryDeviceRegistry(max_devices=value)  # type: ignore[arg-type]


def test_it_is_a_device_registry() -> None:
    assert isinstance(MemoryDeviceRegistry(), DeviceRegistry)
