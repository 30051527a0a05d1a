"""``kubetrain bench burst|ttl --quick`` end to end with a tiny N: the cluster and every system run
as processes; the report files must exist and hold every figure of every system. Nothing about
speed is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from kubetrain.bench.scenarios import burst, ttl

pytestmark = pytest.mark.e2e

SYSTEMS = ("kubetrain", "raw", "kopf")


def run_bench(
    scenario: str, out: Path, *extra: str, systems: tuple[str, ...] = SYSTEMS
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kubetrain.cli", "bench", scenario, "--quick", "--out", str(out)]
    return subprocess.run(
        [*argv, "--jobs", "3", "--systems", ",".join(systems), *extra],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def check_report(
    out: Path,
    scenario: str,
    figures: tuple[str, ...],
    systems: tuple[str, ...] = SYSTEMS,
    kubetrain_only: tuple[str, ...] = (),
) -> dict:
    assert (out / "summary.md").is_file()
    assert (out / f"{scenario}_latency_cdf.png").read_bytes()[:4] == b"\x89PNG"
    data = orjson.loads((out / "result.json").read_bytes())
    assert {"machine", "versions", "parameters", "scenarios", "started"} <= set(data)
    section = data["scenarios"][scenario]
    assert set(section["systems"]) == set(systems)
    summary = (out / "summary.md").read_text()
    for fig in figures:
        assert f"| {fig} |" in summary
    for system in systems:
        values = section["systems"][system]["figures"]
        own = () if system == "kubetrain" else kubetrain_only
        missing = [f for f in figures if f not in own and values.get(f) is None]
        assert not missing, f"{system}: no value for {missing}"
        assert all(values.get(f) is None for f in own), values
    return section


def test_burst_quick_report_is_complete(tmp_path: Path) -> None:
    done = run_bench("burst", tmp_path, "--run-seconds", "0.5")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[burst/kopf]" in done.stdout  # progress lines
    section = check_report(tmp_path, "burst", burst.FIGURES, kubetrain_only=burst.KUBETRAIN_ONLY)
    # from kubetrain's own /metrics over the measured window: every job reconciled at least
    # twice (its creation, its pods' progress), the queue of 1,000 Events never filled, and the
    # cuts of the adaptive limit were scraped (a count: whether 3 jobs meet a slow answer is
    # the machine's business)
    own = section["systems"]["kubetrain"]["figures"]
    assert own["reconciles_per_job"] >= 2
    assert own["events_dropped"] == 0
    assert isinstance(own["client_limit_cuts"], int) and own["client_limit_cuts"] >= 0
    for system in SYSTEMS:
        figures = section["systems"][system]["figures"]
        assert figures["jobs_succeeded"] == 3
        assert figures["minimal_writes"] == 3 * 11
        writes = section["systems"][system]["operator_writes"]
        assert writes.get("POST pods") == 12, writes


def test_burst_quick_mpijob_v2beta1_report_is_complete(tmp_path: Path) -> None:
    """MPIJobs created as v2beta1 (through kubetrain's conversion webhook), each: 3 workers the
    operator creates and deletes, and its launcher Job's pod, which the cluster's Job controller
    creates: that pod and the Job controller's other writes are not kubetrain's."""
    done = run_bench(
        "burst",
        tmp_path,
        "--run-seconds",
        "0.5",
        "--job-kind",
        "mpijob-v2beta1",
        systems=("kubetrain",),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[burst/kubetrain] 3 MPIJob jobs of 4 pods" in done.stdout
    section = check_report(
        tmp_path,
        "burst",
        burst.FIGURES,
        systems=("kubetrain",),
        kubetrain_only=burst.KUBETRAIN_ONLY,
    )
    assert section["parameters"]["job_kind"] == "mpijob-v2beta1"
    result = section["systems"]["kubetrain"]
    figures = result["figures"]
    assert figures["jobs_succeeded"] == 3
    assert figures["minimal_writes"] == 3 * 14
    writes = result["operator_writes"]
    # At least what mpi-operator writes; a create on a stale cache is repeated (409).
    for key, least in {
        "POST pods": 9,
        "POST jobs": 3,
        "POST services": 3,
        "POST configmaps": 3,
        "POST secrets": 3,
        "PATCH mpijobs/status": 9,
    }.items():
        assert writes.get(key, 0) >= least, (key, writes)
    assert not {"PATCH pods", "PUT jobs/status", "POST mpijobs"} & set(writes), writes
    assert result["kube_controller_writes"]["POST pods"] == 3  # the launcher pods
    assert result["api_requests"]["POST pods"] == writes["POST pods"] + 3


def test_burst_refuses_systems_that_cannot_run_the_job_kind(tmp_path: Path) -> None:
    done = run_bench(
        "burst", tmp_path, "--job-kind", "mpijob-v2beta1", systems=("kubetrain", "raw")
    )
    assert done.returncode == 2
    assert "--job-kind mpijob-v2beta1: only kubetrain can run it, not raw" in done.stdout


def test_ttl_quick_report_is_complete(tmp_path: Path) -> None:
    done = run_bench("ttl", tmp_path, "--ttl-seconds", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    section = check_report(tmp_path, "ttl", ttl.FIGURES)
    for system in SYSTEMS:
        assert section["systems"][system]["figures"]["jobs_never_deleted"] == 0
