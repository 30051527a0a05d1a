"""Webhook rules per kind (reference 4), with kube-style messages."""

from __future__ import annotations

import pytest
from jobkit import make_job

from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.api.validation import (
    FieldError,
    aggregate_message,
    validate,
    validate_update,
    warnings,
)

DNS_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)


def msgs(kind: str, job: dict) -> list[str]:
    return [str(e) for e in validate(BY_KIND[kind], job)]


@pytest.mark.parametrize(
    "kind", ["TFJob", "PyTorchJob", "XGBoostJob", "PaddleJob", "JAXJob", "MPIJob"]
)
def test_examples_shape_is_valid(kind: str) -> None:
    replicas = {"MPIJob": {"Launcher": 1, "Worker": 2}, "JAXJob": {"Worker": 2}}.get(
        kind, {"Master": 1, "Worker": 2}
    )
    assert msgs(kind, make_job(kind, replicas)) == []


def test_name_rule() -> None:
    assert msgs("JAXJob", make_job("JAXJob", {"Worker": 1}, name="Bad_Name")) == [
        f'metadata.name: Invalid value: "Bad_Name": should match: {DNS_MSG}'
    ]
    long = "a" * 64
    assert msgs("JAXJob", make_job("JAXJob", {"Worker": 1}, name=long)) == [
        f'metadata.name: Invalid value: "{long}": should match: must be no more than 63 characters'
    ]


@pytest.mark.parametrize(
    "kind", ["TFJob", "PyTorchJob", "XGBoostJob", "PaddleJob", "JAXJob", "MPIJob"]
)
def test_managed_by_not_supported_every_kind(kind: str) -> None:
    job = make_job(kind, {}, run_policy={"managedBy": "me/else"})
    assert (
        'spec.runPolicy.managedBy: Unsupported value: "me/else": supported values: '
        '"kubeflow.org/training-operator", "kueue.x-k8s.io/multikueue"'
    ) in msgs(kind, job)


@pytest.mark.parametrize("kind", ["TFJob", "PyTorchJob", "JAXJob"])
def test_managed_by_immutable_on_update(kind: str) -> None:
    old = make_job(kind, {"Worker": 1})
    new = make_job(kind, {"Worker": 1}, run_policy={"managedBy": "kueue.x-k8s.io/multikueue"})
    errs = [str(e) for e in validate_update(BY_KIND[kind], old, new)]
    assert errs == [
        'spec.runPolicy.managedBy: Invalid value: "kueue.x-k8s.io/multikueue": field is immutable'
    ]
    assert validate_update(BY_KIND[kind], new, new) == []


def test_replica_map_required_and_container_rules() -> None:
    job = make_job("PyTorchJob", {})
    del job["spec"]["pytorchReplicaSpecs"]
    assert msgs("PyTorchJob", job) == ["spec.pytorchReplicaSpecs: Required value: must be required"]
    job = make_job("PyTorchJob", {"Worker": 1, "Chief": 1})
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"] = [
        {"name": "other"}
    ]
    job["spec"]["pytorchReplicaSpecs"]["Chief"]["template"]["spec"]["containers"] = []
    assert msgs("PyTorchJob", job) == [
        "spec.pytorchReplicaSpecs[Worker].template.spec.containers[0].image: Required value: must be required",
        "spec.pytorchReplicaSpecs[Worker].template.spec.containers: Required value: must have at least one container with name pytorch",
        'spec.pytorchReplicaSpecs[Chief]: Unsupported value: "Chief": supported values: "Master", "Worker"',
        "spec.pytorchReplicaSpecs[Chief].template.spec.containers: Required value: must be specified",
        "spec.pytorchReplicaSpecs[Chief].template.spec.containers: Required value: must have at least one container with name pytorch",
    ]


def test_tf_any_key_but_one_chief_or_master() -> None:
    assert msgs("TFJob", make_job("TFJob", {"Anything": 1, "Chief": 1})) == []
    assert msgs("TFJob", make_job("TFJob", {"Master": 1, "Chief": 1})) == [
        "spec.tfReplicaSpecs: Forbidden: must not have more than 1 Chief or Master role"
    ]


@pytest.mark.parametrize("kind", ["PyTorchJob", "XGBoostJob"])
@pytest.mark.parametrize("replicas", [None, 0, 2])
def test_master_replicas_must_be_one(kind: str, replicas: int | None) -> None:
    field = BY_KIND[kind].replica_field
    assert msgs(kind, make_job(kind, {"Master": replicas, "Worker": 1})) == [
        f"spec.{field}[Master].replicas: Forbidden: must be 1"
    ]


def test_pytorch_worker_elastic_rules_and_warning() -> None:
    assert msgs("PyTorchJob", make_job("PyTorchJob", {"Worker": 0})) == [
        "spec.pytorchReplicaSpecs[Worker].replicas: Forbidden: must be at least 1"
    ]
    job = make_job("PyTorchJob", {"Master": 1}, elasticPolicy={"nProcPerNode": 2}, nprocPerNode="2")
    assert msgs("PyTorchJob", job) == [
        "spec.pytorchReplicaSpecs[Worker]: Required value: must be configured if elastic policy is used",
        "spec.elasticPolicy.nProcPerNode: Forbidden: must not be used with spec.nprocPerNode",
    ]
    assert warnings(BY_KIND["PyTorchJob"], job) == [
        "spec.elasticPolicy.nProcPerNode is deprecated, use spec.nprocPerNode instead"
    ]


def test_xgboost_master_required_jax_types() -> None:
    assert msgs("XGBoostJob", make_job("XGBoostJob", {"Worker": 1})) == [
        "spec.xgbReplicaSpecs[Master]: Required value: must be present"
    ]
    assert msgs("JAXJob", make_job("JAXJob", {"Master": 1})) == [
        'spec.jaxReplicaSpecs[Master]: Unsupported value: "Master": supported values: "Worker"'
    ]


def test_mpi_rules() -> None:
    job = make_job("MPIJob", {"Worker": 1, "Launcher": 2})
    job["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"] = [{"image": "x"}]
    assert msgs("MPIJob", job) == [
        "spec.mpiReplicaSpecs[Worker].template.spec.containers[0].name: Required value: must be required",
        "spec.mpiReplicaSpecs[Launcher].replicas: Forbidden: must be 1",
    ]
    assert msgs("MPIJob", make_job("MPIJob", {"Worker": 1})) == [
        "spec.mpiReplicaSpecs[Launcher]: Required value: must be present"
    ]


def test_aggregate_message() -> None:
    a = FieldError("Required", "a", detail="x")
    b = FieldError("Forbidden", "b", detail="y")
    assert aggregate_message([a]) == "a: Required value: x"
    assert aggregate_message([a, b]) == "[a: Required value: x, b: Forbidden: y]"
