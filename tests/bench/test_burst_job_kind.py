"""``kubetrain bench burst --job-kind``: the MPIJob v2beta1 manifest, which systems may run it, how
the kubetrain operator is started for it, and how its writes and milestones are counted (no
cluster; ``test_scenarios_quick.py`` runs it end to end)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from kubetrain.bench.apimetrics import operator_writes
from kubetrain.bench.cli import add_bench_flags, options_from_args
from kubetrain.bench.jobs import (
    JOB_KINDS,
    MPI_WORKER_RUN_SECONDS,
    MPIJOB_V2BETA1,
    MPIJOBS_V2BETA1,
    PYTORCHJOB,
    SIM,
    JobShape,
    mpijob_v2beta1,
)
from kubetrain.bench.measure import JOB_NAME_LABEL, JobTimes, JobWatch
from kubetrain.bench.scenarios import burst
from kubetrain.bench.scenarios.context import BenchOptions, Measurement
from kubetrain.bench.systems import SystemOptions, system_process
from kubetrain.reconcilers.api.mpi_v2beta1 import (
    ORIGIN_ANNOTATION,
    default_mpijob_v2beta1,
    validate_mpijob_v2beta1,
)


def _options(*argv: str) -> BenchOptions:
    parser = argparse.ArgumentParser()
    add_bench_flags(parser)
    return options_from_args(parser.parse_args(list(argv)))


# -- the manifest ---------------------------------------------------------------------------------


def test_the_mpijob_is_mpi_operators_v2beta1_shape_with_one_launcher_and_the_workers() -> None:
    job = mpijob_v2beta1("job-00001", "ns", JobShape(workers=3, run_seconds=1.5))
    assert job["apiVersion"] == "kubeflow.org/v2beta1"
    assert job["kind"] == "MPIJob"
    assert job["metadata"] == {"name": "job-00001", "namespace": "ns"}
    spec = job["spec"]
    assert spec["slotsPerWorker"] == 1
    assert spec["runPolicy"] == {"cleanPodPolicy": "Running"}
    launcher, worker = spec["mpiReplicaSpecs"]["Launcher"], spec["mpiReplicaSpecs"]["Worker"]
    assert (launcher["replicas"], worker["replicas"]) == (1, 3)
    # The launcher runs the shape's time; the workers (sshd) run until the launcher finished
    # and cleanPodPolicy Running deletes them.
    assert launcher["template"]["metadata"]["annotations"] == {SIM + "run-seconds": "1.5"}
    assert worker["template"]["metadata"]["annotations"] == {
        SIM + "run-seconds": str(MPI_WORKER_RUN_SECONDS)
    }
    assert MPI_WORKER_RUN_SECONDS >= 600
    for rspec in (launcher, worker):
        (container,) = rspec["template"]["spec"]["containers"]
        assert container["image"] and container["name"]


def test_the_mpijob_passes_mpi_operators_defaults_and_validation() -> None:
    job = mpijob_v2beta1("job-00001", "ns", JobShape(workers=3))
    stored = {
        **job,
        "apiVersion": "kubeflow.org/v1",
        "metadata": {**job["metadata"], "annotations": {ORIGIN_ANNOTATION: "v2beta1"}},
    }
    assert validate_mpijob_v2beta1(default_mpijob_v2beta1(stored)) == []


def test_the_mpijob_carries_ttl_and_may_have_no_workers() -> None:
    job = mpijob_v2beta1("j", "ns", JobShape(workers=0, ttl_seconds_after_finished=5))
    assert job["spec"]["runPolicy"] == {"cleanPodPolicy": "Running", "ttlSecondsAfterFinished": 5}
    assert set(job["spec"]["mpiReplicaSpecs"]) == {"Launcher"}


def test_an_mpijob_has_exactly_one_launcher() -> None:
    with pytest.raises(ValueError, match="exactly one Launcher"):
        mpijob_v2beta1("j", "ns", JobShape(masters=2))


# -- the kinds ------------------------------------------------------------------------------------


def test_the_kinds_and_what_each_needs() -> None:
    assert set(JOB_KINDS) == {"pytorchjob", "mpijob-v2beta1", "trainjob"}
    assert MPIJOB_V2BETA1.api == MPIJOBS_V2BETA1
    assert MPIJOBS_V2BETA1.api_version == "kubeflow.org/v2beta1"
    assert (MPIJOB_V2BETA1.kube_controllers, MPIJOB_V2BETA1.webhooks) == (True, True)
    assert (PYTORCHJOB.kube_controllers, PYTORCHJOB.webhooks) == (False, False)
    assert MPIJOB_V2BETA1.systems == ("kubetrain",)


def test_minimal_writes_per_job() -> None:
    shape = JobShape(masters=1, workers=3)
    # PyTorchJob: 4 pods, 4 Services, 3 status changes.
    assert PYTORCHJOB.minimal_writes(shape, status_writes=3) == 11
    assert burst.REQUIRED_STATUS_WRITES == 3
    # MPIJob v2beta1: Service, ConfigMap, Secret, 3 workers, launcher Job, 1 ConfigMap update,
    # 3 worker deletes, 3 status changes.
    assert MPIJOB_V2BETA1.minimal_writes(shape, status_writes=3) == 14
    assert MPIJOB_V2BETA1.services(shape) == 1
    assert MPIJOB_V2BETA1.pods_to_succeed(shape.pods) == 1
    assert (PYTORCHJOB.services(shape), PYTORCHJOB.pods_to_succeed(shape.pods)) == (4, 4)


# -- the flag -------------------------------------------------------------------------------------


def test_job_kind_defaults_to_pytorchjob_and_mpijob_runs_kubetrain_alone() -> None:
    assert _options("burst").job_kind == "pytorchjob"
    assert _options("burst").systems == ("kubetrain", "raw", "kopf")
    mpi = _options("burst", "--job-kind", "mpijob-v2beta1", "--quick")
    assert mpi.job_kind == "mpijob-v2beta1"
    assert mpi.kind is MPIJOB_V2BETA1
    assert mpi.systems == ("kubetrain",)
    assert mpi.jobs == 20


@pytest.mark.parametrize("systems", ["kubetrain,raw", "kopf", "reference"])
def test_job_kind_mpijob_refuses_the_systems_that_cannot_run_it(systems: str) -> None:
    with pytest.raises(ValueError, match="--job-kind mpijob-v2beta1: only kubetrain can run it"):
        _options("burst", "--job-kind", "mpijob-v2beta1", "--systems", systems)


def test_job_kind_is_the_burst_scenarios_only() -> None:
    with pytest.raises(ValueError, match="only the burst scenario"):
        _options("ttl", "--job-kind", "mpijob-v2beta1")
    with pytest.raises(SystemExit):
        _options("burst", "--job-kind", "tfjob")  # argparse: not a choice


# -- the operator's process -----------------------------------------------------------------------


def _argv(tmp_path: Path, name: str, **kw: Any) -> list[str]:
    proc = system_process(
        name,
        kubeconfig="k",
        namespace="ns",
        log_path=tmp_path / "log",
        options=SystemOptions(),
        **kw,
    )
    return proc.argv


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_kubetrain_runs_mpijob_with_its_webhook_server(tmp_path: Path) -> None:
    argv = _argv(
        tmp_path,
        "kubetrain",
        job_kind="mpijob-v2beta1",
        webhook_port=4443,
        operator_namespace="kubetrain-bench-system",
    )
    assert _flag(argv, "--enable-scheme") == "mpijob"
    assert _flag(argv, "--webhook-server-port") == "4443"
    assert _flag(argv, "--operator-namespace") == "kubetrain-bench-system"
    assert _flag(argv, "--namespace") == "ns"
    v1 = _argv(tmp_path, "kubetrain")
    assert (_flag(v1, "--enable-scheme"), _flag(v1, "--webhook-server-port")) == ("pytorchjob", "0")
    assert "--operator-namespace" not in v1


def test_mpijob_needs_the_webhook_server_and_kubetrain(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs the webhook server"):
        _argv(tmp_path, "kubetrain", job_kind="mpijob-v2beta1")
    with pytest.raises(ValueError, match="system 'raw' cannot run it"):
        _argv(tmp_path, "raw", job_kind="mpijob-v2beta1", webhook_port=1, operator_namespace="x")


# -- counting -------------------------------------------------------------------------------------


def test_the_job_controllers_and_kubelets_writes_are_not_the_systems() -> None:
    counts = {
        "POST mpijobs": 10,  # the harness
        "PUT jobs/status": 30,  # the Job controller
        "PATCH pods": 10,  # the Job controller's tracking finalizer
        "POST pods": 40,  # 30 workers + 10 launcher pods
        "DELETE pods": 65,  # 30 + 5 repeated by the system, 30 by the kubelets
        "POST events": 50,
        "POST jobs": 10,
    }
    writes = operator_writes(
        counts,
        also_not_operator=MPIJOB_V2BETA1.not_operator,
        minus={"POST pods": 10, "DELETE pods": 30, "POST events": 20},
    )
    assert writes == {"POST pods": 30, "DELETE pods": 35, "POST events": 30, "POST jobs": 10}
    assert operator_writes({"POST pods": 1}, minus={"POST pods": 3}) == {}


def _pod(name: str, job: str, phase: str, node: str = "") -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "labels": {JOB_NAME_LABEL: job}},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase},
    }


def test_the_launcher_pod_is_the_one_that_must_succeed_and_kubelet_deletes_are_seen() -> None:
    now = [100.0]
    w = JobWatch(
        object(),  # type: ignore[arg-type]
        "ns",
        pods_per_job=3,
        pods_to_succeed=1,
        kind="MPIJob",
        clock=lambda: now[0],
    )
    w.job_created("a")
    for name in ("a-worker-0", "a-worker-1"):
        w.on_pod(_pod(name, "a", "Running", "node-0"))
    now[0] = 101.0
    w.on_pod(_pod("a-launcher-xyz", "a", "Running", "node-1"))
    assert w.jobs["a"].all_pods_created == 101.0
    now[0] = 102.0
    w.on_pod(_pod("a-launcher-xyz", "a", "Succeeded", "node-1"))
    assert w.jobs["a"].last_pod_succeeded == 102.0
    w.on_pod_deleted(_pod("a-worker-0", "a", "Succeeded", "node-0"))
    w.on_pod_deleted(_pod("a-worker-9", "a", "Pending"))  # never bound: no kubelet delete
    w.on_pod_deleted(_pod("other-worker-0", "other", "Running", "node-0"))  # not registered
    assert w.jobs["a"].pods_deleted_on_node == {"a-worker-0"}


def test_figures_of_an_mpijob_run_leave_out_the_cluster_writes() -> None:
    jobs = {
        f"j{i}": JobTimes(
            created=10.0, all_pods_created=10.5, running=11.0, last_pod_succeeded=12.0, succeeded=13
        )
        for i in range(2)
    }
    m = Measurement(
        system="kubetrain",
        namespace="ns",
        jobs=jobs,
        wall_seconds=3.0,
        create_seconds=0.1,
        cpu_seconds=0.2,
        peak_rss_bytes=2**26,
        requests={
            "POST mpijobs": 2,
            "POST pods": 8,
            "DELETE pods": 12,
            "PATCH pods": 2,
            "PUT jobs/status": 6,
            "POST jobs": 2,
            "POST services": 2,
            "POST configmaps": 2,
            "PUT configmaps": 2,
            "POST secrets": 2,
            "PATCH mpijobs/status": 6,
            "POST events": 10,
        },
        timed_out=False,
        extra={"kube_controller_writes": {"POST pods": 2, "DELETE pods": 6, "POST events": 4}},
    )
    shape = JobShape(workers=3)
    section = burst.figures_of(
        m,
        pods=shape.pods,
        services=MPIJOB_V2BETA1.services(shape),
        kind=MPIJOB_V2BETA1,
        minimal_per_job=MPIJOB_V2BETA1.minimal_writes(shape, status_writes=3),
    )
    assert section["operator_writes"] == {
        "POST pods": 6,
        "DELETE pods": 6,
        "POST jobs": 2,
        "POST services": 2,
        "POST configmaps": 2,
        "PUT configmaps": 2,
        "POST secrets": 2,
        "PATCH mpijobs/status": 6,
        "POST events": 6,
    }
    assert section["kube_controller_writes"] == {"POST pods": 2, "DELETE pods": 6, "POST events": 4}
    figures = section["figures"]
    assert figures["minimal_writes"] == 28
    assert figures["operator_writes"] == 34
    assert figures["write_amplification"] == pytest.approx(34 / 28)
    assert figures["write_amplification_without_events"] == pytest.approx(28 / 28)
