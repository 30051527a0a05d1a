"""The shipped CRDs are the generator's output and describe each kind as the kinds table says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubetrain.reconcilers.api import crds
from kubetrain.reconcilers.api.kinds import ALL_KINDS, JobKind, kinds_for_schemes

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "crds"


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_deploy_yaml_is_the_generated_crd(kind: JobKind) -> None:
    path = DEPLOY / crds.crd_file_name(kind)
    assert path.read_text() == crds.render_yaml(crds.crd(kind)), (
        f"{path} is stale: run `python -m kubetrain.reconcilers.api.crds deploy/crds`"
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
