"""Headless services (reference 2.5)."""

from __future__ import annotations

import pytest
from jobkit import make_job

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.common.decision import SpecError
from kubetrain.reconcilers.common.services import build_service, plan_services
from kubetrain.reconcilers.kinds import ADAPTERS

PT = ADAPTERS["PyTorchJob"]


def test_service_shape() -> None:
    job = make_job("PyTorchJob", {"Master": 1})
    c = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    c["ports"] = [{"name": "metrics", "containerPort": 9090}]
    svc = build_service(PT, default_job(PT.kind, job), "Master", 0)
    labels = {
        "training.kubeflow.org/operator-name": "pytorchjob-controller",
        "training.kubeflow.org/job-name": "j",
        "training.kubeflow.org/replica-type": "master",
        "training.kubeflow.org/replica-index": "0",
    }
    assert svc["metadata"]["name"] == "j-master-0"
    assert svc["metadata"]["labels"] == labels
    assert svc["spec"] == {
        "clusterIP": "None",
        "selector": labels,
        "ports": [{"name": "metrics", "port": 9090}, {"name": "pytorchjob-port", "port": 23456}],
    }


def test_missing_default_container_error() -> None:
    job = default_job(PT.kind, make_job("PyTorchJob", {"Worker": 1}))
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"] = [
        {"name": "x", "image": "i"}
    ]
    with pytest.raises(SpecError, match="failed to find the port"):
        build_service(PT, job, "Worker", 0)


def test_plan_services() -> None:
    job = default_job(PT.kind, make_job("PyTorchJob", {"Worker": 2}))
    existing = [build_service(PT, job, "Worker", i) for i in (0, 3)]
    plan = plan_services(PT, job, "Worker", existing)
    assert plan.create == [1] and plan.delete == ["j-worker-3"]
