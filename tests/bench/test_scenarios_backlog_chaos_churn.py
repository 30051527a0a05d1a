"""``kubetrain bench backlog|chaos|churn --quick`` end to end with tiny sizes: the cluster and
the systems run as processes; the report must hold every figure, and the correctness figures
(no writes to finished jobs, no duplicate or orphaned pods, every job finished) must hold.
Nothing about speed is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubetrain.bench.scenarios import backlog, chaos, churn

pytestmark = pytest.mark.e2e


def run_bench(scenario: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kubetrain.cli", "bench", scenario, "--quick", "--out", str(out)]
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=150, check=False)


def section_of(
    out: Path, scenario: str, systems: tuple[str, ...], figures: tuple[str, ...]
) -> dict[str, Any]:
    assert (out / f"{scenario}_latency_cdf.png").read_bytes()[:4] == b"\x89PNG"
    summary = (out / "summary.md").read_text()
    for fig in figures:
        assert f"| {fig} |" in summary
    data = orjson.loads((out / "result.json").read_bytes())
    section: dict[str, Any] = data["scenarios"][scenario]
    assert set(section["systems"]) == set(systems)
    return section


def missing(section: dict[str, Any], system: str, figures: tuple[str, ...]) -> list[str]:
    values = section["systems"][system]["figures"]
    return [f for f in figures if values.get(f) is None]


def test_backlog_quick(tmp_path: Path) -> None:
    systems = ("kubetrain", "raw")
    done = run_bench(
        "backlog", tmp_path, "--jobs", "30", "--new-jobs", "3", "--systems", ",".join(systems)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    section = section_of(tmp_path, "backlog", systems, backlog.FIGURES)
    # A 30-job backlog syncs before the first new job arrives: no latency "before ready".
    assert section["systems"]["kubetrain"]["figures"]["new_jobs_created_before_ready"] == 0
    assert missing(section, "kubetrain", backlog.FIGURES) == [
        "create_to_pods_created_before_ready_p99"
    ]
    # raw has no /readyz nor work queue: only those figures may be empty.
    assert missing(section, "raw", backlog.FIGURES) == [
        "seconds_to_ready",
        "seconds_to_queue_drained",
        "new_jobs_created_before_ready",
        "create_to_pods_created_before_ready_p99",
    ]
    for system in systems:
        figures = section["systems"][system]["figures"]
        assert figures["backlog_objects"] == 30 * 5
        assert figures["new_jobs_with_all_pods"] == 3
        assert figures["writes_to_finished_jobs"] == 0, section["systems"][system]
        # Each system made the new jobs' 3 x 4 pods, and none for the 30 old jobs.
        assert section["systems"][system]["operator_writes"].get("POST pods") == 12


def test_chaos_quick(tmp_path: Path) -> None:
    done = run_bench(
        "chaos", tmp_path, "--jobs", "6", "--kills", "2", "--seed", "3", "--systems", "kubetrain"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    section = section_of(tmp_path, "chaos", ("kubetrain",), chaos.FIGURES)
    assert missing(section, "kubetrain", chaos.FIGURES) == []
    figures = section["systems"]["kubetrain"]["figures"]
    # Kills are placed by progress; a tiny burst can finish before the last threshold.
    assert 1 <= figures["operator_kills"] == done.stdout.count("SIGKILL #")
    assert figures["faults_fired"] > 0
    assert figures["jobs_not_finished"] == 0
    assert figures["duplicate_pods"] == 0
    assert figures["indices_with_two_pods"] == 0
    assert figures["orphaned_pods"] == 0
    assert section["systems"]["kubetrain"]["faults"], "the fault rules were not installed"


def test_churn_quick(tmp_path: Path) -> None:
    systems = ("kubetrain", "raw")
    done = run_bench(
        "churn", tmp_path, "--rate", "2", "--duration", "4", "--systems", ",".join(systems)
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "churn_over_time.png").read_bytes()[:4] == b"\x89PNG"
    section = section_of(tmp_path, "churn", systems, churn.FIGURES)
    assert missing(section, "kubetrain", churn.FIGURES) == []
    assert missing(section, "raw", churn.FIGURES) == ["queue_depth_max"]
    for system in systems:
        data = section["systems"][system]
        assert data["figures"]["jobs"] == 8
        assert data["figures"]["jobs_not_succeeded"] == 0
        assert len(data["timeseries"]) >= 3
        assert {"t", *churn.SERIES} <= set(data["timeseries"][0])
        assert len(data["latencies_over_time"]["create_to_running"]) == 8
    depths = [r["queue_depth"] for r in section["systems"]["kubetrain"]["timeseries"]]
    assert all(d is not None for d in depths), "workqueue_depth was not scraped"
