"""The metrics registry: counters and gauges in plain dicts, read at scrape time.

No I/O and no dependency: :mod:`eventpatterns.observability.asgi` turns a
:class:`Metrics` into Prometheus text (through ``prometheus-client``) when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigurationError

__all__ = ["METRICS", "Counter", "MetricSpec", "Metrics", "Sample", "metrics"]

logger = logging.getLogger("eventpatterns.observability")

#: ``(name, labels, value)``: one value of one metric.
Sample = tuple[str, Mapping[str, str], float]
#: The key of one value: the metric's name and its sorted ``(label, value)`` pairs.
Key = tuple[str, tuple[tuple[str, str], ...]]
GaugeCallback = Callable[[], "float | Iterable[tuple[Mapping[str, str], float]]"]
Source = Callable[[], Awaitable[Iterable[Sample]]]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its name, kind, label names and help text.

    Attributes:
        name: The Prometheus name (counters end in ``_total``).
        kind: ``"counter"`` (only goes up) or ``"gauge"`` (a value now).
        labels: The label names every value of it carries, in order.
        help: What it counts, in one sentence.
    """

    name: str
    kind: Literal["counter", "gauge"]
    labels: tuple[str, ...]
    help: str


def _c(name: str, labels: tuple[str, ...], text: str) -> MetricSpec:
    return MetricSpec(f"eventpatterns_{name}_total", "counter", labels, text)


def _g(name: str, labels: tuple[str, ...], text: str) -> MetricSpec:
    return MetricSpec(f"eventpatterns_{name}", "gauge", labels, text)


#: Every metric eventpatterns records, in one table (``docs/observability.md`` shows it).
METRICS: tuple[MetricSpec, ...] = (
    _c(
        "bus_published",
        (),
        "Events given to publish() and publish_batch() (an id repeated in the dedupe window too).",
    ),
    _c("bus_publish_failures", ("error",), "publish() calls that raised, by error class."),
    _c("bus_matched", (), "Log entries a live subscription's pattern accepted (per subscription)."),
    _c("bus_delivered", ("group",), "Events a consumer group's handler handled (acknowledged)."),
    _c(
        "bus_dropped",
        ("reason",),
        "Events not handed out: filtered_out (a group's pattern refused it),"
        " overflow (a subscriber's buffer was full), invalid_data (a typed"
        " subscription skipped data its model refused).",
    ),
    _c("bus_retried", ("group",), "Failed deliveries given back for another attempt."),
    _c("bus_dead_lettered", ("group",), "Deliveries moved to a group's dead letters."),
    _c("bus_redriven", ("group",), "Dead letters delivered again by redrive()."),
    _g("bus_group_lag", ("group",), "Log entries the group has not received (at last refresh)."),
    _g("bus_group_pending", ("group",), "Deliveries not acknowledged yet (at last refresh)."),
    _g(
        "bus_group_dead_letters",
        ("group",),
        "Entries in the group's dead letters (at last refresh).",
    ),
    _g("gateway_connections", (), "Open real-time connections."),
    _g("gateway_subscriptions", (), "Live client subscriptions, replaying included."),
    _c("gateway_frames_delivered", (), "Event frames queued to client transports."),
    _c("gateway_frames_dropped", (), "Event frames not queued: the client's buffer was full."),
    _c("jobs_state_changes", ("state",), "Job state changes, by the state entered."),
    _c("push_results", ("provider", "outcome"), "Push provider answers, by provider and outcome."),
)


class Counter:
    """A counter bound to one set of label values: ``inc()`` is one dict increment.

    Get one from :meth:`Metrics.counter` once, then call :meth:`inc` on the hot path.
    """

    __slots__ = ("_values", "key")

    def __init__(self, values: dict[Key, float], key: Key) -> None:
        self._values = values
        self.key = key
        values.setdefault(key, 0.0)

    def inc(self, amount: float = 1.0, /) -> None:
        """Add ``amount`` (default 1)."""
        self._values[self.key] += amount


class Metrics:
    """A registry of counters and gauges, kept in plain dicts.

    Counters are increased by the patterns as things happen. Gauges are read when the
    metrics are: from a sync callback (:meth:`gauge`) at each :meth:`snapshot`, or
    from an async source (:meth:`source`) whose values are cached and renewed by
    :meth:`refresh` (the ``/metrics`` app awaits it before each scrape).

    Args:
        specs: The metrics it knows (default: :data:`METRICS`); anything else is
            refused, so a typo is an error, not a silent new series.

    Example:
        ```python
        from eventpatterns.observability import Metrics

        registry = Metrics()
        registry.inc("eventpatterns_bus_retried_total", group="billing")
        print(registry.value("eventpatterns_bus_retried_total", group="billing"))  # 1.0
        ```
    """

    def __init__(self, specs: Iterable[MetricSpec] = METRICS) -> None:
        self.specs: dict[str, MetricSpec] = {spec.name: spec for spec in specs}
        self._values: dict[Key, float] = {}
        self._gauges: list[tuple[str, GaugeCallback]] = []
        self._sources: dict[int, tuple[Source, list[Sample]]] = {}
        self._ids = 0

    def _key(self, name: str, labels: Mapping[str, str]) -> Key:
        spec = self.specs.get(name)
        if spec is None:
            raise ConfigurationError(
                f"unknown metric {name!r} (see eventpatterns.observability.METRICS)"
            )
        if set(labels) != set(spec.labels):
            raise ConfigurationError(
                f"metric {name!r} takes labels {list(spec.labels)}, got {sorted(labels)}"
            )
        return name, tuple((label, str(labels[label])) for label in spec.labels)

    def counter(self, name: str, /, **labels: str) -> Counter:
        """Return the counter ``name`` bound to ``labels``, for repeated increments.

        Raises:
            ConfigurationError: An unknown metric, or the wrong label names.
        """
        key = self._key(name, labels)
        if self.specs[name].kind != "counter":
            raise ConfigurationError(f"metric {name!r} is a gauge, not a counter")
        return Counter(self._values, key)

    def inc(self, name: str, amount: float = 1.0, /, **labels: str) -> None:
        """Add ``amount`` to the counter ``name`` with ``labels``.

        Raises:
            ConfigurationError: An unknown metric, or the wrong label names.
        """
        self.counter(name, **labels).inc(amount)

    def gauge(self, name: str, callback: GaugeCallback, /) -> Callable[[], None]:
        """Read metric ``name`` from ``callback`` at every snapshot; return an unregister.

        ``callback`` is synchronous and must return at once: a number (for a metric
        without labels) or ``(labels, value)`` pairs. Values of several callbacks
        with the same labels add up (two gateways in one process: their sum). A
        counter may be read this way too (from counts an object keeps anyway); its
        last value is kept when the callback is unregistered, so it never goes down.

        Raises:
            ConfigurationError: An unknown metric.
        """
        spec = self.specs.get(name)
        if spec is None:
            self._key(name, {})  # raises the unknown-metric error
        entry = (name, callback)
        self._gauges.append(entry)
        counter = spec is not None and spec.kind == "counter"

        def unregister() -> None:
            if entry not in self._gauges:
                return
            if counter:  # keep what it counted: a counter never goes down
                for key, value in self._read(name, callback).items():
                    self._values[key] = self._values.get(key, 0.0) + value
            self._gauges.remove(entry)

        return unregister

    def _read(self, name: str, callback: GaugeCallback) -> dict[Key, float]:
        try:
            result = callback()
        except Exception as exc:
            logger.warning("metric %s callback failed: %s", name, exc)
            return {}
        pairs = [({}, result)] if isinstance(result, int | float) else result
        out: dict[Key, float] = {}
        for labels, value in pairs:
            key = self._key(name, labels)
            out[key] = out.get(key, 0.0) + float(value)
        return out

    def source(self, callback: Source, /) -> Callable[[], None]:
        """Add an async source of samples, read by :meth:`refresh`; return an unregister.

        Its samples are cached between refreshes (a scrape shows the values of the
        last refresh), so a source may do I/O, such as asking a backend for a
        consumer group's lag.
        """
        self._ids += 1
        ident = self._ids
        self._sources[ident] = (callback, [])

        def unregister() -> None:
            self._sources.pop(ident, None)

        return unregister

    async def refresh(self) -> None:
        """Await every source and cache its samples; a failing source keeps its last ones."""
        for ident, (callback, _) in list(self._sources.items()):
            try:
                samples = list(await callback())
            except Exception as exc:  # a scrape must not fail for one source
                logger.warning("metrics source %r failed: %s", callback, exc)
                continue
            if ident in self._sources:
                self._sources[ident] = (callback, samples)

    def snapshot(self) -> dict[Key, float]:
        """Return every value now: counters, gauge callbacks and cached source samples."""
        out = dict(self._values)
        for name, callback in list(self._gauges):
            for key, value in self._read(name, callback).items():
                out[key] = out.get(key, 0.0) + value
        for _, samples in list(self._sources.values()):
            for name, labels, value in samples:
                key = self._key(name, labels)
                out[key] = out.get(key, 0.0) + float(value)
        return out

    def value(self, name: str, /, **labels: str) -> float:
        """Return one value now (``0.0`` when nothing was recorded under ``labels``)."""
        return self.snapshot().get(self._key(name, labels), 0.0)


#: The registry every pattern records into.
metrics = Metrics()
