"""The Redis backend: the bus on Streams and consumer groups, jobs, presence, devices.

Needs ``pip install 'eventpatterns[redis]'`` (redis-py, with hiredis); the client is
imported when a backend is created, so importing this package never fails.
"""

from ._bus import RedisBusBackend
from ._devices import RedisDeviceRegistry
from ._jobs import RedisJobStore
from ._presence import RedisPresence

__all__ = [
    "RedisBusBackend",
    "RedisDeviceRegistry",
    "RedisJobStore",
    "RedisPresence",
]
