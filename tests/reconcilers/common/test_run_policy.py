"""TTL and deadline datetimes, backoff counting, cleanPodPolicy (reference 2.8, quirk 3 fixed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from jobkit import T0, make_job, make_pod

from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import PYTORCHJOB, TFJOB
from kubetrain.reconcilers.common import runpolicy, ttl


def test_ttl_and_active_deadline() -> None:
    job = make_job(
        "TFJob",
        {"Worker": 1},
        run_policy={"ttlSecondsAfterFinished": 60, "activeDeadlineSeconds": 30},
        status={"startTime": "2025-01-01T12:00:00Z", "completionTime": "2025-01-01T12:05:00Z"},
    )
    assert ttl.ttl_deadline(job, TFJOB) == T0 + timedelta(minutes=6)
    assert runpolicy.active_deadline(job, TFJOB) == T0 + timedelta(seconds=30)
    assert not runpolicy.past_active_deadline(job, TFJOB, T0 + timedelta(seconds=29))
    assert runpolicy.past_active_deadline(job, TFJOB, T0 + timedelta(seconds=30))
    assert ttl.ttl_deadline(make_job("TFJob", {"Worker": 1}), TFJOB) is None


@pytest.mark.parametrize(
    ("limit", "restart_counts", "recreated", "expected"),
    [
        (3, [1, 1], 0, False),
        (3, [1, 1], 1, True),
        (0, [], 0, False),
        (0, [1], 0, True),
        (2, [0], 2, True),
    ],
)
def test_backoff_counts_all_pods_and_recreations(
    limit: int, restart_counts: list[int], recreated: int, expected: bool
) -> None:
    job = default_job(
        PYTORCHJOB, make_job("PyTorchJob", {"Worker": 4}, run_policy={"backoffLimit": limit})
    )
    phases = ["Running", "Failed", "Pending"]
    pods = [
        make_pod(job, "Worker", i, phases[i % 3], restart_count=n)
        for i, n in enumerate(restart_counts)
    ]
    assert runpolicy.past_backoff_limit(job, PYTORCHJOB, pods, restarts=recreated) is expected


def test_backoff_ignores_never_policy_and_reads_annotation() -> None:
    job = default_job(TFJOB, make_job("TFJob", {"Worker": 1}, run_policy={"backoffLimit": 1}))
    pods = [make_pod(job, "Worker", 0, restart_count=5)]
    assert not runpolicy.past_backoff_limit(job, TFJOB, pods, restarts=0)
    job["metadata"]["annotations"] = {runpolicy.OPERATOR_RESTARTS_ANNOTATION: "4"}
    assert runpolicy.operator_restarts(job) == 4
    job["metadata"]["annotations"][runpolicy.OPERATOR_RESTARTS_ANNOTATION] = "junk"
    assert runpolicy.operator_restarts(job) == 0


@pytest.mark.parametrize(
    ("policy", "finished", "expected"),
    [
        ("None", True, []),
        ("All", True, ["j-worker-0", "j-worker-1", "j-worker-2", "j-worker-3"]),
        ("Running", True, ["j-worker-0", "j-worker-1"]),
        ("None", False, ["j-worker-0", "j-worker-1", "j-worker-2", "j-worker-3"]),
    ],
)
def test_pods_to_clean(policy: str, finished: bool, expected: list[str]) -> None:
    job = default_job(
        TFJOB, make_job("TFJob", {"Worker": 5}, run_policy={"cleanPodPolicy": policy})
    )
    pods = [
        make_pod(job, "Worker", i, phase)
        for i, phase in enumerate(["Running", "Pending", "Succeeded", "Failed"])
    ] + [make_pod(job, "Worker", 4, "Running", deleting=True)]
    got = [
        p["metadata"]["name"] for p in runpolicy.pods_to_clean(job, TFJOB, pods, finished=finished)
    ]
    assert got == expected
