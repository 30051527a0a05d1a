"""A controller-runtime manager (Kueue, JobSet) run as a process of this machine next to a real
control plane, as a cluster would run it in a pod.

Why this exists: the conformance tier tries kubetrain next to real neighbours built from Go
modules (``tools/conformance/build_{kueue,jobset}.sh``). Such a manager expects what an install
gives it in a cluster; this module provides the parts every one of them needs:

- its CRDs, created and waited for until Established;
- its webhook Service and an EndpointSlice with an address of this machine (a real
  kube-apiserver dials a Service's endpoints, never loopback);
- the webhook configurations of its ``config/components/webhook/manifests.yaml``, renamed as its
  certificate rotator expects and filtered to the webhooks a test wants (a webhook left in for a
  resource nobody serves, ``pods`` say, would fail every create of it: failurePolicy Fail);
- the empty Secret its rotator fills, and the kubelet's part: the Secret's keys written into the
  certificate folder the webhook server reads (the rotator waits until those files match);
- the process, its log, ``/readyz`` and the webhook's TLS port waited for, and its stop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from conformance.controlplane import host_address

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import NAMESPACES, SERVICES, ResourceRef
from kubetrain.informers.transport import ApiStatusError

__all__ = [
    "CRDS",
    "ManagerProcess",
    "WebhookEndpoint",
    "create_if_absent",
    "find_built",
    "install_crds",
    "install_webhooks",
    "running_manager",
    "webhook_configurations",
]

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


def find_built(root: Path, exe_name: str) -> tuple[Path, Path] | None:
    """(``root/bin/<exe_name>``, ``root/module``: the module's source) when a
    ``tools/conformance/build_*.sh`` script has left both in ``root``, else None."""
    exe, module = root / "bin" / exe_name, root / "module"
    if exe.is_file() and os.access(exe, os.X_OK) and (module / "config" / "components").is_dir():
        return exe, module
    return None


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where the manager's webhooks are served: its namespace, Service (``<base>-webhook-service``,
    port 443), certificate Secret and the port on this machine."""

    namespace: str
    service: str
    secret: str
    port: int

    @property
    def base(self) -> str:
        """The prefix of the webhook configurations' names the rotator injects into."""
        return self.service.removesuffix("-webhook-service")


async def create_if_absent(client: ApiClient, ref: ResourceRef, obj: Obj) -> None:
    try:
        await client.create(ref, obj)
    except ApiStatusError as e:
        if not e.is_already_exists:
            raise


async def _established(client: ApiClient, name: str) -> bool:
    crd = await client.get(CRDS, None, name)
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


async def install_crds(client: ApiClient, crds: Sequence[Obj], *, timeout: float = 60) -> None:
    """Create ``crds`` and wait until the server serves each (Established)."""
    for crd in crds:
        await create_if_absent(client, CRDS, crd)
    deadline = time.monotonic() + timeout
    for crd in crds:
        while not await _established(client, crd["metadata"]["name"]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {crd['metadata']['name']} not Established in {timeout} s")
            await asyncio.sleep(0.1)


def webhook_configurations(
    manifests: Path, endpoint: WebhookEndpoint, keep: Callable[[Obj], bool]
) -> list[Obj]:
    """The mutating and validating configurations of a kubebuilder ``manifests.yaml``, named
    ``<base>-{mutating,validating}-webhook-configuration``, with the webhooks ``keep`` accepts,
    pointed at ``endpoint``'s Service."""
    configurations: list[Obj] = []
    for doc in yaml.safe_load_all(manifests.read_text()):
        if not doc:
            continue
        hooks = []
        for hook in doc.get("webhooks") or []:
            if keep(hook):
                hook["clientConfig"]["service"].update(
                    namespace=endpoint.namespace, name=endpoint.service, port=443
                )
                hooks.append(hook)
        suffix = "mutating" if doc["kind"] == "MutatingWebhookConfiguration" else "validating"
        configurations.append(
            {
                "apiVersion": doc["apiVersion"],
                "kind": doc["kind"],
                "metadata": {"name": f"{endpoint.base}-{suffix}-webhook-configuration"},
                "webhooks": hooks,
            }
        )
    return configurations


def hook_rules(hook: Obj) -> tuple[set[str], set[str]]:
    """(API groups, resources) a webhook's rules name."""
    rules = hook.get("rules") or []
    groups = {g for rule in rules for g in rule.get("apiGroups") or []}
    plurals = {r for rule in rules for r in rule.get("resources") or []}
    return groups, plurals


async def install_webhooks(
    client: ApiClient, endpoint: WebhookEndpoint, configurations: Iterable[Obj]
) -> None:
    """The namespace, the Service and its EndpointSlice to this machine, the empty certificate
    Secret (the rotator fills it; it does not create it), and ``configurations``."""
    await create_if_absent(
        client,
        NAMESPACES,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": endpoint.namespace}},
    )
    await create_if_absent(
        client,
        SERVICES,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": endpoint.service, "namespace": endpoint.namespace},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": endpoint.port}]},
        },
    )
    await create_if_absent(
        client,
        ENDPOINTSLICES,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{endpoint.service}-host",
                "namespace": endpoint.namespace,
                "labels": {"kubernetes.io/service-name": endpoint.service},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host_address()], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": endpoint.port, "protocol": "TCP"}],
        },
    )
    await create_if_absent(
        client,
        SECRETS,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": endpoint.secret, "namespace": endpoint.namespace},
            "type": "Opaque",
        },
    )
    for configuration in configurations:
        ref = MUTATING if configuration["kind"] == "MutatingWebhookConfiguration" else VALIDATING
        await create_if_absent(client, ref, configuration)


@dataclass
class ManagerProcess:
    """A started manager: its process, log and ports."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    health_port: int
    webhook_port: int

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@asynccontextmanager
async def running_manager(
    name: str,
    argv: Sequence[str],
    *,
    client: ApiClient,
    endpoint: WebhookEndpoint,
    work_dir: Path,
    cert_dir: Path,
    health_port: int,
    config: dict[str, Any] | None = None,
    start_timeout: float = 90.0,
) -> AsyncIterator[ManagerProcess]:
    """Run ``argv`` (``--config=<work_dir>/<name>-config.yaml`` appended when ``config`` is
    given) until the block ends, playing the Secret volume of ``endpoint`` into ``cert_dir``;
    ready once ``/readyz`` on ``health_port`` answers 200, the webhook port speaks TLS and
    every webhook path the installed configurations route to ``endpoint`` is served (not 404:
    JobSet and Trainer register their webhooks only after their certificates are ready, a
    moment after ``/readyz`` already says yes)."""
    process, log_path = await asyncio.to_thread(_start, name, list(argv), work_dir, config)
    manager = ManagerProcess(name, process, log_path, health_port, endpoint.port)
    mount = asyncio.create_task(_mount_secret(client, endpoint, cert_dir))
    try:
        paths = await _webhook_paths(client, endpoint)
        await _wait_ready(manager, start_timeout, paths)
        yield manager
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


def _start(
    name: str, argv: list[str], work_dir: Path, config: dict[str, Any] | None
) -> tuple[subprocess.Popen[bytes], Path]:
    """Write the configuration and start the manager in a session of its own, logging to a
    file."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        config_path = work_dir / f"{name}-config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        argv = [*argv, f"--config={config_path}"]
    log_path = work_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    return process, log_path


async def _mount_secret(client: ApiClient, endpoint: WebhookEndpoint, cert_dir: Path) -> None:
    """Play the kubelet's Secret volume: write each key of the certificate Secret to a file of
    ``cert_dir`` whenever it changes."""
    written: dict[str, bytes] = {}
    while True:
        try:
            secret = await client.get(SECRETS, endpoint.namespace, endpoint.secret)
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


async def _webhook_paths(client: ApiClient, endpoint: WebhookEndpoint) -> list[str]:
    """The paths the installed webhook configurations call on ``endpoint``'s Service."""
    paths: set[str] = set()
    for ref in (MUTATING, VALIDATING):
        for configuration in (await client.list(ref)).get("items") or []:
            for hook in configuration.get("webhooks") or []:
                service = (hook.get("clientConfig") or {}).get("service") or {}
                if (service.get("namespace"), service.get("name")) == (
                    endpoint.namespace,
                    endpoint.service,
                ) and service.get("path"):
                    paths.add(str(service["path"]))
    return sorted(paths)


async def _wait_ready(manager: ManagerProcess, timeout: float, paths: Sequence[str]) -> None:
    """``/readyz`` answers 200, the webhook server accepts TLS connections and answers each of
    ``paths`` (an empty review: anything but 404 means the handler is registered)."""
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{manager.health_port}/readyz"
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    last = ""
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if manager.process.poll() is not None:
                raise RuntimeError(
                    f"{manager.name} exited with status {manager.process.returncode}:\n"
                    f"{manager.log_tail()}"
                )
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    last = f"readyz {resp.status}"
                    if resp.status == 200:
                        hook = f"https://127.0.0.1:{manager.webhook_port}/"
                        async with session.get(hook, ssl=insecure) as answer:
                            last = f"webhook {answer.status}"
                        missing = await _unserved(session, hook, paths, insecure)
                        if not missing:
                            return
                        last = f"webhook paths not served yet (404): {missing}"
            except (aiohttp.ClientError, TimeoutError) as e:
                last = repr(e)
            await asyncio.sleep(0.25)
    raise TimeoutError(
        f"{manager.name} not ready within {timeout:g} s ({last}); log:\n{manager.log_tail()}"
    )


async def _unserved(
    session: aiohttp.ClientSession, base: str, paths: Sequence[str], context: ssl.SSLContext
) -> list[str]:
    missing = []
    for path in paths:
        async with session.post(
            base.rstrip("/") + path, json={}, ssl=context, timeout=aiohttp.ClientTimeout(total=5)
        ) as answer:
            if answer.status == 404:
                missing.append(path)
    return missing


#: Where controller-runtime managers built on cert-controller (JobSet, Trainer) write and read
#: their webhook certificates: a constant in their code, so one folder for every instance.
WEBHOOK_ROOT = Path("/tmp/k8s-webhook-server")
SERVING_CERTS = WEBHOOK_ROOT / "serving-certs"


def _private_mounts() -> bool:
    """Whether ``unshare --mount`` (and a bind mount in it) works here."""
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


async def private_webhook_root(argv: Sequence[str], work_dir: Path) -> tuple[list[str], Path]:
    """``argv`` run with its own ``/tmp/k8s-webhook-server`` (a bind mount of a folder of
    ``work_dir`` in a private mount namespace) and the host path of its ``serving-certs``, where
    ``running_manager`` should put the certificate. Why: parallel test workers each run a JobSet
    or Trainer manager; in one shared folder one serves another's certificate, and its API server
    refuses it (``x509: certificate signed by unknown authority``). Without ``unshare``: ``argv``
    as given and the shared folder."""
    if not await asyncio.to_thread(_private_mounts):
        return list(argv), SERVING_CERTS
    private = work_dir / "k8s-webhook-server"
    for folder in (private, WEBHOOK_ROOT):
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    wrapped = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount --bind "$0" {WEBHOOK_ROOT} && exec "$@"',
        str(private),
        *argv,
    ]
    return wrapped, private / SERVING_CERTS.name
