"""The in-memory backend: the embedded default and the executable specification."""

from ._bus import MemoryBusBackend
from ._jobs import MemoryJobStore

__all__ = ["MemoryBusBackend", "MemoryJobStore"]
