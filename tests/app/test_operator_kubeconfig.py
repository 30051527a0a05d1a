"""``kubetrain operator`` with a kubeconfig whose user runs an exec credential plugin, against an
API server that authenticates bearer tokens: the operator process gets its credential from the
plugin and creates a job's pods. (Configurations it cannot use: ``test_operator_config_errors``.)
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from pathlib import Path

import pytest
from kubeconfigs import ExecPlugin, kubeconfig_doc, write_kubeconfig
from prometheus_client import CollectorRegistry

from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.informers.resource import PODS, ResourceRef, kubeflow
from kubetrain.reconcilers.api.crds import all_crds

BIN = Path(sys.executable).parent
KUBETRAIN = shutil.which("kubetrain", path=str(BIN)) or ""
CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
QUIET = [
    "--metrics-bind-address",
    "0",
    "--health-probe-bind-address",
    "0",
    "--webhook-server-port",
    "0",
]

pytestmark = pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")


async def test_the_operator_runs_with_an_exec_plugin_user(tmp_path: Path) -> None:
    token = "exec-issued-token"
    async with EmbeddedCluster(options=ApiServerOptions(tokens={token: "operator"})) as cluster:
        admin = ClientConfig(server=cluster.url, token=token)
        async with ApiClient(admin, ClientOptions(registry=CollectorRegistry())) as client:
            for crd in all_crds():
                await client.create(CRDS, crd)
            plugin = ExecPlugin(tmp_path, token)
            doc = kubeconfig_doc(cluster.url, user=plugin.user())
            path = write_kubeconfig(tmp_path / "kc", doc)
            proc = await asyncio.create_subprocess_exec(
                KUBETRAIN,
                "operator",
                "--kubeconfig",
                str(path),
                "--enable-scheme",
                "pytorchjob",
                *QUIET,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                job = {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "PyTorchJob",
                    "metadata": {"name": "j", "namespace": "default"},
                    "spec": {
                        "pytorchReplicaSpecs": {
                            "Master": {
                                "replicas": 1,
                                "template": {
                                    "spec": {"containers": [{"name": "pytorch", "image": "x"}]}
                                },
                            }
                        }
                    },
                }
                await client.create(kubeflow("PyTorchJob"), job)
                pods: list[str] = []
                for _ in range(300):
                    listed = await client.list(PODS, "default")
                    pods = [p["metadata"]["name"] for p in listed["items"]]
                    if pods:
                        break
                    await asyncio.sleep(0.1)
                assert pods == ["j-master-0"]
            finally:
                proc.send_signal(signal.SIGTERM)
                _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        assert b"Traceback" not in stderr, stderr.decode()
        assert cluster.api.authn is not None and cluster.api.authn.authenticated["operator"] > 2
        assert plugin.runs == 1  # no expiry given: one credential for the whole run
