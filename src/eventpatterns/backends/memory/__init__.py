"""The in-memory backend: the embedded default and the executable specification."""

from ._blobs import MemoryBlobStore
from ._bus import MemoryBusBackend
from ._devices import MemoryDeviceRegistry
from ._jobs import MemoryJobStore

__all__ = ["MemoryBlobStore", "MemoryBusBackend", "MemoryDeviceRegistry", "MemoryJobStore"]
