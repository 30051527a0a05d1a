"""``kubetrain bench burst|backlog --job-kind trainjob``: the TrainJob manifest and what the
TrainJob controller builds from it, the kind's flags, process and counting (no cluster), then a
quick burst and a quick backlog end to end (the cluster and the operator as processes)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubetrain.bench.apimetrics import operator_writes
from kubetrain.bench.cli import add_bench_flags, options_from_args
from kubetrain.bench.jobs import (
    BENCH_PATCH_MANAGER,
    JOB_KINDS,
    JOBSET_NAME_LABEL,
    SIM,
    TRAINER_RUNTIME,
    TRAINJOB,
    JobShape,
    trainjob,
)
from kubetrain.bench.measure import JobTimes, JobWatch
from kubetrain.bench.scenarios import backlog, burst
from kubetrain.bench.scenarios.context import BenchOptions, Measurement, trainjob_cluster_writes
from kubetrain.bench.systems import SystemOptions, system_process
from kubetrain.reconcilers.trainer.objects import build_objects
from kubetrain.reconcilers.trainer.resources import TRAINJOBS
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes


def _options(*argv: str) -> BenchOptions:
    parser = argparse.ArgumentParser()
    add_bench_flags(parser)
    return options_from_args(parser.parse_args(list(argv)))


# -- the manifest and what the controller builds from it ------------------------------------------


def test_the_trainjob_has_a_node_per_pod_on_torch_distributed_with_the_run_time_patched() -> None:
    job = trainjob("job-00001", "ns", JobShape(masters=1, workers=3, run_seconds=1.5))
    assert (job["apiVersion"], job["kind"]) == (TRAINJOBS.api_version, "TrainJob")
    assert job["metadata"] == {"name": "job-00001", "namespace": "ns"}
    spec = job["spec"]
    assert spec["runtimeRef"] == {"name": TRAINER_RUNTIME}
    assert spec["trainer"] == {"numNodes": 4}
    (patch,) = spec["runtimePatches"]
    assert patch["manager"] == BENCH_PATCH_MANAGER


def test_the_controller_builds_one_job_of_4_pods_that_run_the_shapes_time() -> None:
    """What kubetrain's TrainJob controller builds from the manifest and the built-in runtime:
    one JobSet, one replicated Job ``node`` of parallelism 4, its pods annotated."""
    (runtime,) = [r for r in builtin_runtimes() if r["metadata"]["name"] == TRAINER_RUNTIME]
    job = trainjob("j", "ns", JobShape(run_seconds=2.0))
    job["metadata"]["uid"] = "u-1"
    built = build_objects(job, runtime["spec"])
    assert built.applied == [] and built.created == []  # no status server: no side objects
    (rjob,) = built.jobset["spec"]["replicatedJobs"]
    assert rjob["name"] == "node" and rjob.get("replicas", 1) == 1
    job_spec = rjob["template"]["spec"]
    assert job_spec["parallelism"] == 4
    assert job_spec["template"]["metadata"]["annotations"] == {SIM + "run-seconds": "2.0"}


def test_a_trainjob_has_no_ttl() -> None:
    with pytest.raises(ValueError, match="no ttlSecondsAfterFinished"):
        trainjob("j", "ns", JobShape(ttl_seconds_after_finished=3))


# -- the kind, its flag and its process -----------------------------------------------------------


def test_the_trainjob_kind() -> None:
    assert JOB_KINDS["trainjob"] is TRAINJOB
    assert TRAINJOB.watched == TRAINJOBS and TRAINJOB.api == TRAINJOBS
    assert (TRAINJOB.kube_controllers, TRAINJOB.webhooks, TRAINJOB.trainer) == (True, False, True)
    assert TRAINJOB.succeeded_condition == "Complete"
    assert TRAINJOB.pod_job_label == JOBSET_NAME_LABEL
    shape = JobShape()
    assert TRAINJOB.pods_to_succeed(shape.pods) == 4
    assert TRAINJOB.services(shape) == 0  # the headless Service is JobSet's
    # Snapshot ConfigMap, JobSet, Pending + Running + Complete.
    assert TRAINJOB.minimal_writes(shape, status_writes=burst.REQUIRED_STATUS_WRITES) == 5


def test_job_kind_trainjob_runs_burst_and_backlog_on_kubetrain_alone() -> None:
    for scenario in ("burst", "backlog"):
        opts = _options(scenario, "--job-kind", "trainjob", "--quick")
        assert (opts.kind, opts.systems) == (TRAINJOB, ("kubetrain",))
    with pytest.raises(ValueError, match="only the burst and backlog scenarios have it"):
        _options("ttl", "--job-kind", "trainjob")
    with pytest.raises(ValueError, match="only kubetrain can run it, not raw"):
        _options("burst", "--job-kind", "trainjob", "--systems", "kubetrain,raw")


def test_kubetrain_runs_its_trainjob_controller_without_webhooks(tmp_path: Path) -> None:
    argv = system_process(
        "kubetrain",
        kubeconfig="k",
        namespace="ns",
        log_path=tmp_path / "log",
        options=SystemOptions(),
        job_kind="trainjob",
    ).argv
    assert argv[argv.index("--trainjobs") + 1] == "on"
    assert argv[argv.index("--webhook-server-port") + 1] == "0"
    assert argv[argv.index("--namespace") + 1] == "ns"


# -- watching and counting ------------------------------------------------------------------------


def _pod(name: str, job: str, phase: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "labels": {JOBSET_NAME_LABEL: job}},
        "spec": {"nodeName": "node-0"},
        "status": {"phase": phase},
    }


def test_a_trainjob_runs_with_its_phase_and_succeeds_with_complete() -> None:
    now = [100.0]
    w = JobWatch(
        object(),  # type: ignore[arg-type]
        "ns",
        pods_per_job=2,
        kind="TrainJob",
        ref=TRAINJOBS,
        succeeded_condition="Complete",
        pod_label=JOBSET_NAME_LABEL,
        clock=lambda: now[0],
    )
    w.job_created("a")
    for i in range(2):
        w.on_pod(_pod(f"a-node-0-{i}", "a", "Running"))
    w.on_job({"metadata": {"name": "a"}, "status": {"phase": "Pending"}})
    assert (w.jobs["a"].all_pods_created, w.jobs["a"].running) == (100.0, None)
    now[0] = 101.0
    w.on_job({"metadata": {"name": "a"}, "status": {"phase": "Running"}})
    assert w.jobs["a"].running == 101.0
    now[0] = 102.0
    for i in range(2):
        w.on_pod(_pod(f"a-node-0-{i}", "a", "Succeeded"))
    now[0] = 103.0
    complete = {"type": "Complete", "status": "True"}
    w.on_job({"metadata": {"name": "a"}, "status": {"phase": "Complete", "conditions": [complete]}})
    assert (w.jobs["a"].last_pod_succeeded, w.jobs["a"].succeeded) == (102.0, 103.0)


class _Events:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    async def list(self, ref: Any, namespace: str) -> dict[str, Any]:
        return {"items": self.items}


def _event(component: str, kind: str, name: str, count: int = 1) -> dict[str, Any]:
    return {
        "involvedObject": {"kind": kind, "name": name},
        "source": {"component": component},
        "count": count,
    }


async def test_the_jobset_and_job_controllers_events_are_not_the_operators() -> None:
    client = _Events(
        [
            _event("jobset", "JobSet", "job-00001"),
            _event("job-controller", "Job", "job-00001-node-0", count=3),
            _event("job-controller", "Job", "warmup-node-0"),  # not a measured job
            _event("trainer-controller-manager", "TrainJob", "job-00001"),  # the operator's
        ]
    )
    counts = await trainjob_cluster_writes(client, "ns", ["job-00001"])  # type: ignore[arg-type]
    assert counts == {"POST events": 2, "PATCH events": 2}


def test_figures_of_a_trainjob_run_leave_out_the_cluster_writes() -> None:
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
            "POST trainjobs": 2,
            "APPLY configmaps": 2,
            "APPLY jobsets": 2,
            "PATCH trainjobs/status": 12,
            "POST jobs": 2,
            "POST services": 2,
            "PUT jobsets/status": 12,
            "POST pods": 8,
            "PATCH pods": 8,
            "PUT jobs/status": 8,
            "PUT pods/status": 16,
            "POST events": 12,
        },
        timed_out=False,
        extra={"kube_controller_writes": {"POST events": 12}},
    )
    shape = JobShape()
    section = burst.figures_of(
        m,
        pods=shape.pods,
        services=TRAINJOB.services(shape),
        kind=TRAINJOB,
        minimal_per_job=TRAINJOB.minimal_writes(shape, status_writes=3),
    )
    assert section["operator_writes"] == {
        "APPLY configmaps": 2,
        "APPLY jobsets": 2,
        "PATCH trainjobs/status": 12,
    }
    figures = section["figures"]
    assert (figures["minimal_writes"], figures["operator_writes"]) == (10, 16)
    assert figures["write_amplification"] == pytest.approx(1.6)
    assert operator_writes({"POST trainjobs": 1}, also_not_operator=TRAINJOB.not_operator) == {}


# -- end to end -----------------------------------------------------------------------------------


def _run(scenario: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kubetrain.cli", "bench", scenario, "--quick", "--out", str(out)]
    return subprocess.run(
        [*argv, "--job-kind", "trainjob", *extra],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def _section(out: Path, scenario: str, figures: tuple[str, ...]) -> dict[str, Any]:
    assert (out / f"{scenario}_latency_cdf.png").read_bytes()[:4] == b"\x89PNG"
    summary = (out / "summary.md").read_text()
    for fig in figures:
        assert f"| {fig} |" in summary
    data = orjson.loads((out / "result.json").read_bytes())
    assert data["parameters"]["job_kind"] == "trainjob"
    section: dict[str, Any] = data["scenarios"][scenario]
    assert set(section["systems"]) == {"kubetrain"}
    return section


@pytest.mark.e2e
def test_burst_quick_trainjob_report_is_complete(tmp_path: Path) -> None:
    """5 TrainJobs of 4 nodes: each gets its JobSet, whose Job's 4 pods run and succeed; every
    figure is there, and the writes are the TrainJob controller's alone."""
    done = _run("burst", tmp_path, "--jobs", "5", "--run-seconds", "0.5")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[burst/kubetrain] 5 TrainJob jobs of 4 pods" in done.stdout
    section = _section(tmp_path, "burst", burst.FIGURES)
    assert section["parameters"]["minimal_writes_per_job"] == 5
    result = section["systems"]["kubetrain"]
    figures = result["figures"]
    missing = [f for f in burst.FIGURES if figures.get(f) is None]
    assert not missing, missing
    assert (figures["jobs_succeeded"], figures["minimal_writes"]) == (5, 25)
    writes = result["operator_writes"]
    # One snapshot and one JobSet each (server-side apply), at least 3 status writes each.
    assert writes.get("APPLY configmaps") == 5 and writes.get("APPLY jobsets") == 5, writes
    assert writes.get("PATCH trainjobs/status", 0) >= 15, writes
    assert not {"POST pods", "POST jobs", "POST services", "POST trainjobs"} & set(writes), writes
    assert result["api_requests"]["POST pods"] == 20  # by the Job controller
    assert set(result["kube_controller_writes"]) <= {"POST events", "PATCH events"}


@pytest.mark.e2e
def test_backlog_quick_trainjob_writes_nothing_for_finished_trainjobs(tmp_path: Path) -> None:
    done = _run("backlog", tmp_path, "--jobs", "30", "--new-jobs", "3")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    section = _section(tmp_path, "backlog", backlog.FIGURES)
    result = section["systems"]["kubetrain"]
    figures = result["figures"]
    # A 30-job backlog syncs before the first new job arrives: no latency "before ready".
    missing = [f for f in backlog.FIGURES if figures.get(f) is None]
    assert missing == ["create_to_pods_created_before_ready_p99"]
    assert figures["backlog_objects"] == 30 * 3  # TrainJob, snapshot ConfigMap, JobSet
    assert figures["new_jobs_with_all_pods"] == 3
    assert figures["writes_to_finished_jobs"] == 0, result["writes_to_finished_jobs"]
    writes = result["operator_writes"]
    assert writes.get("APPLY jobsets") == 3 and writes.get("APPLY configmaps") == 3, writes
