"""The real JobSet controller (``sigs.k8s.io/jobset`` v0.12.0, built by
``tools/conformance/build_jobset.sh``) next to a real control plane.

Why this exists: issue 17 asks that the JobSet tests the embedded cluster passes also pass on the
real JobSet controller, where kube-controller-manager's Job controller runs the child Jobs. So
``tests/e2e/test_jobsets.py`` runs under ``--apiserver=real`` against this.

What a JobSet install has, made here (``outside_manager.py`` does the generic part): the CRD from
the module's ``config/components/crd/bases``, the namespace ``jobset-system`` (JobSet's, fixed in
its code outside a pod), the webhook Service ``jobset-webhook-service`` to this machine, and the
JobSet webhooks of ``config/components/webhook/manifests.yaml`` (its pod webhooks, for exclusive
placement, are left out: on every pod of the plane, failurePolicy Fail). JobSet's rotator writes
its Secret and injects the CA; the harness writes the Secret's keys where JobSet reads them,
``/tmp/k8s-webhook-server/serving-certs`` (fixed in its code), a private mount of that folder per
JobSet where ``unshare`` works (``outside_manager.private_webhook_root``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import yaml
from conformance.controlplane import cache_root, free_port
from conformance.outside_manager import (
    ManagerProcess,
    WebhookEndpoint,
    find_built,
    hook_rules,
    install_crds,
    install_webhooks,
    private_webhook_root,
    running_manager,
    webhook_configurations,
)

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient

__all__ = ["JOBSET_VERSION", "find_jobset", "jobset_root", "running_jobset"]

JOBSET_VERSION = os.environ.get("KUBETRAIN_JOBSET_VERSION", "v0.12.0")
NAMESPACE = "jobset-system"
SERVICE = "jobset-webhook-service"
SECRET = "jobset-webhook-server-cert"
CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")


def jobset_root() -> Path:
    """Where ``build_jobset.sh`` leaves ``bin/jobset`` and ``module`` (the module's source)."""
    return cache_root() / f"jobset-{JOBSET_VERSION}"


def find_jobset() -> tuple[Path, Path] | None:
    """(binary, module source) when ``build_jobset.sh`` has built them, else None."""
    return find_built(jobset_root(), "jobset")


def jobset_crds(module: Path) -> list[Obj]:
    return [
        yaml.safe_load(path.read_text())
        for path in sorted((module / "config/components/crd/bases").glob("*.yaml"))
    ]


@asynccontextmanager
async def running_jobset(
    client: ApiClient, kubeconfig_path: str, work_dir: Path, *, start_timeout: float = 90.0
) -> AsyncIterator[ManagerProcess]:
    """Install JobSet into the cluster of ``client`` and run its controller until the block
    ends."""
    found = find_jobset()
    if found is None:
        raise FileNotFoundError(
            f"JobSet {JOBSET_VERSION} is not built in {jobset_root()}: run "
            "tools/conformance/build_jobset.sh (make conformance-build does)"
        )
    exe, module = found
    endpoint = WebhookEndpoint(NAMESPACE, SERVICE, SECRET, free_port())

    def keep(hook: Obj) -> bool:
        groups, _ = hook_rules(hook)
        return groups == {"jobset.x-k8s.io"}

    await install_webhooks(
        client,
        endpoint,
        webhook_configurations(module / "config/components/webhook/manifests.yaml", endpoint, keep),
    )
    await install_crds(client, jobset_crds(module))
    health_port = free_port()
    config = {
        "apiVersion": "config.jobset.x-k8s.io/v1alpha1",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": endpoint.port, "certDir": str(CERT_DIR)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": True},
    }
    argv, cert_dir = await private_webhook_root(
        [str(exe), f"--kubeconfig={kubeconfig_path}"], work_dir
    )
    async with running_manager(
        "jobset",
        argv,
        client=client,
        endpoint=endpoint,
        work_dir=work_dir,
        cert_dir=cert_dir,
        health_port=health_port,
        config=config,
        start_timeout=start_timeout,
    ) as jobset:
        yield jobset
