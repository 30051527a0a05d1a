"""Jobs, pods and rows for the dashboard's unit tests and benchmark."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def ts(seconds: float) -> str:
    """An RFC 3339 time ``seconds`` after 2026-01-01T00:00:00Z."""
    import datetime

    base = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    return (base + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


T0 = 1767225600.0  # 2026-01-01T00:00:00Z in Unix seconds


def pytorchjob(
    name: str,
    ns: str = "default",
    *,
    created: float = 0,
    workers: int = 1,
    conditions: list[tuple[str, float]] = (),  # type: ignore[assignment]
    completed: float | None = None,
    uid: str | None = None,
) -> Obj:
    status: Obj = {
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": ts(at)} for t, at in conditions
        ]
    }
    if completed is not None:
        status["completionTime"] = ts(completed)
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid or f"uid-{ns}-{name}",
            "creationTimestamp": ts(created),
            "resourceVersion": "1",
        },
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "template": {}},
                "Worker": {"replicas": workers, "template": {}},
            }
        },
        "status": status,
    }


def pod(
    name: str,
    job: str,
    ns: str = "default",
    *,
    kind: str = "PyTorchJob",
    rtype: str = "worker",
    ready: bool = False,
    phase: str = "Running",
    restarts: int = 0,
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{name}",
            "labels": {
                "training.kubeflow.org/replica-type": rtype,
                "training.kubeflow.org/replica-index": "0",
                "training.kubeflow.org/job-name": job,
            },
            "ownerReferences": [
                {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": kind,
                    "name": job,
                    "uid": f"uid-{ns}-{job}",
                    "controller": True,
                }
            ],
            "managedFields": [{"manager": "x"}],
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "pytorch", "image": "busybox"}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "pytorch", "restartCount": restarts}],
            "startTime": ts(5),
        },
    }


def finished_row(i: int) -> tuple[str, dict[str, Any]]:
    """The ``i``th of many finished rows (for the 50,000-row index)."""
    kinds = ("PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob", "TrainJob")
    kind = kinds[i % len(kinds)]
    ns = f"team-{i % 50}"
    name = f"job-{i:06d}"
    created = T0 + i * 7.0
    row = {
        "kind": kind,
        "namespace": ns,
        "name": name,
        "uid": f"uid-{i}",
        "state": "Failed" if i % 10 == 0 else "Succeeded",
        "replicas": 1 + i % 8,
        "ready": 0,
        "created": created,
        "finished": created + 60 + (i * 37) % 3600,
    }
    return f"{kind}/{ns}/{name}", row
