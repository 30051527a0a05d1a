"""``kubetrain operator`` and the kubeconfigs users have: an exec-plugin user against a server that
authenticates, and one clear line (no traceback) for a configuration it cannot use."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
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
QUIET = ["--metrics-bind-address", "0", "--health-probe-bind-address", "0"]

pytestmark = pytest.mark.skipif(not KUBETRAIN, reason="kubetrain entry point not installed")

PLUGIN = """\
import json, sys
with open(sys.argv[1], "a") as f:
    f.write("run\\n")
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": sys.argv[2]}}))
"""


def kubeconfig(path: Path, server: str, user: dict[str, Any], *, current: str = "c") -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "k", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def exec_user(tmp_path: Path, token: str, command: str = sys.executable) -> dict[str, Any]:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": command,
            "args": [str(script), str(tmp_path / "plugin.log"), token],
            "interactiveMode": "Never",
        }
    }


def run_operator(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBETRAIN, "operator", *args, *QUIET],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kubetrain: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def clean_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KUBERNETES_"))}
    env["HOME"] = str(tmp_path / "home")
    yield env


def test_a_missing_kubeconfig_file_is_one_line(tmp_path: Path, clean_env: dict[str, str]) -> None:
    result = run_operator("--kubeconfig", str(tmp_path / "nope"), env=clean_env)
    assert_one_line(result, str(tmp_path / "nope"), "does not exist", "pass an existing file")


def test_an_undefined_context_is_one_line(tmp_path: Path, clean_env: dict[str, str]) -> None:
    path = kubeconfig(tmp_path / "kc", "http://127.0.0.1:1", {"token": "x"}, current="gone")
    result = run_operator("--kubeconfig", str(path), env=clean_env)
    assert_one_line(result, "context 'gone' is not defined")


def test_an_exec_plugin_that_is_not_installed_is_one_line(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    user = exec_user(tmp_path, "t", command="kubelogin-not-installed")
    path = kubeconfig(tmp_path / "kc", "http://127.0.0.1:1", user)
    result = run_operator("--kubeconfig", str(path), env=clean_env)
    assert_one_line(result, "exec plugin of user", "kubelogin-not-installed", "kubectl config view")


def test_no_configuration_outside_a_cluster_is_one_line(clean_env: dict[str, str]) -> None:
    result = run_operator(env=clean_env)
    assert_one_line(result, "no cluster configuration found", "--kubeconfig")


async def test_the_operator_runs_with_an_exec_plugin_user(tmp_path: Path) -> None:
    token = "exec-issued-token"
    async with EmbeddedCluster(options=ApiServerOptions(tokens={token: "operator"})) as cluster:
        admin = ClientConfig(server=cluster.url, token=token)
        async with ApiClient(admin, ClientOptions(registry=CollectorRegistry())) as client:
            for crd in all_crds():
                await client.create(CRDS, crd)
            path = kubeconfig(tmp_path / "kc", cluster.url, exec_user(tmp_path, token))
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
        assert (tmp_path / "plugin.log").read_text().count("run") == 1
