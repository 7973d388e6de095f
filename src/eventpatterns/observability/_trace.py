"""W3C trace context carried in the CloudEvents ``traceparent`` extension.

The CloudEvents distributed-tracing extension puts the W3C Trace Context headers on the
event as the ``traceparent`` and ``tracestate`` attributes. The bus keeps the context
across hops: while a consumer handles an event, that event is the *current* one (a
context variable), and an event published then carries the handled event's trace id
with a new parent span id. With ``opentelemetry-api`` importable and a tracer provider
set, publishing and handling are OpenTelemetry spans instead, and OpenTelemetry's
current span is the context; without it, nothing is imported and no span is made.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import random
import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from ..core import Event
from ..core._event import _store
from ..errors import MissingDependency

__all__ = ["TraceContext", "current_trace", "set_tracer", "trace_of", "use_trace"]

# W3C Trace Context, section 3.2: version-traceid-parentid-flags, lowercase hex. A
# later version may append fields after a "-" (3.2.4), which a version-00 parser keeps
# ignoring; version ff is invalid, and an all-zero trace or parent id too.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.S)
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# Span ids need to be unique, not secret (W3C Trace Context 3.2.2.4 asks for
# randomness, not unpredictability): a Mersenne generator seeded from the OS is 5x
# cheaper than SystemRandom's system call per id.
_random = random.Random()  # noqa: S311 - ids, not secrets (see above)


def _span_id() -> str:
    return f"{_random.getrandbits(64) or 1:016x}"


class TraceContext(NamedTuple):
    """One W3C trace context: the trace, the parent span, the flags.

    A named tuple (immutable; made once per published event, so it is kept cheap).

    Attributes:
        trace_id: 32 lowercase hex digits, not all zero.
        span_id: The parent span: 16 lowercase hex digits, not all zero.
        flags: The trace flags (bit 0: sampled).
        tracestate: The vendors' ``tracestate`` header, passed along as it came.

    Example:
        >>> ctx = TraceContext.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        >>> ctx.trace_id, ctx.child().trace_id == ctx.trace_id
        ('4bf92f3577b34da6a3ce929d0e0e4736', True)
        >>> TraceContext.parse("00-not-a-traceparent") is None
        True
    """

    trace_id: str
    span_id: str
    flags: int = 1
    tracestate: str | None = None

    @classmethod
    def parse(cls, value: object, tracestate: object = None) -> TraceContext | None:
        """Read a ``traceparent`` value; ``None`` when it is malformed (never raises)."""
        if not isinstance(value, str) or len(value) < 55:
            return None
        found = _TRACEPARENT.fullmatch(value)
        if found is None:
            return None
        version, trace_id, span_id, flags, rest = found.groups()
        if version == "ff" or (version == "00" and rest is not None):
            return None
        if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
            return None
        state = tracestate if isinstance(tracestate, str) and tracestate else None
        return cls(trace_id, span_id, int(flags, 16), state)

    @classmethod
    def new(cls) -> TraceContext:
        """Start a new trace (random ids, sampled)."""
        return cls(f"{_random.getrandbits(128) or 1:032x}", _span_id())

    @property
    def traceparent(self) -> str:
        """The ``traceparent`` value (version 00)."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags & 0xFF:02x}"

    def child(self) -> TraceContext:
        """The same trace with a new parent span id."""
        return TraceContext(self.trace_id, _span_id(), self.flags, self.tracestate)

    def stamp(self, event: Event) -> Event:
        """Return ``event`` carrying this context (``traceparent``, and ``tracestate``)."""
        extensions: dict[str, Any] = dict(event.extensions)
        extensions["traceparent"] = self.traceparent
        if self.tracestate is not None:
            extensions["tracestate"] = self.tracestate
        else:
            extensions.pop("tracestate", None)
        # As model_copy(update=...) does, at a third of its cost: the event was valid,
        # and both values are strings, as extension values may be.
        values = dict(event.__dict__)
        values["extensions"] = extensions
        stamped = Event.__new__(type(event))
        _store(stamped, values)
        return stamped


def trace_of(event: Event) -> TraceContext | None:
    """Return the trace context an event carries (``None``: none, or malformed)."""
    extensions = event.extensions
    if "traceparent" not in extensions:
        return None
    return TraceContext.parse(extensions["traceparent"], extensions.get("tracestate"))


def _derived(event: Event) -> TraceContext:
    # A handled event with a malformed traceparent continues a trace of its own,
    # derived from its id so that every event published while it is handled shares it.
    digest = hashlib.blake2b(f"{event.source}\0{event.id}".encode(), digest_size=24).hexdigest()
    return TraceContext(digest[:32], digest[32:48] if digest[32:48] != _ZERO_SPAN else "1" * 16)


#: The event being handled (or a context set with :func:`use_trace`), per task.
CURRENT: contextvars.ContextVar[Event | TraceContext | None] = contextvars.ContextVar(
    "eventpatterns_trace", default=None
)


def current_trace() -> TraceContext | None:
    """Return the trace context an event published now would continue.

    OpenTelemetry's current span when there is a valid one, else the context given
    to :func:`use_trace`, else that of the event a consumer is handling (``None`` when
    it carries no ``traceparent``; a malformed one is replaced by a trace derived
    from the event's id), else ``None``.
    """
    tracer = otel_tracer()
    if tracer is not None:
        found = _otel_current()
        if found is not None:
            return found
    held = CURRENT.get()
    if held is None or isinstance(held, TraceContext):
        return held
    if "traceparent" not in held.extensions:
        return None  # no trace came in: none goes out (and nothing is paid for one)
    return trace_of(held) or _derived(held)


@contextlib.contextmanager
def use_trace(context: TraceContext | Event | None) -> Iterator[None]:
    """Make ``context`` current in this block: events published in it continue it.

    Example:
        ```python
        from eventpatterns.observability import TraceContext, current_trace, use_trace

        incoming = TraceContext.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        with use_trace(incoming):
            assert current_trace() == incoming
        ```
    """
    token = CURRENT.set(context)
    try:
        yield
    finally:
        CURRENT.reset(token)


def stamp(event: Event) -> Event:
    """Give a published event the current trace context, if it has none (the bus's hook).

    An event that carries a valid ``traceparent`` keeps it (the producer set it); a
    malformed one is replaced, by a child of the current context or a new trace.
    """
    extensions = event.extensions
    if not extensions and CURRENT.get() is None:
        return event  # the common case: no context, nothing to carry
    raw = extensions.get("traceparent")
    if raw is not None and TraceContext.parse(raw) is not None:
        return event
    parent = current_trace()
    if parent is None:
        if raw is None:
            return event
        return TraceContext.new().stamp(event)
    return parent.child().stamp(event)


# -- OpenTelemetry (optional) --------------------------------------------------------

_otel: Any = None  # the opentelemetry.trace module; False: not importable
#: OpenTelemetry may also name its provider in the environment, read on first use.
_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
_tracer: Any = None


def otel_tracer() -> Any:
    """Return an OpenTelemetry tracer once a tracer provider is set, else ``None``.

    The import is tried once; without ``opentelemetry-api`` this is a global lookup.
    """
    global _otel, _tracer
    if _tracer is not None:
        return _tracer
    if _otel is False:
        return None
    if _otel is None:
        try:
            from opentelemetry import trace
        except ImportError:
            _otel = False
            return None
        _otel = trace
    if getattr(_otel, "_TRACER_PROVIDER", True) is None and not _FROM_ENV:
        return None  # not set: one attribute read per call (get_tracer_provider() is 30x)
    provider = _otel.get_tracer_provider()
    if isinstance(provider, _otel.ProxyTracerProvider | _otel.NoOpTracerProvider):
        return None  # no SDK configured (yet): spans would record nothing
    _tracer = provider.get_tracer("eventpatterns")
    return _tracer


def set_tracer(tracer: Any) -> None:
    """Make spans with this OpenTelemetry tracer (``None``: the global provider's, once set).

    By default the bus asks OpenTelemetry's global tracer provider, once one is set
    (``opentelemetry.trace.set_tracer_provider``); this names a tracer explicitly,
    for instance one of a provider kept out of the global slot in tests.

    Raises:
        MissingDependency: ``opentelemetry-api`` is not installed.
    """
    global _otel, _tracer
    if tracer is not None:
        try:
            from opentelemetry import trace
        except ImportError as exc:  # pragma: no cover - the tracer came from it
            raise MissingDependency("opentelemetry-api", extra="otel") from exc
        _otel = trace
    _tracer = tracer


def _otel_current() -> TraceContext | None:
    context = _otel.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    state = context.trace_state.to_header() if context.trace_state else None
    return TraceContext(
        f"{context.trace_id:032x}", f"{context.span_id:016x}", int(context.trace_flags), state
    )


def otel_parent(context: TraceContext | None) -> Any:
    """Return an OpenTelemetry ``Context`` whose remote parent is ``context``."""
    if context is None:
        return None
    trace = _otel
    span_context = trace.SpanContext(
        trace_id=int(context.trace_id, 16),
        span_id=int(context.span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(context.flags & 0xFF),
        trace_state=trace.TraceState.from_header([context.tracestate])
        if context.tracestate
        else None,
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


@contextlib.contextmanager
def producer_span(tracer: Any, event: Event) -> Iterator[Event]:
    """Run a publish in a PRODUCER span; yield the event to append (carrying it)."""
    trace = _otel
    carried = trace_of(event)
    with tracer.start_as_current_span(
        f"publish {event.type}",
        kind=trace.SpanKind.PRODUCER,
        context=otel_parent(carried) if carried is not None else None,
        attributes={"messaging.message.id": event.id, "cloudevents.event_type": event.type},
    ):
        if carried is None:
            context = _otel_current()
            if context is not None:
                event = context.stamp(event)
        yield event


@contextlib.contextmanager
def consumer_span(tracer: Any, event: Event, group: str) -> Iterator[None]:
    """Run a handler in a CONSUMER span whose parent is the event's ``traceparent``."""
    with tracer.start_as_current_span(
        f"process {event.type}",
        kind=_otel.SpanKind.CONSUMER,
        context=otel_parent(trace_of(event)),
        attributes={
            "messaging.message.id": event.id,
            "messaging.consumer.group.name": group,
            "cloudevents.event_type": event.type,
        },
    ):
        yield


def stamp_all(events: list[Event]) -> list[Event]:
    """:func:`stamp` for a batch: each event without a context continues the current one."""
    parent = current_trace()
    if parent is None and not any(event.extensions for event in events):
        return events
    out = []
    for event in events:
        raw = event.extensions.get("traceparent")
        if raw is not None and TraceContext.parse(raw) is not None:
            out.append(event)
        elif parent is not None:
            out.append(parent.child().stamp(event))
        elif raw is not None:
            out.append(TraceContext.new().stamp(event))
        else:
            out.append(event)
    return out
