"""No credential reaches a log line or an Event (issue 15).

``kubetrain operator`` runs at ``--log-level debug`` against an embedded API server that
authenticates bearer tokens, with its webhook server on (so it generates a CA and a serving key
and writes them to a Secret). It runs a job that succeeds, one that fails validation and one whose
pod fails; then its token is revoked for a few seconds (every request answered 401, the paths
that log failed requests) and restored. Every line the operator printed, every line this
process logged (the API server and node simulator run in it, at DEBUG), every Event and every
job status are then scanned for the bearer token and for the private keys' material.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.base.objects import Obj
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.informers.resource import EVENTS, ResourceRef, kubeflow
from kubetrain.reconcilers.api.crds import all_crds

BIN = Path(sys.executable).parent
KUBETRAIN = shutil.which("kubetrain", path=str(BIN)) or ""
CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
SECRETS = ResourceRef("", "v1", "secrets", True, "Secret")
PYTORCHJOBS = kubeflow("PyTorchJob")
TOKEN = "s3cr3t-operator-token-0123456789abcdef"
ADMIN_TOKEN = "s3cr3t-admin-token-fedcba9876543210"
SIM = "kubetrain.dev/sim-"

pytestmark = pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pytorchjob(name: str, replicas: dict[str, int], **master_annotations: str) -> Obj:
    specs = {
        rtype: {
            "replicas": n,
            "restartPolicy": "Never",
            "template": {
                "metadata": {"annotations": {SIM + "run-seconds": "0.2", **master_annotations}},
                "spec": {"containers": [{"name": "pytorch", "image": "busybox:1"}]},
            },
        }
        for rtype, n in replicas.items()
    }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"pytorchReplicaSpecs": specs},
    }


def read(path: str | Path) -> str:
    return Path(path).read_text(errors="replace")


def secrets_of(pem_or_b64: str) -> list[str]:
    """The substrings that would leak a PEM private key: each base64 line of its body (64
    characters, unique to the key) and the base64 of the whole PEM (a Secret's data)."""
    pem = pem_or_b64
    if "PRIVATE KEY" not in pem:
        pem = base64.b64decode(pem_or_b64).decode()
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return [line for line in body if len(line) >= 40] + [base64.b64encode(pem.encode()).decode()]


async def finished(client: ApiClient, name: str, timeout: float = 60) -> Obj:
    for _ in range(int(timeout * 10)):
        job = await client.get(PYTORCHJOBS, "default", name)
        conds = (job.get("status") or {}).get("conditions") or []
        if any(c["type"] in ("Succeeded", "Failed") and c["status"] == "True" for c in conds):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} did not finish: {job.get('status')}")


async def test_no_token_or_private_key_in_logs_events_or_statuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = {TOKEN: "operator", ADMIN_TOKEN: "admin"}
    options = ApiServerOptions(tokens=tokens)
    async with EmbeddedCluster(nodes=1, options=options) as cluster:
        assert TOKEN in read(cluster.kubeconfig_path)  # the operator's credential
        admin = ClientConfig(server=cluster.url, token=ADMIN_TOKEN)
        async with ApiClient(admin, ClientOptions(registry=CollectorRegistry())) as client:
            for crd in all_crds():
                await client.create(CRDS, crd)
            out = tmp_path / "operator.log"
            with out.open("wb") as sink:
                proc = await asyncio.create_subprocess_exec(
                    KUBETRAIN, "operator", "--kubeconfig", cluster.kubeconfig_path,
                    "--enable-scheme", "pytorchjob", "--log-level", "debug",
                    "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
                    "--webhook-server-port", str(free_port()), "--webhook-host", "127.0.0.1",
                    stdout=sink, stderr=asyncio.subprocess.STDOUT,
                )  # fmt: skip
                try:
                    await client.create(PYTORCHJOBS, pytorchjob("good", {"Master": 1}))
                    await client.create(PYTORCHJOBS, pytorchjob("invalid", {"Master": 2}))
                    await client.create(
                        PYTORCHJOBS, pytorchjob("crash", {"Master": 1}, **{SIM + "exit-code": "3"})
                    )
                    for name in ("good", "invalid", "crash"):
                        await finished(client, name)
                    secret = await _webhook_secret(client)
                    # Revoked: the operator's requests and watches are refused (401) and logged.
                    del tokens[TOKEN]
                    await client.create(PYTORCHJOBS, pytorchjob("during-401", {"Master": 1}))
                    await asyncio.sleep(4)
                    tokens[TOKEN] = "operator"
                    await finished(client, "during-401", timeout=90)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(proc.wait(), 30)
            events = (await client.list(EVENTS, "default"))["items"]
            jobs = (await client.list(PYTORCHJOBS, "default"))["items"]

    operator_log = read(out)
    assert "401" in operator_log or "Unauthorized" in operator_log, "the 401 path ran"
    assert "DEBUG" in operator_log.upper(), "debug lines were printed"
    keys = [secret[k] for k in ("tls.key", "ca.key") if k in secret]
    assert keys, f"no private key in the webhook Secret: {sorted(secret)}"
    forbidden = [TOKEN, ADMIN_TOKEN, *(s for k in keys for s in secrets_of(k))]
    texts = {
        "operator output": operator_log,
        "API server and node simulator logs": "\n".join(
            f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
        ),
        "events": repr(events),
        "job statuses": repr([j.get("status") for j in jobs]),
    }
    for where, text in texts.items():
        for value in forbidden:
            assert value not in text, f"a credential ({value[:8]}...) leaked into the {where}"


async def _webhook_secret(client: ApiClient) -> dict[str, Any]:
    for _ in range(300):
        for secret in (await client.list(SECRETS, None))["items"]:
            data: dict[str, Any] = secret.get("data") or {}
            if "tls.key" in data:
                return data
        await asyncio.sleep(0.1)
    raise AssertionError("the operator wrote no webhook certificate Secret")
