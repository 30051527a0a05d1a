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
import math
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast

import prometheus_client.metrics
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

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

_SEEN_SIZE = 1024
_BOUNDS = (*REQUEST_DURATION_BUCKETS, math.inf)
# the ``le`` label values, as prometheus_client writes them (untyped there)
_LE = tuple(cast(Callable[[float], str], floatToGoString)(b) for b in _BOUNDS)
_REQUESTS_HELP = (
    "Counter of apiserver requests broken out for each verb, dry run value, group, "
    "version, resource, scope, component, and HTTP response code."
)
_DURATIONS_HELP = (
    "Response latency distribution in seconds for each verb, dry run value, group, "
    "version, resource, subresource, scope and component."
)
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


class _Count:
    """One ``apiserver_request_total`` series: its count and when it was created."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0
        self.created = time.time()


class _Latency:
    """One ``apiserver_request_duration_seconds`` series: observations per bucket (not
    cumulative; the last is +Inf), their sum, when it was created."""

    __slots__ = ("buckets", "created", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * len(_BOUNDS)
        self.sum = 0.0
        self.created = time.time()


class _RequestCollector(Collector):
    """The request counter and latency histogram, kept as plain numbers and exposed as
    prometheus_client's ``Counter`` and ``Histogram`` expose them (samples, ``_created``
    series, order). Why not those: their ``inc`` and ``observe`` (checks, a lock per value)
    were 4 % of a pod create's CPU; here a count is two additions."""

    def __init__(self) -> None:
        # label values (code last) -> series, in creation order (the exposition's order)
        self.counts: dict[tuple[str, ...], _Count] = {}
        self.latencies: dict[tuple[str, ...], _Latency] = {}

    def collect(self) -> Iterator[Metric]:
        created = getattr(prometheus_client.metrics, "_use_created", True)
        requests = CounterMetricFamily(
            "apiserver_request_total", _REQUESTS_HELP, labels=(*_REQUEST_LABELS, "code")
        )
        for labels, count in list(self.counts.items()):
            requests.add_metric(
                labels, float(count.value), created=count.created if created else None
            )
        durations = HistogramMetricFamily(
            "apiserver_request_duration_seconds", _DURATIONS_HELP, labels=_REQUEST_LABELS
        )
        for labels, latency in list(self.latencies.items()):
            cumulative, total = [], 0.0
            for le, n in zip(_LE, latency.buckets, strict=True):
                total += n
                cumulative.append((le, total))
            durations.add_metric(labels, cumulative, latency.sum)
            if created:
                durations.samples.append(
                    Sample(
                        "apiserver_request_duration_seconds_created",
                        dict(zip(_REQUEST_LABELS, labels, strict=True)),
                        latency.created,
                    )
                )
        yield requests
        yield durations


class ApiMetrics:
    """Request metrics of one API server, its private registry and the ``/metrics`` route.

    Install ``middleware`` first in the server's middlewares (outermost, so injected faults are
    counted too) and ``routes()`` in its extra routes; ``ApiServer`` does both.
    """

    def __init__(self, *, store: ObjectStore, hub: WatchHub, registry: ResourceRegistry) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = _RequestCollector()
        self.registry.register(self._requests)
        # Invariant: _events[key] is the number of commits of ``key`` since start.
        self._events: dict[StorageKey, int] = {}
        self.registry.register(_StateCollector(store, hub, registry, self._events))
        store.add_listener(self._on_commit)
        self._seen: dict[tuple[int, int], tuple[RequestInfo, _Count, _Latency]] = {}

    def _on_commit(
        self, event_type: str, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        key = info.storage_key
        self._events[key] = self._events.get(key, 0) + 1

    # -- recording --------------------------------------------------------------------------

    def observe(self, info: RequestInfo, code: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        # by the RequestInfo object first: ``request_info`` hands out one per request kind, and
        # hashing it or its labels costs more than the count itself
        seen = self._seen.get((id(info), code))
        if seen is None or seen[0] is not info:
            seen = (info, *self._series(info, code))
            if len(self._seen) >= _SEEN_SIZE:
                self._seen.clear()
            self._seen[(id(info), code)] = seen
        seen[1].value += 1
        latency = seen[2]
        latency.buckets[bisect_left(_BOUNDS, seconds)] += 1  # the first bound >= seconds
        latency.sum += seconds

    def _series(self, info: RequestInfo, code: int) -> tuple[_Count, _Latency]:
        """The request count and latency series for ``info`` and ``code``."""
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
        counts = self._requests.counts
        count_key = (*labels, str(code))
        count = counts.get(count_key)
        if count is None:
            count = counts[count_key] = _Count()
        latencies = self._requests.latencies
        latency = latencies.get(labels)
        if latency is None:
            latency = latencies[labels] = _Latency()
        return count, latency

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
        names = (*_REQUEST_LABELS, "code")
        total = 0
        for labels, count in list(self._requests.counts.items()):
            series = dict(zip(names, labels, strict=True))
            if all(series.get(k) == v for k, v in wanted.items()):
                total += count.value
        return total

    def exposition(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)

    def routes(self) -> list[web.RouteDef]:
        """``GET /metrics``."""
        return [web.get("/metrics", self._serve)]

    async def _serve(self, request: web.Request) -> web.Response:
        return web.Response(body=self.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})
