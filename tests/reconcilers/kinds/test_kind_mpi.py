"""MPIJob v1 objects and pod decoration (reference 1.7)."""

from __future__ import annotations

from jobkit import make_job, make_pod

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.common.pods import build_pod
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.kinds.base import DomainOptions
from kubetrain.reconcilers.kinds.mpi import config_map, launcher_rbac

MPI = ADAPTERS["MPIJob"]


def mpi_job(**extra: object) -> dict:
    return default_job(MPI.kind, make_job("MPIJob", {"Launcher": 1, "Worker": 2}, **extra))


def test_config_map_texts() -> None:
    job = mpi_job(slotsPerWorker=2, mainContainer="trainer")
    pods = [
        make_pod(job, "Worker", 1, "Running"),
        make_pod(job, "Worker", 0, "Running"),
        make_pod(job, "Launcher", 0, "Running"),
    ]
    cm = config_map(job, pods)
    assert cm["metadata"]["name"] == "j-config" and cm["metadata"]["labels"] == {"app": "j"}
    assert cm["data"] == {
        "hostfile": "j-worker-0 slots=2\nj-worker-1 slots=2\n",
        "kubexec.sh": (
            "#!/bin/sh\nset -x\nPOD_NAME=$1\nshift\n/opt/kube/kubectl exec ${POD_NAME} "
            '--container trainer -- /bin/sh -c "$*"'
        ),
        "discover_hosts.sh": "#!/bin/sh\necho j-worker-0:2\necho j-worker-1:2",
    }


def test_gpu_launcher_lines() -> None:
    job = mpi_job()
    launcher = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]["containers"][0]
    launcher["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    cm = config_map(job, [make_pod(job, "Worker", 0, "Running")])
    assert cm["data"]["hostfile"] == "j-launcher slots=1\nj-worker-0 slots=1\nj-worker-1 slots=1\n"
    assert cm["data"]["discover_hosts.sh"] == "#!/bin/sh\necho j-launcher:1\n\necho j-worker-0:1"
    assert cm["data"]["kubexec.sh"].endswith('exec ${POD_NAME} -- /bin/sh -c "$*"')


def test_rbac() -> None:
    sa, role, binding = launcher_rbac(mpi_job())
    assert sa["kind"] == "ServiceAccount" and sa["metadata"]["name"] == "j-launcher"
    assert role["rules"] == [
        {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]},
        {
            "verbs": ["create"],
            "apiGroups": [""],
            "resources": ["pods/exec"],
            "resourceNames": ["j-worker-0", "j-worker-1"],
        },
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "j-launcher", "namespace": "ns"}
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "j-launcher",
    }


def test_launcher_and_worker_pods() -> None:
    job = mpi_job()
    launcher, _ = build_pod(MPI, job, "Launcher", 0, options=DomainOptions())
    assert launcher["metadata"]["name"] == "j-launcher"
    assert launcher["metadata"]["labels"]["training.kubeflow.org/job-role"] == "master"
    spec = launcher["spec"]
    assert spec["serviceAccountName"] == "j-launcher"
    init = spec["initContainers"][0]
    assert init["name"] == "kubectl-delivery"
    assert init["image"] == "ghcr.io/kubeflow/training-v1/kubectl-delivery:latest"
    assert init["env"] == [
        {"name": "TARGET_DIR", "value": "/opt/kube"},
        {"name": "NAMESPACE", "value": "ns"},
    ]
    assert init["resources"]["limits"] == {
        "cpu": "100m",
        "memory": "512Mi",
        "ephemeral-storage": "5Gi",
    }
    assert [e["name"] for e in spec["containers"][0]["env"]] == [
        "OMPI_MCA_plm_rsh_agent",
        "OMPI_MCA_orte_default_hostfile",
        "NVIDIA_VISIBLE_DEVICES",
        "NVIDIA_DRIVER_CAPABILITIES",
        "I_MPI_HYDRA_BOOTSTRAP",
        "I_MPI_HYDRA_BOOTSTRAP_EXEC",
    ]
    assert [v["name"] for v in spec["volumes"]] == ["mpi-job-kubectl", "mpi-job-config"]
    assert spec["volumes"][1]["configMap"]["items"][1] == {
        "key": "hostfile",
        "path": "hostfile",
        "mode": 0o444,
    }
    worker, _ = build_pod(MPI, job, "Worker", 1, options=DomainOptions())
    c = worker["spec"]["containers"][0]
    assert worker["metadata"]["name"] == "j-worker-1"
    assert (c["command"], c["args"]) == (["sleep"], ["365d"])
    assert c["volumeMounts"] == [{"name": "mpi-job-config", "mountPath": "/etc/mpi"}]
    assert "job-role" not in str(worker["metadata"]["labels"])


def test_user_intel_env_and_service_account_kept() -> None:
    job = mpi_job()
    tspec = job["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"]
    tspec["serviceAccountName"] = "mine"
    tspec["containers"][0]["env"] = [{"name": "I_MPI_HYDRA_BOOTSTRAP", "value": "ssh"}]
    launcher, _ = build_pod(MPI, job, "Launcher", 0, options=DomainOptions())
    names = [e["name"] for e in launcher["spec"]["containers"][0]["env"]]
    assert names.count("I_MPI_HYDRA_BOOTSTRAP") == 1 and "I_MPI_HYDRA_BOOTSTRAP_EXEC" in names
    assert launcher["spec"]["serviceAccountName"] == "mine"
    objs = launcher_rbac(job)
    assert [o["kind"] for o in objs] == ["Role", "RoleBinding"]
    assert objs[1]["subjects"][0]["name"] == "mine"
