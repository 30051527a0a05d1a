"""The shipped CRDs are the generator's output and describe each kind as the kinds table says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubetrain.reconcilers.api import crds
from kubetrain.reconcilers.api.kinds import ALL_KINDS, JobKind, kinds_for_schemes

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "crds"


@pytest.mark.parametrize("target", crds.TARGETS)
@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_deploy_yaml_is_the_generated_crd(kind: JobKind, target: str) -> None:
    path = DEPLOY.parents[1] / target / crds.crd_file_name(kind)
    assert path.read_text() == crds.render_yaml(crds.crd(kind)), (
        f"{path} is stale: run `python -m kubetrain.reconcilers.api.crds`"
    )


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_crd_names_scope_and_subresources(kind: JobKind) -> None:
    obj = yaml.safe_load((DEPLOY / crds.crd_file_name(kind)).read_text())
    spec = obj["spec"]
    assert obj["metadata"]["name"] == f"{kind.plural}.kubeflow.org"
    assert spec["names"]["kind"] == kind.kind and spec["scope"] == "Namespaced"
    version = spec["versions"][0]
    assert version["name"] == "v1" and version["storage"] and version["served"]
    assert "status" in version["subresources"]
    assert ("scale" in version["subresources"]) == kind.scalable
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["properties"]["spec"]["required"] == [kind.replica_field]
    run_policy = schema["properties"]["spec"]["properties"]["runPolicy"]["properties"]
    assert run_policy["suspend"]["default"] is False


def test_enable_scheme_resolution() -> None:
    assert kinds_for_schemes(None) == ALL_KINDS
    assert [k.kind for k in kinds_for_schemes(["PyTorchJob", "tfjob", "tfjob"])] == [
        "PyTorchJob",
        "TFJob",
    ]
    with pytest.raises(ValueError, match=r"unknown kind 'torch'.*pytorchjob"):
        kinds_for_schemes(["torch"])


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_run_policy_is_defaulted_by_the_schema(kind: JobKind) -> None:
    """The Kubeflow SDK's models require spec.runPolicy: the CRD gives every stored job one,
    webhook or not. MPIJob's cleanPodPolicy is left unset: its deprecated spec.cleanPodPolicy
    must still win when runPolicy's is unset."""
    schema = crds.job_schema(kind)
    run_policy = schema["properties"]["spec"]["properties"]["runPolicy"]
    assert run_policy["default"] == {}
    clean = run_policy["properties"]["cleanPodPolicy"]
    assert clean.get("default") == (None if kind.kind == "MPIJob" else "None")


def test_queue_rule_sees_status_and_bounds_its_cost() -> None:
    schema = crds.job_schema(ALL_KINDS[0])
    (rule,) = schema["x-kubernetes-validations"]
    assert "oldSelf.status.conditions.exists" in rule["rule"]
    assert "oldSelf.spec.runPolicy.suspend" in rule["rule"]
    assert rule["fieldPath"] == ".spec.runPolicy.schedulingPolicy.queue"
    assert schema["properties"]["status"]["properties"]["conditions"]["maxItems"] == 32


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_managed_by_is_immutable_in_the_schema(kind: JobKind) -> None:
    run_policy = crds.job_schema(kind)["properties"]["spec"]["properties"]["runPolicy"]
    (rule,) = run_policy["properties"]["managedBy"]["x-kubernetes-validations"]
    assert rule["rule"] == "self == oldSelf"
