"""Pod re-creation backoff (10 s doubling, capped at 10 min) and the pod a Job creates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from kubetrain.cluster.kcm.job.backoff import BackoffStore, remaining_seconds
from kubetrain.cluster.kcm.job.podtemplate import new_pod

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def pod_finished(at: datetime, phase: str) -> Any:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": "p", "creationTimestamp": stamp},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "c", "state": {"terminated": {"finishedAt": stamp}}}],
        },
    }


def test_remaining_doubles_from_ten_seconds_and_caps() -> None:
    assert remaining_seconds(T0, 0, None) == 0
    assert remaining_seconds(T0 + timedelta(seconds=4), 1, T0) == 6
    assert remaining_seconds(T0, 3, T0) == 40
    assert remaining_seconds(T0, 20, T0) == 600
    assert remaining_seconds(T0 + timedelta(seconds=11), 1, T0) == 0


def test_record_counts_failures_since_the_last_success() -> None:
    store = BackoffStore()
    one = store.new_record("ns/j", [], [pod_finished(T0, "Failed")])
    assert one.failures_after_last_success == 1 and one.last_failure == T0
    store.update(one)
    two = store.new_record("ns/j", [], [pod_finished(T0 + timedelta(seconds=5), "Failed")])
    assert two.failures_after_last_success == 2
    reset = store.new_record(
        "ns/j",
        [pod_finished(T0 + timedelta(seconds=9), "Succeeded")],
        [pod_finished(T0 + timedelta(seconds=8), "Failed")],
    )
    assert reset.failures_after_last_success == 0 and reset.last_failure is None


JOB: Any = {
    "metadata": {"name": "train", "namespace": "ns", "uid": "u-1"},
    "spec": {
        "template": {
            "metadata": {"labels": {"job-name": "train"}, "annotations": {"a": "b"}},
            "spec": {
                "subdomain": "svc",
                "initContainers": [{"name": "init"}],
                "containers": [{"name": "c", "env": [{"name": "X", "value": "1"}]}],
            },
        }
    },
}


def test_non_indexed_pod() -> None:
    pod = new_pod(JOB)
    meta = pod["metadata"]
    assert meta["generateName"] == "train-"
    assert meta["finalizers"] == ["batch.kubernetes.io/job-tracking"]
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "train",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert "hostname" not in pod["spec"]
    assert JOB["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "X", "value": "1"}]


def test_indexed_pod_index_everywhere() -> None:
    pod = new_pod(JOB, index=3, failure_counts=(1, 0))
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["generateName"] == "train-3-"
    assert meta["labels"]["batch.kubernetes.io/job-completion-index"] == "3"
    assert meta["annotations"]["batch.kubernetes.io/job-completion-index"] == "3"
    assert meta["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"
    assert "batch.kubernetes.io/job-index-ignored-failure-count" not in meta["annotations"]
    assert spec["hostname"] == "train-3" and spec["subdomain"] == "svc"
    ref = {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}
    for c in spec["initContainers"] + spec["containers"]:
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": ref} in c["env"]
    # the template is not changed
    assert "hostname" not in JOB["spec"]["template"]["spec"]
