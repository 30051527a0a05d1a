"""The reference Go operator (Kubeflow Training Operator v1.9.x, ``cmd/training-operator.v1``) as a
measured system, started like the others: its own process, one namespace, a kubeconfig.

Why a module of its own: the reference has no flag to run without its webhook server. At start it
runs open-policy-agent's cert-controller, which

1. reads Secret ``training-operator-webhook-cert`` in namespace ``$MY_POD_NAMESPACE`` and exits
   when it is missing (so ``start`` creates it empty; the rotator fills in a CA and a server cert);
2. waits for ``tls.crt``/``tls.key`` under ``CERT_DIR`` (in a pod, the Secret's volume mount;
   here ``start`` copies them out of the Secret), and only then registers the controllers;
3. injects its CA into ValidatingWebhookConfiguration ``validator.training-operator.kubeflow.org``;
   when that does not exist it only logs an error and goes on. We do not create it, so the API
   server never calls the reference's webhook (kubetrain's bench runs no webhook either).

``CERT_DIR`` is a constant of the reference (``/tmp/k8s-webhook-server/serving-certs``), shared by
every run on the machine; the files are only read by a webhook server that nobody calls.
The webhook server still listens: on a free port chosen here (``--webhook-server-port``).

Build the binary with ``tools/conformance/build_reference_operator.sh``; the path is
``$KUBETRAIN_REFERENCE_OPERATOR`` or ``DEFAULT_BINARY``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.resource import SECRETS

from .harness import HarnessError, ManagedProcess

__all__ = [
    "BINARY_ENV",
    "CERT_DIR",
    "DEFAULT_BINARY",
    "NO_LIMIT_QPS",
    "WEBHOOK_SECRET",
    "ReferenceOperatorProcess",
    "reference_binary",
]

REFERENCE_VERSION = "v1.9.3"
BINARY_ENV = "KUBETRAIN_REFERENCE_OPERATOR"
DEFAULT_BINARY = (
    Path(os.environ.get("KUBETRAIN_CACHE", Path.home() / ".cache" / "kubetrain"))
    / "conformance"
    / f"training-operator-{REFERENCE_VERSION}"
    / "bin"
    / "training-operator.v1"
)
"""Where ``build_reference_operator.sh`` puts the binary (same cache root rule)."""
CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")
"""The reference's constant (``pkg/cert``): where its webhook server reads tls.crt/tls.key."""
WEBHOOK_SECRET = "training-operator-webhook-cert"
"""The reference's ``--webhook-secret-name`` default."""
NO_LIMIT_QPS = 1_000_000
"""``--kube-api-qps``/``--kube-api-burst`` given for "no client-side limit" (the flags are ints and
the reference builds a token bucket from them unconditionally; 0 would block every request)."""


def reference_binary() -> Path:
    """The reference binary; ``HarnessError`` naming the build script when it is missing."""
    path = Path(os.environ.get(BINARY_ENV) or DEFAULT_BINARY)
    if not os.access(path, os.X_OK):
        raise HarnessError(
            f"reference operator binary {path} is missing: run "
            "tools/conformance/build_reference_operator.sh (needs Go and the module proxy), "
            f"or set {BINARY_ENV} to a training-operator.v1 binary"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ReferenceOperatorProcess(ManagedProcess):
    """``training-operator.v1 --enable-scheme pytorchjob --namespace NS`` with its cert Secret.

    ``qps``/``burst`` <= 0 mean no client-side limit (``NO_LIMIT_QPS``); ``extra_args`` come
    last (Go's flag package: the last value of a flag wins). ``start`` returns once
    the serving certificate is on disk, i.e. the reference is about to register its controllers.
    """

    def __init__(
        self,
        *,
        kubeconfig: str,
        namespace: str,
        log_path: Path,
        qps: float,
        burst: int,
        extra_args: tuple[str, ...] = (),
        cert_timeout_seconds: float = 30.0,
        harness_kubeconfig: str | None = None,
    ) -> None:
        binary = reference_binary()
        limit_qps = int(qps) if qps > 0 else NO_LIMIT_QPS
        limit_burst = burst if qps > 0 and burst > 0 else NO_LIMIT_QPS
        argv = [
            str(binary),
            "--enable-scheme", "pytorchjob",
            "--namespace", namespace,
            "--metrics-bind-address", "0",
            "--health-probe-bind-address", "0",
            "--webhook-server-port", str(_free_port()),
            "--kube-api-qps", str(limit_qps),
            "--kube-api-burst", str(limit_burst),
            *extra_args,
        ]  # fmt: skip
        super().__init__(
            "reference",
            argv,
            log_path=log_path,
            env={"KUBECONFIG": kubeconfig, "MY_POD_NAMESPACE": namespace},
        )
        self.kubeconfig = kubeconfig
        # The harness creates the Secret and reads the certificate back with its own identity;
        # the reference runs as ``kubeconfig`` (a service account's, on a real API server).
        self.harness_kubeconfig = harness_kubeconfig or kubeconfig
        self.namespace = namespace
        self.cert_timeout_seconds = cert_timeout_seconds

    async def start(self) -> None:
        client_options = ClientOptions(
            qps=0,
            adaptive=None,
            registry=CollectorRegistry(),
            user_agent="kubetrain-bench-reference",
        )
        config = await load_kubeconfig(self.harness_kubeconfig)
        async with ApiClient(config, client_options) as client:
            await self._create_secret(client)
            await super().start()
            secret = await self._wait_for_certs(client)
        _write_certs(secret)

    async def _create_secret(self, client: ApiClient) -> None:
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": WEBHOOK_SECRET, "namespace": self.namespace},
        }
        await client.create_if_absent(SECRETS, secret)

    async def _wait_for_certs(self, client: ApiClient) -> dict[str, Any]:
        deadline = time.monotonic() + self.cert_timeout_seconds
        while time.monotonic() < deadline:
            self.check_alive()
            secret: dict[str, Any] = await client.get(SECRETS, self.namespace, WEBHOOK_SECRET)
            data = secret.get("data") or {}
            if data.get("tls.crt") and data.get("tls.key"):
                return secret
            await asyncio.sleep(0.1)
        raise HarnessError(
            f"reference: Secret {self.namespace}/{WEBHOOK_SECRET} got no tls.crt/tls.key within "
            f"{self.cert_timeout_seconds} s (its cert rotator did not run); "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )


def _write_certs(secret: dict[str, Any]) -> None:
    """What the Secret's volume mount would hold in a pod: ``tls.crt`` and ``tls.key``."""
    CERT_DIR.mkdir(parents=True, exist_ok=True)
    for name, mode in (("tls.crt", 0o644), ("tls.key", 0o600)):
        path = CERT_DIR / name
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(base64.b64decode(secret["data"][name]))
        tmp.chmod(mode)
        tmp.replace(path)
