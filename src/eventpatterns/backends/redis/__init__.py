"""The Redis backend: the bus on Redis Streams and consumer groups, and presence.

Needs ``pip install 'eventpatterns[redis]'`` (redis-py, with hiredis); the client is
imported when a backend is created, so importing this package never fails.
"""

from ._bus import RedisBusBackend
from ._presence import RedisPresence

__all__ = ["RedisBusBackend", "RedisPresence"]
