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
webhook to answer, and stops the process on exit; its log is in ``KueueProcess.log_path``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from conformance.controlplane import cache_root, free_port, host_address

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import NAMESPACES, SERVICES, ResourceRef
from kubetrain.informers.transport import ApiStatusError

__all__ = [
    "KUEUE_VERSION",
    "KueueProcess",
    "find_kueue",
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

CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
SECRETS = ResourceRef("", "v1", "secrets", True, "Secret")
ENDPOINTSLICES = ResourceRef("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")
MUTATING = ResourceRef(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    False,
    "MutatingWebhookConfiguration",
)
VALIDATING = ResourceRef(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    False,
    "ValidatingWebhookConfiguration",
)


def kueue_root() -> Path:
    """Where ``build_kueue.sh`` leaves ``bin/kueue`` and ``module`` (the module's source)."""
    return cache_root() / f"kueue-{KUEUE_VERSION}"


def find_kueue() -> tuple[Path, Path] | None:
    """(binary, module source) when ``build_kueue.sh`` has built them, else None."""
    root = kueue_root()
    exe, module = root / "bin" / "kueue", root / "module"
    if exe.is_file() and os.access(exe, os.X_OK) and (module / "config" / "components").is_dir():
        return exe, module
    return None


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


def kueue_webhook_configurations(module: Path, resources: Iterable[str]) -> list[Obj]:
    """Kueue's two webhook configurations, named as its certificate rotator expects, with the
    webhooks of Kueue's own group and of ``resources`` (plurals, e.g. ``pytorchjobs``) only."""
    wanted = set(resources)
    configurations: list[Obj] = []
    path = module / "config/components/webhook/manifests.yaml"
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        kind = doc["kind"]
        hooks = []
        for hook in doc.get("webhooks") or []:
            rules = hook.get("rules") or []
            groups = {g for rule in rules for g in rule.get("apiGroups") or []}
            plurals = {r for rule in rules for r in rule.get("resources") or []}
            if groups == {KUEUE_GROUP} or plurals & wanted:
                hook["clientConfig"]["service"].update(namespace=NAMESPACE, name=SERVICE, port=443)
                hooks.append(hook)
        base = SERVICE.removesuffix("-webhook-service")
        suffix = "mutating" if kind == "MutatingWebhookConfiguration" else "validating"
        configurations.append(
            {
                "apiVersion": doc["apiVersion"],
                "kind": kind,
                "metadata": {"name": f"{base}-{suffix}-webhook-configuration"},
                "webhooks": hooks,
            }
        )
    return configurations


@dataclass
class KueueProcess:
    """A started Kueue: its process, log and ports."""

    process: subprocess.Popen[bytes]
    log_path: Path
    health_port: int
    webhook_port: int

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


async def _established(client: ApiClient, name: str) -> bool:
    crd = await client.get(CRDS, None, name)
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


async def _create(client: ApiClient, ref: ResourceRef, obj: Obj) -> None:
    try:
        await client.create(ref, obj)
    except ApiStatusError as e:
        if not e.is_already_exists:
            raise


async def install_kueue(
    client: ApiClient, module: Path, *, webhook_port: int, resources: Iterable[str]
) -> None:
    """Namespace, CRDs (Established), webhook Service and EndpointSlice, webhook configs."""
    await _create(
        client,
        NAMESPACES,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
    )
    crds = kueue_crds(module)
    for crd in crds:
        await _create(client, CRDS, crd)
    deadline = time.monotonic() + 60
    for crd in crds:
        while not await _established(client, crd["metadata"]["name"]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {crd['metadata']['name']} not Established in 60 s")
            await asyncio.sleep(0.1)
    await _create(
        client,
        SERVICES,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": webhook_port}]},
        },
    )
    await _create(
        client,
        ENDPOINTSLICES,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{SERVICE}-host",
                "namespace": NAMESPACE,
                "labels": {"kubernetes.io/service-name": SERVICE},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host_address()], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": webhook_port, "protocol": "TCP"}],
        },
    )
    await _create(  # the rotator fills it; it refuses to create it (config/components/internalcert)
        client,
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": NAMESPACE},
            "type": "Opaque",
        },
    )
    for configuration in kueue_webhook_configurations(module, resources):
        ref = MUTATING if configuration["kind"] == "MutatingWebhookConfiguration" else VALIDATING
        await _create(client, ref, configuration)


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
) -> AsyncIterator[KueueProcess]:
    """Install Kueue into the cluster of ``client`` and run it until the block ends."""
    found = find_kueue()
    if found is None:
        raise FileNotFoundError(
            f"Kueue {KUEUE_VERSION} is not built in {kueue_root()}: run "
            "tools/conformance/build_kueue.sh (make conformance-build does)"
        )
    exe, module = found
    frameworks = tuple(frameworks)
    resources = [f"{name.rsplit('/', 1)[1]}s" for name in frameworks]
    health_port, webhook_port, visibility_port = free_port(), free_port(), free_port()
    await install_kueue(client, module, webhook_port=webhook_port, resources=resources)
    process, log_path = await asyncio.to_thread(
        _start_process,
        exe,
        work_dir,
        kubeconfig_path,
        kueue_configuration(
            health_port=health_port,
            webhook_port=webhook_port,
            cert_dir=work_dir / "certs",
            frameworks=frameworks,
        ),
        visibility_port,
    )
    kueue = KueueProcess(process, log_path, health_port, webhook_port)
    mount = asyncio.create_task(_mount_secret(client, work_dir / "certs"))
    try:
        await _wait_ready(kueue, start_timeout)
        yield kueue
    finally:
        mount.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await mount
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await asyncio.to_thread(process.wait)


async def _mount_secret(client: ApiClient, cert_dir: Path) -> None:
    """Play the kubelet's Secret volume: write each key of Kueue's certificate Secret to a file
    of ``cert_dir`` whenever it changes (the rotator writes the Secret, then waits until the
    files it serves from match it)."""
    written: dict[str, bytes] = {}
    while True:
        try:
            secret = await client.get(SECRETS, NAMESPACE, SECRET)
        except ApiStatusError as e:
            if not e.is_not_found:
                raise
            secret = {}
        for key, encoded in (secret.get("data") or {}).items():
            value = base64.b64decode(encoded)
            if written.get(key) != value:
                await asyncio.to_thread(_write_atomically, cert_dir / key, value)
                written[key] = value
        await asyncio.sleep(0.5)


def _write_atomically(path: Path, value: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(value)
    partial.replace(path)


def _start_process(
    exe: Path, work_dir: Path, kubeconfig_path: str, config: dict[str, Any], visibility_port: int
) -> tuple[subprocess.Popen[bytes], Path]:
    """Write the configuration and start Kueue in a session of its own, logging to a file."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / "kueue-config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log_path = work_dir / "kueue.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(exe),
                f"--config={config_path}",
                f"--kubeconfig={kubeconfig_path}",
                f"--visibility-server-port={visibility_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, log_path


async def _wait_ready(kueue: KueueProcess, timeout: float) -> None:
    """``/readyz`` answers 200 and the webhook server accepts TLS connections."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{kueue.health_port}/readyz"
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    last = ""
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if kueue.process.poll() is not None:
                raise RuntimeError(
                    f"kueue exited with status {kueue.process.returncode}:\n{kueue.log_tail()}"
                )
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    last = f"readyz {resp.status}"
                    if resp.status == 200:
                        hook = f"https://127.0.0.1:{kueue.webhook_port}/"
                        async with session.get(hook, ssl=insecure) as answer:
                            last = f"webhook {answer.status}"
                            return
            except (aiohttp.ClientError, TimeoutError) as e:
                last = repr(e)
            await asyncio.sleep(0.25)
    raise TimeoutError(f"kueue not ready within {timeout:g} s ({last}); log:\n{kueue.log_tail()}")
