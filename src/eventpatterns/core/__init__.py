"""Core: the CloudEvents envelope, its conversions, typed events, ids, clock, lifecycle. No I/O."""

from ._clock import Clock, SystemClock
from ._event import Event, trusted_event
from ._http import BATCH_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE, events_to_http_batch
from ._ids import new_id
from ._lifecycle import AsyncResource
from ._rules import ATTRIBUTES, format_time, is_json_content_type, parse_time
from ._typed import DEFAULT_REGISTRY, EventModel, EventRegistry, Upcaster, schema_uri

__all__ = [
    "ATTRIBUTES",
    "BATCH_CONTENT_TYPE",
    "DEFAULT_REGISTRY",
    "STRUCTURED_CONTENT_TYPE",
    "AsyncResource",
    "Clock",
    "Event",
    "EventModel",
    "EventRegistry",
    "SystemClock",
    "Upcaster",
    "events_to_http_batch",
    "format_time",
    "is_json_content_type",
    "new_id",
    "parse_time",
    "schema_uri",
    "trusted_event",
]
