"""The API server's own ``/metrics``: request counts and latencies, watchers, stored objects.

Names and labels are kube-apiserver's, so dashboards and benchmark scripts written for a real
cluster read the embedded one unchanged:

- ``apiserver_request_total{verb,dry_run,group,version,resource,subresource,scope,component,code}``
  (verbs as kube reports them: GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE,
  DELETECOLLECTION; a WATCH is counted when its stream ends, like kube);
- ``apiserver_request_duration_seconds{verb,dry_run,group,version,resource,subresource,scope,
  component}`` (kube's buckets; WATCH included, as in kube: filter it out for latency SLOs);
- ``apiserver_registered_watchers{resource}``, ``apiserver_storage_objects{resource}`` (gauges
  read at scrape time for every served resource: zero cost per request) and
  ``apiserver_watch_cache_events_received_total{resource}`` (committed events per resource).

``resource`` in the last three is kube's ``plural.group`` ("pods", "pytorchjobs.kubeflow.org").
Only resource requests are counted (not discovery, ``/metrics`` or admin paths). A request the
client abandons before it is answered is not counted, except a WATCH (its 200 was sent).
Each server has a private ``CollectorRegistry``: several servers in one process never mix.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from .requestinfo import RequestInfo, request_info
from .resources import ResourceInfo, ResourceRegistry, StorageKey
from .store import ObjectStore
from .watch import WatchHub

__all__ = ["REQUEST_DURATION_BUCKETS", "ApiMetrics"]

REQUEST_DURATION_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0,
    4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip
"""kube-apiserver's buckets for ``apiserver_request_duration_seconds``."""

_REQUEST_LABELS = (
    "verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component",
)  # fmt: skip
_COMPONENT = "apiserver"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def resource_label(key: StorageKey) -> str:
    """kube's ``resource`` label for a storage key: ``plural`` or ``plural.group``."""
    group, plural = key
    return f"{plural}.{group}" if group else plural


class _StateCollector(Collector):
    """Gauges and counters read from the store and hub at scrape time."""

    def __init__(
        self,
        store: ObjectStore,
        hub: WatchHub,
        registry: ResourceRegistry,
        events: dict[StorageKey, int],
    ) -> None:
        self._store = store
        self._registry = registry
        self._hub = hub
        self._events = events

    def collect(self) -> Iterator[Metric]:
        keys = sorted({info.storage_key for info in self._registry.all()} | set(self._store.keys()))
        watchers = GaugeMetricFamily(
            "apiserver_registered_watchers",
            "Number of currently registered watchers for a given resource",
            labels=["resource"],
        )
        objects = GaugeMetricFamily(
            "apiserver_storage_objects",
            "Number of stored objects at the time of last check split by kind.",
            labels=["resource"],
        )
        for key in keys:
            label = resource_label(key)
            watchers.add_metric([label], self._hub.watcher_count(key))
            objects.add_metric([label], self._store.count(key))
        events = CounterMetricFamily(
            "apiserver_watch_cache_events_received",
            "Counter of events received in watch cache broken by resource type.",
            labels=["resource"],
        )
        for key, n in list(self._events.items()):
            events.add_metric([resource_label(key)], n)
        yield watchers
        yield objects
        yield events


class ApiMetrics:
    """Request metrics of one API server, its private registry and the ``/metrics`` route.

    Install ``middleware`` first in the server's middlewares (outermost, so injected faults are
    counted too) and ``routes()`` in its extra routes; ``ApiServer`` does both.
    """

    def __init__(self, *, store: ObjectStore, hub: WatchHub, registry: ResourceRegistry) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, dry run value, group, "
            "version, resource, scope, component, and HTTP response code.",
            labelnames=(*_REQUEST_LABELS, "code"),
            registry=self.registry,
        )
        self.durations = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, "
            "version, resource, subresource, scope and component.",
            labelnames=_REQUEST_LABELS,
            buckets=REQUEST_DURATION_BUCKETS,
            registry=self.registry,
        )
        # Invariant: _events[key] is the number of commits of ``key`` since start.
        self._events: dict[StorageKey, int] = {}
        self.registry.register(_StateCollector(store, hub, registry, self._events))
        store.add_listener(self._on_commit)
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def _on_commit(
        self, event_type: str, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        key = info.storage_key
        self._events[key] = self._events.get(key, 0) + 1

    # -- recording --------------------------------------------------------------------------

    def observe(self, info: RequestInfo, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        labels = (
            info.metrics_verb,
            "All" if info.dry_run else "",
            info.group,
            info.version,
            info.resource,
            info.subresource,
            info.scope,
            _COMPONENT,
        )
        code_text = str(code)
        child_key = (*labels, code_text)
        children = self._children.get(child_key)
        if children is None:
            children = (
                self.requests.labels(*labels, code_text),
                self.durations.labels(*labels),
            )
            self._children[child_key] = children
        children[0].inc()
        children[1].observe(seconds)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Time and count resource requests (see the module docstring)."""
        info = request_info(request)
        if info is None:
            return await handler(request)
        start = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.observe(info, exc.status, time.perf_counter() - start)
            raise
        except asyncio.CancelledError:
            if info.verb == "watch":
                self.observe(info, 200, time.perf_counter() - start)
            raise
        except Exception:
            self.observe(info, 500, time.perf_counter() - start)
            raise
        self.observe(info, response.status, time.perf_counter() - start)
        return response

    # -- reading ----------------------------------------------------------------------------

    def count(
        self,
        *,
        verb: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
        group: str | None = None,
        code: int | str | None = None,
    ) -> int:
        """Requests counted so far matching every given label (None: any).

        ``verb`` is compared case-insensitively ("list" == "LIST"); a test accessor.
        """
        wanted: dict[str, str] = {}
        if verb is not None:
            wanted["verb"] = verb.upper()
        if resource is not None:
            wanted["resource"] = resource
        if subresource is not None:
            wanted["subresource"] = subresource
        if group is not None:
            wanted["group"] = group
        if code is not None:
            wanted["code"] = str(code)
        total = 0.0
        for metric in self.requests.collect():
            for sample in metric.samples:
                if not sample.name.endswith("_total"):
                    continue
                if all(sample.labels.get(k) == v for k, v in wanted.items()):
                    total += sample.value
        return int(total)

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)

    def routes(self) -> list[web.RouteDef]:
        """``GET /metrics``."""
        return [web.get("/metrics", self._serve)]

    async def _serve(self, request: web.Request) -> web.Response:
        return web.Response(body=self.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
