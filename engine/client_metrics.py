"""``rest_client_*`` metrics with client-go's names, labels and buckets.

Dashboards built for client-go/controller-runtime operators read these series, so the names and
label sets are theirs (k8s.io/component-base/metrics/prometheus/restclient): ``code`` is the HTTP
status as a string or ``<error>`` when no answer came; ``method``/``verb`` are the HTTP method;
``host`` is ``host:port`` of the server. One ``ClientMetrics`` exists per registry, shared by every
client that reports into it (prometheus-client refuses to register a name twice).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from kubetrain.engine.adaptive_limit import AdaptiveLimit
from kubetrain.engine.metrics_registry import once_per_registry

__all__ = [
    "LATENCY_BUCKETS",
    "SIZE_BUCKETS",
    "AdaptiveLimitCollector",
    "ClientMetrics",
]

LATENCY_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
"""client-go's buckets for request and rate-limiter latency (seconds)."""

SIZE_BUCKETS = (64, 256, 512, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
"""client-go's buckets for request/response sizes: 64 B to 16 MiB."""

ERROR_CODE = "<error>"
"""The ``code`` label of a request that got no HTTP answer (client-go's value)."""


class ClientMetrics:
    """The collectors of one registry. Get it with ``ClientMetrics.for_registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ["code", "method", "host"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb, and host.",
            ["verb", "host"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rate_limiter_duration = Histogram(
            "rest_client_rate_limiter_duration_seconds",
            "Client side rate limiter latency in seconds. Broken down by verb, and host.",
            ["verb", "host"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_size = Histogram(
            "rest_client_request_size_bytes",
            "Request size in bytes. Broken down by verb and host.",
            ["verb", "host"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.response_size = Histogram(
            "rest_client_response_size_bytes",
            "Response size in bytes. Broken down by verb and host.",
            ["verb", "host"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "rest_client_request_retries",
            "Number of request retries, partitioned by status code, verb, and host.",
            ["code", "verb", "host"],
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> ClientMetrics:
        """The one instance for ``registry`` (default: prometheus-client's global ``REGISTRY``)."""
        return once_per_registry(cls, registry)


class AdaptiveLimitCollector:
    """The adaptive in-flight limits of the clients of one registry, read at each scrape (so
    requests pay nothing for them). Get it with ``AdaptiveLimitCollector.for_registry`` and
    ``track`` each client's limit; limits are held weakly.

    - ``kubetrain_client_inflight_limit{host, client}``: requests the limit allows in flight now;
    - ``kubetrain_client_inflight_requests{host, client}``: requests in flight now;
    - ``kubetrain_client_limit_cuts_total{host, client, reason}``: cuts of the limit, ``reason``
      ``throttled`` (429 or Retry-After) or ``slow`` (answers slower than usual);
    - ``kubetrain_client_retry_after_pause_seconds{host, client}``: seconds left of a server's
      Retry-After, during which no request is sent.

    ``client`` tells apart the clients of one process (``ClientOptions.name``).

    Together with client-go's ``rest_client_rate_limiter_duration_seconds`` (how long requests
    waited for a slot) they show the throttling the limit causes.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._limits: weakref.WeakKeyDictionary[AdaptiveLimit, tuple[str, str]] = (
            weakref.WeakKeyDictionary()
        )
        registry.register(self)

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> AdaptiveLimitCollector:
        return once_per_registry(cls, registry)

    def track(self, limit: AdaptiveLimit, host: str, client: str) -> None:
        """Report ``limit`` with labels ``host`` and ``client`` (unique per registry)."""
        self._limits[limit] = (host, client)

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        limit = GaugeMetricFamily(
            "kubetrain_client_inflight_limit",
            "API requests the adaptive limit allows in flight now.",
            labels=["host", "client"],
        )
        in_flight = GaugeMetricFamily(
            "kubetrain_client_inflight_requests",
            "API requests in flight now (watches excluded).",
            labels=["host", "client"],
        )
        cuts = CounterMetricFamily(
            "kubetrain_client_limit_cuts",
            "Cuts of the adaptive limit: throttled (429 or Retry-After) or slow answers.",
            labels=["host", "client", "reason"],
        )
        pause = GaugeMetricFamily(
            "kubetrain_client_retry_after_pause_seconds",
            "Seconds left of a server's Retry-After, during which no request is sent.",
            labels=["host", "client"],
        )
        for tracked, labels in list(self._limits.items()):
            limit.add_metric(labels, tracked.limit)
            in_flight.add_metric(labels, tracked.in_flight)
            for reason, count in tracked.cuts.items():
                cuts.add_metric([*labels, reason], count)
            pause.add_metric(labels, tracked.paused_for)
        yield from (limit, in_flight, cuts, pause)

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected fresh at every scrape
