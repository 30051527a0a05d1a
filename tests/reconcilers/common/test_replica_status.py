"""Replica status counting (reference 2.3)."""

from __future__ import annotations

from jobkit import make_job, make_pod

from kubetrain.reconcilers.api.kinds import JAXJOB, TFJOB
from kubetrain.reconcilers.common.replica_status import (
    count_pods,
    fold_active_into_succeeded,
    replica_statuses,
    zero_active,
)


def test_counting_rules() -> None:
    job = make_job("TFJob", {"Worker": 6})
    pods = [
        make_pod(job, "Worker", 0, "Running"),
        make_pod(job, "Worker", 1, "Running", deleting=True),
        make_pod(job, "Worker", 2, "Succeeded"),
        make_pod(job, "Worker", 3, "Failed"),
        make_pod(job, "Worker", 4, "Pending"),
    ]
    assert count_pods(pods) == {"active": 1, "succeeded": 1, "failed": 2}
    assert count_pods([]) == {}


def test_selector_only_for_scalable_kinds() -> None:
    tf = make_job("TFJob", {"Worker": 1})
    assert replica_statuses(TFJOB, "j", ["Worker"], [make_pod(tf, "Worker", 0)]) == {
        "Worker": {"active": 1}
    }
    out = replica_statuses(JAXJOB, "j", ["Worker"], [])
    assert out["Worker"]["selector"].endswith("replica-type=worker")


def test_fold_and_zero_active() -> None:
    statuses = {"Worker": {"active": 2, "succeeded": 1}, "PS": {"active": 1}}
    assert fold_active_into_succeeded(statuses) == {
        "Worker": {"succeeded": 3},
        "PS": {"succeeded": 1},
    }
    assert zero_active({"Worker": {"active": 2, "failed": 1}}) == {"Worker": {"failed": 1}}
