"""Per-informer Prometheus metrics, registered once per registry and shared by all informers.

- ``kubetrain_informer_events_total{resource,type}``: watch events received (ADDED, MODIFIED,
  DELETED, BOOKMARK, ERROR).
- ``kubetrain_informer_relists_total{resource}``: full LISTs (or WatchList initial streams) done.
- ``kubetrain_informer_watch_restarts_total{resource,reason}``: watches re-opened, by why the
  previous one ended (``timeout``, ``closed``, ``expired``, ``throttled``, ``error``, ``inactivity``).
- ``kubetrain_informer_objects{resource}``: objects in the cache.

``resource`` is the ``ResourceRef``'s ``plural.group`` (``pods``, ``pytorchjobs.kubeflow.org``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["InformerMetrics", "ResourceMetrics"]


class InformerMetrics:
    """The metric families. Create one per registry (a second one on the same registry raises
    ``ValueError: Duplicated timeseries``); ``registry=None`` keeps them unregistered."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.events = Counter(
            "kubetrain_informer_events_total",
            "Watch events received by informers, by type.",
            ["resource", "type"],
            registry=registry,
        )
        self.relists = Counter(
            "kubetrain_informer_relists_total",
            "Full lists (LIST or WatchList initial events) done by informers.",
            ["resource"],
            registry=registry,
        )
        self.watch_restarts = Counter(
            "kubetrain_informer_watch_restarts_total",
            "Watches re-opened by informers, by why the previous watch ended.",
            ["resource", "reason"],
            registry=registry,
        )
        self.objects = Gauge(
            "kubetrain_informer_objects",
            "Objects held in informer caches.",
            ["resource"],
            registry=registry,
        )

    def for_resource(self, resource: str) -> ResourceMetrics:
        return ResourceMetrics(self, resource)


class ResourceMetrics:
    """The children of ``InformerMetrics`` for one ``resource`` label, resolved once."""

    def __init__(self, families: InformerMetrics, resource: str) -> None:
        self._families = families
        self._resource = resource
        self._events: dict[str, Counter] = {}
        self._restarts: dict[str, Counter] = {}
        self.relists = families.relists.labels(resource=resource)
        self.objects = families.objects.labels(resource=resource)

    def event(self, event_type: str) -> None:
        child = self._events.get(event_type)
        if child is None:
            child = self._events[event_type] = self._families.events.labels(
                resource=self._resource, type=event_type
            )
        child.inc()

    def watch_restart(self, reason: str) -> None:
        child = self._restarts.get(reason)
        if child is None:
            child = self._restarts[reason] = self._families.watch_restarts.labels(
                resource=self._resource, reason=reason
            )
        child.inc()
