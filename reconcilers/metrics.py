"""The job metrics: the reference's ``training_operator_jobs_*_total`` and kubetrain's own.

Counters keep the reference names and labels (``job_namespace``, ``framework``) so existing
dashboards work; kubetrain counts each transition once, from the ``StatusDecision`` counters,
only after the status write that persists it succeeded, so an operator restart does not count
again (fix of quirk 8). Histograms time each job's life from ``metadata.creationTimestamp``.
``kubetrain_jobs{framework,phase}`` is kept incrementally from job informer events by
``JobPhaseGauge`` (a handler): O(1) per event, never a scan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from kubetrain.base.objects import Obj, object_key
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.decision import Counters
from kubetrain.reconcilers.common.jobs import parse_time

__all__ = ["JobMetrics", "JobPhaseGauge", "job_phase"]

#: Seconds buckets for job-level durations: from a second to a day.
DURATION_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)

#: Buckets of ``kubetrain_job_ttl_deletion_delay_seconds``: a deletion is due to the second
#: (``completionTime`` has second resolution); late by minutes means the operator is starved.
TTL_DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

#: Phases of ``kubetrain_jobs``; a job is in exactly one.
PHASES = ("Pending", "Created", "Running", "Restarting", "Suspended", "Succeeded", "Failed")


class JobMetrics:
    """The job metric families of one registry (default: prometheus-client's global one).

    One instance per registry: creating two on one registry raises (duplicate timeseries).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = REGISTRY if registry is None else registry
        labels = ("job_namespace", "framework")

        def counter(what: str, doc: str) -> Counter:
            return Counter(f"training_operator_jobs_{what}", doc, labels, registry=reg)

        self.created = counter("created_total", "Jobs created (once per job).")
        self.deleted = counter("deleted_total", "Jobs deleted by the operator (TTL).")
        self.successful = counter("successful_total", "Jobs that succeeded.")
        self.failed = counter("failed_total", "Jobs that failed (every failure path).")
        self.restarted = counter("restarted_total", "Pods re-created after a failure.")
        self.pods_created_seconds = Histogram(
            "kubetrain_job_pods_created_seconds",
            "Seconds from job creation until all its pods were created.",
            ("framework",),
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.running_seconds = Histogram(
            "kubetrain_job_running_seconds",
            "Seconds from job creation until its Running condition.",
            ("framework",),
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.duration_seconds = Histogram(
            "kubetrain_job_duration_seconds",
            "Seconds from job creation until it finished, by outcome (succeeded, failed).",
            ("framework", "outcome"),
            buckets=DURATION_BUCKETS,
            registry=reg,
        )
        self.ttl_deletion_delay_seconds = Histogram(
            "kubetrain_job_ttl_deletion_delay_seconds",
            "Seconds from a finished job's TTL deadline (completionTime + "
            "ttlSecondsAfterFinished) until the operator's delete of it was answered.",
            ("framework",),
            buckets=TTL_DELAY_BUCKETS,
            registry=reg,
        )
        self.jobs = Gauge(
            "kubetrain_jobs", "Jobs in the cache by phase.", ("framework", "phase"), registry=reg
        )

    def count(self, counters: Counters, *, namespace: str, framework: str) -> None:
        """Add a decision's counters (call after the write that persists them)."""
        for family, value in (
            (self.created, counters.created),
            (self.deleted, counters.deleted),
            (self.successful, counters.successful),
            (self.failed, counters.failed),
            (self.restarted, counters.restarted),
        ):
            if value:
                family.labels(namespace, framework).inc(value)

    def observe_since_creation(
        self, histogram: Histogram, job: Obj, *, at: datetime, labels: tuple[str, ...]
    ) -> None:
        """Observe ``at - creationTimestamp`` (skipped when the job has none)."""
        created = parse_time(job.get("metadata", {}).get("creationTimestamp"))
        if created is None:
            return
        histogram.labels(*labels).observe(max(0.0, (at - created).total_seconds()))


def job_phase(job: Obj) -> str:
    """The one phase a job is in, from its conditions (finished wins, then the last true one)."""
    status = job.get("status") or {}
    if cond.is_succeeded(status):
        return "Succeeded"
    if cond.is_failed(status):
        return "Failed"
    conditions = status.get("conditions") or []
    for c in reversed(conditions):
        if c.get("status") == cond.TRUE and c.get("type") in PHASES:
            return str(c["type"])
    return "Pending"


class JobPhaseGauge:
    """An informer handler keeping ``kubetrain_jobs{framework,phase}`` (one per job kind).

    Remembers each cached job's phase by key, so an update moves one job between two series.
    ``phase_of`` reads a job's phase (one of ``PHASES``); the default reads v1 conditions.
    """

    def __init__(
        self,
        metrics: JobMetrics,
        *,
        framework: str,
        phase_of: Callable[[Obj], str] = job_phase,
    ) -> None:
        self._gauge = metrics.jobs
        self._framework = framework
        self._phase_of = phase_of
        self._phases: dict[str, str] = {}
        for phase in PHASES:
            self._gauge.labels(framework, phase).set(0)

    def _move(self, key: str, phase: str | None) -> None:
        old = self._phases.pop(key, None)
        if old == phase:
            if phase is not None:
                self._phases[key] = phase
            return
        if old is not None:
            self._gauge.labels(self._framework, old).dec()
        if phase is not None:
            self._phases[key] = phase
            self._gauge.labels(self._framework, phase).inc()

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._move(object_key(obj), self._phase_of(obj))

    def on_update(self, old: Obj, new: Obj) -> None:
        self._move(object_key(new), self._phase_of(new))

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)
        self._move(key, None)
