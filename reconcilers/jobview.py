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
    "replicas",
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
