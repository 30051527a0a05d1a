"""Timestamps of every job's milestones, observed from outside through watches on jobs and pods.

``JobWatch`` runs two informers (the jobs and the pods of one namespace) in the harness process and
stamps, per job, the wall time at which the harness *saw* each milestone: all its pods created,
the Running and Succeeded conditions, its last pod Succeeded, its deletion. Every system is
observed by the same watch against the same server, so watch delay cancels out in comparisons.
Jobs are registered by the harness when their create returns (``job_created``); pods map to their
job by the ``training.kubeflow.org/job-name`` label, which every measured system sets (a
TrainJob's pods: by ``jobset.sigs.k8s.io/jobset-name``, its JobSet's name, which is its own).
A TrainJob has no Running condition: it is Running when its ``status.phase`` says so (kubetrain's
phase: every training pod ready), and succeeded with its ``Complete`` condition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubetrain.engine.client import ApiClient
from kubetrain.informers.event_handlers import FunctionHandler
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.resource import PODS, ResourceRef, kubeflow
from kubetrain.informers.tombstone import DeletedFinalStateUnknown

from .jobs import JOB_NAME_LABEL

__all__ = [
    "JOB_NAME_LABEL",
    "JobTimes",
    "JobWatch",
    "condition_true",
    "latency_over_time",
    "latency_samples",
    "orphaned_pods",
    "parse_time",
    "pod_key",
    "pods_by_index",
]

Obj = dict[str, Any]


def parse_time(value: str | None) -> float | None:
    """An RFC 3339 timestamp (``...Z``) as epoch seconds; None when absent or malformed."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class JobTimes:
    """What the harness saw of one job; times are epoch seconds (``time.time()``), None: not yet.

    Invariant: ``pods_succeeded`` is a subset of ``pods_seen``.
    """

    created: float | None = None
    """When the harness's create request returned."""
    pods_seen: set[str] = field(default_factory=set)
    pods_succeeded: set[str] = field(default_factory=set)
    all_pods_created: float | None = None
    running: float | None = None
    last_pod_succeeded: float | None = None
    succeeded: float | None = None
    failed: float | None = None
    completion_time: float | None = None
    """``status.completionTime`` as written by the system (second resolution in kube)."""
    ttl_seconds: float | None = None
    deleted: float | None = None
    pods_deleted_on_node: set[str] = field(default_factory=set)
    """Pods deleted for good after being bound to a node: each one the final DELETE
    (``gracePeriodSeconds=0``) of its kubelet, not of the system (MPIJob v2beta1's cleanup)."""

    def latencies(self) -> dict[str, float | None]:
        """The per-job figures of the burst scenario (None where a milestone is missing)."""

        def since(start: float | None, end: float | None) -> float | None:
            return None if start is None or end is None else end - start

        return {
            "create_to_pods_created": since(self.created, self.all_pods_created),
            "create_to_running": since(self.created, self.running),
            "pods_succeeded_to_job_succeeded": since(self.last_pod_succeeded, self.succeeded),
        }

    def deletion_lag(self) -> float | None:
        """deleted - (completionTime + ttl): the TTL scenario's figure."""
        if self.deleted is None or self.completion_time is None or self.ttl_seconds is None:
            return None
        return self.deleted - (self.completion_time + self.ttl_seconds)


def condition_true(job: Obj, ctype: str) -> bool:
    """Whether ``job`` has condition ``ctype`` with status True."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return True
    return False


_LABELS = "training.kubeflow.org/"


def pod_key(pod: Obj) -> tuple[str, str, str]:
    """(job name, replica type, replica index) from a pod's labels, which every measured system
    sets: the slot a pod fills, so two pods with one key are a duplicate."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return (
        labels.get(_LABELS + "job-name", ""),
        labels.get(_LABELS + "replica-type", ""),
        labels.get(_LABELS + "replica-index", ""),
    )


def pods_by_index(
    pods: Iterable[Obj], *, skip_jobs: Sequence[str] = ()
) -> dict[tuple[str, str, str], int]:
    """How many of ``pods`` fill each ``pod_key``, leaving out the jobs named in ``skip_jobs``
    (a warm-up job created before the request counts a figure is compared with)."""
    counts: dict[tuple[str, str, str], int] = {}
    for pod in pods:
        key = pod_key(pod)
        if key[0] not in skip_jobs:
            counts[key] = counts.get(key, 0) + 1
    return counts


def orphaned_pods(pods: Iterable[Obj], jobs: Iterable[Obj]) -> int:
    """Pods whose controller owner is not one of ``jobs`` (or that have none)."""
    job_uids = {j["metadata"]["uid"] for j in jobs}
    orphans = 0
    for pod in pods:
        owners = [o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")]
        if not owners or owners[0].get("uid") not in job_uids:
            orphans += 1
    return orphans


def latency_samples(times: Iterable[JobTimes], names: Sequence[str]) -> dict[str, list[float]]:
    """Each latency of ``names`` over the jobs that have it."""
    samples: dict[str, list[float]] = {name: [] for name in names}
    for t in times:
        for name, value in t.latencies().items():
            if name in samples and value is not None:
                samples[name].append(value)
    return samples


def latency_over_time(
    times: Iterable[JobTimes], names: Sequence[str]
) -> tuple[dict[str, list[float]], dict[str, list[list[float]]]]:
    """``latency_samples`` of the jobs with a creation time, and the same as [seconds since the
    first of those creations, latency] points, for plots over a run."""
    samples: dict[str, list[float]] = {name: [] for name in names}
    over_time: dict[str, list[list[float]]] = {name: [] for name in names}
    for t in times:
        for name, value in t.latencies().items():
            if name in samples and value is not None and t.created is not None:
                samples[name].append(value)
                over_time[name].append([t.created, value])
    first = min((p[0] for v in over_time.values() for p in v), default=0.0)
    for v in over_time.values():
        for p in v:
            p[0] -= first
    return samples, over_time


class JobWatch:
    """Milestones of the jobs of ``kind`` (``kubeflow.org/v1``, or ``ref`` when given) in
    ``namespace``; ``pods_per_job`` pods make "all created", ``pods_to_succeed`` (default:
    ``pods_per_job``) Succeeded pods "last pod Succeeded". A job is Running with its ``Running``
    condition or ``status.phase`` Running, succeeded with its ``succeeded_condition``; its pods
    carry its name in label ``pod_label``.

    Only jobs registered with ``job_created`` are tracked (a warm-up job can be left out by not
    registering it until it matters). ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        client: ApiClient,
        namespace: str,
        *,
        pods_per_job: int,
        pods_to_succeed: int | None = None,
        kind: str = "PyTorchJob",
        ref: ResourceRef | None = None,
        succeeded_condition: str = "Succeeded",
        pod_label: str = JOB_NAME_LABEL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self.pods_per_job = pods_per_job
        self.pods_to_succeed = pods_per_job if pods_to_succeed is None else pods_to_succeed
        """Succeeded pods that make "last pod Succeeded" (an MPIJob's: its launcher's only)."""
        self.jobs: dict[str, JobTimes] = {}
        self.succeeded_condition = succeeded_condition
        self.pod_label = pod_label
        self._clock = clock
        # Pods and job states seen before the job was registered (the create response can
        # arrive after the watch shows the first pods); replayed by job_created.
        self._early: dict[str, list[Obj]] = {}
        self._factory = SharedInformerFactory(client, namespace=namespace)
        jobs = self._factory.informer_for(ref if ref is not None else kubeflow(kind))
        pods = self._factory.informer_for(PODS)
        jobs.add_event_handler(
            FunctionHandler(
                on_add=lambda o, _i: self.on_job(o),
                on_update=lambda _o, n: self.on_job(n),
                on_delete=self.on_job_deleted,
            )
        )
        pods.add_event_handler(
            FunctionHandler(
                on_add=lambda o, _i: self.on_pod(o),
                on_update=lambda _o, n: self.on_pod(n),
                on_delete=self.on_pod_deleted,
            )
        )

    async def start(self) -> None:
        self._factory.start()
        await self._factory.wait_for_sync(30)

    async def stop(self) -> None:
        await self._factory.stop()

    def job_created(self, name: str, *, at: float | None = None) -> JobTimes:
        """Register ``name`` (its create returned at ``at``, default now) and replay what the
        watch already saw of it."""
        times = self.jobs.setdefault(name, JobTimes())
        times.created = self._clock() if at is None else at
        for obj in self._early.pop(name, []):
            if obj.get("kind") == "Pod":
                self.on_pod(obj)
            else:
                self.on_job(obj)
        return times

    # -- handlers (synchronous, cheap) ----------------------------------------------------------

    def on_job(self, job: Obj) -> None:
        meta = job.get("metadata") or {}
        times = self.jobs.get(meta.get("name", ""))
        if times is None:
            self._early.setdefault(meta.get("name", ""), []).append(job)
            return
        now = self._clock()
        status = job.get("status") or {}
        if times.running is None and (
            condition_true(job, "Running") or status.get("phase") == "Running"
        ):
            times.running = now
        if times.succeeded is None and condition_true(job, self.succeeded_condition):
            times.succeeded = now
            if times.running is None:
                times.running = now  # Running was set and replaced between two watch events
        if times.failed is None and condition_true(job, "Failed"):
            times.failed = now
        if times.completion_time is None:
            times.completion_time = parse_time(status.get("completionTime"))
        ttl = (job.get("spec") or {}).get("runPolicy", {}).get("ttlSecondsAfterFinished")
        if ttl is not None:
            times.ttl_seconds = float(ttl)

    def on_job_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        job = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        times = self.jobs.get((job.get("metadata") or {}).get("name", ""))
        if times is not None and times.deleted is None:
            self.on_job(job)
            times.deleted = self._clock()

    def on_pod(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        job_name = (meta.get("labels") or {}).get(self.pod_label)
        if not job_name:
            return
        times = self.jobs.get(job_name)
        if times is None:
            self._early.setdefault(job_name, []).append(pod)
            return
        now = self._clock()
        name = meta.get("name", "")
        if name not in times.pods_seen:
            times.pods_seen.add(name)
            if times.all_pods_created is None and len(times.pods_seen) >= self.pods_per_job:
                times.all_pods_created = now
        if (pod.get("status") or {}).get(
            "phase"
        ) == "Succeeded" and name not in times.pods_succeeded:
            times.pods_succeeded.add(name)
            if len(times.pods_succeeded) >= self.pods_to_succeed:
                times.last_pod_succeeded = now

    def on_pod_deleted(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        meta = pod.get("metadata") or {}
        times = self.jobs.get((meta.get("labels") or {}).get(self.pod_label) or "")
        if times is not None and (pod.get("spec") or {}).get("nodeName"):
            times.pods_deleted_on_node.add(meta.get("name", ""))

    # -- progress ---------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """How many registered jobs reached each milestone."""
        js = self.jobs.values()
        return {
            "created": sum(1 for t in js if t.created is not None),
            "pods": sum(1 for t in js if t.all_pods_created is not None),
            "running": sum(1 for t in js if t.running is not None),
            "succeeded": sum(1 for t in js if t.succeeded is not None),
            "failed": sum(1 for t in js if t.failed is not None),
            "deleted": sum(1 for t in js if t.deleted is not None),
        }
