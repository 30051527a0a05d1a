"""A TrainJob's status, derived from its spec and its JobSet: pure functions on dicts.

Trainer v2.3.0 writes three condition types (``Suspended``, ``Complete``, ``Failed``) and
``jobsStatus``. kubetrain keeps them and fixes what Trainer's users report:

- **Running and Pending are visible** (trainer#2713, #3666; sdk#803). kubetrain adds
  ``status.phase`` (``Pending``, ``Suspended``, ``Running``, ``Complete``, ``Failed``), printed
  by kubectl's ``STATE`` column, and never leaves a condition on a TrainJob that is not suspended
  or finished. Why not a ``Running`` condition: the ``kubeflow`` SDK (0.5.0 and earlier) derives
  ``Running`` from the pods *only when a TrainJob has no condition at all*; any non-final
  condition (Trainer's ``Suspended=False`` after a resume, a ``Running`` condition) makes every
  such SDK report ``Created`` for the whole run, which is what sdk#803 reports for every
  Kueue-managed TrainJob. So on a resume kubetrain removes ``Suspended`` instead of setting it
  False, and the time of the resume, which Trainer reads from that condition for
  ``activeDeadlineSeconds``, is kept in ``status.startTime``.
- **Creation errors reach the status** (trainer#3671): while the TrainJob's objects cannot be
  built or applied, condition ``ResourcesCreationFailed`` (True, reason
  ``TrainJobResourcesCreationFailed``, the error as message) is shown beside the Warning event,
  and removed once they are created.
- **A failed TrainJob stays failed** (trainer#3737, #3779): ``Failed`` is never cleared.

Running means what the SDK means by it: every replicated Job that trains (all but the
initializers) has all its pods ready or succeeded, read from the JobSet's
``replicatedJobsStatus`` (``ready`` counts the Jobs whose ready and succeeded pods reach their
parallelism).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubetrain.base.objects import Obj

from .jobset_build import DATASET_INITIALIZER, MODEL_INITIALIZER

__all__ = [
    "COMPLETE",
    "CREATION_FAILED",
    "DEADLINE_EXCEEDED",
    "FAILED",
    "PHASES",
    "RESOURCES_CREATION_FAILED",
    "RUNTIME_NOT_SUPPORTED",
    "SUSPENDED",
    "copy_jobset_status",
    "find_condition",
    "format_time",
    "is_finished",
    "job_state",
    "remove_condition",
    "set_condition",
    "set_phase",
    "set_suspended",
    "trainjob_phase",
]

#: Trainer v2.3.0's condition types, reasons and messages (``pkg/constants``).
SUSPENDED, COMPLETE, FAILED = "Suspended", "Complete", "Failed"
DEADLINE_EXCEEDED = "DeadlineExceeded"
RUNTIME_NOT_SUPPORTED = "TrainingRuntimeNotSupported"
#: Trainer's Warning event reason, also the reason of kubetrain's condition below.
CREATION_FAILED = "TrainJobResourcesCreationFailed"
#: kubetrain's condition while the TrainJob's objects cannot be created (trainer#3671).
RESOURCES_CREATION_FAILED = "ResourcesCreationFailed"

#: Values of kubetrain's ``status.phase``; a TrainJob is in exactly one.
PHASES = ("Pending", "Suspended", "Running", "Complete", "Failed")

_INITIALIZERS = frozenset((DATASET_INITIALIZER, MODEL_INITIALIZER))


def format_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- conditions (metav1.Condition, as meta.SetStatusCondition keeps them) ----------------------


def find_condition(status: Mapping[str, Any], ctype: str) -> Obj | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == ctype), None)


def set_condition(
    status: dict[str, Any], ctype: str, cstatus: str, reason: str, message: str, now: datetime
) -> None:
    """meta.SetStatusCondition: a new or flipped condition gets ``now`` as its transition time;
    an unchanged status keeps it (reason and message are updated)."""
    old = find_condition(status, ctype)
    transition = (
        old.get("lastTransitionTime")
        if old is not None and old.get("status") == cstatus
        else format_time(now)
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


def remove_condition(status: dict[str, Any], ctype: str) -> None:
    conditions = status.get("conditions") or []
    kept = [c for c in conditions if c.get("type") != ctype]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)  # absent, not []: the SDK tests for "no conditions"


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


def is_finished(status: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") in (COMPLETE, FAILED) and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def set_suspended(
    status: dict[str, Any], suspended: bool, now: datetime, *, created: str | None
) -> None:
    """``Suspended`` True while suspended; on a resume the condition is removed (see the module
    docstring) and ``startTime`` moves to ``now``. A TrainJob never suspended starts at its
    creation (``created``, its ``creationTimestamp``; ``now`` without one). A finished TrainJob
    keeps what it had."""
    if is_finished(status):
        return
    if suspended:
        set_condition(status, SUSPENDED, "True", "Suspended", "TrainJob is suspended", now)
        return
    old = find_condition(status, SUSPENDED)
    if old is not None:
        remove_condition(status, SUSPENDED)
        status["startTime"] = format_time(now)
    elif not status.get("startTime"):
        status["startTime"] = created or format_time(now)


# -- from the JobSet ---------------------------------------------------------------------------


def copy_jobset_status(status: dict[str, Any], jobset: Mapping[str, Any]) -> None:
    """The JobSet plugin's Status: Completed/Failed become Complete/Failed, and jobsStatus
    mirrors replicatedJobsStatus (counts of Jobs, not pods)."""
    js_status = jobset.get("status") or {}
    for js_type, tj_type in (("Completed", COMPLETE), ("Failed", FAILED)):
        cond = find_condition(js_status, js_type)
        if cond is not None and cond.get("status") == "True":
            _put_condition(status, {**cond, "type": tj_type})
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


def _all_training_pods_ready(jobset: Mapping[str, Any] | None) -> bool:
    if jobset is None:
        return False
    replicas = {
        r.get("name"): int(r.get("replicas") or 1)
        for r in (jobset.get("spec") or {}).get("replicatedJobs") or []
        if r.get("name") not in _INITIALIZERS
    }
    if not replicas:
        return False
    counts = {
        s.get("name"): int(s.get("ready") or 0) + int(s.get("succeeded") or 0)
        for s in (jobset.get("status") or {}).get("replicatedJobsStatus") or []
    }
    return all(counts.get(name, 0) >= want for name, want in replicas.items())


def trainjob_phase(status: Mapping[str, Any], *, suspended: bool, jobset: Obj | None) -> str:
    """The phase: finished wins (Failed before Complete), then Suspended, then Running when
    every training pod is ready (``jobset`` is the TrainJob's own, or None), else Pending."""
    for ctype in (FAILED, COMPLETE):
        cond = find_condition(status, ctype)
        if cond is not None and cond.get("status") == "True":
            return ctype
    if suspended:
        return "Suspended"
    return "Running" if _all_training_pods_ready(jobset) else "Pending"


def job_state(trainjob: Mapping[str, Any]) -> str:
    """A TrainJob's ``status.phase`` in the job vocabulary the v1 kinds share (``Complete`` is
    ``Succeeded``), ``Pending`` before its first status write: what ``kubetrain_jobs`` and
    ``kubetrain jobs`` show."""
    phase = str((trainjob.get("status") or {}).get("phase") or "Pending")
    return "Succeeded" if phase == COMPLETE else phase


def set_phase(status: dict[str, Any], phase: str) -> None:
    status["phase"] = phase
