"""``TrainJobReconciler``: one reconcile of a ``trainer.kubeflow.org/v1alpha1`` TrainJob, in
Kubeflow Trainer v2.3.0's order (``pkg/controller/trainjob_controller.go``).

A TrainJob runs as one JobSet of the same name, built from its training runtime by the pure
``jobset_build.py``; the JobSet controller (the cluster's, or the embedded cluster's
``cluster/jobset``) runs its Jobs. This module reads the caches, applies the JobSet (server-side
apply, field manager ``trainer``, as Trainer does), and derives the TrainJob's status: the
``Suspended`` condition, ``Complete``/``Failed`` and ``jobsStatus`` copied from the JobSet, and
``activeDeadlineSeconds``.

Differences from Trainer v2.3.0, on purpose:

- A finished TrainJob stays finished: its Failed condition is never cleared, so a JobSet its TTL
  deleted is not re-created with a fresh restart budget (trainer#3737, #3779; fixed on Trainer's
  master by #3891).
- A runtime that cannot be built (missing, or a policy this slice does not build yet) is shown on
  the TrainJob, not only in an Event (trainer#3671): ``Failed`` with reason
  ``TrainingRuntimeNotSupported`` for an unsupported policy; a missing runtime is a Warning event
  and a retry (the user may create it).

Contract: a reconcile never mutates a cached object; the status is written only when it
changed, as a merge patch carrying the TrainJob's resourceVersion (a stale cache gets a 409 and a
retry); a reconcile waits until the cache shows its last status write.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from kubetrain.base.clock import Clock, RealClock
from kubetrain.base.objects import Obj, is_controlled_by
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import CONFIGMAPS, ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.common.compact import merge_patch_of
from kubetrain.reconcilers.common.jobs import parse_time
from kubetrain.reconcilers.jobcontroller.protocols import EventSink, JobWriter
from kubetrain.reconcilers.jobcontroller.written_versions import WrittenVersions, patch_status
from kubetrain.reconcilers.metrics import JobMetrics

from .jobset_build import (
    BuildError,
    UnsupportedRuntime,
    runtime_key,
    should_apply_jobset,
)
from .objects import TrainJobObjects, build_objects
from .plugins.trainjob_status import StatusServerSource
from .resources import (
    JOBSETS,
    MANAGED_BY_SELF,
    SIDE_OBJECT_RESOURCES,
    TRAINER_GROUP,
    TRAINJOBS,
)
from .snapshot import InvalidSnapshot, read_snapshot, snapshot_configmap, snapshot_name
from .status import (
    COMPLETE,
    CREATION_FAILED,
    DEADLINE_EXCEEDED,
    FAILED,
    RESOURCES_CREATION_FAILED,
    RUNTIME_NOT_SUPPORTED,
    copy_jobset_status,
    is_finished,
    remove_condition,
    set_condition,
    set_phase,
    set_suspended,
    trainjob_phase,
)

__all__ = ["TrainJobOptions", "TrainJobReconciler", "TrainJobWriter"]

log = logging.getLogger(__name__)

#: Trainer's field manager for what it applies.
FIELD_MANAGER = "trainer"
#: The ``framework`` label of the TrainJob controller's series in the job metric families.
METRICS_FRAMEWORK = "trainjob"
_MAX_EVENT_DETAIL = 950
#: Seconds a JobSet we created is waited for in the cache before it is applied again.
JOBSET_WRITE_WAIT = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainJobOptions:
    """How the TrainJob controller runs."""

    stale_job_requeue: float = 5.0
    """Seconds until a TrainJob whose cache does not show our last status write is retried."""
    clock: Clock = field(default_factory=RealClock)
    status_server: StatusServerSource | None = None
    """The trainer status server (``plugins/trainjob_status.py``): given, each build injects its
    env, token volume and CA ConfigMap; None: the server is off and nothing is injected."""


class TrainJobWriter(JobWriter, Protocol):
    """A job writer that can also server-side apply (the JobSet, as Trainer applies it)."""

    async def patch(  # type: ignore[override]
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: Literal["merge", "json", "strategic", "apply"] = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> Obj: ...


class TrainJobReconciler:
    """Reconciles TrainJobs. Listers: ``trainjobs``, ``jobsets`` (all JobSets; the ones a
    TrainJob controls are its own), ``training_runtimes``, ``cluster_training_runtimes`` and
    ``configmaps`` (the ones labelled ``objects.TRAINJOB_NAME_LABEL``: runtime snapshots and the
    plugins' ConfigMaps). ``metrics``: the job metric families, counted with ``framework``
    ``trainjob`` once per transition, after the status write that records it."""

    def __init__(
        self,
        *,
        client: TrainJobWriter,
        trainjobs: Lister,
        jobsets: Lister,
        training_runtimes: Lister,
        cluster_training_runtimes: Lister,
        configmaps: Lister,
        recorder: EventSink,
        metrics: JobMetrics | None = None,
        options: TrainJobOptions | None = None,
    ) -> None:
        self.client = client
        self.trainjobs = trainjobs
        self.jobsets = jobsets
        self.training_runtimes = training_runtimes
        self.cluster_training_runtimes = cluster_training_runtimes
        self.configmaps = configmaps
        self.recorder = recorder
        self.metrics = metrics
        self.options = options or TrainJobOptions()
        self._written = WrittenVersions()  # our last status writes, until the cache shows them
        # TrainJob key -> (JobSet uid, resourceVersion, when) of our last JobSet write, until
        # the cache shows it: a reconcile on an older cache would apply the JobSet again (a
        # create) or PUT it at a stale resourceVersion (a 409 shown as a creation error).
        self._jobset_writes: dict[str, tuple[str, str, datetime]] = {}

    async def reconcile(self, request: Request) -> Result:
        cached = self.trainjobs.get(request.namespace, request.name)
        if cached is None:
            self._written.forget(request.key)
            self._jobset_writes.pop(request.key, None)
            return Result()
        spec = cached.get("spec") or {}
        managed_by = spec.get("managedBy")
        if managed_by and managed_by != MANAGED_BY_SELF:
            return Result()  # MultiKueue or another controller runs it: nothing is written
        meta = cached.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return Result()
        uid = str(meta.get("uid") or "")
        if not self._written.caught_up(request.key, uid, str(meta.get("resourceVersion") or "")):
            return Result(requeue_after=self.options.stale_job_requeue)

        now = self.options.clock.utcnow()
        status: dict[str, Any] = copy.deepcopy(cached.get("status") or {})
        old_status = copy.deepcopy(status)
        kind, group, runtime_name = runtime_key(cached)
        error: Exception | None = None
        if group != TRAINER_GROUP or kind not in ("TrainingRuntime", "ClusterTrainingRuntime"):
            set_condition(
                status, FAILED, "True", RUNTIME_NOT_SUPPORTED,
                f"unsupported runtime: {kind}.{group}", now,
            )  # fmt: skip
        elif not is_finished(status):
            try:
                await self._reconcile_jobset(cached, uid, kind, runtime_name, status, now)
            except (ApiStatusError, _RuntimeMissing, BuildError, InvalidSnapshot) as e:
                error = e
                detail = str(e)
                if len(detail) > _MAX_EVENT_DETAIL:
                    detail = detail[:_MAX_EVENT_DETAIL] + " ..."
                message = f"TrainJob resources reconciliation failed: {detail}"
                self._event(cached, "Warning", CREATION_FAILED, message)
                set_condition(
                    status, RESOURCES_CREATION_FAILED, "True", CREATION_FAILED, message, now
                )
            else:
                remove_condition(status, RESOURCES_CREATION_FAILED)

        suspended = bool(spec.get("suspend"))
        set_suspended(status, suspended, now, created=meta.get("creationTimestamp"))
        jobset = self._own_jobset(cached, uid)
        if jobset is not None:
            # Not yet, or deleted by its TTL after the end: the status stays as it was.
            copy_jobset_status(status, jobset)
        requeue_after = await self._deadline(cached, status, now)
        if is_finished(status):
            remove_condition(status, RESOURCES_CREATION_FAILED)
        set_phase(status, trainjob_phase(status, suspended=suspended, jobset=jobset))

        changed = bool(merge_patch_of(old_status, status))
        if changed:
            if not await self._write_status(cached, old_status, status):
                return Result(requeue=True)
            self._count(cached, old_status, status, now)
        if error is not None:
            raise RuntimeError(f"TrainJob {request.key}: {error}")
        return Result(requeue_after=requeue_after) if requeue_after else Result()

    # -- the JobSet ---------------------------------------------------------------------------

    def _own_jobset(self, trainjob: Obj, uid: str) -> Obj | None:
        meta = trainjob["metadata"]
        jobset = self.jobsets.get(meta.get("namespace"), meta["name"])
        return jobset if jobset is not None and is_controlled_by(jobset, uid) else None

    async def _reconcile_jobset(
        self, trainjob: Obj, uid: str, kind: str, name: str, status: dict[str, Any], now: datetime
    ) -> None:
        ns = str(trainjob["metadata"].get("namespace") or "")
        key = f"{ns}/{trainjob['metadata']['name']}"
        current = self.jobsets.get(ns, trainjob["metadata"]["name"])
        if self._jobset_write_pending(key, current, now):
            return  # the JobSet's watch event brings this TrainJob back (EnqueueForOwner)
        if current is not None:
            if not is_controlled_by(current, uid):
                raise _RuntimeMissing(
                    f"JobSet {ns}/{current['metadata']['name']} exists and is not this TrainJob's"
                )
            # A running JobSet is never changed (nor read from the runtime); a suspended one (or
            # a suspended TrainJob) is re-applied: how resumes and Kueue's patches reach it.
            if not should_apply_jobset(trainjob, current):
                return
        runtime = await self._runtime(trainjob, uid, kind, name)
        source = self.options.status_server  # its CA unreadable: a BuildError, retried
        status_server = await source.settings() if source is not None else None
        try:
            built = build_objects(
                trainjob,
                runtime.get("spec") or {},
                runtime_labels=(runtime.get("metadata") or {}).get("labels") or {},
                status_server=status_server,
            )
        except UnsupportedRuntime as e:
            set_condition(status, FAILED, "True", RUNTIME_NOT_SUPPORTED, str(e), now)
            return
        desired = built.jobset
        await self._apply_side_objects(built)
        if current is not None:
            # Merged into what is stored (a PUT at its resourceVersion): while suspended a
            # JobSet's replicatedJobs may change only their pod templates, and what JobSet's
            # webhook defaulted at creation (completionMode, restartPolicy) must stay. This is
            # what Trainer's server-side apply yields, keyed by replicatedJobs' name.
            updated = _resumed(current, desired)
            if updated != current:
                stored = await self.client.update(JOBSETS, updated, field_manager=FIELD_MANAGER)
                self._note_jobset_write(key, stored, now)
            return
        stored = await self.client.patch(
            JOBSETS,
            ns,
            desired["metadata"]["name"],
            desired,
            patch_type="apply",
            field_manager=FIELD_MANAGER,
            force=True,
        )
        self._note_jobset_write(key, stored, now)

    def _note_jobset_write(self, key: str, stored: Obj, now: datetime) -> None:
        meta = stored.get("metadata") or {}
        if meta.get("uid") and meta.get("resourceVersion"):
            self._jobset_writes[key] = (str(meta["uid"]), str(meta["resourceVersion"]), now)

    def _jobset_write_pending(self, key: str, cached: Obj | None, now: datetime) -> bool:
        """Whether the cache does not show our last write of this TrainJob's JobSet yet. A
        JobSet we created and the cache never showed is waited for at most
        ``JOBSET_WRITE_WAIT`` (it may have been deleted before the watch delivered it)."""
        written = self._jobset_writes.get(key)
        if written is None:
            return False
        uid, rv, when = written
        if cached is None:
            if (now - when).total_seconds() < JOBSET_WRITE_WAIT:
                return True
        else:
            meta = cached.get("metadata") or {}
            cached_rv = str(meta.get("resourceVersion") or "")
            behind = cached_rv.isdigit() and rv.isdigit() and int(cached_rv) < int(rv)
            if meta.get("uid") == uid and behind:
                return True
        del self._jobset_writes[key]
        return False

    async def _runtime(self, trainjob: Obj, uid: str, kind: str, name: str) -> Obj:
        """The runtime to build from: the TrainJob's snapshot when it has one, else the runtime
        itself, snapshotted now (Trainer's ``NewObjects``)."""
        meta = trainjob["metadata"]
        ns = str(meta.get("namespace") or "")
        ref = runtime_key(trainjob)
        snapshot = self.configmaps.get(ns, snapshot_name(meta["name"]))
        if snapshot is not None:
            return read_snapshot(snapshot, trainjob_uid=uid, ref=ref)
        runtime = (
            self.cluster_training_runtimes.get(None, name)
            if kind == "ClusterTrainingRuntime"
            else self.training_runtimes.get(ns, name)
        )
        if runtime is None:
            where = "" if kind == "ClusterTrainingRuntime" else f" in namespace {ns}"
            raise _RuntimeMissing(f"{kind} {name}{where} not found: create it, or fix runtimeRef")
        configmap = snapshot_configmap(trainjob, runtime)
        await self.client.patch(
            CONFIGMAPS,
            ns,
            configmap["metadata"]["name"],
            configmap,
            patch_type="apply",
            field_manager=FIELD_MANAGER,
            force=True,
        )
        return runtime

    async def _apply_side_objects(self, built: TrainJobObjects) -> None:
        """The plugins' objects, before the JobSet whose pods mount or join them: the
        create-once ones (already there is fine: they are never updated), then the applied."""
        for obj in built.created:
            ref = SIDE_OBJECT_RESOURCES[(obj["apiVersion"], obj["kind"])]
            try:
                await self.client.create(ref, obj, field_manager=FIELD_MANAGER)
            except ApiStatusError as e:
                if e.code != 409:
                    raise
        for obj in built.applied:
            ref = SIDE_OBJECT_RESOURCES[(obj["apiVersion"], obj["kind"])]
            meta = obj["metadata"]
            await self.client.patch(
                ref,
                meta.get("namespace"),
                meta["name"],
                obj,
                patch_type="apply",
                field_manager=FIELD_MANAGER,
                force=True,
            )

    async def _deadline(self, trainjob: Obj, status: dict[str, Any], now: datetime) -> float:
        """``activeDeadlineSeconds`` from the last start (``status.startTime``: the creation,
        or the last resume): Failed with DeadlineExceeded and the JobSet deleted when it
        passed; else seconds to requeue."""
        spec = trainjob.get("spec") or {}
        seconds = spec.get("activeDeadlineSeconds") or 0
        if not seconds or is_finished(status) or spec.get("suspend"):
            return 0.0
        start = parse_time(status.get("startTime")) or parse_time(
            (trainjob.get("metadata") or {}).get("creationTimestamp")
        )
        if start is None:
            return 0.0
        deadline = start + timedelta(seconds=int(seconds))
        if now < deadline:
            return max(1.0, (deadline - now).total_seconds())
        set_condition(
            status, FAILED, "True", DEADLINE_EXCEEDED, "TrainJob exceeded its active deadline", now
        )
        meta = trainjob["metadata"]
        try:
            await self.client.delete(JOBSETS, meta.get("namespace"), meta["name"])
        except ApiStatusError as e:
            if not e.is_not_found:
                log.info(
                    "TrainJob %s/%s: JobSet not deleted: %s", meta.get("namespace"), meta["name"], e
                )
        return 0.0

    def _count(
        self, trainjob: Obj, old: Mapping[str, Any], new: Mapping[str, Any], now: datetime
    ) -> None:
        """The metrics of the transitions this status write recorded: created (the first
        write), Running (start latency: from creation, each time it starts running), Complete
        or Failed (duration)."""
        if self.metrics is None:
            return
        ns = str(trainjob["metadata"].get("namespace") or "")
        old_phase, phase = old.get("phase"), new.get("phase")
        if old_phase == phase:
            return
        if old_phase is None:
            self.metrics.created.labels(ns, METRICS_FRAMEWORK).inc()
        if phase == "Running":
            self.metrics.observe_since_creation(
                self.metrics.running_seconds, trainjob, at=now, labels=(METRICS_FRAMEWORK,)
            )
        if phase in (COMPLETE, FAILED) and old_phase not in (COMPLETE, FAILED):
            outcome = "succeeded" if phase == COMPLETE else "failed"
            family = self.metrics.successful if phase == COMPLETE else self.metrics.failed
            family.labels(ns, METRICS_FRAMEWORK).inc()
            self.metrics.observe_since_creation(
                self.metrics.duration_seconds, trainjob, at=now, labels=(METRICS_FRAMEWORK, outcome)
            )

    # -- writes ---------------------------------------------------------------------------------

    async def _write_status(
        self, cached: Obj, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> bool:
        return await patch_status(
            self.client,
            TRAINJOBS,
            cached,
            old,
            new,
            field_manager=FIELD_MANAGER,
            written=self._written,
        )

    def _event(self, trainjob: Obj, type_: str, reason: str, message: str) -> None:
        self.recorder.event(
            trainjob,
            "Warning" if type_ == "Warning" else "Normal",
            reason,
            message,
            resource=TRAINJOBS,
        )


class _RuntimeMissing(RuntimeError):
    """The runtime (or a JobSet of the name) is not what the TrainJob needs: retried."""


def _merged(base: Any, over: Any) -> Any:
    """``over`` merged into ``base``: maps key by key, ``over`` wins elsewhere (lists whole)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _merged(base.get(key), value)
        return out
    return copy.deepcopy(over)


def _resumed(current: Obj, desired: Obj) -> Obj:
    """The stored JobSet with ``desired``'s ``suspend`` and pod templates (merged over the
    stored ones, so what the JobSet webhook defaulted, e.g. ``restartPolicy``, stays)."""
    spec = copy.deepcopy(current.get("spec") or {})
    spec["suspend"] = bool((desired.get("spec") or {}).get("suspend"))
    wanted = {r.get("name"): r for r in (desired.get("spec") or {}).get("replicatedJobs") or []}
    for rjob in spec.get("replicatedJobs") or []:
        want = wanted.get(rjob.get("name"))
        if want is None:
            continue
        job_spec = rjob.setdefault("template", {}).setdefault("spec", {})
        desired_template = ((want.get("template") or {}).get("spec") or {}).get("template") or {}
        job_spec["template"] = _merged(job_spec.get("template") or {}, desired_template)
    return {**current, "spec": spec}
