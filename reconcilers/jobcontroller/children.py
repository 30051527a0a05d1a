"""``ChildWriter``: creates and deletes a job's pods and services, bounded, with expectations.

Invariant (DESIGN.md): a pod is never created twice for one index. Expectations are raised before
the first await, the lister is consulted right before each POST, and names are deterministic, so a
duplicate POST is answered 409 AlreadyExists, which counts as observed (also across restarts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from kubetrain.base.clock import Clock
from kubetrain.base.objects import Obj
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import PODS, SERVICES, ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common.decision import WARNING, StatusDecision
from kubetrain.reconcilers.common.expectations import ExpectationKey, Expectations
from kubetrain.reconcilers.common.naming import REPLICA_TYPE_LABEL
from kubetrain.reconcilers.metrics import JobMetrics

from .memory import JobMemory
from .outcome import Outcome
from .protocols import JobWriter
from .recording import JobEvents

__all__ = ["ChildWriter"]


class ChildWriter:
    """Pod and service writes of one kind's controller, ``create_concurrency`` at once in all.

    One semaphore for every reconcile of the controller: with many concurrent reconciles that is
    what bounds the requests queued at the API server.
    """

    def __init__(
        self,
        kind: JobKind,
        *,
        client: JobWriter,
        pods: Lister,
        services: Lister,
        expectations: Expectations,
        events: JobEvents,
        metrics: JobMetrics,
        create_concurrency: int,
        field_manager: str,
        clock: Clock,
    ) -> None:
        self._kind = kind
        self._clock = clock
        self._client = client
        self._pods = pods
        self._services = services
        self._expectations = expectations
        self._events = events
        self._metrics = metrics
        self._field_manager = field_manager
        self._limit = asyncio.Semaphore(create_concurrency)

    async def create(
        self,
        job: Obj,
        memory: JobMemory,
        pods: list[Obj],
        decision: StatusDecision,
        out: Outcome,
    ) -> None:
        """The decision's pods and services, in parallel, with their expectations raised before
        the first await; then the all-pods-created time. ``pods``: the job's pods the decision
        was made on."""
        uid = memory.uid
        self._raise_creations(uid, decision)
        await self.bounded(
            [self._create_one(job, uid, PODS, body, out) for body in decision.create_pods]
            + [self._create_one(job, uid, SERVICES, body, out) for body in decision.create_services]
        )
        if decision.create_pods and not out.failures:
            self._time_pods_created(job, memory, pods, decision, out)

    def delete_all(
        self, job: Obj, uid: str, pods: list[Obj], decision: StatusDecision, out: Outcome
    ) -> list[Awaitable[None]]:
        """The decision's pod and service deletions, with their expectations raised now; the
        caller awaits them through ``bounded`` (with any other deletions)."""
        pod_uids = {p["metadata"]["name"]: p["metadata"].get("uid") for p in pods}
        work: list[Awaitable[None]] = [
            self._delete_one(job, uid, PODS, name, pod_uids.get(name), out)
            for name in decision.delete_pods
        ]
        work += [
            self._delete_one(job, uid, SERVICES, name, None, out)
            for name in decision.delete_services
        ]
        for resource, names in (
            ("pods", decision.delete_pods),
            ("services", decision.delete_services),
        ):
            if names:
                self._expectations.expect_deletions(uid, ExpectationKey("", resource), names)
        return work

    async def bounded(self, work: Sequence[Awaitable[None]]) -> None:
        """Await ``work`` in parallel, at most ``create_concurrency`` at once controller-wide."""
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
                self._expectations.expect_creations(uid, ExpectationKey(rtype, resource), names)

    async def _create_one(
        self, job: Obj, uid: str, ref: ResourceRef, body: Obj, out: Outcome
    ) -> None:
        meta = body["metadata"]
        ns, obj_name = meta["namespace"], meta["name"]
        what = "pod" if ref is PODS else "service"
        lister = self._pods if ref is PODS else self._services
        if lister.get(ns, obj_name) is not None:
            # The cache already holds this name (ours, or a deleted job's still terminating).
            self._expectations.observe_created(uid, ref.plural, obj_name)
            out.conflicts += 1
            return
        try:
            await self._client.create(
                ref, body, field_manager=self._field_manager, read_answer=False
            )
        except ApiStatusError as e:
            self._expectations.observe_created(uid, ref.plural, obj_name)  # lower it
            if e.is_already_exists:
                out.conflicts += 1
                return
            reason = "FailedCreatePod" if ref is PODS else "FailedCreateService"
            self._events.emit(job, WARNING, reason, f"Error creating: {e}")
            out.failures.append(f"create {what} {obj_name}: {e}")
            return
        except BaseException:
            self._expectations.observe_created(uid, ref.plural, obj_name)
            raise
        if ref is PODS:
            out.created_pods.append(obj_name)
            self._events.emit(job, "Normal", "SuccessfulCreatePod", f"Created pod: {obj_name}")
        else:
            out.created_services.append(obj_name)
            self._events.emit(
                job, "Normal", "SuccessfulCreateService", f"Created service: {obj_name}"
            )

    async def _delete_one(
        self,
        job: Obj,
        uid: str,
        ref: ResourceRef,
        obj_name: str,
        obj_uid: str | None,
        out: Outcome,
    ) -> None:
        ns = job["metadata"].get("namespace")
        what = "Pod" if ref is PODS else "Service"
        try:
            await self._client.delete(ref, ns, obj_name, uid=obj_uid or None)
        except ApiStatusError as e:
            self._expectations.observe_deleted(uid, ref.plural, obj_name)
            if e.is_not_found or e.is_conflict:
                return
            self._events.emit(job, WARNING, f"FailedDelete{what}", f"Error deleting: {e}")
            out.failures.append(f"delete {what.lower()} {obj_name}: {e}")
            return
        except BaseException:
            self._expectations.observe_deleted(uid, ref.plural, obj_name)
            raise
        self._events.emit(
            job, "Normal", f"SuccessfulDelete{what}", f"Deleted {what.lower()}: {obj_name}"
        )

    def _time_pods_created(
        self,
        job: Obj,
        memory: JobMemory,
        pods: list[Obj],
        decision: StatusDecision,
        out: Outcome,
    ) -> None:
        if memory.pods_timed:
            return
        existing = {
            p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
        }
        if len(existing | set(out.created_pods)) >= decision.total_replicas:
            memory.pods_timed = True
            self._metrics.observe_since_creation(
                self._metrics.pods_created_seconds,
                job,
                at=self._clock.utcnow(),
                labels=(self._kind.framework,),
            )
