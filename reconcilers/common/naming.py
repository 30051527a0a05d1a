"""Names, labels, selectors and owner references of the objects a job owns (reference 2.5).

These strings are the API: users and tools (kubectl, the SDK, dashboards) select pods by these
labels, and DNS names are built from these pod names, so they match the reference byte for byte.
"""

from __future__ import annotations

from typing import Any

from kubetrain.reconcilers.api.kinds import API_VERSION, JobKind

LABEL_PREFIX = "training.kubeflow.org/"
OPERATOR_NAME_LABEL = LABEL_PREFIX + "operator-name"
JOB_NAME_LABEL = LABEL_PREFIX + "job-name"
REPLICA_TYPE_LABEL = LABEL_PREFIX + "replica-type"
REPLICA_INDEX_LABEL = LABEL_PREFIX + "replica-index"
JOB_ROLE_LABEL = LABEL_PREFIX + "job-role"
JOB_ROLE_MASTER = "master"


def general_name(job_name: str, rtype: str, index: int | str) -> str:
    """``<job>-<lower(rtype)>-<index>`` with ``/`` replaced by ``-`` (``GenGeneralName``)."""
    return f"{job_name}-{rtype.lower()}-{index}".replace("/", "-")


def job_labels(kind: JobKind, job_name: str) -> dict[str, str]:
    """The labels every pod and service of the job carries (``GenLabels``)."""
    return {
        OPERATOR_NAME_LABEL: kind.controller_name,
        JOB_NAME_LABEL: job_name.replace("/", "-"),
    }


def replica_labels(
    kind: JobKind, job_name: str, rtype: str, index: int, *, master_role: bool
) -> dict[str, str]:
    """Job labels + replica type and index, + ``job-role=master`` on the master-role pod."""
    labels = job_labels(kind, job_name)
    labels[REPLICA_TYPE_LABEL] = rtype.lower()
    labels[REPLICA_INDEX_LABEL] = str(index)
    if master_role:
        labels[JOB_ROLE_LABEL] = JOB_ROLE_MASTER
    return labels


def selector_string(labels: dict[str, str]) -> str:
    """A label map as ``metav1.FormatLabelSelector`` prints it: ``k=v`` joined by commas, keys
    sorted."""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def replica_selector(kind: JobKind, job_name: str, rtype: str) -> str:
    """The ``status.replicaStatuses.<rtype>.selector`` string (scale subresource)."""
    labels = job_labels(kind, job_name)
    labels[REPLICA_TYPE_LABEL] = rtype.lower()
    return selector_string(labels)


def owner_reference(kind: JobKind, job: dict[str, Any]) -> dict[str, Any]:
    """The controller owner reference put on every child (``GenOwnerReference``).

    Raises ValueError naming the missing field: the API server (and the reference's
    ``ValidateControllerRef``) reject a controller ref without name or uid.
    """
    meta = job.get("metadata", {})
    for field in ("name", "uid"):
        if not meta.get(field):
            raise ValueError(f"job metadata.{field} is empty: cannot build an owner reference")
    return {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
