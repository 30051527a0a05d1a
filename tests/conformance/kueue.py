"""Kueue's controller manager (``sigs.k8s.io/kueue/cmd/kueue``) next to a real control plane.

Why this exists: issue 16 asks that kubetrain be tried next to the real Kueue, not a stand-in.
Kueue's mutating webhook suspends a kubeflow.org job that names a LocalQueue when it is created;
its controller creates a Workload for it and, once a ClusterQueue has quota, unsuspends the job
(and suspends it again when it is evicted). kubetrain must honour every suspend and resume.

The binary and its manifests come from ``tools/conformance/build_kueue.sh`` (the module zip of
``sigs.k8s.io/kueue`` from the Go module proxy, cached); nothing of Kueue is committed. Kueue runs
as a process of this machine, as a cluster would run it in a pod:

- its CRDs from ``config/components/crd/bases``, the five with a served older version converted
  by its webhook (``config/components/crd/patches/webhook_in_*.yaml``);
- the webhook Service ``kueue-system/kueue-webhook-service`` and an EndpointSlice with an address
  of this machine (a real kube-apiserver dials a Service's endpoints, never loopback);
- the two webhook configurations of ``config/components/webhook/manifests.yaml``, with only the
  webhooks of Kueue's own resources and of the enabled job frameworks (the others, ``pods``
  among them, would fail every create of their resource on this plane: failurePolicy Fail);
- its internal certificate management on, as by default: Kueue fills its Secret and injects the
  CA into those configurations and CRDs itself; the harness plays the kubelet's Secret volume,
  writing the Secret's keys into Kueue's certificate folder.

``running_kueue`` waits for ``/readyz`` (certificates in place, caches synced) and then for the
webhook to answer, and stops the process on exit; its log is in ``ManagerProcess.log_path``.
What any such manager needs (CRDs, webhook endpoint, the Secret volume, the process) is
``outside_manager.py``'s.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from conformance.controlplane import cache_root, free_port
from conformance.outside_manager import (
    ManagerProcess,
    WebhookEndpoint,
    find_built,
    hook_rules,
    install_crds,
    install_webhooks,
    running_manager,
    webhook_configurations,
)

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient

__all__ = [
    "KUEUE_VERSION",
    "find_kueue",
    "kueue_root",
    "running_kueue",
]

#: The Kueue release ``tools/conformance/build_kueue.sh`` builds (the one the proxy lists).
KUEUE_VERSION = os.environ.get("KUBETRAIN_KUEUE_VERSION", "v0.17.0")
NAMESPACE = "kueue-system"
SERVICE = "kueue-webhook-service"
SECRET = "kueue-webhook-server-cert"
KUEUE_GROUP = "kueue.x-k8s.io"
#: CRDs whose older served version Kueue's webhook converts (the kustomize patches' list).
CONVERTED_CRDS = frozenset(
    f"{plural}.{KUEUE_GROUP}"
    for plural in ("localqueues", "clusterqueues", "cohorts", "workloads", "multikueueclusters")
)


def kueue_root() -> Path:
    """Where ``build_kueue.sh`` leaves ``bin/kueue`` and ``module`` (the module's source)."""
    return cache_root() / f"kueue-{KUEUE_VERSION}"


def find_kueue() -> tuple[Path, Path] | None:
    """(binary, module source) when ``build_kueue.sh`` has built them, else None."""
    return find_built(kueue_root(), "kueue")


def kueue_crds(module: Path) -> list[Obj]:
    """Kueue's CRDs, with the conversion webhook of those that need one."""
    crds: list[Obj] = []
    for path in sorted((module / "config/components/crd/bases").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["metadata"]["name"] in CONVERTED_CRDS:
            crd["spec"]["conversion"] = {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {
                        "service": {
                            "namespace": NAMESPACE,
                            "name": SERVICE,
                            "path": "/convert",
                            "port": 443,
                        }
                    },
                    "conversionReviewVersions": ["v1"],
                },
            }
        crds.append(crd)
    return crds


def kueue_configuration(
    *, health_port: int, webhook_port: int, cert_dir: Path, frameworks: Iterable[str]
) -> dict[str, Any]:
    """Kueue's ``Configuration`` for a process outside the cluster: no leader election, no
    metrics listener, the webhook on all addresses (the API server dials this machine's
    address), Kueue's own certificate management."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": webhook_port, "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": True},
        "clientConnection": {"qps": 50, "burst": 100},
        "integrations": {"frameworks": list(frameworks)},
    }


@asynccontextmanager
async def running_kueue(
    client: ApiClient,
    kubeconfig_path: str,
    work_dir: Path,
    *,
    frameworks: Iterable[str] = ("kubeflow.org/pytorchjob",),
    start_timeout: float = 90.0,
) -> AsyncIterator[ManagerProcess]:
    """Install Kueue into the cluster of ``client`` and run it until the block ends: its
    webhooks for Kueue's own group and the ``frameworks``' resources only."""
    found = find_kueue()
    if found is None:
        raise FileNotFoundError(
            f"Kueue {KUEUE_VERSION} is not built in {kueue_root()}: run "
            "tools/conformance/build_kueue.sh (make conformance-build does)"
        )
    exe, module = found
    frameworks = tuple(frameworks)
    wanted = {f"{name.rsplit('/', 1)[1]}s" for name in frameworks}
    endpoint = WebhookEndpoint(NAMESPACE, SERVICE, SECRET, free_port())

    def keep(hook: Obj) -> bool:
        groups, plurals = hook_rules(hook)
        return groups == {KUEUE_GROUP} or bool(plurals & wanted)

    await install_webhooks(
        client,
        endpoint,
        webhook_configurations(module / "config/components/webhook/manifests.yaml", endpoint, keep),
    )
    await install_crds(client, kueue_crds(module))
    health_port = free_port()
    cert_dir = work_dir / "certs"
    config = kueue_configuration(
        health_port=health_port,
        webhook_port=endpoint.port,
        cert_dir=cert_dir,
        frameworks=frameworks,
    )
    argv = [str(exe), f"--kubeconfig={kubeconfig_path}", f"--visibility-server-port={free_port()}"]
    async with running_manager(
        "kueue",
        argv,
        client=client,
        endpoint=endpoint,
        work_dir=work_dir,
        cert_dir=cert_dir,
        health_port=health_port,
        config=config,
        start_timeout=start_timeout,
    ) as kueue:
        yield kueue
