"""Which job a pod belongs to, and the little of a pod the dashboard keeps.

Pods are most of a cluster's objects; the dashboard caches them trimmed (``trim_pod``: labels,
owners, node, container names, phase, conditions, container statuses) and files each under its
job (``JOB_INDEX``), so a job's pods are one index lookup, never a scan:

- a v1 kind's pod (``kubeflow.org``) has a controller owner reference to its job, and the
  ``training.kubeflow.org/replica-type`` and ``replica-index`` labels;
- a v2beta1 MPIJob's launcher is owned by a batch Job; its pods carry
  ``training.kubeflow.org/operator-name=mpi-operator`` and ``job-name``, the role in ``job-role``;
- a TrainJob's pods belong to its JobSet (same name): ``jobset.sigs.k8s.io/jobset-name`` and
  ``replicatedjob-name``.
"""

from __future__ import annotations

from typing import Any

from kubetrain.base.objects import Obj, controller_ref, group_of
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.common.jobs import unix_time
from kubetrain.reconcilers.common.naming import (
    JOB_NAME_LABEL,
    JOB_ROLE_LABEL,
    OPERATOR_NAME_LABEL,
    REPLICA_INDEX_LABEL,
    REPLICA_TYPE_LABEL,
)
from kubetrain.reconcilers.jobview import JOBSET_NAME_LABEL, REPLICATED_JOB_LABEL, TRAINJOB

__all__ = [
    "JOB_INDEX",
    "job_key",
    "pod_job_index",
    "pod_job_key",
    "pod_ready",
    "pod_restarts",
    "pod_view",
    "replica_type_of",
    "split_job_key",
    "trim_pod",
]

#: The pod store's index of pods by their job's key (``job_key``).
JOB_INDEX = "dashboard:job"
_MPI_OPERATOR = "mpi-operator"


def job_key(kind: str, namespace: str, name: str) -> str:
    """How the dashboard names a job: ``KIND/NAMESPACE/NAME`` (the contract's address)."""
    return f"{kind}/{namespace}/{name}"


def split_job_key(key: str) -> tuple[str, str, str]:
    """(kind, namespace, name) of a ``job_key``."""
    kind, namespace, name = key.split("/", 2)
    return kind, namespace, name


def pod_job_key(pod: Obj) -> str | None:
    """The key of the training job ``pod`` belongs to, or None (module docstring)."""
    meta = pod.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    labels = meta.get("labels") or {}
    owner = controller_ref(pod)
    if owner is not None:
        kind = str(owner.get("kind") or "")
        if kind in BY_KIND and group_of(str(owner.get("apiVersion") or "")) == "kubeflow.org":
            return job_key(kind, namespace, str(owner.get("name") or ""))
    jobset = labels.get(JOBSET_NAME_LABEL)
    if jobset:
        return job_key(TRAINJOB, namespace, jobset)
    if labels.get(OPERATOR_NAME_LABEL) == _MPI_OPERATOR and labels.get(JOB_NAME_LABEL):
        return job_key("MPIJob", namespace, labels[JOB_NAME_LABEL])
    return None


def pod_job_index(pod: Obj) -> list[str]:
    """``JOB_INDEX``'s index function."""
    key = pod_job_key(pod)
    return [key] if key else []


def replica_type_of(pod: Obj) -> str:
    """The pod's replica type as its labels say it (lower case for v1 kinds), or ""."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return str(
        labels.get(REPLICA_TYPE_LABEL)
        or labels.get(REPLICATED_JOB_LABEL)
        or labels.get(JOB_ROLE_LABEL)
        or ""
    )


def pod_ready(pod: Obj) -> bool:
    """The pod's ``Ready`` condition is true."""
    for c in (pod.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def _restarts(pod: Obj) -> int:
    return sum(
        int(s.get("restartCount") or 0)
        for s in (pod.get("status") or {}).get("containerStatuses") or ()
    )


def pod_view(pod: Obj) -> dict[str, Any]:
    """A pod as the detail shows it: ``{name, phase, ready, restarts, node, started,
    containers}`` (and ``index``, the replica index label)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    return {
        "name": meta.get("name", ""),
        "phase": status.get("phase") or "Pending",
        "ready": pod_ready(pod),
        "restarts": _restarts(pod),
        "node": spec.get("nodeName") or None,
        "started": unix_time(status.get("startTime")),
        "containers": [str(c.get("name")) for c in spec.get("containers") or ()],
        "index": (meta.get("labels") or {}).get(REPLICA_INDEX_LABEL),
    }


def pod_restarts(pod: Obj) -> int:
    """Restarts of the pod's containers, summed."""
    return _restarts(pod)


_KEEP_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "labels",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
)
_KEEP_STATUS = ("phase", "conditions", "containerStatuses", "startTime", "reason", "message")


def trim_pod(pod: Obj) -> Obj:
    """The pod informer's transform: what ``pod_view``, the index and the detail read.

    Idempotent (a trimmed pod trims to itself)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    out_spec: dict[str, Any] = {
        "containers": [{"name": c.get("name")} for c in spec.get("containers") or ()]
    }
    if spec.get("nodeName"):
        out_spec["nodeName"] = spec["nodeName"]
    return {
        "apiVersion": pod.get("apiVersion", "v1"),
        "kind": pod.get("kind", "Pod"),
        "metadata": {k: meta[k] for k in _KEEP_META if k in meta},
        "spec": out_spec,
        "status": {k: status[k] for k in _KEEP_STATUS if k in status},
    }
