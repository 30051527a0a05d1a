"""``kubetrain bench soak --quick`` end to end, shortened (30 s of arrivals, a SIGTERM restart
every 10 s): the report must hold the series, the slopes and the plots, and no job may be lost or
duplicated across the restarts. Whether a leak is suspected is not asserted: a minute is too
short to tell a leak from a process growing into its load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from kubetrain.bench.scenarios import soak

pytestmark = pytest.mark.e2e


def test_soak_quick(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "kubetrain.cli", "bench", "soak", "--quick", "--out",
            str(tmp_path), "--duration", "30", "--restart-every", "10"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=110, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for png in ("soak_over_time.png", "soak_latency_cdf.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"
    summary = (tmp_path / "summary.md").read_text()
    for fig in soak.FIGURES:
        assert f"| {fig} |" in summary
    section = orjson.loads((tmp_path / "result.json").read_bytes())["scenarios"]["soak"]
    assert list(section["systems"]) == ["kubetrain"]  # soak's default
    data = section["systems"]["kubetrain"]
    figures = data["figures"]
    assert [f for f in soak.FIGURES if figures.get(f) is None] == []
    assert figures["jobs"] == 60
    assert figures["jobs_not_finished"] == 0
    assert figures["jobs_not_deleted"] == 0
    assert figures["duplicate_pods"] == 0
    assert figures["orphaned_pods"] == 0
    assert figures["pods_left_at_end"] == 0
    assert figures["restarts"] >= 2
    assert figures["restarts"] == done.stdout.count("restart #") == len(data["restarts"])
    assert figures["unclean_exits"] == 0
    rows = data["timeseries"]
    assert len(rows) >= 20
    assert {"t", "epoch", "epoch_t", *soak.SERIES} <= set(rows[0])
    for column in soak.SERIES:
        assert all(r[column] is not None for r in rows[1:]), f"{column} was not sampled"
    assert {r["epoch"] for r in rows} >= {0, 1, 2}
    for name in soak.LEAK_SERIES:
        fit = data["slopes"][name]
        assert fit["slope_per_hour"] is not None, (name, fit)
        assert fit["epochs"] >= 2
        assert isinstance(fit["leak_suspected"], bool)
