"""Test helpers for applications and backends: conformance suites, clocks, fakes.

Importing this package needs pytest (``pip install 'eventpatterns[dev]'`` or just
``pytest``); it is never imported by ``import eventpatterns``.
"""

from ._bus_suite import BusBackendSuite, TypeIs, eventually, make_events
from ._clock import ManualClock

__all__ = ["BusBackendSuite", "ManualClock", "TypeIs", "eventually", "make_events"]
