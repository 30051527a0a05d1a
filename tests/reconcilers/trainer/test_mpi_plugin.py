"""The MPI runtime plugin of the TrainJob controller: ``jobset_build.py``'s MPI branch (counts,
volumes, mounts, env) and ``plugins/mpi.py`` (the hostfile ConfigMap and the SSH Secret), checked
field by field against Trainer v2.3.0's ``pkg/runtime/framework/plugins/mpi/mpi_test.go`` and
``pkg/runtime/core/trainingruntime_test.go`` ("OpenMPI values from the TrainJob"), on the
release's ``deepspeed-distributed`` and ``mlx-distributed`` runtimes and on variants of them.
"""

from __future__ import annotations

import base64
import copy
import time
from typing import Any, Literal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fakes import RecordingJobWriter, RecordingRecorder

from kubetrain.base.clock import FakeClock
from kubetrain.base.jsoncopy import json_copy
from kubetrain.engine.reconcile import Request
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.store import Store
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer.jobset_build import BuildError, build_jobset
from kubetrain.reconcilers.trainer.objects import SIDE_OBJECT_BUILDERS, build_objects
from kubetrain.reconcilers.trainer.plugins import mpi
from kubetrain.reconcilers.trainer.reconciler import TrainJobOptions, TrainJobReconciler
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

Obj = dict[str, Any]

SSH_VOLUME = {
    "name": "mpi-ssh-auth",
    "secret": {
        "secretName": "tj-mpi-ssh-auth",
        "defaultMode": 0o400,
        "items": [
            {"key": "ssh-privatekey", "path": "id_rsa", "mode": 0o640},
            {"key": "ssh-publickey", "path": "id_rsa.pub", "mode": 0o644},
            {"key": "ssh-publickey", "path": "authorized_keys", "mode": 0o644},
        ],
    },
}
HOSTFILE_VOLUME = {
    "name": "mpi-hostfile",
    "configMap": {
        "name": "tj-mpi-hostfile",
        "items": [{"key": "hostfile", "path": "hostfile", "mode": 0o444}],
    },
}
MOUNT = "/home/mpiuser/.ssh"
OWNER = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "TrainJob",
    "name": "tj",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def launcher_env(slots: str) -> list[Obj]:
    return [
        {"name": "OMPI_MCA_orte_default_hostfile", "value": "/etc/mpi/hostfile"},
        {"name": "OMPI_MCA_orte_keep_fqdn_hostnames", "value": "true"},
        {"name": "OMPI_MCA_orte_set_default_slots", "value": slots},
        {"name": "OMPI_MCA_plm_rsh_args", "value": "-o ConnectionAttempts=10"},
    ]


def runtime_spec(name: str = "deepspeed-distributed") -> Obj:
    (found,) = [r for r in builtin_runtimes() if r["metadata"]["name"] == name]
    spec: Obj = found["spec"]
    return spec


def launcher_not_node(spec: Obj) -> Obj:
    """``spec`` with ``runLauncherAsNode: false``."""
    out = json_copy(spec)
    out["mlPolicy"]["mpi"]["runLauncherAsNode"] = False
    return out


def trainjob(name: str = "tj", **trainer: Any) -> Obj:
    spec: Obj = {"runtimeRef": {"name": "deepspeed-distributed"}}
    if trainer:
        spec["trainer"] = trainer
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": "team-a", "uid": "uid-1"},
        "spec": spec,
    }


def rjob(jobset: Obj, name: str) -> Obj:
    (found,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == name]
    return found


def pod_spec(jobset: Obj, name: str) -> Obj:
    spec: Obj = rjob(jobset, name)["template"]["spec"]["template"]["spec"]
    return spec


def node_container(jobset: Obj, name: str) -> Obj:
    (container,) = [c for c in pod_spec(jobset, name)["containers"] if c["name"] == "node"]
    return container


def counts(jobset: Obj) -> dict[str, tuple[int, int]]:
    return {
        r["name"]: (r["template"]["spec"]["parallelism"], r["template"]["spec"]["completions"])
        for r in jobset["spec"]["replicatedJobs"]
    }


def side(job: Obj, spec: Obj) -> tuple[Obj, Obj, Obj]:
    """(JobSet, hostfile ConfigMap, SSH Secret) from ``build_objects``."""
    built = build_objects(job, spec)
    (configmap,) = built.applied
    (secret,) = built.created
    return built.jobset, configmap, secret


# -- the JobSet -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runtime_name", "image"),
    [
        ("deepspeed-distributed", "ghcr.io/kubeflow/trainer/deepspeed-runtime:v2.3.0"),
        ("mlx-distributed", "ghcr.io/kubeflow/trainer/mlx-runtime:v2.3.0"),
    ],
)
def test_builtin_runtime_with_launcher_as_node_volumes_mounts_and_env(
    runtime_name: str, image: str
) -> None:
    job = trainjob(numNodes=3, env=[{"name": "LR", "value": "0.1"}])
    job["spec"]["runtimeRef"]["name"] = runtime_name
    jobset = build_jobset(job, runtime_spec(runtime_name))

    assert [r["name"] for r in jobset["spec"]["replicatedJobs"]] == ["node", "launcher"]
    # numNodes 3 with runLauncherAsNode: the launcher is one of the 3, so 2 node pods
    assert counts(jobset) == {"node": (2, 2), "launcher": (1, 1)}
    assert "replicas" not in rjob(jobset, "node")
    assert rjob(jobset, "launcher")["replicas"] == 1
    assert rjob(jobset, "launcher")["dependsOn"] == [{"name": "node", "status": "Ready"}]
    assert jobset["spec"]["successPolicy"] == {
        "operator": "All",
        "targetReplicatedJobs": ["launcher"],
    }
    assert jobset["spec"]["network"] == {"publishNotReadyAddresses": True}

    assert pod_spec(jobset, "node")["volumes"] == [SSH_VOLUME]
    assert pod_spec(jobset, "launcher")["volumes"] == [SSH_VOLUME, HOSTFILE_VOLUME]
    node = node_container(jobset, "node")
    launcher = node_container(jobset, "launcher")
    assert node["volumeMounts"] == [{"name": "mpi-ssh-auth", "mountPath": MOUNT}]
    assert launcher["volumeMounts"] == [
        {"name": "mpi-ssh-auth", "mountPath": MOUNT},
        {"name": "mpi-hostfile", "mountPath": "/etc/mpi"},
    ]
    # the launcher: the OpenMPI env, then the TrainJob's; job node (it trains too): the TrainJob's
    assert launcher["env"] == [*launcher_env("1"), {"name": "LR", "value": "0.1"}]
    assert node["env"] == [{"name": "LR", "value": "0.1"}]
    # the runtime's sshd stays on job node; the launcher keeps the runtime's image
    assert node["command"] == ["/usr/sbin/sshd"]
    assert node["image"] == launcher["image"] == image
    assert "command" not in launcher


def test_trainjob_image_and_command_reach_the_launcher_only() -> None:
    job = trainjob(numNodes=2, image="example.com/ds:1", command=["mpirun", "python", "t.py"])
    jobset = build_jobset(job, runtime_spec())
    launcher = node_container(jobset, "launcher")
    node = node_container(jobset, "node")
    assert (launcher["image"], launcher["command"]) == (
        "example.com/ds:1",
        job["spec"]["trainer"]["command"],
    )
    assert node["image"] == "ghcr.io/kubeflow/trainer/deepspeed-runtime:v2.3.0"
    assert node["command"] == ["/usr/sbin/sshd"]


@pytest.mark.parametrize(
    ("num_nodes", "as_node", "node_count"),
    [
        (10, True, 9),  # mpi_test.go "runLauncherAsNode is true"
        (2, True, 1),
        (1, True, 1),  # numNodes - 1 is 0: at least 1
        (2, False, 2),  # mpi_test.go "trainJob numNodes is respected rather than mlPolicy one"
        (5, False, 5),
        (None, True, 1),  # no numNodes: the template's parallelism (absent: 1)
    ],
)
def test_node_count(num_nodes: int | None, as_node: bool, node_count: int) -> None:
    spec = runtime_spec() if as_node else launcher_not_node(runtime_spec())
    job = trainjob() if num_nodes is None else trainjob(numNodes=num_nodes)
    assert counts(build_jobset(job, spec)) == {
        "node": (node_count, node_count),
        "launcher": (1, 1),
    }


def test_launcher_keeps_mlpolicy_numnodes_as_go_does() -> None:
    """Only job ``node`` takes the TrainJob's numNodes; the launcher (the trainer ancestor) keeps
    ``mlPolicy.numNodes``, as newRuntimeInfo sets it (MPI runs no PlainML that would change it)."""
    spec = runtime_spec()
    spec["mlPolicy"]["numNodes"] = 2
    assert counts(build_jobset(trainjob(numNodes=4), spec)) == {"node": (3, 3), "launcher": (2, 2)}


def test_without_launcher_as_node_job_node_gets_no_trainjob_env_or_resources() -> None:
    spec = launcher_not_node(runtime_spec())
    job = trainjob(
        numNodes=2,
        env=[{"name": "LR", "value": "0.1"}],
        resourcesPerNode={"requests": {"cpu": "2"}},
    )
    jobset = build_jobset(job, spec)
    node = node_container(jobset, "node")
    assert "env" not in node and "resources" not in node
    launcher = node_container(jobset, "launcher")
    assert launcher["env"] == [*launcher_env("1"), {"name": "LR", "value": "0.1"}]
    assert launcher["resources"] == {"requests": {"cpu": "2"}}
    assert pod_spec(jobset, "node")["volumes"] == [SSH_VOLUME]
    assert pod_spec(jobset, "launcher")["volumes"] == [SSH_VOLUME, HOSTFILE_VOLUME]


def test_launcher_as_node_merges_resources_per_node_into_job_node() -> None:
    """trainer#3602: with runLauncherAsNode job ``node`` gets the TrainJob's resourcesPerNode."""
    job = trainjob(numNodes=2, resourcesPerNode={"limits": {"nvidia.com/gpu": "2"}})
    jobset = build_jobset(job, runtime_spec())
    for name in ("node", "launcher"):
        assert node_container(jobset, name)["resources"] == {"limits": {"nvidia.com/gpu": "2"}}


@pytest.mark.parametrize(
    ("runtime_nproc", "trainer", "slots"),
    [
        (1, {}, "1"),
        # mpi_test.go "trainJob numProcPerNode is respected rather than mlPolicy one"
        (1, {"numProcPerNode": 2}, "2"),
        # trainingruntime_test.go "OpenMPI values from the TrainJob"
        (1, {"numNodes": 2, "numProcPerNode": 8}, "8"),
        # mpi_test.go "numProcPerNode is set to number of GPUs in TrainJob"
        (1, {"resourcesPerNode": {"limits": {"custom.com/gpu": "5"}}}, "5"),
        (1, {"resourcesPerNode": {"requests": {"nvidia.com/gpu": "1"}}}, "1"),
        (3, {"resourcesPerNode": {"limits": {"nvidia.com/gpu": "4"}}}, "3"),  # runtime's != 1
        (1, {"numProcPerNode": 2, "resourcesPerNode": {"limits": {"nvidia.com/gpu": "4"}}}, "2"),
    ],
)
def test_slots_in_env_and_hostfile(runtime_nproc: int, trainer: Obj, slots: str) -> None:
    spec = launcher_not_node(runtime_spec())
    spec["mlPolicy"]["mpi"]["numProcPerNode"] = runtime_nproc
    jobset, configmap, _ = side(trainjob(**trainer), spec)
    assert node_container(jobset, "launcher")["env"] == launcher_env(slots)
    count = counts(jobset)["node"][0]
    assert configmap["data"]["hostfile"] == "".join(
        f"tj-node-0-{i}.tj slots={slots}\n" for i in range(count)
    )


def test_slots_from_gpus_in_the_runtime_template() -> None:
    spec = runtime_spec()
    for rj in spec["template"]["spec"]["replicatedJobs"]:
        rj["template"]["spec"]["template"]["spec"]["containers"][0]["resources"] = {
            "limits": {"nvidia.com/gpu": "4"}
        }
    jobset, configmap, _ = side(trainjob(numNodes=2), spec)
    assert node_container(jobset, "launcher")["env"] == launcher_env("4")
    assert configmap["data"]["hostfile"] == "tj-node-0-0.tj slots=4\ntj-launcher-0-0.tj slots=4\n"


def test_runtime_volumes_and_mounts_are_upserted_by_name_and_mount_path() -> None:
    spec = runtime_spec()
    pod = spec["template"]["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "data", "emptyDir": {}}, {"name": "mpi-hostfile", "emptyDir": {}}]
    pod["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": "/data"},
        {"name": "old-hosts", "mountPath": "/etc/mpi"},
    ]
    pod["containers"][0]["env"] = [{"name": "OMPI_MCA_orte_set_default_slots", "value": "99"}]
    launcher = pod_spec(build_jobset(trainjob(numNodes=2), spec), "launcher")
    assert launcher["volumes"] == [{"name": "data", "emptyDir": {}}, HOSTFILE_VOLUME, SSH_VOLUME]
    assert launcher["containers"][0]["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"name": "mpi-hostfile", "mountPath": "/etc/mpi"},
        {"name": "mpi-ssh-auth", "mountPath": MOUNT},
    ]
    env = launcher["containers"][0]["env"]
    assert env[0] == {"name": "OMPI_MCA_orte_set_default_slots", "value": "1"}
    assert [e["name"] for e in env] == [
        "OMPI_MCA_orte_set_default_slots",
        "OMPI_MCA_orte_default_hostfile",
        "OMPI_MCA_orte_keep_fqdn_hostnames",
        "OMPI_MCA_plm_rsh_args",
    ]


def test_mpi_defaults_when_the_policy_leaves_them_out() -> None:
    """The CRD's defaults: 1 slot, OpenMPI, ``/root/.ssh``, runLauncherAsNode false."""
    spec = runtime_spec()
    spec["mlPolicy"]["mpi"] = {}
    jobset, configmap, _ = side(trainjob(numNodes=2), spec)
    assert counts(jobset)["node"] == (2, 2)
    assert node_container(jobset, "node")["volumeMounts"] == [
        {"name": "mpi-ssh-auth", "mountPath": "/root/.ssh"}
    ]
    assert node_container(jobset, "launcher")["env"] == launcher_env("1")
    assert configmap["data"]["hostfile"] == "tj-node-0-0.tj slots=1\ntj-node-0-1.tj slots=1\n"


def test_an_implementation_other_than_openmpi_is_a_build_error() -> None:
    spec = runtime_spec()
    spec["mlPolicy"]["mpi"]["mpiImplementation"] = ""
    with pytest.raises(BuildError, match="MPI implementation"):
        build_jobset(trainjob(numNodes=2), spec)


def test_other_runtimes_get_no_mpi_volumes_and_no_side_objects() -> None:
    spec = runtime_spec("torch-distributed")
    job = trainjob(numNodes=2)
    job["spec"]["runtimeRef"]["name"] = "torch-distributed"
    built = build_objects(job, spec)
    (node,) = built.jobset["spec"]["replicatedJobs"]
    assert "volumes" not in node["template"]["spec"]["template"]["spec"]
    assert mpi.build_mpi_objects(job, spec, built.jobset).applied == []
    assert mpi.build_mpi_objects(job, spec, built.jobset).created == []
    assert not any(o["kind"] in ("ConfigMap", "Secret") for o in built.applied + built.created)


def test_the_builder_is_registered_once() -> None:
    assert SIDE_OBJECT_BUILDERS.count(mpi.build_mpi_objects) == 1


# -- the hostfile ConfigMap -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_nodes", "as_node", "hostfile"),
    [
        # the runtime's job order: node first, then the launcher when it trains too
        (3, True, "tj-node-0-0.tj slots=1\ntj-node-0-1.tj slots=1\ntj-launcher-0-0.tj slots=1\n"),
        (1, True, "tj-node-0-0.tj slots=1\ntj-launcher-0-0.tj slots=1\n"),
        (2, False, "tj-node-0-0.tj slots=1\ntj-node-0-1.tj slots=1\n"),
    ],
)
def test_hostfile_configmap(num_nodes: int, as_node: bool, hostfile: str) -> None:
    spec = runtime_spec() if as_node else launcher_not_node(runtime_spec())
    _, configmap, _ = side(trainjob(numNodes=num_nodes), spec)
    assert configmap == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "tj-mpi-hostfile",
            "namespace": "team-a",
            "labels": {"trainer.kubeflow.org/trainjob-name": "tj"},
            "ownerReferences": [OWNER],
        },
        "data": {"hostfile": hostfile},
    }


def test_hostfile_launcher_first_as_in_mpi_test_go() -> None:
    """mpi_test.go "runLauncherAsNode is true": the launcher's job listed first comes first."""
    spec = runtime_spec()
    jobs = spec["template"]["spec"]["replicatedJobs"]
    jobs.reverse()
    jobs[0].pop("dependsOn")
    _, configmap, _ = side(trainjob(numNodes=3), spec)
    assert configmap["data"]["hostfile"] == (
        "tj-launcher-0-0.tj slots=1\ntj-node-0-0.tj slots=1\ntj-node-0-1.tj slots=1\n"
    )


def test_hostfile_uses_the_network_subdomain_and_node_replicas() -> None:
    spec = launcher_not_node(runtime_spec())
    spec["template"]["spec"]["network"]["subdomain"] = "mpi-net"
    spec["template"]["spec"]["replicatedJobs"][0]["replicas"] = 2
    _, configmap, _ = side(trainjob(numNodes=2), spec)
    assert configmap["data"]["hostfile"] == (
        "tj-node-0-0.mpi-net slots=1\ntj-node-0-1.mpi-net slots=1\n"
        "tj-node-1-0.mpi-net slots=1\ntj-node-1-1.mpi-net slots=1\n"
    )


# -- the SSH Secret -------------------------------------------------------------------------------


def test_ssh_secret_is_immutable_ssh_auth_with_a_valid_p521_pair() -> None:
    _, _, secret = side(trainjob(numNodes=2), runtime_spec())
    assert secret["apiVersion"] == "v1" and secret["kind"] == "Secret"
    assert secret["metadata"] == {
        "name": "tj-mpi-ssh-auth",
        "namespace": "team-a",
        "labels": {"trainer.kubeflow.org/trainjob-name": "tj"},
        "ownerReferences": [OWNER],
    }
    assert secret["type"] == "kubernetes.io/ssh-auth"
    assert secret["immutable"] is True
    assert sorted(secret["data"]) == ["ssh-privatekey", "ssh-publickey"]

    private_pem = base64.b64decode(secret["data"]["ssh-privatekey"])
    public_line = base64.b64decode(secret["data"]["ssh-publickey"])
    assert private_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp521r1"
    # ssh.MarshalAuthorizedKey: "<type> <base64>\n", the public half of the private key
    assert public_line.startswith(b"ecdsa-sha2-nistp521 ") and public_line.endswith(b"\n")
    assert public_line.count(b" ") == 1
    expected = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    assert public_line == expected + b"\n"
    loaded = serialization.load_ssh_public_key(public_line.strip())
    assert isinstance(loaded, ec.EllipticCurvePublicKey) and loaded.curve.name == "secp521r1"


def test_each_build_makes_a_new_key_and_takes_well_under_a_millisecond_each() -> None:
    job = trainjob(numNodes=2)
    spec = runtime_spec()
    jobset = build_jobset(job, spec)
    mpi.build_mpi_objects(job, spec, jobset)  # warm up
    rounds = 20
    start = time.perf_counter()
    keys = {
        mpi.build_mpi_objects(job, spec, jobset).created[0]["data"]["ssh-privatekey"]
        for _ in range(rounds)
    }
    per_call = (time.perf_counter() - start) / rounds
    assert len(keys) == rounds
    assert per_call < 0.05  # about 0.2 ms here; a generous bound for a loaded machine


# -- the reconciler -------------------------------------------------------------------------------


class ApplyingWriter(RecordingJobWriter):
    """``RecordingJobWriter`` that also takes server-side applies (``("apply", plural, name)``)."""

    async def patch(  # type: ignore[override]
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: Literal["merge", "json", "strategic", "apply"] = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> Obj:
        if patch_type == "apply":
            self._request("apply", ref, name)
            return self._store(ref, patch)
        return await super().patch(
            ref, namespace, name, patch, subresource=subresource, field_manager=field_manager
        )


def reconciler_for(job: Obj) -> tuple[TrainJobReconciler, ApplyingWriter, RecordingRecorder]:
    trainjobs, cluster_runtimes = Store(), Store()
    trainjobs.upsert(copy.deepcopy(job))
    for runtime in builtin_runtimes():
        cluster_runtimes.upsert(runtime)
    client, recorder = ApplyingWriter(jobs=trainjobs), RecordingRecorder()
    reconciler = TrainJobReconciler(
        client=client,
        trainjobs=Lister(trainjobs),
        jobsets=Lister(Store()),
        training_runtimes=Lister(Store()),
        cluster_training_runtimes=Lister(cluster_runtimes),
        configmaps=Lister(Store()),
        recorder=recorder,
        options=TrainJobOptions(clock=FakeClock()),
    )
    return reconciler, client, recorder


def stored_trainjob(**trainer: Any) -> Obj:
    job = trainjob(**trainer)
    job["metadata"].update(resourceVersion="1", creationTimestamp="2026-01-01T00:00:00Z")
    return job


async def test_reconciler_creates_the_secret_applies_the_configmap_then_the_jobset() -> None:
    reconciler, client, recorder = reconciler_for(stored_trainjob(numNodes=2))
    await reconciler.reconcile(Request.from_key("team-a/tj"))
    mine = ("tj-mpi-ssh-auth", "tj-mpi-hostfile", "tj")
    side_requests = [r for r in client.requests if r[1] != "trainjobs" and r[2] in mine]
    assert side_requests == [
        ("create", "secrets", "tj-mpi-ssh-auth"),
        ("apply", "configmaps", "tj-mpi-hostfile"),
        ("apply", "jobsets", "tj"),
    ]
    secret = client.objects[("secrets", "team-a", "tj-mpi-ssh-auth")]
    assert secret["immutable"] is True and secret["type"] == "kubernetes.io/ssh-auth"
    configmap = client.objects[("configmaps", "team-a", "tj-mpi-hostfile")]
    assert configmap["data"]["hostfile"] == "tj-node-0-0.tj slots=1\ntj-launcher-0-0.tj slots=1\n"
    jobset = client.objects[("jobsets", "team-a", "tj")]
    assert counts(jobset) == {"node": (1, 1), "launcher": (1, 1)}
    assert recorder.events == []


async def test_reconciler_takes_an_existing_secret_as_created() -> None:
    reconciler, client, recorder = reconciler_for(stored_trainjob(numNodes=2))
    client.errors[("create", "tj-mpi-ssh-auth")] = ApiStatusError(409, reason="AlreadyExists")
    await reconciler.reconcile(Request.from_key("team-a/tj"))
    assert ("apply", "configmaps", "tj-mpi-hostfile") in client.requests
    assert ("apply", "jobsets", "tj") in client.requests
    assert ("secrets", "team-a", "tj-mpi-ssh-auth") not in client.objects
    assert recorder.events == []
