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


def run_bench(scenario: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kubetrain.cli", "bench", scenario, "--quick", "--out", str(out)]
    return subprocess.run(
        [*argv, "--jobs", "3", "--systems", ",".join(SYSTEMS), *extra],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def check_report(out: Path, scenario: str, figures: tuple[str, ...]) -> dict:
    assert (out / "summary.md").is_file()
    assert (out / f"{scenario}_latency_cdf.png").read_bytes()[:4] == b"\x89PNG"
    data = orjson.loads((out / "result.json").read_bytes())
    assert {"machine", "versions", "parameters", "scenarios", "started"} <= set(data)
    section = data["scenarios"][scenario]
    assert set(section["systems"]) == set(SYSTEMS)
    summary = (out / "summary.md").read_text()
    for fig in figures:
        assert f"| {fig} |" in summary
    for system in SYSTEMS:
        values = section["systems"][system]["figures"]
        missing = [f for f in figures if values.get(f) is None]
        assert not missing, f"{system}: no value for {missing}"
    return section


def test_burst_quick_report_is_complete(tmp_path: Path) -> None:
    done = run_bench("burst", tmp_path, "--run-seconds", "0.5")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[burst/kopf]" in done.stdout  # progress lines
    section = check_report(tmp_path, "burst", burst.FIGURES)
    for system in SYSTEMS:
        figures = section["systems"][system]["figures"]
        assert figures["jobs_succeeded"] == 3
        assert figures["minimal_writes"] == 3 * 11
        writes = section["systems"][system]["operator_writes"]
        assert writes.get("POST pods") == 12, writes


def test_ttl_quick_report_is_complete(tmp_path: Path) -> None:
    done = run_bench("ttl", tmp_path, "--ttl-seconds", "1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    section = check_report(tmp_path, "ttl", ttl.FIGURES)
    for system in SYSTEMS:
        assert section["systems"][system]["figures"]["jobs_never_deleted"] == 0
