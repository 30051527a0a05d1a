"""deploy/helm/kubetrain with the real helm (tools/deploy/build_tools.sh): it lints, its values
schema refuses nonsense, and for equal options it renders what the kustomize overlays render
(defaults = deploy/overlays/standalone, certManager.enabled = deploy/overlays/cert-manager),
object for object; Helm installs into an existing namespace, so the Namespace object is
kustomize's only."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubeapply import KUBECTL, render
from test_manifests import deploy_tool, kustomize_build, operator_options

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "kubetrain"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [deploy_tool("helm"), *args], capture_output=True, text=True, check=check, timeout=60
    )


def template(*values: str) -> list[dict[str, Any]]:
    out = helm(
        "template", "kubetrain", str(CHART), "--namespace", "kubeflow", "--include-crds", *values
    ).stdout
    return [d for d in yaml.load_all(out, Loader=yaml.CSafeLoader) if d]


def by_key(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in docs
        if d["kind"] != "Namespace"
    }


def test_the_chart_lints() -> None:
    done = helm("lint", "--strict", str(CHART), check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("overlay", "values"),
    [
        ("standalone", ()),
        ("cert-manager", ("--set", "certManager.enabled=true")),
        ("ha", ("--set", "replicas=2,leaderElection=true")),
        ("metrics-secure", ("--set", "metrics.secure=true")),
    ],
)
def test_helm_renders_what_kustomize_renders(overlay: str, values: tuple[str, ...]) -> None:
    from_helm, from_kustomize = by_key(template(*values)), by_key(render(overlay))
    assert sorted(from_helm) == sorted(from_kustomize)
    for key, obj in from_kustomize.items():
        assert from_helm[key] == obj, f"{key} differs"


def test_options_reach_the_operator() -> None:
    docs = template("--set", "replicas=2", "--set", "leaderElection=true",
                    "--set-json", 'extraArgs=["--controller-threads=32"]')  # fmt: skip
    deployment = by_key(docs)[("Deployment", "kubeflow", "kubetrain")]
    assert deployment["spec"]["replicas"] == 2
    options = operator_options(deployment)
    assert options.leader_elect is True and options.controller_threads == 32


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        (("--set", "replicas=0"), "replicas"),
        (("--set", "replicas=2"), "leaderElection"),  # two replicas need leader election
        (("--set", "imageTag=latest"), "imageTag"),  # unknown value: a typo is refused
        (("--set-json", 'extraArgs=["controller-threads=2"]'), "extraArgs"),
        (("--set", "trainingRuntimes.enabled=yes"), "trainingRuntimes"),
    ],
)
def test_the_values_schema_refuses_nonsense(values: tuple[str, ...], complaint: str) -> None:
    done = helm("template", "kubetrain", str(CHART), *values, check=False)
    assert done.returncode != 0
    assert complaint in done.stderr, done.stderr


def test_helm_monitoring_renders_what_deploy_monitoring_renders() -> None:
    """monitoring.* on: the ServiceMonitor, the PrometheusRule and the dashboard ConfigMap of
    `kubectl kustomize deploy/monitoring`, besides the standalone install."""
    on = ("--set", "monitoring.serviceMonitor=true,monitoring.prometheusRule=true,"
          "monitoring.grafanaDashboard=true")  # fmt: skip
    extra = {k: v for k, v in by_key(template(*on)).items() if k not in by_key(template())}
    out = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "deploy" / "monitoring")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    monitoring = by_key([d for d in yaml.load_all(out, Loader=yaml.CSafeLoader) if d])
    assert sorted(extra) == sorted(monitoring)
    for key, obj in monitoring.items():
        assert extra[key] == obj, f"{key} differs"


@pytest.mark.parametrize("name", ["alerts.yaml", "grafana-dashboard.json"])
def test_the_charts_copies_of_the_monitoring_files_are_current(name: str) -> None:
    assert (CHART / "files" / name).read_text() == (
        ROOT / "deploy" / "monitoring" / name
    ).read_text(), f"copy deploy/monitoring/{name} to deploy/helm/kubetrain/files/"


def test_helm_secure_monitoring_renders_what_deploy_monitoring_secure_renders() -> None:
    """metrics.secure with the ServiceMonitor on: `kubectl kustomize deploy/monitoring-secure`'s
    https ServiceMonitor (and the same rule and dashboard)."""
    on = ("--set", "metrics.secure=true,monitoring.serviceMonitor=true,"
          "monitoring.prometheusRule=true,monitoring.grafanaDashboard=true")  # fmt: skip
    base = by_key(template("--set", "metrics.secure=true"))
    extra = {k: v for k, v in by_key(template(*on)).items() if k not in base}
    out = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "deploy" / "monitoring-secure")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    monitoring = by_key([d for d in yaml.load_all(out, Loader=yaml.CSafeLoader) if d])
    assert sorted(extra) == sorted(monitoring)
    for key, obj in monitoring.items():
        assert extra[key] == obj, f"{key} differs"


def test_training_runtimes_render_what_kustomize_renders_only_when_enabled() -> None:
    """``trainingRuntimes.enabled``: Trainer v2.3.0's built-in ClusterTrainingRuntimes, equal to
    ``kustomize build deploy/runtimes`` object for object (labels and image tags of the release
    overlay included); none by default."""
    assert not [d for d in template() if d["kind"] == "ClusterTrainingRuntime"]
    from_kustomize = by_key(kustomize_build(ROOT / "deploy" / "runtimes"))
    rendered = template("--set", "trainingRuntimes.enabled=true")
    from_helm = by_key([d for d in rendered if d["kind"] == "ClusterTrainingRuntime"])
    assert len(from_kustomize) == 8
    assert from_helm == from_kustomize
