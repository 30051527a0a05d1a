"""controller-runtime's controller metrics, and one place to get metric objects for a registry.

Dashboards and alerts written for controller-runtime operators read ``controller_runtime_*``
series labelled ``controller`` (and ``result`` on the reconcile counter); kubetrain exports them
under the same names, labels, types and buckets (reference ``controller-machinery.md`` 2.11).
The ``workqueue_*`` metrics live with the queue (``workqueue_metrics.py``), the
``leader_election_*`` ones with the elector.

prometheus-client refuses to register a family twice in one registry, so families are created
once per registry and cached here (``controller_metric_families``, ``workqueue_provider``,
``informer_metrics``). Tests
pass a fresh ``CollectorRegistry`` (``new_registry``) and read values from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from kubetrain.engine.metrics_registry import once_per_registry
from kubetrain.informers.metrics import InformerMetrics

from .workqueue_metrics import PrometheusMetricsProvider, global_metrics_provider

__all__ = [
    "RECONCILE_RESULTS",
    "RECONCILE_TIME_BUCKETS",
    "AsyncioTasksCollector",
    "ControllerMetricFamilies",
    "ControllerMetrics",
    "controller_metric_families",
    "informer_metrics",
    "new_registry",
    "workqueue_provider",
]

#: controller-runtime's ``controller_runtime_reconcile_time_seconds`` buckets (seconds).
RECONCILE_TIME_BUCKETS: tuple[float, ...] = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    *(0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
    *(6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0),
)
#: Values of the ``result`` label of ``controller_runtime_reconcile_total`` (pre-initialised).
RECONCILE_RESULTS = ("success", "error", "requeue", "requeue_after")


class ControllerMetricFamilies:
    """The ``controller_runtime_*`` families of one registry (create through
    ``controller_metric_families``, which makes them once per registry)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        label = ("controller",)
        self.reconcile_total = Counter(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            (*label, "result"),
            registry=registry,
        )
        self.reconcile_errors = Counter(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            label,
            registry=registry,
        )
        self.terminal_errors = Counter(
            "controller_runtime_terminal_reconcile_errors",
            "Total number of terminal reconciliation errors per controller",
            label,
            registry=registry,
        )
        self.panics = Counter(
            "controller_runtime_reconcile_panics",
            "Total number of reconciliation panics per controller",
            label,
            registry=registry,
        )
        self.timeouts = Counter(
            "controller_runtime_reconcile_timeouts",
            "Total number of reconciliation timeouts per controller",
            label,
            registry=registry,
        )
        self.reconcile_time = Histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            label,
            buckets=RECONCILE_TIME_BUCKETS,
            registry=registry,
        )
        self.max_concurrent = Gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            label,
            registry=registry,
        )
        self.active_workers = Gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            label,
            registry=registry,
        )


class ControllerMetrics:
    """The metric children of one controller, resolved once (no label lookups per reconcile)."""

    __slots__ = (
        "active_workers",
        "errors",
        "max_concurrent",
        "panics",
        "reconcile_time",
        "result",
        "terminal_errors",
        "timeouts",
    )

    def __init__(self, families: ControllerMetricFamilies, *, controller: str) -> None:
        #: ``controller_runtime_reconcile_total`` children by result label (all pre-created, so
        #: a scrape shows zeros before the first reconcile, as controller-runtime does).
        self.result = {
            result: families.reconcile_total.labels(controller, result)
            for result in RECONCILE_RESULTS
        }
        self.errors = families.reconcile_errors.labels(controller)
        self.terminal_errors = families.terminal_errors.labels(controller)
        self.panics = families.panics.labels(controller)
        self.timeouts = families.timeouts.labels(controller)
        self.reconcile_time = families.reconcile_time.labels(controller)
        self.max_concurrent = families.max_concurrent.labels(controller)
        self.active_workers = families.active_workers.labels(controller)


def controller_metric_families(
    registry: CollectorRegistry | None = None,
) -> ControllerMetricFamilies:
    """The ``controller_runtime_*`` families of ``registry`` (default: the global one)."""
    return once_per_registry(ControllerMetricFamilies, registry)


def workqueue_provider(registry: CollectorRegistry | None = None) -> PrometheusMetricsProvider:
    """The ``workqueue_*`` provider of ``registry`` (default: the global one), made once."""
    if registry is None or registry is REGISTRY:
        return global_metrics_provider()
    return once_per_registry(_provider_for, registry)


def _provider_for(registry: CollectorRegistry) -> PrometheusMetricsProvider:
    return PrometheusMetricsProvider(registry=registry)


def new_registry(*, process_metrics: bool = True) -> CollectorRegistry:
    """A fresh registry, with the process/platform/GC collectors the global one has by default.

    Use one per manager when several run in a process (tests, ``kubetrain up``).
    """
    registry = CollectorRegistry()
    if process_metrics:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        registry.register(AsyncioTasksCollector())
    return registry


class AsyncioTasksCollector:
    """``kubetrain_asyncio_tasks``: asyncio tasks not yet done in the event loop that serves the
    scrape (``len(asyncio.all_tasks())``), counted at each scrape. A number that keeps growing
    while the load is steady is a task leak (the ``soak`` bench reads it). A scrape from outside a
    running loop (a thread, a test) uses the loop given to the constructor, else reports nothing.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = self._loop
        if loop is None or loop.is_closed():
            return
        family = GaugeMetricFamily(
            "kubetrain_asyncio_tasks", "asyncio tasks not yet done in the operator's event loop."
        )
        family.add_metric([], float(len(asyncio.all_tasks(loop))))
        yield family

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # counted fresh at every scrape; nothing to pre-register


def informer_metrics(registry: CollectorRegistry | None = None) -> InformerMetrics:
    """The ``kubetrain_informer_*`` families of ``registry`` (default: the global one), made once."""
    return once_per_registry(InformerMetrics, registry)
