"""A job's detail (docs/dashboard.md ``GET /api/jobs/KIND/NS/NAME``), read from the caches.

Everything comes from the dashboard's informers: the job from its kind's store, its pods from the
pod store's job index, its and its pods' events from the event store's subject index. So a detail
costs a few dictionary lookups and no API request, and the live ``job`` events can rebuild it on
every change of a followed job. The one exception is a finished job, which the store holds
compacted (``compact.py``): its whole object is fetched once by the caller and handed to
``remember_full``, which keeps the last ``FULL_OBJECTS`` of them by resourceVersion.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from kubetrain.base.objects import Obj
from kubetrain.informers.informer import SharedInformer
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.common.jobs import unix_time
from kubetrain.reconcilers.jobview import TRAINJOB

from .compact import COMPACTED, is_compacted
from .events import EVENT_INDEX, event_view
from .index import JobIndex, make_row
from .pods import JOB_INDEX, pod_restarts, pod_view, replica_type_of, split_job_key

__all__ = ["FULL_OBJECTS", "MAX_EVENTS", "JobDetails", "start_latency"]

#: The newest events a detail shows.
MAX_EVENTS = 100
#: Whole objects of compacted (finished) jobs kept for their details, the most recent first out.
FULL_OBJECTS = 128


def _first_running(pods: list[Obj]) -> float | None:
    """When the first container of ``pods`` started running (its ``startedAt``)."""
    first: float | None = None
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            state = status.get("state") or {}
            for phase in ("running", "terminated"):
                started = unix_time((state.get(phase) or {}).get("startedAt"))
                if started is not None and (first is None or started < first):
                    first = started
    return first


def _running_condition(job: Obj) -> float | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Running":
            return unix_time(c.get("lastTransitionTime"))
    return None


def start_latency(job: Obj, pods: list[Obj], created: float | None) -> float | None:
    """Seconds from the job's creation to its first pod running, or (its pods gone) to its
    ``Running`` condition; None before either."""
    if created is None:
        return None
    started = _first_running(pods) or _running_condition(job)
    return max(0.0, started - created) if started is not None else None


class JobDetails:
    """Builds details from the informers' caches (module docstring)."""

    def __init__(
        self,
        *,
        jobs: Mapping[str, SharedInformer],
        pods: SharedInformer,
        events: SharedInformer,
        index: JobIndex,
        now: Callable[[], float],
    ) -> None:
        self._jobs = jobs
        self._pods = pods
        self._events = events
        self._index = index
        self._now = now
        # job key -> its whole object, for compacted jobs only; bounded (FULL_OBJECTS).
        self._full: OrderedDict[str, Obj] = OrderedDict()

    def cached(self, key: str) -> Obj | None:
        """The job ``KIND/NS/NAME`` as its store holds it (maybe compacted), or None."""
        kind, namespace, name = split_job_key(key)
        informer = self._jobs.get(kind)
        return informer.lister.get(namespace, name) if informer is not None else None

    def needs_full(self, key: str) -> bool:
        """Whether the job is cached compacted and its whole object is not remembered at the
        cached resourceVersion: the caller should GET it and ``remember_full`` it."""
        job = self.cached(key)
        return job is not None and is_compacted(job) and self.job(key) is job

    def remember_full(self, key: str, obj: Obj) -> None:
        """Keep ``obj``, the whole object of compacted job ``key`` (from a GET)."""
        self._full[key] = obj
        self._full.move_to_end(key)
        while len(self._full) > FULL_OBJECTS:
            self._full.popitem(last=False)

    def job(self, key: str) -> Obj | None:
        """The job ``KIND/NS/NAME``: its remembered whole object when it is compacted in the store
        at the same resourceVersion, else the cached one; None (unknown kind, not found)."""
        job = self.cached(key)
        if job is None or not is_compacted(job):
            return job
        full = self._full.get(key)
        same = full is not None and _rv(full) == _rv(job)
        return full if same and full is not None else job

    def pods(self, key: str) -> list[Obj]:
        """The cached pods of job ``key``, by name."""
        pods = self._pods.lister.by_index(JOB_INDEX, key)
        return sorted(pods, key=lambda p: str(p["metadata"].get("name", "")))

    def detail(self, key: str) -> dict[str, Any] | None:
        """The contract's detail of job ``key``, or None when it is not cached."""
        job = self.job(key)
        if job is None:
            return None
        kind, namespace, _ = split_job_key(key)
        pods = self.pods(key)
        row = self._index.row(key) or make_row(kind, job)
        created = row["created"]
        end = row["finished"] if row["finished"] is not None else self._now()
        return {
            "row": row,
            "object": _without_managed_fields(job),
            "replicaTypes": self._replica_types(kind, job, pods),
            "conditions": list((job.get("status") or {}).get("conditions") or []),
            "events": self._event_views(key, namespace, pods),
            "timings": {
                "startLatency": start_latency(job, pods, created),
                "duration": max(0.0, end - created) if created is not None else None,
                "restarts": sum(pod_restarts(p) for p in pods),
            },
            "yaml": yaml.safe_dump(_without_managed_fields(job), sort_keys=False),
        }

    def _replica_types(self, kind: str, job: Obj, pods: list[Obj]) -> list[dict[str, Any]]:
        """The job's replica types in its spec's order (a TrainJob's from its pods' replicated
        jobs), each with its pods; pods of a type the spec lacks get a type of their own."""
        spec = job.get("spec") or {}
        types: dict[str, dict[str, Any]] = {}
        if kind == TRAINJOB:
            nodes = int((spec.get("trainer") or {}).get("numNodes") or 1)
            for pod in pods:
                name = replica_type_of(pod) or "node"
                types.setdefault(name.lower(), {"type": name, "replicas": 0, "pods": []})
            if not types:
                types["node"] = {"type": "node", "replicas": nodes, "pods": []}
        elif kind in BY_KIND:
            for rtype, rspec in (spec.get(BY_KIND[kind].replica_field) or {}).items():
                count = int((rspec or {}).get("replicas", 1))
                types[str(rtype).lower()] = {"type": rtype, "replicas": count, "pods": []}
        for pod in pods:
            rtype = replica_type_of(pod)
            entry = types.setdefault(rtype.lower(), {"type": rtype, "replicas": 0, "pods": []})
            entry["pods"].append(pod_view(pod))
        if kind == TRAINJOB:
            for entry in types.values():
                entry["replicas"] = entry["replicas"] or len(entry["pods"])
        return list(types.values())

    def _event_views(self, key: str, namespace: str, pods: list[Obj]) -> list[dict[str, Any]]:
        kind, _, name = split_job_key(key)
        subjects = [f"{kind}/{namespace}/{name}"]
        subjects += [f"Pod/{namespace}/{p['metadata'].get('name', '')}" for p in pods]
        if kind == TRAINJOB:
            subjects.append(f"JobSet/{namespace}/{name}")
        found: list[Obj] = []
        for subject in subjects:
            found.extend(self._events.lister.by_index(EVENT_INDEX, subject))
        views = sorted((event_view(e) for e in found), key=lambda v: v["last"] or 0.0)
        return views[-MAX_EVENTS:]


def _rv(job: Obj) -> str:
    return str((job.get("metadata") or {}).get("resourceVersion") or "")


def _without_managed_fields(job: Obj) -> Obj:
    meta = job.get("metadata") or {}
    out = {k: v for k, v in job.items() if k != COMPACTED}
    if "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out
