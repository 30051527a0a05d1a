"""Which informer events reconcile which job, and how urgently.

``JobHandler`` enqueues the job itself; ``OwnedObjectHandler`` enqueues a dependent's controlling
job of the controller's kind and observes the dependent for the expectations. The predicates below
decide when an event is raised above the engine handlers' priority (``common/priorities.py``) or
enqueues nothing.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj, controller_uid
from kubetrain.engine.enqueue import EnqueueForObject, EnqueueForOwner, KeyQueue
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.api.mpi_v2beta1 import written_as_v2beta1
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.common.priorities import (
    NORMAL_PRIORITY,
    POD_PHASE_PRIORITY,
    TTL_PRIORITY,
)
from kubetrain.reconcilers.common.ttl import ttl_seconds
from kubetrain.reconcilers.exits import ExitLog

__all__ = [
    "AtLeast",
    "JobHandler",
    "OwnedObjectHandler",
    "became_finished",
    "only_version_moved",
    "reconciled_as_v1",
]


class AtLeast:
    """A ``KeyQueue`` that adds to ``queue`` at ``priority`` or higher."""

    __slots__ = ("_floor", "_queue")

    def __init__(self, queue: KeyQueue, priority: int) -> None:
        self._queue = queue
        self._floor = priority

    def add(self, key: str, *, priority: int = NORMAL_PRIORITY) -> None:
        self._queue.add(key, priority=max(priority, self._floor))


def reconciled_as_v1(kind: JobKind, job: Obj) -> bool:
    """The job is this (v1) controller's: every job but an MPIJob written as v2beta1, which
    ``reconcilers/mpiv2`` reconciles by mpi-operator's semantics (both share one CRD)."""
    return kind.kind != "MPIJob" or not written_as_v2beta1(job)


def became_finished(old: Obj, new: Obj) -> bool:
    """``new`` shows the job Succeeded or Failed and ``old`` did not."""
    return cond.is_finished(new.get("status") or {}) and not cond.is_finished(
        old.get("status") or {}
    )


def only_version_moved(old: Obj, new: Obj) -> bool:
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


class JobHandler:
    """Enqueues the job itself; the update that first shows the job finished, when it has a
    ``ttlSecondsAfterFinished``, at ``TTL_PRIORITY`` (at least).

    Why: a pod event that arrives before the cache shows the finished status runs the job early,
    finds the cache stale and requeues at normal priority, so the TTL requeue would otherwise wait
    behind a burst of other jobs' creations. This update is that event; once per finished job.
    """

    __slots__ = ("_enqueue", "_kind")

    def __init__(self, kind: JobKind) -> None:
        self._enqueue = EnqueueForObject()
        self._kind = kind

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None:
        if reconciled_as_v1(self._kind, obj):
            self._enqueue.on_add(obj, is_in_initial_list, queue)

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None:
        if not reconciled_as_v1(self._kind, new):
            return
        if became_finished(old, new) and ttl_seconds(new, self._kind) is not None:
            queue = AtLeast(queue, TTL_PRIORITY)
        self._enqueue.on_update(old, new, queue)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None:
        self._enqueue.on_delete(obj, queue)

    def __repr__(self) -> str:
        return f"JobHandler({self._kind.kind})"


class OwnedObjectHandler:
    """Enqueues a dependent's controlling job of ``owner``'s kind and observes expectations.

    ``resource`` is the expectations' resource name (``pods``, ``services``, ...). Objects owned
    by another kind are ignored, so each kind's controller only wakes for its own children. An
    update that changes the dependent's ``status.phase`` enqueues the job at
    ``POD_PHASE_PRIORITY`` (at least); every other event at the engine handlers' priority. An
    update that leaves the cached (slimmed) object as it was, resourceVersion aside, enqueues
    nothing: the reconcile would decide exactly as last time.
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

    def _owner_uid(self, obj: Obj) -> str | None:
        return controller_uid(obj, kind=self._owner.kind, group=self._owner.group)

    def _observe(self, uid: str, obj: Obj, *, deleted: bool) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if deleted or (obj.get("metadata") or {}).get("deletionTimestamp"):
            self._expectations.observe_deleted(uid, self._resource, name)
        else:
            self._expectations.observe_created(uid, self._resource, name)

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None:
        uid = self._owner_uid(obj)
        if uid is not None:
            self._observe(uid, obj, deleted=False)
            if self._exits is not None and not is_in_initial_list:
                self._exits.note(uid, None, obj)
        self._enqueue.on_add(obj, is_in_initial_list, queue)

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None:
        uid = self._owner_uid(new)
        if uid is not None:
            self._observe(uid, new, deleted=False)
            if self._exits is not None:
                self._exits.note(uid, old, new)
        if only_version_moved(old, new):
            return
        if _phase(old) != _phase(new):
            queue = AtLeast(queue, POD_PHASE_PRIORITY)
        self._enqueue.on_update(old, new, queue)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None:
        final = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        uid = self._owner_uid(final)
        if uid is not None:
            self._observe(uid, final, deleted=True)
        self._enqueue.on_delete(obj, queue)

    def __repr__(self) -> str:
        return f"OwnedObjectHandler({self._owner.kind}, {self._resource})"
