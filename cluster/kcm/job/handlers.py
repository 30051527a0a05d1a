"""Which events wake which Job (``addPod``/``updatePod``/``deletePod``, ``addJob``/``updateJob``/
``deleteJob``), and what they tell the expectations.

Pod events are batched (the Job is synced ``batch_seconds`` later, once for many events); Job
creations, deletions and spec changes are synced at once. A pod's Job is its controller owner
reference, resolved by name in the Job cache and checked by UID. Pods that still carry the
tracking finalizer but whose Job is gone or finished, or that have no controller, go to the
orphan queue, which removes the finalizer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kubetrain.base.objects import controller_ref, group_of, object_key
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX
from kubetrain.informers.lister import Lister
from kubetrain.informers.tombstone import DeletedFinalStateUnknown

from .conditions import is_finished
from .expectations import FinalizerExpectations, PodExpectations
from .pods import has_tracking_finalizer, parse_time

__all__ = ["JobEvents", "PodEvents", "resolve_job"]

Obj = dict[str, Any]
Enqueue = Callable[[str, float], None]


def resolve_job(jobs: Lister, pod: Mapping[str, Any]) -> Obj | None:
    """The Job the pod's controller reference names, if cached with that UID."""
    ref = controller_ref(dict(pod))
    if (
        ref is None
        or ref.get("kind") != "Job"
        or group_of(str(ref.get("apiVersion") or "")) != "batch"
    ):
        return None
    job = jobs.get(pod["metadata"].get("namespace"), str(ref.get("name")))
    if job is None or job["metadata"].get("uid") != ref.get("uid"):
        return None
    return job


class PodEvents:
    def __init__(
        self,
        *,
        jobs: Lister,
        expectations: PodExpectations,
        finalizers: FinalizerExpectations,
        enqueue: Enqueue,
        enqueue_orphan: Callable[[str], None],
        batch_seconds: float,
    ) -> None:
        self._jobs = jobs
        self._exp = expectations
        self._fin = finalizers
        self._enqueue = enqueue
        self._orphan = enqueue_orphan
        self._batch = batch_seconds

    def _orphaned(self, pod: Mapping[str, Any]) -> None:
        if has_tracking_finalizer(pod):
            self._orphan(object_key(dict(pod)))

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        if obj["metadata"].get("deletionTimestamp"):
            self._deleted(obj, final=False)
            return
        if controller_ref(obj) is not None:
            job = resolve_job(self._jobs, obj)
            if job is not None:
                key = object_key(job)
                self._exp.creation_observed(key)
                self._enqueue(key, self._batch)
            return
        self._orphaned(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if old is new or old["metadata"].get("resourceVersion") == new["metadata"].get(
            "resourceVersion"
        ):
            return
        if new["metadata"].get("deletionTimestamp"):
            self._deleted(new, final=False)
            return
        removed = not has_tracking_finalizer(new)
        uid = str(new["metadata"].get("uid"))
        old_ref, cur_ref = controller_ref(old), controller_ref(new)
        if old_ref is not None and old_ref != cur_ref:
            job = resolve_job(self._jobs, old)
            if job is not None:
                if removed:
                    self._fin.removal_observed(object_key(job), uid)
                self._enqueue(object_key(job), self._batch)
        if cur_ref is not None:
            job = resolve_job(self._jobs, new)
            if job is not None:
                if removed:
                    self._fin.removal_observed(object_key(job), uid)
                self._enqueue(object_key(job), self._batch)
            return
        self._orphaned(new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        pod = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if isinstance(pod, dict):
            self._deleted(pod, final=True)

    def _deleted(self, pod: Obj, *, final: bool) -> None:
        if controller_ref(pod) is None:
            self._orphaned(pod)
            return
        job = resolve_job(self._jobs, pod)
        if job is None or is_finished(job):
            self._orphaned(pod)  # no sync will remove its finalizer
            return
        key = object_key(job)
        self._exp.deletion_observed(key)
        if final or not has_tracking_finalizer(pod):
            self._fin.removal_observed(key, str(pod["metadata"].get("uid")))
        self._enqueue(key, self._batch)


class JobEvents:
    def __init__(
        self,
        *,
        pods: Lister,
        enqueue: Enqueue,
        enqueue_orphan: Callable[[str], None],
        batch_seconds: float,
        now: Callable[[], Any],
    ) -> None:
        self._pods = pods
        self._enqueue = enqueue
        self._orphan = enqueue_orphan
        self._batch = batch_seconds
        self._now = now

    def _cleanup_finalizers(self, job: Mapping[str, Any]) -> None:
        uid = str(job["metadata"].get("uid"))
        for pod in self._pods.by_index(CONTROLLER_UID_INDEX, uid):
            if has_tracking_finalizer(pod):
                self._orphan(object_key(pod))

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._enqueue(object_key(obj), 0.0)

    def on_update(self, old: Obj, new: Obj) -> None:
        key = object_key(new)
        same_generation = old["metadata"].get("generation") == new["metadata"].get("generation")
        self._enqueue(key, self._batch if same_generation else 0.0)
        if is_finished(new):
            self._cleanup_finalizers(new)  # a backup: a finished Job's pods are all counted
        started = parse_time((new.get("status") or {}).get("startTime"))
        deadline = (new.get("spec") or {}).get("activeDeadlineSeconds")
        old_deadline = (old.get("spec") or {}).get("activeDeadlineSeconds")
        if started is not None and deadline is not None and deadline != old_deadline:
            passed = (self._now() - started).total_seconds()
            self._enqueue(key, max(0.0, float(deadline) - passed))

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        job = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if isinstance(obj, DeletedFinalStateUnknown):
            self._enqueue(obj.key, 0.0)
        else:
            self._enqueue(object_key(obj), 0.0)
        if isinstance(job, dict):
            self._cleanup_finalizers(job)
