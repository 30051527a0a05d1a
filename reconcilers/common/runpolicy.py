"""Run policy: active deadline, backoff limit, cleanPodPolicy (reference 2.1, 2.8); TTL is ``ttl.py``.

Times are returned as datetimes so the controller can ``requeue_after`` precisely (the reference
relied on a no-op ``AddAfter``, so deadlines fired only on unrelated events: quirk 3, trainer
#3358, #1533).

Backoff (fix of quirk 3). ``backoffLimit`` counts *every* restart of the replica types whose
restartPolicy restarts (OnFailure, Always, ExitCode):
- in-place container restarts: ``restartCount`` of init and regular containers of **all** pods of
  those types (not only Running ones: a pod in CrashLoopBackOff is Running, but a pod whose
  restarts made it Failed counts too);
- re-creations by the operator (a Failed pod deleted to be re-created starts again at 0). Their
  count is persisted on the job as the annotation ``training.kubeflow.org/operator-restarts``
  (``OPERATOR_RESTARTS_ANNOTATION``), so it survives operator restarts and leader changes; the
  status schema of the reference has no field for it. The controller patches the annotation
  *before* deleting the pods it counts (``StatusDecision.job_annotations``).
The job fails when the total >= backoffLimit (> 0 when the limit is 0). The reference's other
check (a new failed pod while not all replicas are active, when ``backoffLimit == 0``) is kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common.jobs import parse_time, replica_specs, run_policy
from kubetrain.reconcilers.common.replica_status import pods_of_type

OPERATOR_RESTARTS_ANNOTATION = "training.kubeflow.org/operator-restarts"
COUNTED_POLICIES = ("OnFailure", "Always", "ExitCode")

CLEAN_ALL = "All"
CLEAN_RUNNING = "Running"
CLEAN_NONE = "None"


def active_deadline(job: Obj, kind: JobKind) -> datetime | None:
    """When a running job fails for running too long: ``startTime + activeDeadlineSeconds``."""
    ads = run_policy(job, kind).get("activeDeadlineSeconds")
    started = parse_time((job.get("status") or {}).get("startTime"))
    if ads is None or started is None:
        return None
    return started + timedelta(seconds=int(ads))


def past_active_deadline(job: Obj, kind: JobKind, now: datetime) -> bool:
    deadline = active_deadline(job, kind)
    return deadline is not None and now >= deadline


def operator_restarts(job: Obj) -> int:
    """Pods the operator has re-created so far (the persisted annotation; 0 when absent)."""
    raw: str = (job.get("metadata", {}).get("annotations") or {}).get(
        OPERATOR_RESTARTS_ANNOTATION, ""
    )
    if not raw:
        return 0  # the usual case; a raised and caught ValueError costs more than the rest
    try:
        return max(0, int(raw))
    except (TypeError, ValueError):
        return 0


def counted_restarts(job: Obj, kind: JobKind, pods: list[Obj]) -> int:
    """In-place container restarts of all pods of the counted replica types."""
    total = 0
    for rtype, rspec in replica_specs(job, kind).items():
        if (rspec or {}).get("restartPolicy") not in COUNTED_POLICIES:
            continue
        for pod in pods_of_type(pods, rtype):
            status = pod.get("status", {})
            for key in ("initContainerStatuses", "containerStatuses"):
                for cs in status.get(key) or []:
                    total += int(cs.get("restartCount") or 0)
    return total


def past_backoff_limit(job: Obj, kind: JobKind, pods: list[Obj], *, restarts: int) -> bool:
    """True when the job has used up ``backoffLimit`` (see the module docstring).

    ``restarts`` is the number of operator re-creations (``operator_restarts(job)`` plus any
    counted in this reconcile but not yet persisted).
    """
    limit = run_policy(job, kind).get("backoffLimit")
    if limit is None:
        return False
    total = counted_restarts(job, kind, pods) + restarts
    return total > 0 if int(limit) == 0 else total >= int(limit)


def exceeds_backoff_on_new_failure(
    job: Obj, kind: JobKind, pods: list[Obj], *, previous_failed: int
) -> bool:
    """The reference's first check with its requeue count (always 0): with ``backoffLimit: 0``,
    a new failed pod while not every replica is active fails the job."""
    limit = run_policy(job, kind).get("backoffLimit")
    if limit is None or int(limit) != 0:
        return False
    failed = sum(1 for p in pods if p.get("status", {}).get("phase") == "Failed")
    active = sum(
        1
        for p in pods
        if p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        and not p.get("metadata", {}).get("deletionTimestamp")
    )
    total = sum(int((s or {}).get("replicas") or 0) for s in replica_specs(job, kind).values())
    return failed > previous_failed and active != total


def clean_pod_policy(job: Obj, kind: JobKind) -> str:
    """The effective ``cleanPodPolicy``: ``runPolicy.cleanPodPolicy``, for MPIJob else the
    deprecated ``spec.cleanPodPolicy``, else ``None``. Reads defaulted and raw jobs alike (a
    finished job is not defaulted: its compacted cache keeps only ``spec.runPolicy`` and that
    deprecated field)."""
    policy = run_policy(job, kind).get("cleanPodPolicy")
    if not policy and kind.kind == "MPIJob":
        policy = (job.get("spec") or {}).get("cleanPodPolicy")
    return str(policy or CLEAN_NONE)


def pods_to_clean(job: Obj, kind: JobKind, pods: list[Obj], *, finished: bool) -> list[Obj]:
    """Pods to delete at cleanup. Not finished (suspend): every pod. Finished: per
    ``cleanPodPolicy``: None -> none; All -> all; Running -> Running and Pending ones (a Pending
    pod would start later and run orphaned). Pods already being deleted are skipped, so a
    finished job costs no writes after its cleanup."""
    live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    if not finished:
        return live
    policy = clean_pod_policy(job, kind)
    if policy == CLEAN_ALL:
        return live
    if policy == CLEAN_RUNNING:
        return [p for p in live if p.get("status", {}).get("phase") in ("Running", "Pending")]
    return []
