"""Real-time delivery to browsers and apps: gateway, transports, auth, presence (issue 9).

``import eventpatterns.realtime`` imports no optional dependency.
"""

from ._presence import Presence, PresenceEvent
from ._presence_memory import MemoryPresence

__all__ = [
    "MemoryPresence",
    "Presence",
    "PresenceEvent",
]
