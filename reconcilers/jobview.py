"""Training jobs of every kind read one way: what ``kubetrain jobs`` and the dashboard show.

A training job is seven kinds to the API (``kubeflow.org/v1`` TFJob ... JAXJob, and Kubeflow
Trainer v2's TrainJob), each saying differently how it is doing. Here is the one reading: the
kind's resource, its *state* in one vocabulary (a v1 job's last true condition, Created, Running,
Restarting, Suspended, Succeeded or Failed, from ``metrics.job_phase``; a TrainJob's
``status.phase`` from ``trainer.status.job_state``, its ``Complete`` being ``Succeeded``; ``Pending``
before the operator wrote any), its replica count, when it finished, and a row of those.
Pure functions over the API's dicts; callers bring the objects (a GET, a LIST, a cache).
"""

from __future__ import annotations

import datetime
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.informers.resource import ResourceRef, kubeflow
from kubetrain.reconcilers.api.kinds import ALL_KINDS, BY_KIND
from kubetrain.reconcilers.common.jobs import parse_time
from kubetrain.reconcilers.common.naming import (
    JOB_NAME_LABEL,
    JOB_ROLE_LABEL,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
)
from kubetrain.reconcilers.metrics import job_phase
from kubetrain.reconcilers.trainer.resources import TRAINJOBS
from kubetrain.reconcilers.trainer.status import job_state as trainjob_state

__all__ = [
    "FINISHED",
    "KINDS",
    "TRAINJOB",
    "finished_at",
    "job_row",
    "job_state",
    "kind_of",
    "pod_replica",
    "pod_selector",
    "replicas",
    "resource_name",
    "suspend_patch",
]

TRAINJOB = "TrainJob"
#: Every kind, by kind name, with the resource it is read as (v1 kinds first, in their order).
KINDS: dict[str, ResourceRef] = {
    **{k.kind: kubeflow(k.kind) for k in ALL_KINDS},
    TRAINJOB: TRAINJOBS,
}
#: The states a job does not leave.
FINISHED = ("Succeeded", "Failed")


def job_state(kind: str, job: Obj) -> str:
    """The job's state in one vocabulary (see the module docstring)."""
    return trainjob_state(job) if kind == TRAINJOB else job_phase(job)


def replicas(kind: str, job: Obj) -> int:
    """How many pods the job asks for: a TrainJob's ``numNodes``, the sum of a v1 job's replica
    specs' ``replicas`` (1 where unset, as the defaults have it)."""
    spec = job.get("spec") or {}
    if kind == TRAINJOB:
        return int((spec.get("trainer") or {}).get("numNodes") or 1)
    field = BY_KIND[kind].replica_field
    return sum(int((r or {}).get("replicas", 1)) for r in (spec.get(field) or {}).values())


def finished_at(kind: str, job: Obj) -> datetime.datetime | None:
    """When the job finished: a v1 job's ``completionTime``, a TrainJob's final condition's
    transition; None while it runs."""
    status = job.get("status") or {}
    if kind != TRAINJOB:
        return parse_time(status.get("completionTime"))
    for c in status.get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def job_row(kind: str, job: Obj, *, now: datetime.datetime) -> dict[str, Any]:
    """One job as a row: kind, namespace, name, state, replicas, and age and duration in seconds
    (None without a creationTimestamp; a running job's duration runs to ``now``)."""
    meta = job.get("metadata") or {}
    created = parse_time(meta.get("creationTimestamp"))
    end = finished_at(kind, job) or now
    return {
        "kind": kind,
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "state": job_state(kind, job),
        "replicas": replicas(kind, job),
        "age": (now - created).total_seconds() if created else None,
        "duration": (end - created).total_seconds() if created else None,
    }


def kind_of(word: str) -> str | None:
    """The kind a user means by ``word``: the kind, its plural or singular resource name, any
    case (``pytorchjob``, ``PyTorchJobs``, ``trainjob``); None for no training job kind."""
    lowered = word.lower()
    for kind, ref in KINDS.items():
        if lowered in (kind.lower(), ref.plural, ref.plural.rstrip("s")):
            return kind
    return None


#: The labels JobSet puts on a TrainJob's pods (JobSet's ``pkg/constants``) and the completion
#: index kube's Job controller adds (label and annotation): a TrainJob's pods are its JobSet's.
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"


def pod_selector(kind: str, name: str) -> str:
    """The label selector of the job's pods: ``training.kubeflow.org/job-name=NAME`` for a v1
    kind (the operator's pod labels), ``jobset.sigs.k8s.io/jobset-name=NAME`` for a TrainJob
    (its JobSet has its name)."""
    if kind == TRAINJOB:
        return f"{JOBSET_NAME_LABEL}={name}"
    return f"{JOB_NAME_LABEL}={name.replace('/', '-')}"


def pod_replica(kind: str, pod: Obj) -> tuple[str, int | None]:
    """Which replica a pod of the job is: (replica type lower-case, index). A v1 job's replica
    type and index labels (a ``kubeflow.org/v2beta1`` MPIJob's pods say their type as
    ``job-role``); a TrainJob's replicated job and completion index (label, else the
    annotation). The index is None where the pod carries none."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    if kind == TRAINJOB:
        rtype = str(labels.get(REPLICATED_JOB_LABEL, ""))
        raw = labels.get(
            COMPLETION_INDEX_KEY, (meta.get("annotations") or {}).get(COMPLETION_INDEX_KEY)
        )
    else:
        rtype = str(labels.get(REPLICA_TYPE_LABEL) or labels.get(JOB_ROLE_LABEL) or "")
        raw = labels.get(REPLICA_INDEX_LABEL)
    try:
        index = int(raw) if raw is not None else None
    except ValueError:
        index = None
    return rtype.lower(), index


def suspend_patch(kind: str, suspend: bool) -> dict[str, Any]:
    """The merge patch that suspends (or resumes) a job: a v1 job's ``spec.runPolicy.suspend``,
    a TrainJob's ``spec.suspend``."""
    if kind == TRAINJOB:
        return {"spec": {"suspend": suspend}}
    return {"spec": {"runPolicy": {"suspend": suspend}}}


def resource_name(kind: str, name: str) -> str:
    """How kubectl names the job in what it prints: ``pytorchjob.kubeflow.org/mnist``."""
    return f"{kind.lower()}.{KINDS[kind].group}/{name}"
