"""eventpatterns: event-driven backend patterns for web and mobile apps.

The names most applications need are re-exported here; each pattern's package
(``eventpatterns.bus``, ``eventpatterns.filters``...) has the rest.
"""

import logging as _logging

from ._version import __version__
from .bus import Backoff, BatchFailure, EventBus, Gap, Retry, Timeouts
from .core import Event
from .errors import EventPatternsError

__all__ = [
    "Backoff",
    "BatchFailure",
    "Event",
    "EventBus",
    "EventPatternsError",
    "Gap",
    "Retry",
    "Timeouts",
    "__version__",
]

# A library logs, the application decides where it goes (no "No handler" output).
_logging.getLogger("eventpatterns").addHandler(_logging.NullHandler())
