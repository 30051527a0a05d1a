"""MPI TrainJobs end to end: ``kubectl apply`` of a TrainJob on the built-in
``deepspeed-distributed`` and ``mlx-distributed`` ClusterTrainingRuntimes (MPI, OpenMPI,
``runLauncherAsNode``), the TrainJob controller's JobSet with its hostfile ConfigMap and SSH
Secret, the JobSet controller's two Jobs (``launcher`` waits for ``node`` Ready) and the
simulated nodes' pods, and the status that comes back. On the embedded cluster and, under
``--apiserver=real``, on a real kube-apiserver with the real JobSet controller, where the API
server itself checks the ``kubernetes.io/ssh-auth`` Secret and its immutability.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jobkit_e2e import Env, poll
from trainjob_e2e import Obj, condition, get, open_trainer_env, run_kubectl, trainjob

from kubetrain.informers.resource import CONFIGMAPS, PODS, SECRETS
from kubetrain.reconcilers.trainer.resources import JOBSETS, TRAINJOBS

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

SSH_MOUNT = "/home/mpiuser/.ssh"
OMPI_ENV = [
    {"name": "OMPI_MCA_orte_default_hostfile", "value": "/etc/mpi/hostfile"},
    {"name": "OMPI_MCA_orte_keep_fqdn_hostnames", "value": "true"},
    {"name": "OMPI_MCA_orte_set_default_slots", "value": "1"},
    {"name": "OMPI_MCA_plm_rsh_args", "value": "-o ConnectionAttempts=10"},
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory):
        yield e


def ssh_volume(name: str) -> Obj:
    return {
        "name": "mpi-ssh-auth",
        "secret": {
            "secretName": f"{name}-mpi-ssh-auth",
            "defaultMode": 0o400,
            "items": [
                {"key": "ssh-privatekey", "path": "id_rsa", "mode": 0o640},
                {"key": "ssh-publickey", "path": "id_rsa.pub", "mode": 0o644},
                {"key": "ssh-publickey", "path": "authorized_keys", "mode": 0o644},
            ],
        },
    }


def hostfile_volume(name: str) -> Obj:
    return {
        "name": "mpi-hostfile",
        "configMap": {
            "name": f"{name}-mpi-hostfile",
            "items": [{"key": "hostfile", "path": "hostfile", "mode": 0o444}],
        },
    }


def owned_by(obj: Obj, trainjob_obj: Obj) -> None:
    (owner,) = obj["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "name": trainjob_obj["metadata"]["name"],
        "uid": trainjob_obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def replicated(jobset: Obj, name: str) -> Obj:
    (found,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == name]
    return found


def node_container(rjob: Obj) -> Obj:
    (container,) = rjob["template"]["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "node"
    return container


async def run_mpi_trainjob(env: Env, prefix: str, runtime: str, num_nodes: int, image: str) -> None:
    """Apply a TrainJob on ``runtime`` with ``num_nodes`` and check everything it makes."""
    ns = await env.namespace(prefix)
    name = "mpi"
    job = trainjob(
        name,
        ns,
        runtimeRef={"name": runtime},
        trainer={
            "numNodes": num_nodes,
            "command": ["mpirun", "python", "train.py"],
            "env": [{"name": "EPOCHS", "value": "3"}],
        },
    )
    out = await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))
    assert out.returncode == 0, out.stderr
    node_pods = max(num_nodes - 1, 1)  # runLauncherAsNode: the launcher is one of the nodes

    # -- the JobSet
    jobset = await poll(lambda: get(env, JOBSETS, ns, name), timeout=30, what="the JobSet")
    tj = await get(env, TRAINJOBS, ns, name)
    assert tj is not None
    owned_by(jobset, tj)
    assert [r["name"] for r in jobset["spec"]["replicatedJobs"]] == ["node", "launcher"]
    assert jobset["spec"]["successPolicy"]["targetReplicatedJobs"] == ["launcher"]
    assert jobset["spec"]["network"]["publishNotReadyAddresses"] is True
    node, launcher = replicated(jobset, "node"), replicated(jobset, "launcher")
    assert launcher["dependsOn"] == [{"name": "node", "status": "Ready"}]
    assert (node["replicas"], launcher["replicas"]) == (1, 1)
    node_job, launcher_job = node["template"]["spec"], launcher["template"]["spec"]
    assert (node_job["parallelism"], node_job["completions"]) == (node_pods, node_pods)
    assert (launcher_job["parallelism"], launcher_job["completions"]) == (1, 1)

    node_pod_spec = node_job["template"]["spec"]
    launcher_pod_spec = launcher_job["template"]["spec"]
    assert node_pod_spec["volumes"] == [ssh_volume(name)]
    assert launcher_pod_spec["volumes"] == [ssh_volume(name), hostfile_volume(name)]
    node_c, launcher_c = node_container(node), node_container(launcher)
    assert node_c["volumeMounts"] == [{"name": "mpi-ssh-auth", "mountPath": SSH_MOUNT}]
    assert launcher_c["volumeMounts"] == [
        {"name": "mpi-ssh-auth", "mountPath": SSH_MOUNT},
        {"name": "mpi-hostfile", "mountPath": "/etc/mpi"},
    ]
    assert launcher_c["env"] == [*OMPI_ENV, {"name": "EPOCHS", "value": "3"}]
    assert node_c["env"] == [{"name": "EPOCHS", "value": "3"}]  # the launcher-as-node rule
    assert launcher_c["command"] == ["mpirun", "python", "train.py"]
    assert launcher_c["image"] == node_c["image"] == image
    assert node_c["command"] == ["/usr/sbin/sshd"]  # job node keeps the runtime's sshd

    # -- the hostfile ConfigMap
    configmap = await get(env, CONFIGMAPS, ns, f"{name}-mpi-hostfile")
    assert configmap is not None
    owned_by(configmap, tj)
    hosts = [f"{name}-node-0-{i}.{name}" for i in range(node_pods)] + [
        f"{name}-launcher-0-0.{name}"
    ]
    assert configmap["data"] == {"hostfile": "".join(f"{h} slots=1\n" for h in hosts)}

    # -- the SSH Secret
    secret = await get(env, SECRETS, ns, f"{name}-mpi-ssh-auth")
    assert secret is not None
    owned_by(secret, tj)
    assert secret["type"] == "kubernetes.io/ssh-auth"
    assert secret["immutable"] is True
    assert sorted(secret["data"]) == ["ssh-privatekey", "ssh-publickey"]
    key = serialization.load_pem_private_key(
        base64.b64decode(secret["data"]["ssh-privatekey"]), password=None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp521r1"
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert base64.b64decode(secret["data"]["ssh-publickey"]) == public + b"\n"

    # -- the TrainJob completes when the launcher does
    async def complete() -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, name)
        return tj if tj is not None and condition(tj, "Complete") else None

    done = await poll(complete, timeout=90, what="TrainJob Complete")
    statuses = {s["name"]: s for s in done["status"]["jobsStatus"]}
    assert set(statuses) == {"node", "launcher"}
    assert statuses["launcher"]["succeeded"] == 1
    assert statuses["launcher"]["failed"] == 0

    # -- the pods: hostnames in the subdomain, the Secret (and the launcher's hostfile) mounted
    pods = {p["metadata"]["name"]: p for p in await env.client.list_all(PODS, ns)}
    by_host = {p["spec"]["hostname"]: p for p in pods.values()}
    assert set(by_host) == {h.split(".")[0] for h in hosts}
    for host, pod in by_host.items():
        assert pod["spec"]["subdomain"] == name
        (container,) = pod["spec"]["containers"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert mounts["mpi-ssh-auth"] == SSH_MOUNT
        assert volumes["mpi-ssh-auth"] == ssh_volume(name)
        if "launcher" in host:
            assert mounts["mpi-hostfile"] == "/etc/mpi"
            assert volumes["mpi-hostfile"]["configMap"]["name"] == f"{name}-mpi-hostfile"
        else:
            assert "mpi-hostfile" not in mounts and "mpi-hostfile" not in volumes

    # the Secret was created once: still the same key after the TrainJob finished
    again = await get(env, SECRETS, ns, f"{name}-mpi-ssh-auth")
    assert again is not None and again["data"] == secret["data"]


@pytest.mark.parametrize("num_nodes", [2, 3])
async def test_a_deepspeed_trainjob_runs_launcher_and_nodes_and_completes(
    env: Env, num_nodes: int
) -> None:
    await run_mpi_trainjob(
        env,
        f"tj-ds{num_nodes}",
        "deepspeed-distributed",
        num_nodes,
        "ghcr.io/kubeflow/trainer/deepspeed-runtime:v2.3.0",
    )


async def test_an_mlx_trainjob_runs_launcher_and_nodes_and_completes(env: Env) -> None:
    await run_mpi_trainjob(
        env, "tj-mlx", "mlx-distributed", 2, "ghcr.io/kubeflow/trainer/mlx-runtime:v2.3.0"
    )


async def test_a_suspended_mpi_trainjob_keeps_its_first_ssh_key_when_resumed(env: Env) -> None:
    """The Secret is created once: re-applies while suspended and the resume keep its key."""
    ns = await env.namespace("tj-mpi-suspend")
    job = trainjob(
        "held", ns, suspend=True, runtimeRef={"name": "deepspeed-distributed"},
        trainer={"numNodes": 2},
    )  # fmt: skip
    assert (await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))).returncode == 0

    first = await poll(
        lambda: get(env, SECRETS, ns, "held-mpi-ssh-auth"), timeout=30, what="the Secret"
    )
    jobset = await poll(lambda: get(env, JOBSETS, ns, "held"), what="the suspended JobSet")
    assert jobset["spec"]["suspend"] is True
    patch = '{"spec":{"suspend":false}}'
    out = await run_kubectl(env, "patch", "trainjob", "held", "-n", ns, "--type=merge", "-p", patch)
    assert out.returncode == 0, out.stderr

    async def complete() -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, "held")
        return tj if tj is not None and condition(tj, "Complete") else None

    await poll(complete, timeout=90, what="Complete after resume")
    after = await get(env, SECRETS, ns, "held-mpi-ssh-auth")
    assert after is not None
    assert after["data"] == first["data"]
    assert after["metadata"]["uid"] == first["metadata"]["uid"]
