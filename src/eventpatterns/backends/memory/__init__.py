"""The in-memory backend: the embedded default and the executable specification."""

from ._bus import MemoryBusBackend

__all__ = ["MemoryBusBackend"]
