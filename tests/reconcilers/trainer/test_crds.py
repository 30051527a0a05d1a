"""The vendored Kubeflow Trainer v2.3.0 API (``reconcilers/trainer/``): the CRDs and built-in
runtimes parse, say what the release says (``../shared/reference/trainer-v2.md`` §1), and every
copy (package, ``deploy/crds``, the Helm chart, ``deploy/runtimes``) is the same file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from toolmodules import load_tool

from kubetrain.reconcilers.trainer import crds, runtimes

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "reconcilers" / "trainer"
TOOL = "tools/deploy/vendor_trainer.py"
MIRROR = Path(os.environ.get("KUBETRAIN_TRAINER_MIRROR", "/work/.mirror/kubeflow+trainer/repo"))

#: name -> (kind, scope, printer columns as (name, type, jsonPath)).
EXPECTED = {
    "trainjobs.trainer.kubeflow.org": (
        "TrainJob",
        "Namespaced",
        [
            ("State", "string", ".status.phase"),
            # kubetrain's addition while vendoring (KEP-2779's PROGRESS %, and the ETA)
            ("Progress %", "integer", ".status.trainerStatus.progressPercentage"),
            ("ETA", "integer", ".status.trainerStatus.estimatedRemainingSeconds"),
            ("Age", "date", ".metadata.creationTimestamp"),
        ],
    ),
    "trainingruntimes.trainer.kubeflow.org": ("TrainingRuntime", "Namespaced", []),
    "clustertrainingruntimes.trainer.kubeflow.org": ("ClusterTrainingRuntime", "Cluster", []),
}

#: The runtimes the release's manifests/base/runtimes kustomization lists, with their framework.
BUILTIN = {
    "torch-distributed": "torch",
    "deepspeed-distributed": "deepspeed",
    "mlx-distributed": "mlx",
    "jax-distributed": "jax",
    "xgboost-distributed": "xgboost",
    "torchtune-llama3.2-1b": "torchtune",
    "torchtune-llama3.2-3b": "torchtune",
    "torchtune-qwen2.5-1.5b": "torchtune",
}


def by_name() -> dict[str, dict[str, Any]]:
    return {crd["metadata"]["name"]: crd for crd in crds.trainer_crds()}


def test_names_scope_versions_and_printer_columns() -> None:
    loaded = by_name()
    assert list(loaded) == list(crds.CRD_NAMES) == list(EXPECTED)
    for name, (kind, scope, columns) in EXPECTED.items():
        spec = loaded[name]["spec"]
        assert spec["group"] == crds.GROUP == "trainer.kubeflow.org"
        assert spec["scope"] == scope
        plural = name.split(".", 1)[0]
        assert spec["names"] == {
            "kind": kind,
            "listKind": f"{kind}List",
            "plural": plural,
            "singular": kind.lower(),
        }
        (version,) = spec["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        shown = [
            (c["name"], c["type"], c["jsonPath"])
            for c in version.get("additionalPrinterColumns", [])
        ]
        assert shown == columns
        # TrainJob has a status subresource; the runtimes have no status.
        assert ("status" in version.get("subresources", {})) == (kind == "TrainJob")


def test_trainjob_schema_defaults_and_cel_rules() -> None:
    schema = by_name()["trainjobs.trainer.kubeflow.org"]["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    spec = schema["properties"]["spec"]["properties"]
    ref = spec["runtimeRef"]
    assert ref["properties"]["apiGroup"]["default"] == "trainer.kubeflow.org"
    assert ref["properties"]["kind"]["default"] == "ClusterTrainingRuntime"
    assert ref["x-kubernetes-validations"] == [
        {"message": "field is immutable", "rule": "self == oldSelf"}
    ]
    assert spec["managedBy"]["default"] == "trainer.kubeflow.org/trainjob-controller"
    rules = [v["rule"] for v in schema["x-kubernetes-validations"]]
    assert rules == [
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "size(self.metadata.name) <= 63",
    ]


def test_runtimes_allow_one_ml_policy() -> None:
    for name in ("trainingruntimes", "clustertrainingruntimes"):
        crd = by_name()[f"{name}.trainer.kubeflow.org"]
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ml_policy = spec["properties"]["mlPolicy"]
        # numNodes' default of 1 is the release's webhook's, not the schema's.
        assert "default" not in ml_policy["properties"]["numNodes"]
        assert "Only one of the policy can be configured" in [
            v["message"] for v in ml_policy["x-kubernetes-validations"]
        ]


def test_builtin_runtimes_carry_their_framework_label() -> None:
    found = {r["metadata"]["name"]: r for r in runtimes.builtin_runtimes()}
    assert sorted(found) == sorted(BUILTIN)
    for name, runtime in found.items():
        assert runtime["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
        assert runtime["kind"] == "ClusterTrainingRuntime"
        assert runtime["metadata"]["labels"][runtimes.FRAMEWORK_LABEL] == BUILTIN[name]


def test_builtin_runtimes_are_the_release_overlay() -> None:
    """Trainer's ``overlays/runtimes``: labelled validated-ahead-of-time (installing them never
    waits for the webhook) and its own images at the release's tag."""
    for runtime in runtimes.builtin_runtimes():
        labels = runtime["metadata"]["labels"]
        assert labels["trainer.kubeflow.org/webhook-validation"] == "disabled"
        for rjob in runtime["spec"]["template"]["spec"]["replicatedJobs"]:
            for container in rjob["template"]["spec"]["template"]["spec"]["containers"]:
                image = container["image"]
                if image.startswith("ghcr.io/kubeflow/trainer/"):
                    assert image.endswith(":v2.3.0"), image


def test_loaders_hand_out_private_copies() -> None:
    first = crds.trainer_crds()
    first[0]["spec"]["group"] = "changed"
    assert crds.trainer_crds()[0]["spec"]["group"] == crds.GROUP
    runtime = runtimes.builtin_runtimes()
    runtime[0]["metadata"]["name"] = "changed"
    assert runtimes.builtin_runtimes()[0]["metadata"]["name"] != "changed"


@pytest.mark.parametrize("target", ["deploy/crds", "deploy/helm/kubetrain/crds"])
@pytest.mark.parametrize("name", crds.CRD_FILES)
def test_deploy_copies_of_the_crds_are_the_package_copy(target: str, name: str) -> None:
    assert (ROOT / target / name).read_bytes() == (crds.CRD_DIR / name).read_bytes(), (
        f"{target}/{name} differs: run `python {TOOL} MIRROR`"
    )


def test_the_crd_kustomization_lists_the_trainer_crds() -> None:
    listed = yaml.safe_load((ROOT / "deploy" / "crds" / "kustomization.yaml").read_text())
    assert set(crds.CRD_FILES) <= set(listed["resources"])


def test_deploy_runtimes_is_the_package_copy() -> None:
    def tree(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.yaml")}

    package, deploy = tree(runtimes.RUNTIME_DIR), tree(ROOT / "deploy" / "runtimes")
    assert sorted(deploy) == sorted(package)
    for rel, content in package.items():
        assert deploy[rel] == content, f"deploy/runtimes/{rel} differs: run `python {TOOL} MIRROR`"


def test_every_vendored_file_names_the_release_and_the_tool() -> None:
    files = [*crds.CRD_DIR.glob("*.yaml"), *runtimes.RUNTIME_DIR.rglob("*.yaml")]
    assert len(files) == 3 + 8 + 2  # CRDs, runtimes, kustomizations
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# Vendored from Kubeflow Trainer v2.3.0 (manifests/base/"), path
        assert TOOL in first, path


@pytest.mark.skipif(not MIRROR.exists(), reason=f"no kubeflow/trainer mirror at {MIRROR}")
def test_the_vendored_files_are_the_release_files() -> None:
    tool = load_tool(TOOL)
    assert tool.main([str(MIRROR), "--check"]) == 0
