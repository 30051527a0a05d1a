"""``JobReconciler``: one reconcile of a job, for every kind: gates, decide, apply.

``compute_status`` (pure, ``common/status.py``) decides everything; this applies the
``StatusDecision`` in its documented order through the writers of this package, and turns its
outcome into the engine's ``Result``: a requeue (at the decision's priority), a retry with backoff
(a failed write, a spec error) or ``TerminalError`` (an invalid job, never retried).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime

from kubetrain.base.objects import Obj, object_key
from kubetrain.engine.reconcile import Request, Result, TerminalError
from kubetrain.engine.request_priority import request_priority
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import kubeflow
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.decision import WARNING, StatusDecision
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.common.kind_adapter import KindAdapter
from kubetrain.reconcilers.common.priorities import DELETE_JOB_REQUEST_PRIORITY
from kubetrain.reconcilers.common.status import compute_status
from kubetrain.reconcilers.exits import ExitLog
from kubetrain.reconcilers.gang.view import NO_VIEW
from kubetrain.reconcilers.metrics import JobMetrics

from .children import ChildWriter
from .extras import ExtraObjects
from .gang_cache import GangCache
from .gates import closed_gate
from .memory import JobMemories, JobMemory
from .options import JobControllerOptions
from .outcome import Outcome
from .protocols import EventSink, JobWriter
from .recording import JobEvents
from .status_writer import StatusWriter
from .triggers import reconciled_as_v1

__all__ = ["JobReconciler", "JobSpecError"]


class JobSpecError(RuntimeError):
    """The job's spec cannot be turned into pods (a ``SpecError`` in the decision); retried with
    backoff because the user may fix the job. The Warning event names the field."""


class JobReconciler:
    """Reconciles the jobs of one kind. Build with ``new_job_controller``; ``reconcile`` is the
    engine's ``Reconciler``.

    Listers are the caller's: ``jobs`` of the kind, ``pods``/``services`` of the owned-object
    informers with the ``CONTROLLER_UID_INDEX`` index, ``extras`` keyed by resource plural.
    ``expectations`` and ``exits`` are shared with the event handlers that observe them.
    ``gang``: the PodGroup and PriorityClass caches, needed when ``options.domain.gang`` is set.
    """

    def __init__(
        self,
        adapter: KindAdapter,
        *,
        client: JobWriter,
        jobs: Lister,
        pods: Lister,
        services: Lister,
        recorder: EventSink,
        metrics: JobMetrics,
        expectations: Expectations,
        extras: dict[str, Lister] | None = None,
        exits: ExitLog | None = None,
        options: JobControllerOptions | None = None,
        gang: GangCache | None = None,
    ) -> None:
        self.adapter = adapter
        self.kind = adapter.kind
        self.job_ref = kubeflow(adapter.kind.kind)
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.services = services
        self.metrics = metrics
        self.expectations = expectations
        self.exits = exits if exits is not None else ExitLog(adapter.kind.default_container)
        self.options = opts = options or JobControllerOptions()
        if opts.domain.gang is not None and gang is None:
            raise ValueError(
                "JobReconciler: options.domain.gang is set but no GangCache was given "
                "(new_job_controller wires one)"
            )
        self._gang = gang if opts.domain.gang is not None else None
        self._clock = opts.clock
        self.memories = JobMemories(expectations, self.exits)
        self._events = JobEvents(recorder, self.job_ref)
        self._children = ChildWriter(
            self.kind,
            client=client,
            pods=pods,
            services=services,
            expectations=expectations,
            events=self._events,
            metrics=metrics,
            create_concurrency=opts.create_concurrency,
            field_manager=opts.field_manager,
            clock=opts.clock,
        )
        self._extras = ExtraObjects(
            self.kind,
            client=client,
            listers=extras or {},
            field_manager=opts.field_manager,
            events=self._events,
        )
        self._status = StatusWriter(
            self.job_ref,
            client=client,
            clock=opts.clock,
            batch_seconds=opts.status_batch_seconds,
            field_manager=opts.field_manager,
        )

    async def reconcile(self, request: Request) -> Result:
        key = request.key
        job = self.jobs.get(request.namespace, request.name)
        if job is None or not reconciled_as_v1(self.kind, job):
            self.memories.forget(key)
            return Result()
        meta = job.get("metadata") or {}
        memory = self.memories.for_job(key, str(meta.get("uid") or ""))
        stop = closed_gate(
            memory,
            str(meta.get("resourceVersion") or ""),
            self.expectations,
            stale_requeue=self.options.stale_job_requeue,
        )
        if stop is not None:
            return stop

        pods = self.pods.by_index(CONTROLLER_UID_INDEX, memory.uid)
        services = self.services.by_index(CONTROLLER_UID_INDEX, memory.uid)
        now = self._clock.utcnow()
        decision = compute_status(
            self.adapter,
            job,
            pods,
            services,
            now=now,
            options=self.options.domain,
            gang_view=self._gang.view(job) if self._gang is not None else NO_VIEW,
        )
        if decision.invalid is not None:
            return await self._fail_invalid(job, memory, decision)

        outcome = await self._apply(job, memory, pods, decision)
        if outcome.failures:
            raise RuntimeError(
                f"{self.kind.kind} {key}: {len(outcome.failures)} write(s) failed: "
                + "; ".join(outcome.failures[:3])
            )
        if decision.error is not None:
            raise JobSpecError(f"{self.kind.kind} {key}: {decision.error}")
        if decision.delete_job:
            return Result()
        if outcome.conflicts:
            # A name was taken by an object the cache does not show yet (ours after a restart,
            # or a deleted job's pod still terminating): look again after backoff.
            return Result(requeue=True)
        due = [t for t in (decision.requeue_after, outcome.status_deferred) if t is not None]
        if due:
            return Result(requeue_after=max(min(due), 0.001), priority=decision.priority)
        return Result()

    async def create_children_before_sync(self, job: Obj) -> int:
        """Create the pods and services of a job no controller has reconciled yet, before the
        caches have synced (``presync_jobs.NewJobPreSync``); the number of objects created.

        Only creations: no status, annotation or deletion is decided on a partial cache. Safe
        alongside the later full reconcile because it raises the same expectations first (that
        reconcile waits until the informers have seen these objects) and because every name is
        deterministic (a child that exists after all is answered 409 and counted as observed).
        Jobs that need more than pods and services (the MPI ConfigMap, an elastic HPA, a
        PodGroup: gang scheduling needs its cache), that are
        invalid, suspended, managed by another controller or being deleted are left to the full
        reconcile.
        """
        meta = job.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid or not self.expectations.satisfied(uid) or not reconciled_as_v1(self.kind, job):
            return 0
        # compute_status and the expectations (ChildWriter.create) come before the first await:
        # a full reconcile of this job that starts later already finds them raised.
        decision = compute_status(
            self.adapter, job, [], [], now=self._clock.utcnow(), options=self.options.domain
        )
        if (
            decision.error is not None
            or decision.invalid is not None
            or decision.apply_objects
            or decision.delete_job
            or not (decision.create_pods or decision.create_services)
        ):
            return 0
        memory = self.memories.for_job(object_key(job), uid)
        out = Outcome()
        await self._children.create(job, memory, [], decision, out)
        return len(out.created_pods) + len(out.created_services)

    # -- applying a decision, in StatusDecision's order ------------------------------------------

    async def _apply(
        self, job: Obj, memory: JobMemory, pods: list[Obj], decision: StatusDecision
    ) -> Outcome:
        out = Outcome()
        meta = job["metadata"]
        ns, name, uid = meta.get("namespace"), meta["name"], memory.uid
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
            memory.note_written(base)
        # 2. deletions (their expectations raised before the first await).
        deletions: list[Awaitable[None]] = self._children.delete_all(job, uid, pods, decision, out)
        deletions += [
            self._extras.delete(job, memory, api_version, kind, obj_name, out)
            for api_version, kind, obj_name in decision.delete_objects
        ]
        await self._children.bounded(deletions)
        # 3. creations.
        await self._children.create(job, memory, pods, decision, out)
        for body in decision.apply_objects:
            await self._extras.apply(job, memory, body, out)
        now = self._clock.utcnow()
        # 4. status, only when changed.
        written = True
        if decision.status_changed:
            wait = self._status.batch_wait(memory, base, decision.status)
            if wait > 0:
                out.status_deferred = wait
                written = False
            else:
                written = await self._status.write(base, memory, decision.status)
        # 5. TTL.
        if decision.delete_job:
            await self._delete_job(job, uid, decision)
        # 6. events and counters.
        for ev in decision.events:
            self._events.emit(job, ev.type, ev.reason, ev.message)
        for pod_name, code in self.exits.take(uid):
            self._events.emit(
                job, "Normal", "ExitedWithCode", f"Pod: {ns}.{pod_name} exited with code {code}"
            )
        if written:
            self._count(job, decision, now)
        return out

    async def _delete_job(self, job: Obj, uid: str, decision: StatusDecision) -> None:
        meta = job["metadata"]
        try:
            with request_priority(DELETE_JOB_REQUEST_PRIORITY):
                await self.client.delete(
                    self.job_ref,
                    meta.get("namespace"),
                    meta["name"],
                    propagation_policy="Background",
                    uid=uid,
                )
        except ApiStatusError as e:
            if not (e.is_not_found or e.is_conflict):
                self._events.emit(job, WARNING, "FailedDeleteJob", f"Error deleting: {e}")
                raise
            decision.counters.deleted = 0
            return
        if decision.ttl_deadline is not None:
            late = (self._clock.utcnow() - decision.ttl_deadline).total_seconds()
            self.metrics.ttl_deletion_delay_seconds.labels(self.kind.framework).observe(
                max(0.0, late)
            )

    async def _fail_invalid(self, job: Obj, memory: JobMemory, decision: StatusDecision) -> Result:
        """Write the decided Failed condition; its events and counts go with the write."""
        if not decision.status_changed:
            return Result()  # already reported; nothing to write or log
        if await self._status.write(job, memory, decision.status):
            for ev in decision.events:
                self._events.emit(job, ev.type, ev.reason, ev.message)
            self.metrics.count(
                decision.counters,
                namespace=job["metadata"].get("namespace", ""),
                framework=self.kind.framework,
            )
        raise TerminalError(f"{self.kind.kind} {job['metadata']['name']}: {decision.invalid}")

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
