"""``MPIJobV2Reconciler``: one reconcile of a ``kubeflow.org/v2beta1`` MPIJob, in mpi-operator
v0.8.2's order (``syncHandler``).

Why a reconciler of its own rather than a kind of ``jobcontroller/``: the v2 API's launcher is a
batch/v1 Job (the cluster's Job controller runs and retries it), and its workers, ConfigMap, SSH
Secret and Service are get-or-create objects compared with what they should be, so the v1
state machine (``compute_status``: pods per replica type, restarts by exit code) does not apply.
The objects are built by the pure ``objects.py``, the status by the pure ``status.py``; this
module reads the caches, writes through the ``ApiClient`` and records events.

Both MPI APIs live in one CRD stored as ``kubeflow.org/v1`` (``reconcilers/api/mpi_v2beta1.py``):
this reconciler takes the jobs written as v2beta1 (``written_as_v2beta1``), the v1 MPIJob
controller the others. Caches: the MPIJob informer the v1 controller shares (finished jobs are
compacted to ``runPolicy`` and status, which is all the finished branch reads), and the
owned-object informers (``training.kubeflow.org/operator-name`` label, controller-UID index): pods
(workers and the launcher Job's pods), services, configmaps, secrets and batch Jobs. mpi-operator
labels its ConfigMap, Secret, Service and launcher Job with ``app=<job>`` only; kubetrain adds the
operator-name label to them so that it caches its own objects, not every Secret of the cluster.

Contract: a reconcile never mutates a cached object; a status is written only when it changed,
as a merge patch with the job's resourceVersion as precondition (a stale cache gets a 409 and a
retry, never a lost update); a create that finds the object already there reads it and goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubetrain.base.clock import Clock, RealClock
from kubetrain.base.objects import Obj, is_controlled_by
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import (
    BATCH_JOBS,
    CONFIGMAPS,
    PODS,
    SECRETS,
    SERVICES,
    ResourceRef,
    kubeflow,
)
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.mpi_v2beta1 import (
    default_mpijob_v2beta1,
    validate_mpijob_v2beta1,
    written_as_v2beta1,
)
from kubetrain.reconcilers.api.validation import FieldError
from kubetrain.reconcilers.common.compact import merge_patch_of
from kubetrain.reconcilers.common.conditions import is_finished
from kubetrain.reconcilers.common.expectations import ExpectationKey, Expectations
from kubetrain.reconcilers.common.naming import OPERATOR_NAME_LABEL
from kubetrain.reconcilers.gang.flavour import GangScheduler
from kubetrain.reconcilers.jobcontroller.protocols import EventSink, JobWriter
from kubetrain.reconcilers.jobcontroller.written_versions import WrittenVersions, patch_status
from kubetrain.reconcilers.metrics import JobMetrics

from . import objects as mpi
from . import podgroup as pg
from .metrics import MPIOperatorMetrics
from .status import (
    StatusUpdate,
    created_status,
    get_condition,
    next_status,
    truncate_message,
    update_conditions,
    with_workers_cleaned,
)

__all__ = ["MANAGED_BY_SELF", "MPIJobV2Options", "MPIJobV2Reconciler", "MPIJobWriter"]

log = logging.getLogger(__name__)

MPIJOBS = kubeflow("MPIJob")
#: ``runPolicy.managedBy`` values this controller reconciles (absent = this controller).
MANAGED_BY_SELF = "kubeflow.org/mpi-operator"
FRAMEWORK = "mpi"
#: mpi-operator's ``ErrResourceExists`` event and message.
RESOURCE_EXISTS = "ErrResourceExists"
MAX_MESSAGE = 1024
#: mpi-operator's event reason for an invalid job (kubetrain also uses it on the condition).
VALIDATION_ERROR = "ValidationError"


@dataclass(frozen=True, slots=True, kw_only=True)
class MPIJobV2Options:
    """How the v2beta1 controller builds objects."""

    cluster_domain: str = ""
    """Appended to the hostfile's names (``<pod>.<job>.<ns>.svc.<domain>``); "" leaves it out,
    as mpi-operator's ``--cluster-domain`` default does."""
    field_manager: str = "kubetrain"
    gang: GangScheduler | None = None
    """``--gang-scheduler-name``'s scheduler: a PodGroup per job (mpi-operator's, of this
    flavour) and pods decorated for it, as mpi-operator's ``--gang-scheduling`` does."""
    stale_job_requeue: float = 5.0
    """Seconds until a job whose cache does not show our last status write yet is retried (its
    watch event usually comes first and runs it at once)."""
    clock: Clock = field(default_factory=RealClock)


class MPIJobWriter(JobWriter, Protocol):
    """What the v2beta1 reconciler writes through: a job writer that can also PUT a status
    (the launcher Job's ``startTime`` is cleared before a resume)."""

    async def update_status(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> Obj: ...


class ResourceExistsError(RuntimeError):
    """An object with the name this job needs belongs to someone else (retried with backoff:
    the user may delete it)."""


class MPIJobV2Reconciler:
    """Reconciles MPIJobs written as v2beta1. ``reconcile`` is the engine's ``Reconciler``.

    Listers: ``jobs`` (MPIJobs), and the owned-object caches ``pods``, ``services``,
    ``configmaps``, ``secrets`` and ``batch_jobs``, each with ``CONTROLLER_UID_INDEX``.
    """

    def __init__(
        self,
        *,
        client: MPIJobWriter,
        jobs: Lister,
        pods: Lister,
        services: Lister,
        configmaps: Lister,
        secrets: Lister,
        batch_jobs: Lister,
        recorder: EventSink,
        podgroups: Lister | None = None,
        priority_classes: Lister | None = None,
        metrics: JobMetrics,
        mpi_metrics: MPIOperatorMetrics,
        expectations: Expectations,
        options: MPIJobV2Options | None = None,
    ) -> None:
        self.client = client
        self.jobs = jobs
        self.pods = pods
        self.services = services
        self.configmaps = configmaps
        self.secrets = secrets
        self.batch_jobs = batch_jobs
        self.podgroups = podgroups
        self.priority_classes = priority_classes
        self.recorder = recorder
        self.metrics = metrics
        self.mpi_metrics = mpi_metrics
        self.expectations = expectations
        self.options = options or MPIJobV2Options()
        if self.options.gang is not None and (podgroups is None or priority_classes is None):
            raise ValueError(
                "MPIJobV2Reconciler: options.gang is set but the PodGroup or PriorityClass "
                "cache is missing (new_mpiv2_controller wires both)"
            )
        # Our last status write per job: a reconcile waits until the cache shows it, so
        # nothing it recorded is decided (or counted) twice.
        self._written = WrittenVersions()

    # -- the reconcile --------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        cached = self.jobs.get(request.namespace, request.name)
        if cached is None or not written_as_v2beta1(cached):
            gone = self._written.forget(request.key)
            if gone is not None:
                self.expectations.forget(gone)
            return Result()
        run_policy = (cached.get("spec") or {}).get("runPolicy") or {}
        managed_by = run_policy.get("managedBy")
        if managed_by and managed_by != MANAGED_BY_SELF:
            return Result()  # MultiKueue (or another controller) runs it
        meta = cached.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return Result()
        uid = str(meta.get("uid") or "")
        stop = self._closed_gate(request.key, uid, str(meta.get("resourceVersion") or ""))
        if stop is not None:
            return stop
        status: dict[str, Any] = dict(cached.get("status") or {})
        old_status = dict(status)

        if is_finished(status) and status.get("completionTime"):
            # Compacted in the cache: only runPolicy and status are read here.
            if mpi.is_clean_up_pods(run_policy.get("cleanPodPolicy")):
                await self._delete_workers(cached, uid, run_policy.get("cleanPodPolicy"))
                await self._delete_pod_group(cached, uid)
                status = with_workers_cleaned(status)
                if not await self._write_status(
                    cached, old_status, status, keys=("replicaStatuses",)
                ):
                    return Result(requeue=True)
            return Result()

        job = default_mpijob_v2beta1(cached)
        errors = validate_mpijob_v2beta1(job)
        if errors:
            return await self._fail_invalid(cached, job, old_status, errors)

        now = self._now()
        events: list[tuple[str, str, str]] = []
        created = False
        if not status.get("conditions"):
            first = created_status(job, now)
            status = {**status, **first.status}
            events += first.events
            created = True
        suspended = mpi.is_mpijob_suspended(job)
        if not status.get("startTime") and not suspended:
            status["startTime"] = now
        job = {**job, "status": status}
        warning = mpi.launcher_restart_policy_warning(job)

        launcher = self._launcher(job, uid)
        workers: list[Obj] = []
        if launcher is None or not mpi.is_job_finished(launcher):
            await self._service(job, uid)
            await self._config_map(job, uid)
            await self._ssh_secret(job, uid)
            if not suspended:
                await self._pod_group(job, uid)
                workers = await self._workers(job, uid)
            if launcher is None and mpi.should_create_launcher(job, workers):
                if warning is not None:
                    self._event(job, *warning)
                launcher = await self._create_launcher(job)
        if launcher is not None:
            launcher = await self._sync_launcher_suspension(job, launcher, suspended)
        if suspended:  # cleanUpWorkerPods: by the job's cleanPodPolicy, and the PodGroup
            await self._delete_workers(job, uid, run_policy.get("cleanPodPolicy"))
            await self._delete_pod_group(job, uid)
            status = with_workers_cleaned(status)
            job = {**job, "status": status}

        launcher_pods = self.pods.by_index(CONTROLLER_UID_INDEX, _uid(launcher)) if launcher else []
        update = next_status(job, status, launcher, launcher_pods, workers, now=now)
        if not await self._write_status(cached, old_status, update.status):
            return Result(requeue=True)  # the cache had not seen our last write yet
        if merge_patch_of(dict(old_status), dict(update.status)):
            # Events and counts go with the write that records them: a reconcile on a stale
            # cache (refused above) or one that changes nothing reports nothing twice.
            for event in (*events, *_transitions(old_status, update)):
                self._event(job, *event)
            self._count(job, created=created, update=update, old=old_status)
        return Result()

    async def _fail_invalid(
        self, cached: Obj, job: Obj, old_status: Mapping[str, Any], errors: Sequence[FieldError]
    ) -> Result:
        """mpi-operator records a ``ValidationError`` event and stops; kubetrain also fails the
        job (Created, then Failed with the same message and a completionTime), once: a job
        the webhook would refuse but that got in (no webhook installed) shows why on itself."""
        message = truncate_message(
            "Found validation errors: " + "; ".join(f"{e.field}: {e.message}" for e in errors)
        )
        failed = get_condition(dict(old_status), "Failed")
        if failed is not None and failed.get("message") == message:
            return Result()
        now = self._now()
        status = dict(old_status)
        if not status.get("conditions"):
            status = {**status, **created_status(job, now).status}
        update_conditions(status, "Failed", "True", VALIDATION_ERROR, message, now)
        status.setdefault("completionTime", now)
        if await self._write_status(cached, old_status, status):
            self._event(job, "Warning", VALIDATION_ERROR, message)
            self.metrics.failed.labels(_ns(job), FRAMEWORK).inc()
            self.mpi_metrics.failed.inc()
            return Result()
        return Result(requeue=True)

    # -- children -------------------------------------------------------------------------------

    def _launcher(self, job: Obj, uid: str) -> Obj | None:
        launcher = self.batch_jobs.get(_ns(job), mpi.launcher_name(job))
        if launcher is not None and not is_controlled_by(launcher, uid):
            self._exists(job, launcher, "Job")
        return launcher

    async def _service(self, job: Obj, uid: str) -> None:
        desired = _owned(mpi.new_service(job))
        current = self.services.get(_ns(job), desired["metadata"]["name"])
        if current is None:
            await self._create(SERVICES, desired)
            return
        self._check_owner(job, uid, current, "Service")
        spec, want = current.get("spec") or {}, desired["spec"]
        if spec.get("selector") != want.get("selector") or bool(
            spec.get("publishNotReadyAddresses")
        ) != bool(want.get("publishNotReadyAddresses")):
            changed = {
                **spec,
                "selector": want.get("selector"),
                "publishNotReadyAddresses": bool(want.get("publishNotReadyAddresses")),
            }
            await self._update(SERVICES, {**current, "spec": changed})

    async def _config_map(self, job: Obj, uid: str) -> None:
        domain = self.options.cluster_domain
        running = [
            p
            for p in self.pods.by_index(CONTROLLER_UID_INDEX, uid)
            if _is_worker(p) and mpi.is_pod_running(p)
        ]
        desired = mpi.new_config_map(job, mpi.worker_replicas(job), cluster_domain=domain)
        desired = _owned(mpi.with_discover_hosts(desired, job, running, cluster_domain=domain))
        current = self.configmaps.get(_ns(job), desired["metadata"]["name"])
        if current is None:
            await self._create(CONFIGMAPS, desired)
            return
        self._check_owner(job, uid, current, "ConfigMap")
        if (current.get("data") or {}) != desired.get("data"):
            await self._update(CONFIGMAPS, {**current, "data": desired.get("data")})

    async def _ssh_secret(self, job: Obj, uid: str) -> None:
        name = mpi.ssh_secret_name(job)
        current = self.secrets.get(_ns(job), name)
        if current is None:
            await self._create(SECRETS, _owned(mpi.new_ssh_auth_secret(job)))
            return
        self._check_owner(job, uid, current, "Secret")
        if not mpi.ssh_secret_keys_valid(current):
            await self._update(SECRETS, {**current, "data": mpi.new_ssh_auth_secret(job)["data"]})

    async def _workers(self, job: Obj, uid: str) -> list[Obj]:
        replicas = mpi.worker_replicas(job)
        spec = (job["spec"].get("mpiReplicaSpecs") or {}).get("Worker")
        if spec is None:
            return []
        mine = [p for p in self.pods.by_index(CONTROLLER_UID_INDEX, uid) if _is_worker(p)]
        if len(mine) > replicas:  # scaled down: the pods past the new count go
            for extra in mine:
                index = _replica_index(extra)
                if index is not None and index >= _first_index(job) + replicas:
                    await self._delete_pod(extra)
        workers: list[Obj] = []
        for i in range(replicas):
            pod = self.pods.get(_ns(job), mpi.worker_name(job, i))
            if pod is None:
                try:
                    pod = await self._create(PODS, self._decorated_pod(mpi.new_worker(job, i)))
                except ApiStatusError as e:
                    self._event(job, "Warning", "MPIJobFailed", f"worker pod created failed: {e}")
                    raise
            elif not is_controlled_by(pod, uid):
                self._exists(job, pod, "Pod")
            workers.append(pod)
        return workers

    async def _create_launcher(self, job: Obj) -> Obj:
        launcher = mpi.new_launcher_job(job)
        if self.options.gang is not None:
            template = self._decorated_template(launcher["spec"]["template"], job)
            launcher = {**launcher, "spec": {**launcher["spec"], "template": template}}
        try:
            return await self._create(BATCH_JOBS, _owned(launcher))
        except ApiStatusError as e:
            self._event(job, "Warning", "MPIJobFailed", f"launcher pod created failed: {e}")
            raise

    async def _sync_launcher_suspension(self, job: Obj, launcher: Obj, suspended: bool) -> Obj:
        if suspended == mpi.is_job_suspended(launcher):
            return launcher
        if not suspended:
            # Resuming: sync the template's scheduling directives (Kueue may have set node
            # selectors or gates), which kube allows only while the Job has no startTime.
            if (launcher.get("status") or {}).get("startTime"):
                status = {k: v for k, v in launcher["status"].items() if k != "startTime"}
                launcher = await self.client.update_status(
                    BATCH_JOBS,
                    {**launcher, "status": status},
                    field_manager=self.options.field_manager,
                )
            launcher = mpi.sync_launcher_scheduling_directives(
                launcher, self._decorated_template(mpi.new_launcher_pod_template(job), job)
            )
        return await self._update(
            BATCH_JOBS, {**launcher, "spec": {**launcher["spec"], "suspend": suspended}}
        )

    # -- gang scheduling (mpi-operator's podgroup.go, pure in podgroup.py) -----------------------

    def _decorated_template(self, template: Obj, job: Obj) -> Obj:
        gang = self.options.gang
        if gang is None:
            return template
        replaced = pg.overwritten_scheduler_name(template, gang)
        if replaced:
            log.warning(
                "MPIJob %s/%s: schedulerName %r of a pod template replaced by %r (gang scheduling)",
                _ns(job),
                (job.get("metadata") or {}).get("name"),
                replaced,
                gang.scheduler_name,
            )
        return pg.decorate_pod_template(template, str(job["metadata"]["name"]), gang)

    def _decorated_pod(self, pod: Obj) -> Obj:
        """A worker pod with its template part decorated for the gang scheduler."""
        gang = self.options.gang
        if gang is None:
            return pod
        job_name = pod["metadata"]["labels"][mpi.JOB_NAME_LABEL]
        template = pg.decorate_pod_template(
            {"metadata": pod["metadata"], "spec": pod["spec"]}, job_name, gang
        )
        return {**pod, "metadata": template["metadata"], "spec": template["spec"]}

    async def _pod_group(self, job: Obj, uid: str) -> None:
        """getOrCreatePodGroups: create it, or bring its spec to what it should be."""
        gang, podgroups = self.options.gang, self.podgroups
        if gang is None or podgroups is None:
            return
        try:
            desired = pg.new_pod_group(job, gang, priority_classes=self._priority_value)
        except ValueError as e:  # a request that is not a quantity: the user's to fix
            self._event(job, "Warning", "MPIJobFailed", f"PodGroup of the job: {e}")
            raise
        desired = _owned(desired)
        current = podgroups.get(_ns(job), desired["metadata"]["name"])
        if current is None:
            await self._create(gang.podgroup_resource, desired)
            return
        self._check_owner(job, uid, current, "PodGroup")
        if pg.pod_group_needs_update(current, desired):
            await self._update(gang.podgroup_resource, pg.with_pod_group_spec(current, desired))

    async def _delete_pod_group(self, job: Obj, uid: str) -> None:
        """deletePodGroups: when the job is suspended or cleaned up."""
        gang, podgroups = self.options.gang, self.podgroups
        if gang is None or podgroups is None:
            return
        name = str(job["metadata"]["name"])
        current = podgroups.get(_ns(job), name)
        if current is None or (current.get("metadata") or {}).get("deletionTimestamp"):
            return
        self._check_owner(job, uid, current, "PodGroup")
        try:
            await self.client.delete(
                gang.podgroup_resource, _ns(job), name, uid=current["metadata"].get("uid")
            )
        except ApiStatusError as e:
            if not (e.is_not_found or e.is_conflict):
                raise

    def _priority_value(self, name: str) -> int | None:
        cached = self.priority_classes.get(None, name) if self.priority_classes else None
        value = (cached or {}).get("value")
        return int(value) if isinstance(value, int) else None

    async def _delete_workers(self, job: Obj, uid: str, clean_pod_policy: str | None) -> None:
        for pod in self.pods.by_index(CONTROLLER_UID_INDEX, uid):
            if not _is_worker(pod) or (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            if (
                clean_pod_policy == "Running"
                and not mpi.is_pod_running(pod)
                and not mpi.is_pod_pending(pod)
            ):
                continue  # finished workers are kept under Running
            await self._delete_pod(pod)

    async def _delete_pod(self, pod: Obj) -> None:
        meta = pod["metadata"]
        owner, name = _controller_uid(pod), str(meta["name"])
        if owner:
            self.expectations.expect_deletions(owner, ExpectationKey("", PODS.plural), [name])
        try:
            await self.client.delete(PODS, meta.get("namespace"), name, uid=meta.get("uid"))
        except BaseException as e:
            if owner:  # gone already, or the delete failed: nothing more to wait for
                self.expectations.observe_deleted(owner, PODS.plural, name)
            if isinstance(e, ApiStatusError) and (e.is_not_found or e.is_conflict):
                return
            raise

    def _closed_gate(self, key: str, uid: str, cached_rv: str) -> Result | None:
        """None when the job may be decided on; else the requeue to return (the cache has not
        shown our last status write, or our last creations and deletions, yet)."""
        previous = self._written.uid_of(key)
        if not self._written.caught_up(key, uid, cached_rv):
            return Result(requeue_after=self.options.stale_job_requeue)
        if previous is not None and previous != uid:
            self.expectations.forget(previous)  # deleted and re-created under the name
        if not self.expectations.satisfied(uid):
            wait = self.expectations.seconds_until_timeout(uid)
            return Result(requeue_after=wait) if wait else Result()
        return None

    async def _create(self, ref: ResourceRef, obj: Obj) -> Obj:
        """Create ``obj``; when it exists already (ours from the last reconcile, not yet in the
        cache, or someone else's) return ``obj`` as built: its event reconciles the job again,
        and that reconcile checks the owner from the cache."""
        meta = obj["metadata"]
        owner = _controller_uid(obj)
        name = str(meta["name"])
        if owner:
            self.expectations.expect_creations(owner, ExpectationKey("", ref.plural), [name])
        try:
            return await self.client.create(ref, obj, field_manager=self.options.field_manager)
        except ApiStatusError as e:
            if owner:  # a 409 counts as observed; a failed create is lowered
                self.expectations.observe_created(owner, ref.plural, name)
            if not e.is_already_exists:
                raise
        except BaseException:
            if owner:
                self.expectations.observe_created(owner, ref.plural, name)
            raise
        return obj

    async def _update(self, ref: ResourceRef, obj: Obj) -> Obj:
        """PUT ``obj`` (a cached object with changes; its resourceVersion makes a stale cache a
        409, retried with the next reconcile)."""
        return await self.client.update(ref, obj, field_manager=self.options.field_manager)

    # -- status, events, metrics ----------------------------------------------------------------

    async def _write_status(
        self,
        cached: Obj,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        *,
        keys: Sequence[str] = (),
    ) -> bool:
        """Merge-patch the status from ``old`` to ``new`` (only ``keys`` when given: a finished
        job's cached status is compacted, so only what the finished branch changes is sent).
        False when the cache was stale (409): the caller requeues."""
        if keys:
            old = {k: old.get(k) for k in keys if k in old}
            new = {k: new.get(k) for k in keys if k in new}
        return await patch_status(
            self.client,
            MPIJOBS,
            cached,
            old,
            new,
            field_manager=self.options.field_manager,
            written=self._written,
        )

    def _count(
        self, job: Obj, *, created: bool, update: StatusUpdate, old: Mapping[str, Any]
    ) -> None:
        """Counters and latencies of what this write recorded (Running turned True, the job
        finished), in kubetrain's families and mpi-operator's."""
        ns = _ns(job)
        if created:
            self.metrics.created.labels(ns, FRAMEWORK).inc()
            self.mpi_metrics.created.inc()
        now = self.options.clock.utcnow()
        running = get_condition(update.status, "Running")
        if (
            running is not None
            and running.get("status") == "True"
            and get_condition(dict(old), "Running") is None
        ):
            self.metrics.observe_since_creation(
                self.metrics.running_seconds, job, at=now, labels=(FRAMEWORK,)
            )
        if is_finished(dict(old)) or not is_finished(update.status):
            return
        outcome = "succeeded" if update.succeeded else "failed"
        if update.succeeded:
            self.metrics.successful.labels(ns, FRAMEWORK).inc()
            self.mpi_metrics.successful.inc()
        else:
            self.metrics.failed.labels(ns, FRAMEWORK).inc()
            self.mpi_metrics.failed.inc()
        self.metrics.observe_since_creation(
            self.metrics.duration_seconds, job, at=now, labels=(FRAMEWORK, outcome)
        )

    def _event(self, job: Obj, type_: str, reason: str, message: str) -> None:
        self.recorder.event(
            job,
            "Warning" if type_ == "Warning" else "Normal",
            reason,
            message[:MAX_MESSAGE],
            resource=MPIJOBS,
        )

    def _check_owner(self, job: Obj, uid: str, obj: Obj, kind: str) -> None:
        if not is_controlled_by(obj, uid):
            self._exists(job, obj, kind)

    def _exists(self, job: Obj, obj: Obj, kind: str) -> None:
        name = (obj.get("metadata") or {}).get("name")
        message = f'Resource "{name}" of Kind "{kind}" already exists and is not managed by MPIJob'
        self._event(job, "Warning", RESOURCE_EXISTS, message)
        raise ResourceExistsError(message)

    def _now(self) -> str:
        return self.options.clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


# -- small readings -----------------------------------------------------------------------------


def _transitions(old: Mapping[str, Any], update: StatusUpdate) -> list[tuple[str, str, str]]:
    """``update``'s events less the ones Go repeats on every pass: ``MPIJobRunning`` only when
    the Running condition turns True, and once the job was finished (an evicted job has no
    completionTime, so it is reconciled again) only suspend and resume."""
    running = get_condition(dict(old), "Running")
    running_before = running is not None and running.get("status") == "True"
    finished_before = is_finished(dict(old))
    return [
        event
        for event in update.events
        if not (event[1] == "MPIJobRunning" and running_before)
        and not (finished_before and event[1] not in ("MPIJobSuspended", "MPIJobResumed"))
    ]


def _ns(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _controller_uid(obj: Obj) -> str:
    """The UID in ``obj``'s controller reference ("" without one)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def _uid(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")


def _owned(obj: Obj) -> Obj:
    """``obj`` with the operator-name label kubetrain's owned-object caches select on."""
    meta = obj["metadata"]
    labels = {**(meta.get("labels") or {})}
    labels.setdefault(OPERATOR_NAME_LABEL, mpi.OPERATOR_NAME)
    return {**obj, "metadata": {**meta, "labels": labels}}


def _is_worker(pod: Obj) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(mpi.JOB_ROLE_LABEL) == "worker")


def _replica_index(pod: Obj) -> int | None:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    try:
        return int(labels[mpi.REPLICA_INDEX_LABEL])
    except (KeyError, ValueError):
        return None


def _first_index(job: Obj) -> int:
    """Worker replica-index labels start at 1 when the launcher also works (index 0)."""
    return 1 if job["spec"].get("runLauncherAsWorker") else 0
