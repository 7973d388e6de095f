"""Observability: metrics, trace context across bus hops, and why an event did not match.

Core layer: no I/O and nothing heavy imported. See ``docs/observability.md``.

* :data:`metrics` (a :class:`Metrics`) is the registry every pattern records into;
  :data:`METRICS` is the table of every metric's name, labels and help text;
  :func:`eventpatterns.observability.asgi.metrics_app` serves it as Prometheus text.
* :class:`TraceContext` is a W3C trace context; the bus carries it in the CloudEvents
  ``traceparent`` extension from a handled event to the events published while
  handling it (OpenTelemetry spans when ``opentelemetry-api`` is set up).
* :meth:`eventpatterns.EventBus.explain` says why a group's or a pattern's filter
  refused an event (:func:`eventpatterns.filters.explain` underneath).
"""

from ._metrics import METRICS, Counter, Metrics, MetricSpec, Sample, metrics
from ._trace import TraceContext, current_trace, set_tracer, trace_of, use_trace

__all__ = [
    "METRICS",
    "Counter",
    "MetricSpec",
    "Metrics",
    "Sample",
    "TraceContext",
    "current_trace",
    "metrics",
    "set_tracer",
    "trace_of",
    "use_trace",
]
