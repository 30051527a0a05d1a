"""deploy/: the overlays render with kubectl's kustomize, and what they render fits together and
fits the operator: its arguments parse as `kubetrain operator` flags, ports and names line up,
the pod runs locked down. (RBAC is proven against a real API server in tests/e2e/test_rbac.py.)"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubeapply import render

from kubetrain.cli import build_parser
from kubetrain.operator import OperatorOptions, options_from_args

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ["standalone", "cert-manager", "ha", "metrics-secure"]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def operator_options(deployment: dict[str, Any]) -> OperatorOptions:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[0] == "operator"
    return options_from_args(build_parser(args).parse_args(args))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_operator_pod_is_locked_down(overlay: str) -> None:
    deployment = one(render(overlay), "Deployment", "kubetrain")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "limits" in container["resources"] and "requests" in container["resources"]
    # kubelet must not kill it before its own graceful shutdown is over
    assert (
        pod["terminationGracePeriodSeconds"]
        > operator_options(deployment).graceful_shutdown_timeout
    )
    # /tmp is the one writable path (certificates are staged there to load them)
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "/tmp" in mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_names_and_ports_line_up(overlay: str) -> None:
    docs = render(overlay)
    deployment = one(docs, "Deployment", "kubetrain")
    options = operator_options(deployment)
    pod = deployment["spec"]["template"]["spec"]
    ports = {p["name"]: p["containerPort"] for p in pod["containers"][0]["ports"]}
    assert ports["webhook"] == options.webhook_server_port
    assert f":{ports['metrics']}" == options.metrics_bind_address
    assert f":{ports['health']}" == options.health_probe_bind_address
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["MY_POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    service = one(docs, "Service", options.webhook_service_name)
    assert service["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    selector = service["spec"]["selector"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        for hook in one(docs, kind)["webhooks"]:
            ref = hook["clientConfig"]["service"]
            assert (ref["namespace"], ref["name"], ref["port"]) == (
                service["metadata"]["namespace"],
                service["metadata"]["name"],
                service["spec"]["ports"][0]["port"],
            )
    sa = pod["serviceAccountName"]
    for binding in ("ClusterRoleBinding", "RoleBinding"):
        subjects = one(docs, binding, "kubetrain")["subjects"]
        assert {"kind": "ServiceAccount", "name": sa, "namespace": "kubeflow"} in subjects
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert len(crds) == 6 + 3  # kubeflow.org/v1 and Kubeflow Trainer v2


def test_cert_manager_overlay_mounts_the_issued_certificate() -> None:
    docs = render("cert-manager")
    deployment = one(docs, "Deployment", "kubetrain")
    options = operator_options(deployment)
    assert options.webhook_cert_dir == "/etc/kubetrain/webhook-certs"
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    certificate = one(docs, "Certificate", "kubetrain-webhook")
    assert volumes["webhook-certs"]["secret"]["secretName"] == certificate["spec"]["secretName"]
    service_dns = f"{options.webhook_service_name}.kubeflow.svc"
    assert service_dns in certificate["spec"]["dnsNames"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        annotations = one(docs, kind)["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == "kubeflow/kubetrain-webhook"


def test_standalone_manages_its_own_certificate() -> None:
    options = operator_options(one(render("standalone"), "Deployment", "kubetrain"))
    assert options.webhook_cert_dir == ""


def deploy_tool(name: str) -> str:
    """A tool of tools/deploy/build_tools.sh (``make conformance-build`` builds them first)."""
    cache = Path(os.environ.get("KUBETRAIN_CACHE", Path.home() / ".cache" / "kubetrain"))
    path = cache / "tools" / "bin" / name
    if not path.exists():
        pytest.skip(f"{name} not built: run tools/deploy/build_tools.sh")
    return str(path)


def kustomize_build(folder: Path) -> list[dict[str, Any]]:
    """The objects ``kustomize build folder`` renders (the standalone kustomize v5)."""
    out = subprocess.run(
        [deploy_tool("kustomize"), "build", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [d for d in yaml.load_all(out, Loader=yaml.CSafeLoader) if d]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kustomize_release_renders_what_kubectl_renders(overlay: str) -> None:
    """kubectl embeds an older kustomize: the standalone kustomize v5 renders the same objects."""
    assert kustomize_build(ROOT / "deploy" / "overlays" / overlay) == render(overlay)


def test_ha_runs_two_leader_elected_replicas() -> None:
    deployment = one(render("ha"), "Deployment", "kubetrain")
    assert deployment["spec"]["replicas"] == 2
    assert operator_options(deployment).leader_elect is True


METRICS_AUTH_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews"],
        "verbs": ["create"],
    },
]


def test_secure_metrics_are_opt_in_with_their_own_least_privilege_role() -> None:
    plain = render("standalone")
    assert operator_options(one(plain, "Deployment", "kubetrain")).metrics_secure is False
    names = {d["metadata"]["name"] for d in plain}
    assert not names & {"kubetrain-metrics-auth", "kubetrain-metrics-reader"}
    # the operator's main role never gets the metrics' authorization grant; it reviews tokens
    # (create tokenreviews) only for the TrainJob status endpoint, on by default
    main_rules = one(plain, "ClusterRole", "kubetrain")["rules"]
    for rule in main_rules:
        assert "subjectaccessreviews" not in rule.get("resources", [])
    assert [r["verbs"] for r in main_rules if "tokenreviews" in r.get("resources", [])] == [
        ["create"]
    ]

    docs = render("metrics-secure")
    deployment = one(docs, "Deployment", "kubetrain")
    options = operator_options(deployment)
    assert options.metrics_secure is True and options.metrics_cert_dir == ""
    assert options.metrics_bind_address != options.health_probe_bind_address  # probes: plain
    assert one(docs, "ClusterRole", "kubetrain-metrics-auth")["rules"] == METRICS_AUTH_RULES
    binding = one(docs, "ClusterRoleBinding", "kubetrain-metrics-auth")
    assert binding["roleRef"]["name"] == "kubetrain-metrics-auth"
    sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": "kubeflow"}]
    assert one(docs, "ClusterRole", "kubetrain-metrics-reader")["rules"] == [
        {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}
    ]
    # nothing binds the reader role: that is for the cluster's Prometheus
    assert not [d for d in docs if d.get("roleRef", {}).get("name") == "kubetrain-metrics-reader"]


def test_the_secure_service_monitor_scrapes_https_with_its_token() -> None:
    from kubeapply import KUBECTL

    out = subprocess.run(
        [KUBECTL, "kustomize", str(ROOT / "deploy" / "monitoring-secure")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.load_all(out, Loader=yaml.CSafeLoader) if d]
    (endpoint,) = one(docs, "ServiceMonitor", "kubetrain")["spec"]["endpoints"]
    assert endpoint == {
        "port": "metrics",
        "interval": "30s",
        "scheme": "https",
        "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        # the operator's certificate is self-signed, made at start
        "tlsConfig": {"insecureSkipVerify": True},
    }
    assert {d["kind"] for d in docs} == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_trainer_public_is_what_kubetrain_up_creates() -> None:
    """``deploy/trainer-public``: the version ConfigMap the kubeflow SDK reads and its read-only
    RBAC for every authenticated user, the same objects ``kubetrain up`` creates."""
    from kubetrain.reconcilers.trainer.public import public_objects

    rendered = kustomize_build(ROOT / "deploy" / "trainer-public")

    def key(obj: dict[str, Any]) -> tuple[str, str]:
        return obj["kind"], obj["metadata"]["name"]

    assert sorted(rendered, key=key) == sorted(public_objects(), key=key)
