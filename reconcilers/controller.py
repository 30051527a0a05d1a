"""The job controller glue: one generic reconciler that every kind uses, and its wiring.

``compute_status`` (pure) decides; ``JobReconciler`` reads the listers, gates on expectations,
calls it and applies the ``StatusDecision`` in its documented order, with writes through the one
API client, events through the ``EventRecorder`` and counts into ``JobMetrics``.
``new_job_controller`` builds the engine ``Controller`` named ``<kind>-controller`` that watches
the kind's jobs and the shared, label-filtered informers of pods, services (and the MPI
ConfigMap / PyTorch HPA), mapping a dependent to its controlling owner of that kind only.

Invariants kept here (DESIGN.md):
- a pod is never created twice for one index: creation waits for the previous reconcile's
  creations to be observed (``Expectations``, keyed by job UID), consults the lister right
  before each POST, and uses the deterministic pod name, so a duplicate POST is answered 409
  AlreadyExists, which counts as observed (also across operator restarts);
- status is written only when it changed; a finished job costs one low-priority reconcile and
  its TTL requeue, no writes;
- an invalid job gets a Failed condition naming the field and a Warning event, then
  ``TerminalError``: never retried, never blocking other keys.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.events import EventRecorder
from kubetrain.engine.handlers import EnqueueForObject, EnqueueForOwner, KeyQueue
from kubetrain.engine.queue import LOW_PRIORITY, NORMAL_PRIORITY
from kubetrain.engine.reconcile import Request, Result, TerminalError
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import (
    CONFIGMAPS,
    PODS,
    SERVICEACCOUNTS,
    SERVICES,
    ResourceRef,
    kubeflow,
)
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.informers.transforms import strip_managed_fields
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.compact import compact_job, merge_patch_of, slim_pod
from kubetrain.reconcilers.common.decision import WARNING, StatusDecision
from kubetrain.reconcilers.common.expectations import (
    DEFAULT_EXPECTATIONS_TIMEOUT,
    ExpectationKey,
    Expectations,
)
from kubetrain.reconcilers.common.jobs import format_time, total_replicas
from kubetrain.reconcilers.common.naming import (
    JOB_NAME_LABEL,
    OPERATOR_NAME_LABEL,
    REPLICA_TYPE_LABEL,
)
from kubetrain.reconcilers.common.runpolicy import ttl_seconds
from kubetrain.reconcilers.common.status import compute_status
from kubetrain.reconcilers.exits import ExitLog
from kubetrain.reconcilers.kinds.base import DomainOptions, KindAdapter
from kubetrain.reconcilers.metrics import JobMetrics, JobPhaseGauge

__all__ = [
    "HORIZONTAL_POD_AUTOSCALERS",
    "POD_PHASE_PRIORITY",
    "TTL_PRIORITY",
    "JobControllerOptions",
    "JobHandler",
    "JobReconciler",
    "OwnedObjectHandler",
    "new_job_controller",
    "slim_pod",
]

log = logging.getLogger(__name__)

ROLES = ResourceRef("rbac.authorization.k8s.io", "v1", "roles", True, "Role")
ROLEBINDINGS = ResourceRef("rbac.authorization.k8s.io", "v1", "rolebindings", True, "RoleBinding")
HORIZONTAL_POD_AUTOSCALERS = ResourceRef(
    "autoscaling", "v2", "horizontalpodautoscalers", True, "HorizontalPodAutoscaler"
)

#: The extra objects a decision may apply or delete, by (apiVersion, kind).
EXTRA_RESOURCES: dict[tuple[str, str], ResourceRef] = {
    (r.api_version, r.kind): r
    for r in (CONFIGMAPS, SERVICEACCOUNTS, ROLES, ROLEBINDINGS, HORIZONTAL_POD_AUTOSCALERS)
}

#: Extra object kinds cached (label-filtered) per job kind; the others are remembered as applied.
CACHED_EXTRAS: dict[str, tuple[ResourceRef, ...]] = {
    "MPIJob": (CONFIGMAPS,),
    "PyTorchJob": (HORIZONTAL_POD_AUTOSCALERS,),
}

#: Label selector of every dependent informer: objects some kubetrain controller labelled
#: (fix of quirk 15: pods and services are not cached cluster-wide).
OWNED_SELECTOR = OPERATOR_NAME_LABEL

#: Work-queue priority of a job whose pod changed phase (Running, Succeeded, Failed): above
#: ``NORMAL_PRIORITY``, so that the status write it is due (one request; the job's Running or
#: Succeeded condition, a restart) is not queued behind a burst of new jobs' pod creations (each
#: a reconcile of many requests). Bounded by the pods' transitions, so creations never starve.
POD_PHASE_PRIORITY = 10

#: Work-queue priority of a finished job's TTL requeue (``ttlSecondsAfterFinished``): above
#: everything else, because the deletion is a promise on the clock and costs one request. At
#: LOW priority (like the rest of a finished job's work) the first jobs to finish in a burst of
#: 5,000 waited behind the others' creations and were deleted up to 50 s late. Bounded: one
#: requeue per finished job with a TTL, and only when it falls due. (An event that makes the
#: waiting requeue ready early shares its priority, as in controller-runtime's queue; that
#: reconcile is one read of the cache and requeues the rest.)
TTL_PRIORITY = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class JobControllerOptions:
    """Knobs of one job controller; every default is usable as is."""

    create_concurrency: int = 64
    """Pod/service creations and deletions in flight at once across all reconciles of the
    controller (one semaphore, not one per reconcile: with many concurrent reconciles this is
    what bounds the requests queued at the API server, so a status write is not answered after
    thousands of creations). The reference creates one at a time (trainer#2361); the API
    client's QPS/burst still bounds the rate. Status writes and events do not take it."""
    expectations_timeout: float = DEFAULT_EXPECTATIONS_TIMEOUT
    """Seconds after which an unobserved creation/deletion stops gating the job (lost event)."""
    domain: DomainOptions = field(default_factory=DomainOptions)
    """Operator-wide settings of the pure domain (init container image, cluster domain...)."""
    field_manager: str = "kubetrain"
    """``fieldManager`` of every write."""
    stale_job_requeue: float = 5.0
    """Seconds after which a job whose cache has not shown our last write yet is looked at
    again anyway (the job's watch event normally comes first and enqueues it at once)."""
    status_batch_seconds: float = 1.0
    """A status change that only moves replica counts (``replicaStatuses``; no condition, start
    or completion time) within this many seconds of the job's last status write waits for the
    end of that window and is then written once with whatever the counts are by then: pods that
    start one after another cost one write, not one each (kube's Job controller batches pod
    updates the same way, ``syncJobBatchPeriod`` = 1 s). Conditions are never delayed. 0: write
    every change at once."""

    def __post_init__(self) -> None:
        if self.create_concurrency < 1:
            raise ValueError(
                "JobControllerOptions.create_concurrency must be >= 1, "
                f"got {self.create_concurrency}"
            )
        if self.status_batch_seconds < 0:
            raise ValueError(
                "JobControllerOptions.status_batch_seconds must be >= 0, "
                f"got {self.status_batch_seconds}"
            )


class JobSpecError(RuntimeError):
    """The job's spec cannot be turned into pods (a ``SpecError`` in the decision); retried with
    backoff because the user may fix the job. The Warning event names the field."""


def _controller_owner_uid(obj: Obj, owner: ResourceRef) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller") is not True:
            continue
        api_version = str(ref.get("apiVersion") or "")
        if ref.get("kind") != owner.kind or api_version.rpartition("/")[0] != owner.group:
            return None
        uid = ref.get("uid")
        return str(uid) if uid else None
    return None


class OwnedObjectHandler:
    """Enqueues a dependent's controlling job of ``owner``'s kind and observes expectations.

    ``resource`` is the expectations' resource name (``pods``, ``services``, ...). Objects owned
    by another kind are ignored, so each kind's controller only wakes for its own children.
    An update that changes the dependent's ``status.phase`` enqueues the job at
    ``POD_PHASE_PRIORITY`` (at least); every other event at the engine handlers' priority. An
    update that leaves the cached (transformed) object as it was, resourceVersion aside, enqueues
    nothing: the informers cache dependents slimmed to what the reconcile reads, so it would
    decide the same (about a quarter of a burst's pod updates: bindings, conditions).
    """

    __slots__ = ("_enqueue", "_exits", "_expectations", "_owner", "_resource")

    def __init__(
        self,
        owner: ResourceRef,
        expectations: Expectations,
        resource: str,
        *,
        exits: ExitLog | None = None,
    ) -> None:
        """``exits``: for pods, where container terminations are noted (``ExitedWithCode``)."""
        self._enqueue = EnqueueForOwner(owner)
        self._owner = owner
        self._expectations = expectations
        self._resource = resource
        self._exits = exits

    def _observe(self, obj: Obj, *, deleted: bool) -> None:
        uid = _controller_owner_uid(obj, self._owner)
        if uid is None:
            return
        name = str((obj.get("metadata") or {}).get("name") or "")
        if deleted or (obj.get("metadata") or {}).get("deletionTimestamp"):
            self._expectations.observe_deleted(uid, self._resource, name)
        else:
            self._expectations.observe_created(uid, self._resource, name)

    def _note_exit(self, old: Obj | None, new: Obj) -> None:
        if self._exits is None:
            return
        uid = _controller_owner_uid(new, self._owner)
        if uid is not None:
            self._exits.note(uid, old, new)

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None:
        self._observe(obj, deleted=False)
        if not is_in_initial_list:
            self._note_exit(None, obj)
        self._enqueue.on_add(obj, is_in_initial_list, queue)

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None:
        self._observe(new, deleted=False)
        self._note_exit(old, new)
        if _only_version_moved(old, new):
            # The cached (slimmed) dependent reads the same as before: the job's reconcile would
            # decide exactly as last time (e.g. a pod's binding or a condition it does not read).
            return
        if _phase(old) != _phase(new):
            queue = _AtLeast(queue, POD_PHASE_PRIORITY)
        self._enqueue.on_update(old, new, queue)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None:
        final = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        self._observe(final, deleted=True)
        self._enqueue.on_delete(obj, queue)

    def __repr__(self) -> str:
        return f"OwnedObjectHandler({self._owner.kind}, {self._resource})"


class JobHandler:
    """Enqueues the job itself (``EnqueueForObject``); the update that first shows the job
    finished, when it has a ``ttlSecondsAfterFinished``, at ``TTL_PRIORITY`` (at least).

    Why: the reconcile that wrote the finished status also requeued the TTL at that priority,
    but a pod event that arrives before the cache shows the write runs the job early, finds the
    cache stale and requeues at normal priority: the TTL would then be scheduled by whichever
    normal-priority event comes next, queued behind a burst of other jobs' creations (40 s late
    in ``kubetrain bench ttl``). This update is that event. Bounded: once per finished job.
    """

    __slots__ = ("_enqueue", "_kind")

    def __init__(self, kind: JobKind) -> None:
        self._enqueue = EnqueueForObject()
        self._kind = kind

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None:
        self._enqueue.on_add(obj, is_in_initial_list, queue)

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None:
        if _became_finished(old, new) and ttl_seconds(new, self._kind) is not None:
            queue = _AtLeast(queue, TTL_PRIORITY)
        self._enqueue.on_update(old, new, queue)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None:
        self._enqueue.on_delete(obj, queue)

    def __repr__(self) -> str:
        return f"JobHandler({self._kind.kind})"


def _became_finished(old: Obj, new: Obj) -> bool:
    return cond.is_finished(new.get("status") or {}) and not cond.is_finished(
        old.get("status") or {}
    )


class _AtLeast:
    """A ``KeyQueue`` that adds to ``queue`` at ``priority`` or higher."""

    __slots__ = ("_floor", "_queue")

    def __init__(self, queue: KeyQueue, priority: int) -> None:
        self._queue = queue
        self._floor = priority

    def add(self, key: str, *, priority: int = NORMAL_PRIORITY) -> None:
        self._queue.add(key, priority=max(priority, self._floor))


def _only_version_moved(old: Obj, new: Obj) -> bool:
    """True when ``new`` differs from ``old`` in ``metadata.resourceVersion`` only (a resync,
    with the same version, is not: the engine handler decides about those)."""
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    if old_meta.get("resourceVersion") == new_meta.get("resourceVersion"):
        return False
    if old.keys() != new.keys() or old_meta.keys() != new_meta.keys():
        return False
    return all(old[k] == new[k] for k in old if k != "metadata") and all(
        old_meta[k] == new_meta[k] for k in old_meta if k != "resourceVersion"
    )


def _phase(obj: Obj) -> object:
    """``status.phase`` (pods; None for other dependents, which never change priority)."""
    return (obj.get("status") or {}).get("phase")


def _contains(actual: Any, desired: Any) -> bool:
    """True when every field of ``desired`` is in ``actual`` with the same value (the server
    may add defaulted fields; those do not make an object differ)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(k in actual and _contains(actual[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return False
        return all(_contains(a, d) for a, d in zip(actual, desired, strict=True))
    return bool(actual == desired)


def _same_content(actual: Obj, desired: Obj) -> bool:
    labels = (desired.get("metadata") or {}).get("labels") or {}
    if not _contains((actual.get("metadata") or {}).get("labels") or {}, labels):
        return False
    return all(
        _contains(actual.get(k), v)
        for k, v in desired.items()
        if k not in ("metadata", "apiVersion", "kind", "status")
    )


@dataclass(slots=True)
class _Outcome:
    """What applying one decision's writes produced."""

    conflicts: int = 0
    failures: list[str] = field(default_factory=list)
    created_pods: list[str] = field(default_factory=list)
    created_services: list[str] = field(default_factory=list)
    status_deferred: float | None = None
    """Seconds until a replica-count-only status change may be written
    (``status_batch_seconds``)."""


class JobReconciler:
    """Reconciles the jobs of one kind (see the module docstring). Build with
    ``new_job_controller``; ``reconcile`` is the engine's ``Reconciler``.

    Listers are the caller's: ``jobs`` of the kind, ``pods``/``services`` of the owned-object
    informers with the ``CONTROLLER_UID_INDEX`` index, ``extras`` keyed by resource plural.
    """

    def __init__(
        self,
        adapter: KindAdapter,
        *,
        client: ApiClient,
        jobs: Lister,
        pods: Lister,
        services: Lister,
        recorder: EventRecorder,
        metrics: JobMetrics,
        expectations: Expectations,
        extras: dict[str, Lister] | None = None,
        exits: ExitLog | None = None,
        options: JobControllerOptions | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adapter = adapter
        self.kind = adapter.kind
        self.job_ref = kubeflow(adapter.kind.kind)
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.services = services
        self.extras = extras or {}
        self.recorder = recorder
        self.metrics = metrics
        self.expectations = expectations
        self.exits = exits if exits is not None else ExitLog(adapter.kind.default_container)
        self.options = options or JobControllerOptions()
        self._now = now
        self._monotonic = monotonic
        # job UID -> monotonic time of our last status write (status_batch_seconds).
        self._status_written_at: dict[str, float] = {}
        self._limit = asyncio.Semaphore(self.options.create_concurrency)
        # job key -> UID last reconciled (to forget a deleted or re-created job's state).
        self._uids: dict[str, str] = {}
        # (job UID, resource plural, name) -> the body last applied (uncached extra objects).
        self._applied: dict[tuple[str, str, str], Obj] = {}
        # job UIDs whose all-pods-created time was observed.
        self._pods_timed: set[str] = set()
        # job UID -> resourceVersion of our last write to the job: until the cache shows it (or
        # newer), the cached job is stale and its status must not be decided on again (a
        # Created condition or a transition would be counted twice).
        self._written: dict[str, str] = {}

    # -- the reconcile ---------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        key = request.key
        job = self.jobs.get(request.namespace, request.name)
        if job is None:
            self._forget(key)
            return Result()
        meta = job.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        previous = self._uids.get(key)
        if previous is not None and previous != uid:
            self._forget(key)
        self._uids[key] = uid
        if not self._cache_caught_up(uid, str(meta.get("resourceVersion") or "")):
            return Result(requeue_after=self.options.stale_job_requeue)
        if not self.expectations.satisfied(uid):
            wait = self.expectations.seconds_until_timeout(uid)
            log.debug("waiting for expectations %s", self.expectations.pending(uid))
            return Result(requeue_after=wait) if wait else Result()

        pods = self.pods.by_index(CONTROLLER_UID_INDEX, uid)
        services = self.services.by_index(CONTROLLER_UID_INDEX, uid)
        now = self._now()
        decision = compute_status(
            self.adapter, job, pods, services, now=now, options=self.options.domain
        )
        if decision.error is not None and self._is_validation_failure(decision):
            return await self._fail_invalid(job, decision)

        outcome = await self._apply(job, uid, pods, decision)
        if outcome.failures:
            raise RuntimeError(
                f"{self.kind.kind} {key}: {len(outcome.failures)} write(s) failed: "
                + "; ".join(outcome.failures[:3])
            )
        if decision.error is not None:
            raise JobSpecError(f"{self.kind.kind} {key}: {decision.error}")
        priority = None
        if cond.is_finished(decision.status):
            # requeue_after of a finished job is its TTL's; anything else of it can wait.
            priority = TTL_PRIORITY if decision.requeue_after is not None else LOW_PRIORITY
        if decision.delete_job:
            return Result()
        if outcome.conflicts:
            # A name was taken by an object the cache does not show yet (ours after a restart,
            # or a deleted job's pod still terminating): look again after backoff.
            return Result(requeue=True)
        due = [t for t in (decision.requeue_after, outcome.status_deferred) if t is not None]
        if due:
            return Result(requeue_after=max(min(due), 0.001), priority=priority)
        return Result()

    async def create_children_before_sync(self, job: Obj) -> int:
        """Create the pods and services of a job no controller has reconciled yet, before the
        caches have synced (``presync_jobs.NewJobPreSync``); the number of objects created.

        Only creations: no status, annotation or deletion is decided on a partial cache. Safe
        alongside the later full reconcile because it raises the same expectations first (that
        reconcile waits until the informers have seen these objects) and because every name is
        deterministic (a child that exists after all is answered 409 and counted as observed).
        Jobs that need more than pods and services (the MPI ConfigMap, an elastic HPA), that are
        invalid, suspended, managed by another controller or being deleted are left to the full
        reconcile.
        """
        meta = job.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid or not self.expectations.satisfied(uid):
            return 0
        # compute_status and the expectations (_create_children) come before the first await: a
        # full reconcile of this job that starts later already finds them raised.
        decision = compute_status(
            self.adapter, job, [], [], now=self._now(), options=self.options.domain
        )
        if (
            decision.error is not None
            or decision.apply_objects
            or decision.delete_job
            or not (decision.create_pods or decision.create_services)
        ):
            return 0
        out = _Outcome()
        await self._create_children(job, uid, [], decision, out)
        return len(out.created_pods) + len(out.created_services)

    def _cache_caught_up(self, uid: str, cached_rv: str) -> bool:
        written = self._written.get(uid)
        if written is None:
            return True
        if cached_rv == written or (
            cached_rv.isdigit() and written.isdigit() and int(cached_rv) > int(written)
        ):
            del self._written[uid]
            return True
        return False

    def _forget(self, key: str) -> None:
        uid = self._uids.pop(key, None)
        if uid is None:
            return
        self._written.pop(uid, None)
        self._status_written_at.pop(uid, None)
        self.expectations.forget(uid)
        self.exits.forget(uid)
        self._pods_timed.discard(uid)
        for memo in [m for m in self._applied if m[0] == uid]:
            del self._applied[memo]

    # -- applying a decision, in StatusDecision's order ------------------------------------------

    async def _apply(
        self, job: Obj, uid: str, pods: list[Obj], decision: StatusDecision
    ) -> _Outcome:
        out = _Outcome()
        meta = job["metadata"]
        ns, name = meta.get("namespace"), meta["name"]
        base: Obj = job
        # 1. annotations first: a counted restart survives a crash after the deletions.
        if decision.job_annotations:
            base = await self.client.patch(
                self.job_ref,
                ns,
                name,
                {"metadata": {"annotations": decision.job_annotations}},
                field_manager=self.options.field_manager,
            )
            self._note_written(uid, base)
        # 2. deletions.
        pod_uids = {p["metadata"]["name"]: p["metadata"].get("uid") for p in pods}
        deletions: list[Awaitable[None]] = []
        for pod_name in decision.delete_pods:
            deletions.append(self._delete_dependent(job, uid, PODS, pod_name, pod_uids, out))
        for svc_name in decision.delete_services:
            deletions.append(self._delete_dependent(job, uid, SERVICES, svc_name, {}, out))
        for api_version, kind, obj_name in decision.delete_objects:
            deletions.append(self._delete_extra(job, uid, api_version, kind, obj_name, out))
        self._raise_deletions(uid, decision)
        await self._bounded(deletions)
        # 3. creations.
        await self._create_children(job, uid, pods, decision, out)
        for body in decision.apply_objects:
            await self._apply_extra(job, uid, body, out)
        now = self._now()
        # 4. status, only when changed.
        written = True
        if decision.status_changed:
            wait = self._status_batch_wait(uid, base, decision.status)
            if wait > 0:
                out.status_deferred = wait
                written = False
            else:
                written = await self._write_status(base, uid, decision.status)
        # 5. TTL.
        if decision.delete_job:
            try:
                await self.client.delete(
                    self.job_ref, ns, name, propagation_policy="Background", uid=uid
                )
            except ApiStatusError as e:
                if not (e.is_not_found or e.is_conflict):
                    self._event(job, WARNING, "FailedDeleteJob", f"Error deleting: {e}")
                    raise
                decision.counters.deleted = 0
            else:
                if decision.ttl_deadline is not None:
                    late = (self._now() - decision.ttl_deadline).total_seconds()
                    self.metrics.ttl_deletion_delay_seconds.labels(self.kind.framework).observe(
                        max(0.0, late)
                    )
        # 6. events and counters.
        for ev in decision.events:
            self._event(job, ev.type, ev.reason, ev.message)
        for pod_name, code in self.exits.take(uid):
            self._event(
                job, "Normal", "ExitedWithCode", f"Pod: {ns}.{pod_name} exited with code {code}"
            )
        if written:
            self._count(job, decision, now)
        return out

    async def _create_children(
        self, job: Obj, uid: str, pods: list[Obj], decision: StatusDecision, out: _Outcome
    ) -> None:
        """The decision's pods and services, in parallel under ``create_concurrency``, with
        their expectations raised before the first await; then the all-pods-created time.
        ``pods``: the job's pods the decision was made on."""
        self._raise_creations(uid, decision)
        await self._bounded(
            [self._create_dependent(job, uid, PODS, body, out) for body in decision.create_pods]
            + [
                self._create_dependent(job, uid, SERVICES, body, out)
                for body in decision.create_services
            ]
        )
        if decision.create_pods and not out.failures:
            self._time_pods_created(job, uid, pods, out, self._now())

    async def _bounded(self, work: list[Awaitable[None]]) -> None:
        if not work:
            return

        async def one(w: Awaitable[None]) -> None:
            async with self._limit:
                await w

        await asyncio.gather(*(one(w) for w in work))

    def _raise_creations(self, uid: str, decision: StatusDecision) -> None:
        for resource, bodies in (
            ("pods", decision.create_pods),
            ("services", decision.create_services),
        ):
            by_type: dict[str, list[str]] = {}
            for body in bodies:
                rtype = body["metadata"].get("labels", {}).get(REPLICA_TYPE_LABEL, "")
                by_type.setdefault(rtype, []).append(body["metadata"]["name"])
            for rtype, names in by_type.items():
                self.expectations.expect_creations(uid, ExpectationKey(rtype, resource), names)

    def _raise_deletions(self, uid: str, decision: StatusDecision) -> None:
        for resource, names in (
            ("pods", decision.delete_pods),
            ("services", decision.delete_services),
        ):
            if names:
                self.expectations.expect_deletions(uid, ExpectationKey("", resource), names)

    async def _create_dependent(
        self, job: Obj, uid: str, ref: ResourceRef, body: Obj, out: _Outcome
    ) -> None:
        meta = body["metadata"]
        ns, obj_name = meta["namespace"], meta["name"]
        what = "pod" if ref is PODS else "service"
        lister = self.pods if ref is PODS else self.services
        if lister.get(ns, obj_name) is not None:
            # The cache already holds this name (ours, or a deleted job's still terminating).
            self.expectations.observe_created(uid, ref.plural, obj_name)
            out.conflicts += 1
            return
        try:
            await self.client.create(ref, body, field_manager=self.options.field_manager)
        except ApiStatusError as e:
            if e.is_already_exists:
                self.expectations.observe_created(uid, ref.plural, obj_name)
                out.conflicts += 1
                return
            self.expectations.observe_created(uid, ref.plural, obj_name)  # lower it
            reason = "FailedCreatePod" if ref is PODS else "FailedCreateService"
            self._event(job, WARNING, reason, f"Error creating: {e}")
            out.failures.append(f"create {what} {obj_name}: {e}")
            return
        except BaseException:
            self.expectations.observe_created(uid, ref.plural, obj_name)
            raise
        if ref is PODS:
            out.created_pods.append(obj_name)
            self._event(job, "Normal", "SuccessfulCreatePod", f"Created pod: {obj_name}")
        else:
            out.created_services.append(obj_name)
            self._event(job, "Normal", "SuccessfulCreateService", f"Created service: {obj_name}")

    async def _delete_dependent(
        self,
        job: Obj,
        uid: str,
        ref: ResourceRef,
        obj_name: str,
        uids: dict[str, Any],
        out: _Outcome,
    ) -> None:
        ns = job["metadata"].get("namespace")
        what = "Pod" if ref is PODS else "Service"
        try:
            await self.client.delete(ref, ns, obj_name, uid=uids.get(obj_name) or None)
        except ApiStatusError as e:
            self.expectations.observe_deleted(uid, ref.plural, obj_name)
            if e.is_not_found or e.is_conflict:
                return
            self._event(job, WARNING, f"FailedDelete{what}", f"Error deleting: {e}")
            out.failures.append(f"delete {what.lower()} {obj_name}: {e}")
            return
        except BaseException:
            self.expectations.observe_deleted(uid, ref.plural, obj_name)
            raise
        self._event(job, "Normal", f"SuccessfulDelete{what}", f"Deleted {what.lower()}: {obj_name}")

    async def _delete_extra(
        self, job: Obj, uid: str, api_version: str, kind: str, obj_name: str, out: _Outcome
    ) -> None:
        ref = EXTRA_RESOURCES.get((api_version, kind))
        if ref is None:
            out.failures.append(f"delete {api_version} {kind} {obj_name}: unknown resource")
            return
        ns = job["metadata"].get("namespace")
        lister = self.extras.get(ref.plural)
        if lister is not None and lister.get(ns, obj_name) is None:
            return  # not there: nothing to write
        self._applied.pop((uid, ref.plural, obj_name), None)
        try:
            await self.client.delete(ref, ns, obj_name)
        except ApiStatusError as e:
            if not e.is_not_found:
                out.failures.append(f"delete {kind} {obj_name}: {e}")

    async def _apply_extra(self, job: Obj, uid: str, body: Obj, out: _Outcome) -> None:
        """Create-or-update an extra object; no write when the cache (or, for uncached kinds,
        the last applied body) already matches."""
        ref = EXTRA_RESOURCES.get((body.get("apiVersion", ""), body.get("kind", "")))
        if ref is None:
            out.failures.append(
                f"apply {body.get('apiVersion')} {body.get('kind')}: unknown resource"
            )
            return
        meta = body["metadata"]
        labels = meta.setdefault("labels", {})
        labels.setdefault(OPERATOR_NAME_LABEL, self.kind.controller_name)
        labels.setdefault(JOB_NAME_LABEL, job["metadata"]["name"])
        ns, obj_name = meta["namespace"], meta["name"]
        memo = (uid, ref.plural, obj_name)
        lister = self.extras.get(ref.plural)
        cached = lister.get(ns, obj_name) if lister is not None else None
        if cached is not None and _same_content(cached, body):
            self._applied[memo] = body
            return
        if cached is None and self._applied.get(memo) == body:
            return
        try:
            if cached is None:
                try:
                    await self.client.create(ref, body, field_manager=self.options.field_manager)
                except ApiStatusError as e:
                    if not e.is_already_exists:
                        raise
                    cached = await self.client.get(ref, ns, obj_name)
                    if not _same_content(cached, body):
                        await self._update_extra(ref, cached, body)
            else:
                await self._update_extra(ref, cached, body)
        except ApiStatusError as e:
            out.failures.append(f"apply {ref.kind} {obj_name}: {e}")
            return
        self._applied[memo] = body

    async def _update_extra(self, ref: ResourceRef, current: Obj, body: Obj) -> None:
        desired = copy.deepcopy(body)
        desired["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        await self.client.update(ref, desired, field_manager=self.options.field_manager)

    def _status_batch_wait(self, uid: str, base: Obj, status: Obj) -> float:
        """Seconds to hold a status write back (``status_batch_seconds``); 0: write now."""
        window = self.options.status_batch_seconds
        last = self._status_written_at.get(uid)
        if window <= 0 or last is None:
            return 0.0
        remaining = last + window - self._monotonic()
        if remaining <= 0:
            return 0.0
        old: Obj = base.get("status") or {}
        if any(
            status.get(k) != old.get(k)
            for k in status.keys() | old.keys()
            if k != "replicaStatuses"
        ):
            return 0.0  # a condition or a time moved: never delayed
        return remaining

    async def _write_status(self, base: Obj, uid: str, status: Obj) -> bool:
        """Write ``status``; True when written (or nothing to write), False when the job is gone
        or, for a finished job, changed meanwhile (its watch event brings it back)."""
        old_status: Obj = base.get("status") or {}
        if cond.is_finished(old_status):
            return await self._patch_finished_status(base, uid, old_status, status)

        def mutate(obj: Obj) -> Obj | None:
            if obj.get("metadata", {}).get("uid") != uid:
                return None  # re-created under the same name: not ours to write
            obj["status"] = status
            return obj

        meta = base["metadata"]
        try:
            stored = await self.client.update_status_with_retry(
                self.job_ref, meta.get("namespace"), meta["name"], mutate, current=base
            )
        except ApiStatusError as e:
            if e.is_not_found:
                return False
            raise
        if stored is not None:
            self._note_written(uid, stored)
            self._status_written_at[uid] = self._monotonic()
        return True

    async def _patch_finished_status(
        self, base: Obj, uid: str, old_status: Obj, status: Obj
    ) -> bool:
        """A finished job is cached compacted (``common/compact.py``): never PUT it. Merge-patch
        the changed status fields to the status subresource, guarded by the cached
        resourceVersion (409 when the job changed or was re-created under the same name)."""
        changes = merge_patch_of(old_status, status)
        if not changes:
            return True
        if "conditions" in changes:
            # The cache holds only the terminal conditions: replacing the list would drop the
            # others. The finished branch never changes them; refuse rather than corrupt.
            raise RuntimeError(
                f"{self.kind.kind} {base['metadata'].get('name')}: a finished job's conditions "
                "cannot be written from its compacted cache"
            )
        meta = base["metadata"]
        patch: Obj = {"status": changes}
        if meta.get("resourceVersion"):
            patch["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        try:
            stored = await self.client.patch(
                self.job_ref,
                meta.get("namespace"),
                meta["name"],
                patch,
                subresource="status",
                field_manager=self.options.field_manager,
            )
        except ApiStatusError as e:
            if e.is_not_found or e.is_conflict:
                return False
            raise
        self._note_written(uid, stored)
        return True

    def _note_written(self, uid: str, stored: Obj) -> None:
        rv = (stored.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._written[uid] = str(rv)

    # -- invalid jobs ----------------------------------------------------------------------------

    def _is_validation_failure(self, decision: StatusDecision) -> bool:
        reason = cond.reason(self.kind.kind, cond.REASON_FAILED_VALIDATION)
        return any(ev.reason == reason for ev in decision.events)

    async def _fail_invalid(self, job: Obj, decision: StatusDecision) -> Result:
        """Failed condition (message names the field) + Warning event, then TerminalError."""
        message = decision.error or "validation failed"
        old: Obj = job.get("status") or {}
        failed = cond.get_condition(old.get("conditions") or [], cond.FAILED)
        if failed is not None and failed.get("message") == message:
            return Result()  # already reported; nothing to write or log
        now = self._now()
        status = copy.deepcopy(old)
        reason = cond.reason(self.kind.kind, cond.REASON_FAILED_VALIDATION)
        created = 0
        if not status.get("conditions"):
            status["conditions"] = cond.set_condition(
                [],
                cond.CREATED,
                cond.TRUE,
                cond.reason(self.kind.kind, cond.REASON_CREATED),
                cond.created_message(self.kind.kind, job["metadata"]["name"]),
                now=now,
            )
            created = 1
        status["conditions"] = cond.set_condition(
            status["conditions"], cond.FAILED, cond.TRUE, reason, message, now=now
        )
        status.setdefault("completionTime", format_time(now))
        uid = str(job["metadata"].get("uid") or "")
        if await self._write_status(job, uid, status):
            for ev in decision.events:
                self._event(job, ev.type, ev.reason, ev.message)
            labels = (job["metadata"].get("namespace", ""), self.kind.framework)
            if created:
                self.metrics.created.labels(*labels).inc()
            self.metrics.failed.labels(*labels).inc()
        raise TerminalError(f"{self.kind.kind} {job['metadata']['name']}: {message}")

    # -- events and metrics ----------------------------------------------------------------------

    def _event(self, job: Obj, etype: str, reason: str, message: str) -> None:
        kind: Literal["Normal", "Warning"] = "Warning" if etype == WARNING else "Normal"
        self.recorder.event(job, kind, reason, message, resource=self.job_ref)

    def _count(self, job: Obj, decision: StatusDecision, now: datetime) -> None:
        ns = job["metadata"].get("namespace", "")
        framework = self.kind.framework
        self.metrics.count(decision.counters, namespace=ns, framework=framework)
        old = job.get("status") or {}
        new = decision.status
        if (
            cond.is_running(new)
            and cond.get_condition(old.get("conditions") or [], cond.RUNNING) is None
        ):
            self.metrics.observe_since_creation(
                self.metrics.running_seconds, job, at=now, labels=(framework,)
            )
        for outcome, count in (
            ("succeeded", decision.counters.successful),
            ("failed", decision.counters.failed),
        ):
            if count:
                self.metrics.observe_since_creation(
                    self.metrics.duration_seconds, job, at=now, labels=(framework, outcome)
                )

    def _time_pods_created(
        self, job: Obj, uid: str, pods: list[Obj], out: _Outcome, now: datetime
    ) -> None:
        if uid in self._pods_timed:
            return
        existing = {
            p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
        }
        total = total_replicas(default_job(self.kind, job), self.kind)
        if len(existing | set(out.created_pods)) >= total:
            self._pods_timed.add(uid)
            self.metrics.observe_since_creation(
                self.metrics.pods_created_seconds, job, at=now, labels=(self.kind.framework,)
            )


def new_job_controller(
    adapter: KindAdapter,
    *,
    client: ApiClient,
    informers: SharedInformerFactory,
    recorder: EventRecorder,
    metrics: JobMetrics,
    options: JobControllerOptions | None = None,
    controller_options: ControllerOptions | None = None,
) -> tuple[Controller, JobReconciler]:
    """The ``<kind>-controller`` for ``adapter``'s kind, wired to shared informers of
    ``informers`` (pods and services filtered by ``OWNED_SELECTOR``, one informer each however
    many kinds ask). Add the controller to the manager; the reconciler is returned for tests."""
    opts = options or JobControllerOptions()
    kind = adapter.kind
    owner = kubeflow(kind.kind)
    expectations = Expectations(timeout=opts.expectations_timeout)
    exits = ExitLog(kind.default_container)
    uid_index = {CONTROLLER_UID_INDEX: controller_uid_index}
    jobs = informers.informer_for(owner, transform=compact_job)
    pods = informers.informer_for(
        PODS, label_selector=OWNED_SELECTOR, transform=slim_pod, indexers=uid_index
    )
    services = informers.informer_for(
        SERVICES, label_selector=OWNED_SELECTOR, transform=strip_managed_fields, indexers=uid_index
    )
    extras = {
        ref.plural: informers.informer_for(ref, label_selector=OWNED_SELECTOR)
        for ref in CACHED_EXTRAS.get(kind.kind, ())
    }
    reconciler = JobReconciler(
        adapter,
        client=client,
        jobs=jobs.lister,
        pods=pods.lister,
        services=services.lister,
        extras={plural: inf.lister for plural, inf in extras.items()},
        recorder=recorder,
        metrics=metrics,
        expectations=expectations,
        exits=exits,
        options=opts,
    )
    jobs.add_event_handler(JobPhaseGauge(metrics, framework=kind.framework))
    controller = Controller(kind.controller_name, reconciler.reconcile, options=controller_options)
    controller.watch(jobs, JobHandler(kind))
    controller.watch(pods, OwnedObjectHandler(owner, expectations, PODS.plural, exits=exits))
    controller.watch(services, OwnedObjectHandler(owner, expectations, SERVICES.plural))
    for plural, informer in extras.items():
        controller.watch(informer, OwnedObjectHandler(owner, expectations, plural))
    return controller, reconciler
