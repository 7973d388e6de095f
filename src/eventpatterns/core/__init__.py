"""Core: the CloudEvents envelope, ids and the clock. No I/O."""

from ._clock import Clock, SystemClock
from ._event import Event, is_json_content_type
from ._ids import new_id

__all__ = ["Clock", "Event", "SystemClock", "is_json_content_type", "new_id"]
