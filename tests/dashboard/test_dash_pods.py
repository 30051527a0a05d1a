"""``dashboard/pods.py`` and ``events.py``: which job a pod or an event belongs to; the trims."""

from __future__ import annotations

import copy

from dashboard_samples import pod

from kubetrain.dashboard.events import event_index, event_view, trim_event
from kubetrain.dashboard.pods import pod_job_key, pod_view, replica_type_of, trim_pod


def test_a_v1_pod_belongs_to_its_controller() -> None:
    p = pod("a-worker-0", "a", "ns", kind="TFJob", ready=True, restarts=2)
    assert pod_job_key(p) == "TFJob/ns/a"
    assert replica_type_of(p) == "worker"
    view = pod_view(p)
    assert view["ready"] is True and view["restarts"] == 2 and view["node"] == "node-1"
    assert view["containers"] == ["pytorch"] and view["started"] is not None


def test_trainjob_and_mpi_launcher_pods_by_labels() -> None:
    tj = {
        "metadata": {
            "name": "t-node-0-0-x",
            "namespace": "ns",
            "labels": {
                "jobset.sigs.k8s.io/jobset-name": "t",
                "jobset.sigs.k8s.io/replicatedjob-name": "node",
            },
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "t-node-0", "controller": True}
            ],
        }
    }
    assert pod_job_key(tj) == "TrainJob/ns/t" and replica_type_of(tj) == "node"
    launcher = {
        "metadata": {
            "name": "m-launcher-x",
            "namespace": "ns",
            "labels": {
                "training.kubeflow.org/operator-name": "mpi-operator",
                "training.kubeflow.org/job-name": "m",
                "training.kubeflow.org/job-role": "launcher",
            },
        }
    }
    assert pod_job_key(launcher) == "MPIJob/ns/m" and replica_type_of(launcher) == "launcher"
    assert pod_job_key({"metadata": {"name": "lonely", "namespace": "ns"}}) is None


def test_trims_keep_what_is_read_and_are_idempotent() -> None:
    p = pod("a-worker-0", "a", ready=True)
    trimmed = trim_pod(copy.deepcopy(p))
    assert "managedFields" not in trimmed["metadata"]
    assert trimmed["spec"] == {"containers": [{"name": "pytorch"}], "nodeName": "node-1"}
    assert trim_pod(copy.deepcopy(trimmed)) == trimmed
    assert pod_view(trimmed) == pod_view(p) and pod_job_key(trimmed) == pod_job_key(p)
    event = {
        "metadata": {"name": "e", "namespace": "ns", "managedFields": []},
        "involvedObject": {"kind": "Pod", "name": "a-worker-0", "namespace": "ns"},
        "reason": "Started",
        "message": "m",
        "type": "Normal",
        "lastTimestamp": "2026-01-01T00:00:05Z",
        "source": {"component": "kubelet"},
        "ignored": {"x": 1},
    }
    trimmed_event = trim_event(copy.deepcopy(event))
    assert (
        "ignored" not in trimmed_event and trim_event(copy.deepcopy(trimmed_event)) == trimmed_event
    )
    assert event_index(trimmed_event) == ["Pod/ns/a-worker-0"]
    view = event_view(trimmed_event)
    assert view["reason"] == "Started" and view["source"] == "kubelet" and view["count"] == 1
    assert view["object"] == {"kind": "Pod", "name": "a-worker-0"}
