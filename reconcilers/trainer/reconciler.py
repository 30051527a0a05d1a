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
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.common.compact import merge_patch_of
from kubetrain.reconcilers.jobcontroller.protocols import EventSink, JobWriter
from kubetrain.reconcilers.jobcontroller.written_versions import WrittenVersions, patch_status

from .jobset_build import (
    BuildError,
    UnsupportedRuntime,
    runtime_key,
    should_apply_jobset,
)
from .objects import TrainJobObjects, build_objects
from .resources import (
    JOBSETS,
    MANAGED_BY_SELF,
    SIDE_OBJECT_RESOURCES,
    TRAINER_GROUP,
    TRAINJOBS,
)

__all__ = ["TrainJobOptions", "TrainJobReconciler", "TrainJobWriter"]

log = logging.getLogger(__name__)

#: Trainer's field manager for what it applies.
FIELD_MANAGER = "trainer"
#: Trainer v2.3.0's condition types, reasons and messages (``pkg/constants``).
SUSPENDED, COMPLETE, FAILED = "Suspended", "Complete", "Failed"
DEADLINE_EXCEEDED = "DeadlineExceeded"
RUNTIME_NOT_SUPPORTED = "TrainingRuntimeNotSupported"
CREATION_FAILED = "TrainJobResourcesCreationFailed"
_MAX_EVENT_DETAIL = 950


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainJobOptions:
    """How the TrainJob controller runs."""

    stale_job_requeue: float = 5.0
    """Seconds until a TrainJob whose cache does not show our last status write is retried."""
    clock: Clock = field(default_factory=RealClock)


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
    TrainJob controls are its own), ``training_runtimes`` and ``cluster_training_runtimes``."""

    def __init__(
        self,
        *,
        client: TrainJobWriter,
        trainjobs: Lister,
        jobsets: Lister,
        training_runtimes: Lister,
        cluster_training_runtimes: Lister,
        recorder: EventSink,
        options: TrainJobOptions | None = None,
    ) -> None:
        self.client = client
        self.trainjobs = trainjobs
        self.jobsets = jobsets
        self.training_runtimes = training_runtimes
        self.cluster_training_runtimes = cluster_training_runtimes
        self.recorder = recorder
        self.options = options or TrainJobOptions()
        self._written = WrittenVersions()  # our last status writes, until the cache shows them

    async def reconcile(self, request: Request) -> Result:
        cached = self.trainjobs.get(request.namespace, request.name)
        if cached is None:
            self._written.forget(request.key)
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
            _set_condition(
                status, FAILED, "True", RUNTIME_NOT_SUPPORTED,
                f"unsupported runtime: {kind}.{group}", now,
            )  # fmt: skip
        elif not _finished(status):
            try:
                await self._reconcile_jobset(cached, uid, kind, runtime_name, status, now)
            except (ApiStatusError, _RuntimeMissing, BuildError) as e:
                error = e
                detail = str(e)
                if len(detail) > _MAX_EVENT_DETAIL:
                    detail = detail[:_MAX_EVENT_DETAIL] + " ..."
                self._event(
                    cached, "Warning", CREATION_FAILED,
                    f"TrainJob resources reconciliation failed: {detail}",
                )  # fmt: skip

        _set_suspended_condition(status, bool(spec.get("suspend")), now)
        self._copy_jobset_status(cached, uid, status)
        requeue_after = await self._deadline(cached, status, now)

        changed = bool(merge_patch_of(old_status, status))
        if changed and not await self._write_status(cached, old_status, status):
            return Result(requeue=True)
        if error is not None:
            raise RuntimeError(f"TrainJob {request.key}: {error}")
        return Result(requeue_after=requeue_after) if requeue_after else Result()

    # -- the JobSet ---------------------------------------------------------------------------

    async def _reconcile_jobset(
        self, trainjob: Obj, uid: str, kind: str, name: str, status: dict[str, Any], now: datetime
    ) -> None:
        ns = str(trainjob["metadata"].get("namespace") or "")
        runtime = (
            self.cluster_training_runtimes.get(None, name)
            if kind == "ClusterTrainingRuntime"
            else self.training_runtimes.get(ns, name)
        )
        if runtime is None:
            where = "" if kind == "ClusterTrainingRuntime" else f" in namespace {ns}"
            raise _RuntimeMissing(f"{kind} {name}{where} not found: create it, or fix runtimeRef")
        try:
            built = build_objects(
                trainjob,
                runtime.get("spec") or {},
                runtime_labels=(runtime.get("metadata") or {}).get("labels") or {},
            )
        except UnsupportedRuntime as e:
            _set_condition(status, FAILED, "True", RUNTIME_NOT_SUPPORTED, str(e), now)
            return
        desired = built.jobset
        current = self.jobsets.get(ns, trainjob["metadata"]["name"])
        if current is not None:
            if not is_controlled_by(current, uid):
                raise _RuntimeMissing(
                    f"JobSet {ns}/{current['metadata']['name']} exists and is not this TrainJob's"
                )
            # A running JobSet is never changed; a suspended one (or a suspended TrainJob) is
            # re-applied, which is how resumes and Kueue's patches reach it.
            if not should_apply_jobset(trainjob, current):
                return
            await self._apply_side_objects(built)
            # Merged into what is stored (a PUT at its resourceVersion): while suspended a
            # JobSet's replicatedJobs may change only their pod templates, and what JobSet's
            # webhook defaulted at creation (completionMode, restartPolicy) must stay. This is
            # what Trainer's server-side apply yields, keyed by replicatedJobs' name.
            updated = _resumed(current, desired)
            if updated != current:
                await self.client.update(JOBSETS, updated, field_manager=FIELD_MANAGER)
            return
        await self._apply_side_objects(built)
        await self.client.patch(
            JOBSETS,
            ns,
            desired["metadata"]["name"],
            desired,
            patch_type="apply",
            field_manager=FIELD_MANAGER,
            force=True,
        )

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

    def _copy_jobset_status(self, trainjob: Obj, uid: str, status: dict[str, Any]) -> None:
        """The JobSet plugin's Status: Completed/Failed become Complete/Failed, and jobsStatus
        mirrors replicatedJobsStatus (counts of Jobs, not pods)."""
        ns = str(trainjob["metadata"].get("namespace") or "")
        jobset = self.jobsets.get(ns, trainjob["metadata"]["name"])
        if jobset is None or not is_controlled_by(jobset, uid):
            return  # not yet, or deleted by its TTL after the end: the status stays as it was
        js_status = jobset.get("status") or {}
        for js_type, tj_type in (("Completed", COMPLETE), ("Failed", FAILED)):
            cond = _find(js_status.get("conditions") or [], js_type)
            if cond is not None and cond.get("status") == "True":
                copied = {**cond, "type": tj_type}
                _put_condition(status, copied)
        jobs = [
            {
                "name": s.get("name"),
                **{k: int(s.get(k) or 0) for k in ("ready", "succeeded", "failed", "active")},
                "suspended": int(s.get("suspended") or 0),
            }
            for s in js_status.get("replicatedJobsStatus") or []
        ]
        if jobs:
            status["jobsStatus"] = jobs

    async def _deadline(self, trainjob: Obj, status: dict[str, Any], now: datetime) -> float:
        """``activeDeadlineSeconds`` from creation, or from the last resume: Failed with
        DeadlineExceeded and the JobSet deleted when it passed; else seconds to requeue."""
        spec = trainjob.get("spec") or {}
        seconds = spec.get("activeDeadlineSeconds") or 0
        if not seconds or _finished(status) or spec.get("suspend"):
            return 0.0
        start = _parse_time((trainjob.get("metadata") or {}).get("creationTimestamp"))
        resumed = _find(status.get("conditions") or [], SUSPENDED)
        if resumed is not None and resumed.get("status") == "False":
            start = _parse_time(resumed.get("lastTransitionTime")) or start
        if start is None:
            return 0.0
        deadline = start + timedelta(seconds=int(seconds))
        if now < deadline:
            return max(1.0, (deadline - now).total_seconds())
        _set_condition(
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


# -- conditions (metav1.Condition, as meta.SetStatusCondition keeps them) ----------------------


def _find(conditions: list[Obj], ctype: str) -> Obj | None:
    return next((c for c in conditions if c.get("type") == ctype), None)


def _put_condition(status: dict[str, Any], cond: Obj) -> None:
    """meta.SetStatusCondition with a complete condition (a JobSet's, retyped): a flipped status
    takes its transition time, reason and message are updated, the rest kept."""
    keep = ("type", "status", "reason", "message", "lastTransitionTime", "observedGeneration")
    cond = {k: cond[k] for k in keep if k in cond}
    conditions = list(status.get("conditions") or [])
    for i, old in enumerate(conditions):
        if old.get("type") == cond["type"]:
            merged = {**old, "reason": cond.get("reason"), "message": cond.get("message")}
            if old.get("status") != cond.get("status"):
                merged["status"] = cond.get("status")
                merged["lastTransitionTime"] = cond.get("lastTransitionTime")
            conditions[i] = merged
            break
    else:
        conditions.append(cond)
    status["conditions"] = conditions


def _set_condition(
    status: dict[str, Any], ctype: str, cstatus: str, reason: str, message: str, now: datetime
) -> None:
    """meta.SetStatusCondition: a new or flipped condition gets ``now`` as its transition time;
    an unchanged status keeps it (reason and message are updated)."""
    old = _find(status.get("conditions") or [], ctype)
    transition = (
        old.get("lastTransitionTime")
        if old is not None and old.get("status") == cstatus
        else _format_time(now)
    )
    cond = {
        "type": ctype,
        "status": cstatus,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if old == cond:
        return
    if old is None:
        status["conditions"] = [*(status.get("conditions") or []), cond]
    else:
        status["conditions"] = [
            cond if c.get("type") == ctype else c for c in status.get("conditions") or []
        ]


def _set_suspended_condition(status: dict[str, Any], suspended: bool, now: datetime) -> None:
    old = _find(status.get("conditions") or [], SUSPENDED)
    if suspended:
        _set_condition(status, SUSPENDED, "True", "Suspended", "TrainJob is suspended", now)
    elif old is not None and old.get("status") == "True":
        _set_condition(status, SUSPENDED, "False", "Resumed", "TrainJob is resumed", now)


def _finished(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") in (COMPLETE, FAILED) and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


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


def _format_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=RealClock().utcnow().tzinfo
        )
    except ValueError:
        return None
