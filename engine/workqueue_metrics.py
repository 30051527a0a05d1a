"""Work-queue metrics with controller-runtime's names, labels and buckets.

Dashboards built for controller-runtime operators read ``workqueue_*`` series labelled
``name``/``controller`` (and ``priority`` on depth); kubetrain exports exactly those. A queue asks
a ``MetricsProvider`` for its ``QueueMetrics`` only when it has a name, so unnamed queues (and
most tests) pay nothing. Tests pass ``PrometheusMetricsProvider(registry=CollectorRegistry())``
to read values without touching the process-wide registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

#: controller-runtime caps the depth metric's ``priority`` label at 25 distinct values.
PRIORITY_CARDINALITY_LIMIT = 25
PRIORITY_OVERFLOW_LABEL = "exceeded_cardinality_limit"
#: ExponentialBuckets(10e-9, 10, 12): 1e-8 .. 1e3 seconds (controller-runtime).
DURATION_BUCKETS: tuple[float, ...] = tuple(10e-9 * 10**i for i in range(12))


class QueueMetrics(Protocol):
    """What one queue reports; every method is called on the queue's hot path, keep it cheap."""

    def added(self, priority: int) -> None:
        """An item became ready (non-deduplicated): adds_total + 1, depth{priority} + 1."""
        ...

    def reprioritized(self, old: int, new: int) -> None:
        """A ready item moved between priorities: depth moves from ``old`` to ``new``."""
        ...

    def taken(self, priority: int, queued_seconds: float) -> None:
        """``get`` handed an item out: depth - 1, queue_duration observes ready -> get."""
        ...

    def finished(self, work_seconds: float) -> None:
        """``done``: work_duration observes get -> done."""
        ...

    def retried(self) -> None:
        """An add with a non-zero delay (controller-runtime's priority-queue rule)."""
        ...

    def track_in_flight(
        self, *, unfinished_seconds: Callable[[], float], longest_seconds: Callable[[], float]
    ) -> None:
        """Register callbacks read at scrape time for the unfinished-work gauges.

        Called once by the queue's owner; a later call replaces the callbacks. They run on the
        scraping thread: they must only read (copy) the queue's state.
        """
        ...


class MetricsProvider(Protocol):
    """Makes the metrics of one named queue (client-go's ``MetricsProvider``, one method)."""

    def queue_metrics(self, *, name: str, controller: str) -> QueueMetrics: ...


class _PrometheusQueueMetrics:
    __slots__ = (
        "_adds",
        "_controller",
        "_depth",
        "_depth_by_priority",
        "_longest",
        "_name",
        "_queue_duration",
        "_retries",
        "_unfinished",
        "_work_duration",
    )

    def __init__(self, family: _Families, *, name: str, controller: str) -> None:
        self._name = name
        self._controller = controller
        self._depth = family.depth
        # Cache of label children: one dict lookup per event instead of prometheus' label path.
        self._depth_by_priority: dict[int, Gauge] = {}
        self._adds = family.adds.labels(name=name, controller=controller)
        self._queue_duration = family.queue_duration.labels(name=name, controller=controller)
        self._work_duration = family.work_duration.labels(name=name, controller=controller)
        self._unfinished = family.unfinished.labels(name=name, controller=controller)
        self._longest = family.longest.labels(name=name, controller=controller)
        self._retries = family.retries.labels(name=name, controller=controller)

    def _depth_child(self, priority: int) -> Gauge:
        child = self._depth_by_priority.get(priority)
        if child is None:
            if len(self._depth_by_priority) < PRIORITY_CARDINALITY_LIMIT:
                label = str(priority)
            else:
                label = PRIORITY_OVERFLOW_LABEL
            child = self._depth.labels(name=self._name, controller=self._controller, priority=label)
            self._depth_by_priority[priority] = child
        return child

    def added(self, priority: int) -> None:
        self._adds.inc()
        self._depth_child(priority).inc()

    def reprioritized(self, old: int, new: int) -> None:
        self._depth_child(old).dec()
        self._depth_child(new).inc()

    def taken(self, priority: int, queued_seconds: float) -> None:
        self._depth_child(priority).dec()
        self._queue_duration.observe(queued_seconds)

    def finished(self, work_seconds: float) -> None:
        self._work_duration.observe(work_seconds)

    def retried(self) -> None:
        self._retries.inc()

    def track_in_flight(
        self, *, unfinished_seconds: Callable[[], float], longest_seconds: Callable[[], float]
    ) -> None:
        self._unfinished.set_function(unfinished_seconds)
        self._longest.set_function(longest_seconds)


class _Families:
    """The seven metric families, registered once per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("name", "controller")
        self.depth = Gauge(
            "workqueue_depth",
            "Current depth of workqueue by workqueue and priority",
            (*labels, "priority"),
            registry=registry,
        )
        self.adds = Counter(
            "workqueue_adds", "Total number of adds handled by workqueue", labels, registry=registry
        )
        self.queue_duration = Histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            labels,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.work_duration = Histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            labels,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.unfinished = Gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and hasn't been observed "
            "by work_duration. Large values indicate stuck threads. One can deduce the number of "
            "stuck threads by observing the rate at which this increases.",
            labels,
            registry=registry,
        )
        self.longest = Gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running.",
            labels,
            registry=registry,
        )
        self.retries = Counter(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            labels,
            registry=registry,
        )


class PrometheusMetricsProvider:
    """Registers the ``workqueue_*`` families in ``registry`` (default: the global registry).

    Create one provider per registry: a second provider on the same registry fails with
    prometheus-client's "Duplicated timeseries" error. ``global_metrics_provider()`` returns the
    shared one for the global registry.
    """

    def __init__(self, *, registry: CollectorRegistry = REGISTRY) -> None:
        self._families = _Families(registry)
        self._queues: dict[tuple[str, str], _PrometheusQueueMetrics] = {}

    def queue_metrics(self, *, name: str, controller: str) -> QueueMetrics:
        """The metrics of queue ``name``; the same object for the same (name, controller)."""
        key = (name, controller)
        metrics = self._queues.get(key)
        if metrics is None:
            metrics = _PrometheusQueueMetrics(self._families, name=name, controller=controller)
            self._queues[key] = metrics
        return metrics


_global_provider: PrometheusMetricsProvider | None = None


def global_metrics_provider() -> PrometheusMetricsProvider:
    """The provider on prometheus-client's global ``REGISTRY`` (created on first use)."""
    global _global_provider
    if _global_provider is None:
        _global_provider = PrometheusMetricsProvider()
    return _global_provider
