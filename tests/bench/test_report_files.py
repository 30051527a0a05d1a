"""The report of a run built by hand: result.json, summary.md and the CDF PNG, every figure there."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from kubetrain.bench.measure import JobTimes
from kubetrain.bench.report import summary_markdown, write_report
from kubetrain.bench.scenarios import burst
from kubetrain.bench.scenarios.context import Measurement
from kubetrain.bench.scenarios.tenant_probe import REQUESTS, PhaseSamples


def measurement(system: str, scale: float) -> Measurement:
    jobs = {}
    for i in range(10):
        t0 = 1000.0 + i
        jobs[f"j{i}"] = JobTimes(
            created=t0,
            all_pods_created=t0 + 0.1 * scale,
            running=t0 + 0.2 * scale,
            last_pod_succeeded=t0 + 1.0,
            succeeded=t0 + 1.0 + 0.01 * scale * (i + 1),
        )
    return Measurement(
        system=system,
        namespace=f"burst-{system}",
        jobs=jobs,
        wall_seconds=2.0 * scale,
        create_seconds=0.5,
        cpu_seconds=0.5 * scale,
        peak_rss_bytes=int(50 * 2**20 * scale),
        requests={
            "POST pods": 40,
            "POST services": 40,
            "PUT pytorchjobs/status": 30,
            "POST events": int(10 * scale),
            "PUT pods/status": 80,
            "POST pytorchjobs": 10,
        },
        timed_out=False,
        extra={
            **(
                {
                    "operator_counters": {
                        "reconciles": 75.0,
                        "events_dropped": 3.0,
                        "client_limit_cuts": 2.0,
                    }
                }
                if system == "kubetrain"
                else {}
            ),
            "probe": {
                "idle": probe_phase("idle", 0.002),
                "creating": probe_phase("creating", 0.008 * scale),
                "reconciling": probe_phase("reconciling", 0.004 * scale),
            },
        },
    )


def probe_phase(phase: str, latency: float) -> PhaseSamples:
    return PhaseSamples(
        phase=phase, seconds=1.0, rounds=20, latencies={r: [latency] * 20 for r in REQUESTS}
    )


def result(bases: tuple[tuple[str, float], ...] = (("raw", 0.5), ("kopf", 4.0))) -> dict:
    systems = {
        name: burst.figures_of(measurement(name, scale), pods=4, services=4)
        for name, scale in (("kubetrain", 1.0), *bases)
    }
    return {
        "started": "2024-01-01T00:00:00+00:00",
        "machine": {"cpu_count": 2},
        "versions": {"kubetrain": "0.1.0"},
        "parameters": {"scenario": "burst"},
        "scenarios": {
            "burst": {
                "parameters": {"jobs": 10},
                "figures": list(burst.FIGURES),
                "latencies": list(burst.LATENCIES),
                "systems": systems,
            }
        },
    }


def test_figures_of_computes_write_amplification_and_latencies() -> None:
    section = burst.figures_of(measurement("kubetrain", 1.0), pods=4, services=4)
    figures = section["figures"]
    assert set(figures) == set(burst.FIGURES)
    assert figures["minimal_writes"] == 10 * 11
    assert figures["operator_writes"] == 40 + 40 + 30 + 10  # kubelet and harness left out
    assert figures["write_amplification"] == 120 / 110
    assert figures["write_amplification_without_events"] == 110 / 110
    assert figures["create_to_pods_created_p50"] == pytest.approx(0.1)
    assert figures["pods_succeeded_to_job_succeeded_max"] == pytest.approx(0.1)
    assert figures["cpu_seconds_per_job"] == pytest.approx(0.05)
    assert figures["jobs_not_succeeded"] == 0
    assert figures["probe_idle_p99_ms"] == pytest.approx(2.0)
    assert figures["probe_during_p50_ms"] == pytest.approx(6.0)  # creating and reconciling
    assert figures["probe_p99_ratio"] == pytest.approx(4.0)
    assert figures["probe_reconciling_p99_ms"] == pytest.approx(4.0)
    assert figures["probe_reconciling_p99_ratio"] == pytest.approx(2.0)
    assert section["probe"]["reconciling"]["requests"]["PATCH configmaps"]["count"] == 20


def test_summary_has_every_figure_and_the_ratios() -> None:
    text = summary_markdown(result())
    assert "| figure | kubetrain | raw | kopf | kubetrain/raw | kubetrain/kopf |" in text
    for fig in burst.FIGURES:
        assert f"| {fig} |" in text
    cpu_row = next(line for line in text.splitlines() if line.startswith("| cpu_seconds |"))
    assert cpu_row.endswith("| 2.00 | 0.25 |")
    assert (
        "- kopf tenant probe: idle 60 requests in 1.0 s; creating 60 requests in 1.0 s; "
        "reconciling 60 requests in 1.0 s" in text
    )


def test_summary_has_a_reference_ratio_when_the_reference_ran() -> None:
    text = summary_markdown(result((("raw", 0.5), ("reference", 2.0))))
    assert "| figure | kubetrain | raw | reference | kubetrain/raw | kubetrain/reference |" in text
    cpu_row = next(line for line in text.splitlines() if line.startswith("| cpu_seconds |"))
    assert cpu_row.endswith("| 2.00 | 0.50 |")


def test_write_report_files(tmp_path: Path) -> None:
    written = write_report(result(), tmp_path)
    assert {p.name for p in written} == {"result.json", "summary.md", "burst_latency_cdf.png"}
    data = orjson.loads((tmp_path / "result.json").read_bytes())
    for system in ("kubetrain", "raw", "kopf"):
        figures = data["scenarios"]["burst"]["systems"][system]["figures"]
        own = () if system == "kubetrain" else burst.KUBETRAIN_ONLY
        assert all(figures[f] is not None for f in burst.FIGURES if f not in own)
        assert all(figures[f] is None for f in own)
    kubetrain = data["scenarios"]["burst"]["systems"]["kubetrain"]["figures"]
    assert kubetrain["reconciles_per_job"] == 7.5 and kubetrain["events_dropped"] == 3
    assert kubetrain["client_limit_cuts"] == 2
    assert (tmp_path / "burst_latency_cdf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
