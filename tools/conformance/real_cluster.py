"""A real control plane (etcd + kube-apiserver + kube-controller-manager from build.sh) with
kubetrain's simulated nodes, serving until Ctrl-C / SIGTERM: what `kubetrain bench --kubeconfig`
runs against to measure kubetrain and the reference operator on a real API server.

Usage: .venv/bin/python tools/conformance/real_cluster.py --kubeconfig real.kubeconfig [--nodes 4]
       [--node-pods 600] [--service-accounts]
The kubeconfig (the administrator's token) is written once the API server and the nodes are up.

--service-accounts: the API server authorizes with Node,RBAC, and two more kubeconfigs are written
next to --kubeconfig (real.kubeconfig -> real.operator.kubeconfig, real.probe.kubeconfig), each
with a TokenRequest token of a ServiceAccount:

- operator: ``kubeflow/kubetrain`` with the RBAC of deploy/ (rendered with `kubectl kustomize`, as
  tests/e2e/test_rbac.py does; only the namespace, ServiceAccount and RBAC objects are applied, not
  the Deployment or the webhook configurations) plus ``BASELINES_RULES``, what the other measured
  systems need beyond it, so that every system of `kubetrain bench --operator-kubeconfig` runs as
  the same identity;
- probe: ``tenant-probe/probe``, with rights on ConfigMaps in its namespace only (the burst's
  tenant probe, `kubetrain bench --probe-kubeconfig`).

Why: the administrator's token is in ``system:masters``, which API Priority and Fairness exempts
from all limits. A service account is classified as a workload (FlowSchema ``service-accounts``,
priority level ``workload-low``, one flow per user): the operator and the probe are then two
tenants that APF queues fairly, as on a production cluster.

Test-support code: it uses tests/conformance/controlplane.py; the product never depends on Go.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from conformance.controlplane import ControlPlaneOptions, RealControlPlane
from kubeapply import kubectl_apply, mint_token, render

from kubetrain.bench.scenarios.tenant_probe import PROBE_NAMESPACE
from kubetrain.cluster.nodesim.options import NodeSimOptions
from kubetrain.cluster.nodesim.simulator import NodeSimulator
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry

OPERATOR_NAMESPACE, OPERATOR_ACCOUNT = "kubeflow", "kubetrain"
PROBE_ACCOUNT = "probe"
RBAC_KINDS = frozenset(
    {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
)
TOKEN_SECONDS = 7 * 24 * 3600
"""Lifetime asked for each token: longer than any benchmark run."""
JOB_PLURALS = ("tfjobs", "pytorchjobs", "xgboostjobs", "mpijobs", "paddlejobs", "jaxjobs")
BASELINES_RULES: list[dict[str, Any]] = [
    # kopf reads and updates the jobs it handles (finalizers, its progress annotations); the
    # reference's controller-runtime client updates jobs and sets owner references on children.
    {
        "apiGroups": ["kubeflow.org"],
        "resources": [f"{p}{sub}" for p in JOB_PLURALS for sub in ("", "/status", "/finalizers")],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["pods", "services", "configmaps", "serviceaccounts"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    # kopf lists namespaces and CRDs at start (to resolve its resources and namespaces)
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    # the reference's cert-controller fills in and reads back its webhook Secret in the bench
    # namespace (the harness creates it empty as the administrator)
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch", "update"]},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    # --reference-args '--leader-elect' (the reference's Lease is in the bench namespace)
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "list", "watch", "create", "update"],
    },
    {
        "apiGroups": ["scheduling.volcano.sh", "scheduling.x-k8s.io"],
        "resources": ["podgroups"],
        "verbs": ["get", "list", "watch", "create", "update", "delete"],
    },
]
"""What raw, kopf and the reference need beyond deploy/'s ClusterRole (raw needs nothing more:
pods and services created, jobs listed, watched, status-patched and deleted)."""


def service_account_paths(kubeconfig: str | Path) -> tuple[Path, Path]:
    """The operator's and the probe's kubeconfig next to ``kubeconfig``:
    ``real.kubeconfig`` -> ``real.operator.kubeconfig``, ``real.probe.kubeconfig``."""
    path = Path(kubeconfig)
    stem = path.name.removesuffix(".kubeconfig")
    return path.with_name(f"{stem}.operator.kubeconfig"), path.with_name(f"{stem}.probe.kubeconfig")


def token_kubeconfig(
    *, server: str, ca_pem: bytes, user: str, token: str, namespace: str
) -> dict[str, Any]:
    """A kubeconfig for ``server`` (trusting ``ca_pem``) with a bearer ``token`` of ``user``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "real",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": user, "context": {"cluster": "real", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
        "preferences": {},
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    """Write ``config`` readable by its owner only (it holds a token)."""
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def deploy_rbac() -> list[dict[str, Any]]:
    """deploy/overlays/standalone's namespace, ServiceAccount and RBAC objects."""
    return [d for d in render("standalone") if d["kind"] in RBAC_KINDS]


def bench_rbac() -> list[dict[str, Any]]:
    """The baselines' extra ClusterRole for the operator's ServiceAccount, and the probe's
    namespace, ServiceAccount and Role."""
    operator_subject = {
        "kind": "ServiceAccount",
        "name": OPERATOR_ACCOUNT,
        "namespace": OPERATOR_NAMESPACE,
    }
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kubetrain-bench-baselines"},
            "rules": BASELINES_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kubetrain-bench-baselines"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "kubetrain-bench-baselines",
            },
            "subjects": [operator_subject],
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PROBE_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": PROBE_ACCOUNT, "namespace": PROBE_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tenant-probe", "namespace": PROBE_NAMESPACE},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "tenant-probe", "namespace": PROBE_NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "tenant-probe",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": PROBE_ACCOUNT, "namespace": PROBE_NAMESPACE}
            ],
        },
    ]


async def who_am_i(kubeconfig: Path) -> str:
    """The user name the API server sees for ``kubeconfig`` (a SelfSubjectReview)."""
    options = ClientOptions(qps=0, adaptive=None, registry=new_registry(process_metrics=False))
    async with ApiClient(await load_kubeconfig(str(kubeconfig)), options) as client:
        review = await client.request_json(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
    name: str = review["status"]["userInfo"]["username"]
    return name


async def set_up_service_accounts(plane: RealControlPlane, kubeconfig: str) -> tuple[Path, Path]:
    """Apply the RBAC, mint the two tokens, write the two kubeconfigs next to ``kubeconfig``;
    their paths (operator, probe)."""
    await asyncio.to_thread(kubectl_apply, plane.kubeconfig_path, deploy_rbac() + bench_rbac())
    options = ClientOptions(qps=0, adaptive=None, registry=new_registry(process_metrics=False))
    ca_pem = await asyncio.to_thread(Path(plane.ca_path).read_bytes)
    paths = service_account_paths(kubeconfig)
    accounts = ((OPERATOR_NAMESPACE, OPERATOR_ACCOUNT), (PROBE_NAMESPACE, PROBE_ACCOUNT))
    async with ApiClient(await load_kubeconfig(plane.kubeconfig_path), options) as admin:
        for path, (namespace, account) in zip(paths, accounts, strict=True):
            config = token_kubeconfig(
                server=plane.url,
                ca_pem=ca_pem,
                user=f"system:serviceaccount:{namespace}:{account}",
                token=await mint_token(admin, namespace, account, seconds=TOKEN_SECONDS),
                namespace=namespace,
            )
            write_kubeconfig(path, config)
    return paths


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    options = ControlPlaneOptions(
        authorization_mode="Node,RBAC" if args.service_accounts else "AlwaysAllow"
    )
    async with RealControlPlane(options) as plane:
        sim = NodeSimulator.for_config(
            await load_kubeconfig(plane.kubeconfig_path),
            NodeSimOptions(nodes=args.nodes, pods=args.node_pods),
        )
        await sim.start()
        try:
            extra = ""
            if args.service_accounts:
                for path in await set_up_service_accounts(plane, args.kubeconfig):
                    extra += f"; {path} ({await who_am_i(path)})"
            shutil.copyfile(plane.kubeconfig_path, args.kubeconfig)
            print(
                f"real control plane at {plane.url}; kubeconfig {args.kubeconfig}{extra}",
                flush=True,
            )
            await stop.wait()
        finally:
            await sim.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    p.add_argument("--nodes", type=int, default=4, help="simulated nodes (default: %(default)s)")
    p.add_argument(
        "--node-pods", type=int, default=600, help="pods per node (default: %(default)s)"
    )
    p.add_argument(
        "--service-accounts",
        action="store_true",
        help="authorize with Node,RBAC and write <name>.operator.kubeconfig and "
        "<name>.probe.kubeconfig next to --kubeconfig, with ServiceAccount tokens",
    )
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
