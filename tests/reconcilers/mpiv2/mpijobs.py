"""MPIJob v2beta1 fixtures for the mpiv2 tests: jobs as the reconciler receives them (defaulted
as mpi-operator's ``SetDefaults_MPIJob`` does, stored as ``kubeflow.org/v1``) and the pods and
launcher Jobs the caches would show."""

from __future__ import annotations

import copy
from typing import Any

from kubetrain.base.objects import Obj

UID = "5e1f0c1e-0000-4000-8000-000000000001"


def container(**fields: Any) -> dict[str, Any]:
    return dict(fields)


def mpijob(
    name: str = "foo",
    namespace: str = "bar",
    *,
    workers: int | None = 0,
    launcher_template: dict[str, Any] | None = None,
    worker_template: dict[str, Any] | None = None,
    launcher_restart_policy: str | None = None,
    worker_restart_policy: str | None = None,
    **spec: Any,
) -> Obj:
    """A defaulted MPIJob. ``workers=None`` leaves the Worker spec out."""
    replica_specs: dict[str, Any] = {
        "Launcher": {
            "replicas": 1,
            "restartPolicy": launcher_restart_policy or "OnFailure",
            "template": launcher_template or {"spec": {"containers": [{}]}},
        }
    }
    if workers is not None:
        replica_specs["Worker"] = {
            "replicas": workers,
            "restartPolicy": worker_restart_policy or "Never",
            "template": worker_template or {"spec": {"containers": [{}]}},
        }
    run_policy = {"cleanPodPolicy": "None", **spec.pop("runPolicy", {})}
    full_spec: dict[str, Any] = {
        "slotsPerWorker": 1,
        "runLauncherAsWorker": False,
        "sshAuthMountPath": "/root/.ssh",
        "mpiImplementation": "OpenMPI",
        "launcherCreationPolicy": "AtStartup",
        "runPolicy": run_policy,
        "mpiReplicaSpecs": replica_specs,
    }
    full_spec.update(spec)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "MPIJob",
        "metadata": {"name": name, "namespace": namespace, "uid": UID},
        "spec": full_spec,
    }


def with_status(job: Obj, status: dict[str, Any]) -> Obj:
    out = copy.deepcopy(job)
    out["status"] = status
    return out


def pod(
    name: str,
    namespace: str = "bar",
    *,
    phase: str | None = None,
    reason: str | None = None,
    message: str | None = None,
    created: str | None = None,
    ready: bool = False,
    labels: dict[str, str] | None = None,
) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created:
        meta["creationTimestamp"] = created
    if labels is not None:
        meta["labels"] = labels
    status: dict[str, Any] = {}
    if phase:
        status["phase"] = phase
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": status}


def launcher_job(
    *,
    conditions: list[dict[str, Any]] | None = None,
    failed: int = 0,
    completion_time: str | None = None,
    suspend: bool | None = None,
) -> Obj:
    status: dict[str, Any] = {}
    if conditions:
        status["conditions"] = conditions
    if failed:
        status["failed"] = failed
    if completion_time:
        status["completionTime"] = completion_time
    spec: dict[str, Any] = {}
    if suspend is not None:
        spec["suspend"] = suspend
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "foo-launcher", "namespace": "bar", "uid": "launcher-uid"},
        "spec": spec,
        "status": status,
    }


COMPLETE = [
    {"type": "SuccessCriteriaMet", "status": "True"},
    {"type": "Complete", "status": "True"},
]

BACKOFF_FAILED = [
    {
        "type": "FailureTarget",
        "status": "True",
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
    },
    {
        "type": "Failed",
        "status": "True",
        "reason": "BackoffLimitExceeded",
        "message": "Job has reached the specified backoff limit",
    },
]
