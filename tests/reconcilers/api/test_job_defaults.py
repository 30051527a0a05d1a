"""In-memory defaulting per kind (reference 1.1, 1.3, 4)."""

from __future__ import annotations

import copy

import pytest
from jobkit import make_job

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import ALL_KINDS, BY_KIND, MPIJOB, PYTORCHJOB, TFJOB, JobKind


@pytest.mark.parametrize("kind", [k for k in ALL_KINDS if k is not MPIJOB], ids=lambda k: k.kind)
def test_replicas_restart_policy_port_and_clean_policy(kind: JobKind) -> None:
    rtype = kind.replica_types[-1]
    job = make_job(kind.kind, {rtype: None})
    before = copy.deepcopy(job)
    out = default_job(kind, job)
    assert job == before, "the input must not be mutated"
    rspec = out["spec"][kind.replica_field][rtype]
    assert rspec["replicas"] == 1
    assert rspec["restartPolicy"] == kind.default_restart_policy
    ports = rspec["template"]["spec"]["containers"][0]["ports"]
    assert ports == [{"name": kind.default_port_name, "containerPort": kind.default_port}]
    assert out["spec"]["runPolicy"]["cleanPodPolicy"] == "None"


def test_keys_camel_cased_case_insensitively_unknown_kept() -> None:
    job = make_job("TFJob", {"worker": 2, "ps": 1, "CHIEF": 1, "custom": 1})
    specs = default_job(TFJOB, job)["spec"]["tfReplicaSpecs"]
    assert sorted(specs) == ["Chief", "PS", "Worker", "custom"]
    assert specs["Worker"]["replicas"] == 2


def test_existing_port_name_not_duplicated_and_user_values_kept() -> None:
    job = make_job("PyTorchJob", {"Master": 1}, restart_policy="ExitCode")
    c = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    c["ports"] = [{"name": "pytorchjob-port", "containerPort": 1234}]
    out = default_job(PYTORCHJOB, job)["spec"]["pytorchReplicaSpecs"]["Master"]
    assert out["template"]["spec"]["containers"][0]["ports"] == c["ports"]
    assert out["restartPolicy"] == "ExitCode"


def test_port_goes_to_container_zero_without_default_container() -> None:
    job = make_job("JAXJob", {"Worker": 1})
    tspec = job["spec"]["jaxReplicaSpecs"]["Worker"]["template"]["spec"]
    tspec["containers"] = [{"name": "side", "image": "a"}, {"name": "other", "image": "b"}]
    out = default_job(BY_KIND["JAXJob"], job)["spec"]["jaxReplicaSpecs"]["Worker"]
    containers = out["template"]["spec"]["containers"]
    assert containers[0]["ports"] == [{"name": "jaxjob-port", "containerPort": 6666}]
    assert "ports" not in containers[1]
    assert "ports" not in tspec["containers"][0], "the cached template must stay untouched"


def test_port_goes_to_the_named_default_container() -> None:
    job = make_job("TFJob", {"Worker": 1})
    tspec = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    tspec["containers"].insert(0, {"name": "sidecar", "image": "s"})
    out = default_job(TFJOB, job)["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]
    assert "ports" not in out["containers"][0]
    assert out["containers"][1]["ports"][0]["name"] == "tfjob-port"


def test_mpi_defaults_and_clean_pod_policy_precedence() -> None:
    job = make_job("MPIJob", {"Launcher": None, "worker": None})
    out = default_job(MPIJOB, job)
    specs = out["spec"]["mpiReplicaSpecs"]
    assert specs["Launcher"]["replicas"] == 1
    assert "Worker" not in specs and specs["worker"]["replicas"] == 1, "MPI keys not normalised"
    assert "ports" not in specs["Launcher"]["template"]["spec"]["containers"][0]
    assert out["spec"]["cleanPodPolicy"] == out["spec"]["runPolicy"]["cleanPodPolicy"] == "None"

    job = make_job("MPIJob", {"Launcher": 1, "Worker": None}, cleanPodPolicy="All")
    out = default_job(MPIJOB, job)
    assert out["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] == 0
    assert out["spec"]["runPolicy"]["cleanPodPolicy"] == "All"
    job["spec"]["runPolicy"] = {"cleanPodPolicy": "Running"}
    out = default_job(MPIJOB, job)
    assert out["spec"]["runPolicy"]["cleanPodPolicy"] == out["spec"]["cleanPodPolicy"] == "Running"


@pytest.mark.parametrize(
    ("elastic", "expected"),
    [
        ({}, (3, 3)),
        ({"minReplicas": 2}, (2, 2)),
        ({"maxReplicas": 5}, (5, 5)),
        ({"minReplicas": 1, "maxReplicas": 4}, (1, 4)),
    ],
)
def test_pytorch_elastic_min_max(elastic: dict[str, int], expected: tuple[int, int]) -> None:
    job = make_job("PyTorchJob", {"Worker": 3}, elasticPolicy=elastic)
    out = default_job(PYTORCHJOB, job)["spec"]["elasticPolicy"]
    assert (out["minReplicas"], out["maxReplicas"]) == expected
    assert job["spec"]["elasticPolicy"] == elastic


def test_pytorch_nproc_per_node_auto_unless_set() -> None:
    assert (
        default_job(PYTORCHJOB, make_job("PyTorchJob", {"Worker": 1}))["spec"]["nprocPerNode"]
        == "auto"
    )
    job = make_job("PyTorchJob", {"Worker": 1}, nprocPerNode="4")
    assert default_job(PYTORCHJOB, job)["spec"]["nprocPerNode"] == "4"
    job = make_job("PyTorchJob", {"Worker": 1}, elasticPolicy={"nProcPerNode": 2})
    assert "nprocPerNode" not in default_job(PYTORCHJOB, job)["spec"]


def test_paddle_elastic_defaulted_too() -> None:
    job = make_job("PaddleJob", {"Worker": 2}, elasticPolicy={"minReplicas": 1})
    out = default_job(BY_KIND["PaddleJob"], job)["spec"]["elasticPolicy"]
    assert out == {"minReplicas": 1, "maxReplicas": 1}
