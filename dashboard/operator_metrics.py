"""The operator view: the operator's own ``/metrics`` scraped every interval, kept an hour.

Why scrape instead of asking a Prometheus: ``kubetrain up`` and a laptop have none, and the
operator already exposes everything the view shows. Each scrape becomes one point per series
(docs/dashboard.md "The operator view's series"): gauges as read, rates from the counters'
increase since the last scrape, p99s from the histogram buckets' increase since the last scrape
(so they describe the last interval, not the process' life). ``OperatorSeries.ingest`` is pure
over the exposition text and a time, so tests feed it canned text and a fake clock;
``MetricsScraper`` is the loop that fetches it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from kubetrain.base.clock import Clock

__all__ = ["SERIES", "MetricsScraper", "OperatorSeries", "histogram_quantile"]

log = logging.getLogger(__name__)

#: The series of the operator view, in the page's order.
SERIES = (
    "queue_depth",
    "queue_latency_p99",
    "reconcile_rate",
    "reconcile_error_rate",
    "api_request_rate",
    "api_429_rate",
    "ttl_lag_p99",
)

Point = tuple[float, float]
Buckets = dict[float, float]


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative ``buckets`` (upper bound -> count):
    linear within the bucket; the largest finite bound when it lands in ``+Inf``; None without
    observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


class _Sample:
    """The numbers one scrape gives: counter sums, cumulative buckets, gauges."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.buckets: dict[str, Buckets] = {}
        self.phases: dict[str, float] = {}


_COUNTERS: dict[str, tuple[str, Callable[[dict[str, str]], bool]]] = {
    "reconcile": ("controller_runtime_reconcile_total", lambda labels: True),
    "reconcile_error": (
        "controller_runtime_reconcile_total",
        lambda labels: labels.get("result") == "error",
    ),
    "api": ("rest_client_requests_total", lambda labels: True),
    "api_429": ("rest_client_requests_total", lambda labels: labels.get("code") == "429"),
}
_HISTOGRAMS = {
    "queue": "workqueue_queue_duration_seconds",
    "ttl": "kubetrain_job_ttl_deletion_delay_seconds",
}


def _parse(text: str) -> _Sample:
    sample = _Sample()
    sums = sample.sums
    sums["queue_depth"] = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name, labels, value = s.name, s.labels, float(s.value)
            if math.isnan(value):
                continue
            if name == "workqueue_depth":
                sums["queue_depth"] += value
            elif name == "kubetrain_jobs":
                phase = labels.get("phase", "")
                sample.phases[phase] = sample.phases.get(phase, 0.0) + value
            for key, (metric, wanted) in _COUNTERS.items():
                if name == metric and wanted(labels):
                    sums[key] = sums.get(key, 0.0) + value
                elif name == metric:
                    sums.setdefault(key, 0.0)  # the counter is there, no series of this kind
            for key, metric in _HISTOGRAMS.items():
                if name == metric + "_bucket" and "le" in labels:
                    bound = float(labels["le"])
                    buckets = sample.buckets.setdefault(key, {})
                    buckets[bound] = buckets.get(bound, 0.0) + value
    return sample


def _increase(now: float, before: float | None) -> float:
    """A counter's increase; a reset (the operator restarted) counts from zero."""
    if before is None or now < before:
        return now
    return now - before


class OperatorSeries:
    """The view's series, a bounded history each (module docstring)."""

    def __init__(self, *, points: int = 720) -> None:
        self.points = points
        self.series: dict[str, deque[Point]] = {name: deque(maxlen=points) for name in SERIES}
        self.phases: dict[str, deque[Point]] = {}
        self.last_phases: dict[str, float] = {}
        """``kubetrain_jobs`` per phase at the last scrape."""
        self._last: _Sample | None = None
        self._last_t: float | None = None

    def ingest(self, text: str, t: float) -> dict[str, float]:
        """Add the scrape ``text`` taken at ``t`` (seconds); the values it gave. Rates and p99s
        start with the second scrape (they need the one before). Raises ValueError for text
        that is no Prometheus exposition."""
        sample = _parse(text)
        values: dict[str, float] = {"queue_depth": sample.sums["queue_depth"]}
        last, last_t = self._last, self._last_t
        if last is not None and last_t is not None and t > last_t:
            dt = t - last_t
            for series, key in (
                ("reconcile_rate", "reconcile"),
                ("reconcile_error_rate", "reconcile_error"),
                ("api_request_rate", "api"),
                ("api_429_rate", "api_429"),
            ):
                if key in sample.sums:
                    values[series] = _increase(sample.sums[key], last.sums.get(key)) / dt
            for series, key in (("queue_latency_p99", "queue"), ("ttl_lag_p99", "ttl")):
                buckets = sample.buckets.get(key)
                if buckets is None:
                    continue
                before = last.buckets.get(key, {})
                delta = {b: _increase(c, before.get(b)) for b, c in buckets.items()}
                values[series] = histogram_quantile(0.99, delta) or 0.0
        self._last, self._last_t = sample, t
        for name, value in values.items():
            self.series[name].append((t, value))
        phases = dict(sample.phases)
        for phase in self.phases.keys() - phases.keys():
            phases[phase] = 0.0
        for phase, value in phases.items():
            self.phases.setdefault(phase, deque(maxlen=self.points)).append((t, value))
        self.last_phases = phases
        return values

    def snapshot(self) -> dict[str, Any]:
        """``{series: {NAME: [[t, v], ...]}, phases: {PHASE: [[t, v], ...]}}``."""
        return {
            "series": {name: [list(p) for p in points] for name, points in self.series.items()},
            "phases": {name: [list(p) for p in points] for name, points in self.phases.items()},
        }


class MetricsScraper:
    """Scrapes ``url`` every ``interval`` seconds into an ``OperatorSeries``; calls
    ``on_point({t, values, phases})`` after each good scrape. A failed scrape is logged (once while it
    keeps failing) and retried at the next interval."""

    def __init__(
        self,
        url: str,
        *,
        interval: float,
        series: OperatorSeries,
        clock: Clock,
        on_point: Callable[[dict[str, Any]], None],
        wall: Callable[[], float],
    ) -> None:
        self.url = url
        self.interval = interval
        self.series = series
        self._clock = clock
        self._on_point = on_point
        self._wall = wall
        self._task: asyncio.Task[None] | None = None
        self.last_error: str | None = None
        self.scrapes = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dashboard metrics scrape")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=max(1.0, self.interval))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self.scrape_once(session)
                await self._clock.sleep(self.interval)

    async def scrape_once(self, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(self.url) as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                text = await resp.text()
            self.add(text)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            self._failed(f"scraping {self.url} failed: {e}")
        except Exception as e:  # a bug here must not end the scrapes
            log.exception("dashboard: scraping %s failed", self.url)
            self._failed(f"scraping {self.url} failed: {e!r}")

    def _failed(self, message: str) -> None:
        if message != self.last_error:
            log.warning("dashboard: %s", message)
        self.last_error = message

    def add(self, text: str) -> dict[str, float]:
        """Ingest one scrape's text now and announce its point."""
        t = self._wall()
        values = self.series.ingest(text, t)
        self.last_error = None
        self.scrapes += 1
        self._on_point({"t": t, "values": values, "phases": self.series.last_phases})
        return values
