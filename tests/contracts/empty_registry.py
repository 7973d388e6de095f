"""A registry with nothing declared (for the CLI's error)."""

from eventpatterns.core import EventRegistry

REGISTRY = EventRegistry("empty")
