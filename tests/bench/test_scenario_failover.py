"""``kubetrain bench failover --quick`` end to end (issue 15): two ``--leader-elect`` replicas,
the leader SIGKILLed mid-burst. Asserted: no duplicate pod, every job finished with its status,
the takeover within the lease duration plus the longest jittered retry (plus slack for a loaded
2-core machine), and the restarted old leader never led, reconciled or wrote."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from kubetrain.bench.scenarios import failover
from kubetrain.bench.scenarios.failover import ReplicaMetrics, status_lost

SLACK_SECONDS = 5.0
"""Beyond ``takeover_bound_seconds`` (lease + one jittered retry): the follower's poll, the
harness's 50 ms poll of the Lease and scheduling delays on a busy 2-core machine."""


def test_replica_metrics_parse() -> None:
    text = (
        'leader_election_master_status{name="l"} 1.0\n'
        'controller_runtime_reconcile_total{controller="c",result="success"} 3.0\n'
        'controller_runtime_reconcile_total{controller="c",result="error"} 1.0\n'
        'rest_client_requests_total{code="200",method="GET",host="h"} 7.0\n'
        'rest_client_requests_total{code="200",method="PUT",host="h"} 2.0\n'
        'rest_client_requests_total{code="201",method="POST",host="h"} 4.0\n'
        'rest_client_requests_total{code="409",method="POST",host="h"} 1.0\n'
    )
    m = ReplicaMetrics.parse(text)
    assert m.master == 1
    assert m.reconciles == 4
    assert m.writes == 7
    assert m.creates_patches_deletes == 5
    assert ReplicaMetrics.parse("").master is None


def test_status_lost() -> None:
    done = {
        "status": {
            "conditions": [{"type": "Succeeded", "status": "True"}],
            "completionTime": "2024-01-01T00:00:00Z",
            "replicaStatuses": {"Master": {"succeeded": 1}},
        }
    }
    assert not status_lost(done)
    assert status_lost({"status": {**done["status"], "completionTime": None}})
    assert status_lost({"status": {"conditions": [{"type": "Running", "status": "True"}]}})
    assert status_lost({})


@pytest.mark.e2e
@pytest.mark.timeout(200)
def test_failover_quick(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "kubetrain.cli", "bench", "failover", "--quick"]
    argv += ["--out", str(tmp_path), "--systems", "kubetrain,raw"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = (tmp_path / "summary.md").read_text()
    for fig in failover.FIGURES:
        assert f"| {fig} |" in summary
    section = orjson.loads((tmp_path / "result.json").read_bytes())["scenarios"]["failover"]
    assert set(section["systems"]) == {"kubetrain"}
    assert set(section["skipped_systems"]) == {"raw"}
    f = section["systems"]["kubetrain"]["figures"]
    assert [k for k in failover.FIGURES if f.get(k) is None] == []
    assert done.stdout.count("SIGKILL leader") == 1
    assert f["jobs_succeeded"] == f["jobs"] == 20
    assert f["jobs_not_finished"] == 0
    assert f["jobs_status_lost"] == 0
    assert f["duplicate_pods"] == 0
    assert f["indices_with_two_pods"] == 0
    assert f["orphaned_pods"] == 0
    assert 0 < f["jobs_with_all_pods_at_kill"] < 20
    # The follower waits out the dead leader's Lease: no sooner than lease - one jittered retry
    # (it may have seen the last renewal that long before the kill), no later than the bound.
    bound = f["takeover_bound_seconds"]
    lease = f["lease_duration_seconds"]
    assert bound == lease + section["parameters"]["retry_period_seconds"] * 2.2
    assert 2 * lease - bound - 0.5 <= f["takeover_gap_seconds"] < bound + SLACK_SECONDS
    # Warm caches: the new leader's first pod/service/event write follows right after.
    assert 0 < f["first_write_gap_seconds"] < bound + SLACK_SECONDS
    assert f["follower_reconciles_before_takeover"] == 0
    assert f["restarted_leader_scrapes"] > 0
    assert f["restarted_leader_scrapes_leading"] == 0
    assert f["restarted_leader_writes"] == 0
    assert f["restarted_leader_reconciles"] == 0
