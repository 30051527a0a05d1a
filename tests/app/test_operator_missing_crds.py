"""``kubetrain operator`` started before its CRDs (installed in the wrong order): it names the
missing CRDs and how to install them at once, then waits for them with /readyz failing
(``--missing-crds wait``, the default) or runs the kinds whose CRDs exist (``skip``)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import PODS, ResourceRef, kubeflow
from kubetrain.operator import EXIT_NO_CRDS
from kubetrain.reconcilers.api.crds import crd
from kubetrain.reconcilers.api.kinds import JAXJOB, PYTORCHJOB

BIN = Path(sys.executable).parent
KUBETRAIN = shutil.which("kubetrain", path=str(BIN)) or ""
CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)

pytestmark = pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def job(name: str) -> dict[str, object]:
    container = {"name": "pytorch", "image": "x"}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "pytorchReplicaSpecs": {"Master": {"template": {"spec": {"containers": [container]}}}}
        },
    }


async def operator(kubeconfig: str, health: int, *flags: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        KUBETRAIN,
        "operator",
        "--kubeconfig",
        kubeconfig,
        "--metrics-bind-address",
        "0",
        "--health-probe-bind-address",
        f"127.0.0.1:{health}",
        "--webhook-server-port",
        "0",
        "--log-format",
        "text",
        *flags,
        stderr=asyncio.subprocess.PIPE,
    )


async def readyz(session: aiohttp.ClientSession, port: int) -> tuple[int, str]:
    for _ in range(100):
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz?verbose") as resp:
                return resp.status, await resp.text()
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError("/readyz never answered")


async def wait_ready(session: aiohttp.ClientSession, port: int) -> None:
    """Poll ``/readyz`` until it answers 200 (10 s); fail with its last answer."""
    for _ in range(100):
        status, text = await readyz(session, port)
        if status == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz still {status}: {text}")


async def first_pod(client: ApiClient) -> list[str]:
    for _ in range(300):
        pods = [p["metadata"]["name"] for p in (await client.list(PODS, "default"))["items"]]
        if pods:
            return pods
        await asyncio.sleep(0.1)
    return []


async def test_waits_for_the_crds_and_says_which_are_missing() -> None:
    async with EmbeddedCluster() as cluster:
        config = await load_kubeconfig(cluster.kubeconfig_path)
        options = ClientOptions(registry=new_registry(process_metrics=False))
        async with ApiClient(config, options) as client, aiohttp.ClientSession() as session:
            health = free_port()
            proc = await operator(cluster.kubeconfig_path, health, "--enable-scheme", "pytorchjob")
            try:
                status, text = await readyz(session, health)
                assert status == 500 and "waiting for the CRDs of PyTorchJob" in text, text
                await client.create(CRDS, crd(PYTORCHJOB))
                await wait_ready(session, health)
                await client.create(kubeflow("PyTorchJob"), job("late"))
                assert await first_pod(client) == ["late-master-0"]
            finally:
                proc.send_signal(signal.SIGTERM)
                _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    err = stderr.decode()
    assert "CRDs not installed: pytorchjobs.kubeflow.org" in err, err
    assert "kubectl apply --server-side -f deploy/crds/" in err
    assert "Traceback" not in err and "CacheSyncTimeoutError" not in err, err


async def test_skip_runs_the_kinds_whose_crds_exist() -> None:
    async with EmbeddedCluster() as cluster:
        config = await load_kubeconfig(cluster.kubeconfig_path)
        options = ClientOptions(registry=new_registry(process_metrics=False))
        async with ApiClient(config, options) as client:
            await client.create(CRDS, crd(PYTORCHJOB))
            proc = await operator(
                cluster.kubeconfig_path,
                free_port(),
                "--missing-crds",
                "skip",
                "--enable-scheme",
                "pytorchjob",
                "--enable-scheme",
                "jaxjob",
            )
            try:
                await client.create(kubeflow("PyTorchJob"), job("now"))
                assert await first_pod(client) == ["now-master-0"]
            finally:
                proc.send_signal(signal.SIGTERM)
                _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    err = stderr.decode()
    assert f"CRDs not installed: {JAXJOB.plural}.kubeflow.org" in err, err
    assert "running PyTorchJob only" in err
    assert "Traceback" not in err


async def test_skip_with_no_crd_at_all_exits_with_the_message() -> None:
    async with EmbeddedCluster() as cluster:
        proc = await operator(cluster.kubeconfig_path, free_port(), "--missing-crds", "skip")
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    err = stderr.decode()
    assert proc.returncode == EXIT_NO_CRDS, err
    assert "nothing to run" in err and "deploy/crds/" in err
    assert "Traceback" not in err
