"""``python -m kubetrain.bench.webhook`` end to end, small: both measurements produce figures
(a cluster process and two operator processes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_webhook_bench_reports_both_measurements(tmp_path: Path) -> None:
    out = tmp_path / "webhook.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubetrain.bench.webhook",
            "--reviews",
            "200",
            "--creates",
            "40",
            "--concurrency",
            "4",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    server = figures["webhook_server"]
    assert server["reviews"] == 200 and server["reviews_per_second"] > 0
    assert 0 < server["latency_p50_ms"] <= server["latency_p99_ms"]
    creates = figures["creates_through_the_api_server"]
    assert creates["creates"] == 40
    assert creates["with_webhooks_p50_ms"] > 0 and creates["without_webhooks_p50_ms"] > 0
