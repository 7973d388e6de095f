"""The Redis backend: the bus on Streams, jobs, presence, devices, push dispatch state.

Needs ``pip install 'eventpatterns[redis]'`` (redis-py, with hiredis); the client is
imported when a backend is created, so importing this package never fails.
"""

from ._bus import RedisBusBackend
from ._devices import RedisDeviceRegistry
from ._jobs import RedisJobStore
from ._presence import RedisPresence
from ._push_state import RedisDispatchState, RedisPushDeadLetters

__all__ = [
    "RedisBusBackend",
    "RedisDeviceRegistry",
    "RedisDispatchState",
    "RedisJobStore",
    "RedisPresence",
    "RedisPushDeadLetters",
]
