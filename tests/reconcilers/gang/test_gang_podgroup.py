"""A job's PodGroup (``reconcilers/gang/podgroup.py``): minMember, minResources (priority order,
limits fallback, minAvailable below the total), Volcano's queue precedence, both flavours'
specs, and a malformed quantity named as a spec error."""

from __future__ import annotations

from typing import Any

import pytest
from jobkit import make_job

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import PYTORCHJOB, TFJOB
from kubetrain.reconcilers.common.decision import SpecError
from kubetrain.reconcilers.gang import (
    GangScheduler,
    GangView,
    desired_podgroup,
    min_member,
    min_resources,
    podgroup_reference,
)
from kubetrain.reconcilers.gang.podgroup import volcano_queue

VOLCANO = GangScheduler(scheduler_name="volcano", volcano=True)
PLUGINS = GangScheduler(scheduler_name="sp-scheduler", volcano=False)


def with_resources(job: Obj, rtype: str, resources: Obj, *, priority_class: str = "") -> Obj:
    spec = job["spec"][PYTORCHJOB.replica_field][rtype]["template"]["spec"]
    spec["containers"][0]["resources"] = resources
    if priority_class:
        spec["priorityClassName"] = priority_class
    return job


def pytorch(replicas: dict[str, int | None], **run_policy: Any) -> Obj:
    job = make_job("PyTorchJob", replicas, run_policy=run_policy or None)
    return job


def test_min_member_is_min_available_else_total_replicas() -> None:
    job = default_job(PYTORCHJOB, pytorch({"Master": 1, "Worker": 3}))
    assert min_member(job, PYTORCHJOB) == 4
    job = default_job(
        PYTORCHJOB, pytorch({"Master": 1, "Worker": 3}, schedulingPolicy={"minAvailable": 2})
    )
    assert min_member(job, PYTORCHJOB) == 2


def test_min_resources_sums_requests_of_every_pod_when_min_member_is_the_total() -> None:
    job = pytorch({"Master": 1, "Worker": 2})
    with_resources(job, "Master", {"requests": {"cpu": "1", "memory": "1Gi"}})
    with_resources(job, "Worker", {"requests": {"cpu": "500m", "memory": "512Mi"}})
    job = default_job(PYTORCHJOB, job)
    assert min_resources(job, PYTORCHJOB, members=3, priority_value=lambda _: None) == {
        "cpu": "2",
        "memory": "2Gi",
    }


def test_limits_count_only_for_a_container_without_requests() -> None:
    job = pytorch({"Master": 1, "Worker": 1})
    with_resources(job, "Master", {"limits": {"cpu": "2", "nvidia.com/gpu": "1"}})
    with_resources(job, "Worker", {"requests": {"cpu": "1"}, "limits": {"cpu": "4"}})
    job = default_job(PYTORCHJOB, job)
    assert min_resources(job, PYTORCHJOB, members=2, priority_value=lambda _: None) == {
        "cpu": "3",
        "nvidia.com/gpu": "1",
    }


def test_min_available_below_the_total_counts_the_highest_priority_pods_first() -> None:
    """Workers' PriorityClass is higher than the Master's: the first two pods counted are
    Workers, whatever the kind's canonical order (Master first)."""
    job = pytorch({"Master": 1, "Worker": 3})
    with_resources(job, "Master", {"requests": {"cpu": "8"}}, priority_class="low")
    with_resources(job, "Worker", {"requests": {"cpu": "1"}}, priority_class="high")
    job = default_job(PYTORCHJOB, job)
    values = {"high": 1000, "low": 10}
    assert min_resources(job, PYTORCHJOB, members=2, priority_value=values.get) == {"cpu": "2"}
    # swapped priorities: the Master first, then one Worker
    swapped = {"high": 10, "low": 1000}
    assert min_resources(job, PYTORCHJOB, members=2, priority_value=swapped.get) == {"cpu": "9"}
    # unknown classes count as 0: equal priorities keep the canonical order (Master first)
    assert min_resources(job, PYTORCHJOB, members=2, priority_value=lambda _: None) == {"cpu": "9"}


def test_a_malformed_quantity_is_a_spec_error_naming_the_field() -> None:
    job = default_job(
        PYTORCHJOB, with_resources(pytorch({"Master": 1}), "Master", {"requests": {"cpu": "lots"}})
    )
    with pytest.raises(SpecError, match=r"pytorchReplicaSpecs\[Master\].*requests\[cpu\]"):
        min_resources(job, PYTORCHJOB, members=1, priority_value=lambda _: None)


def test_queue_precedence_existing_podgroup_then_policy_then_default() -> None:
    plain = default_job(PYTORCHJOB, pytorch({"Master": 1}))
    queued = default_job(PYTORCHJOB, pytorch({"Master": 1}, schedulingPolicy={"queue": "team"}))
    existing = {"spec": {"queue": "admitted"}}
    assert volcano_queue(plain, PYTORCHJOB, None) == "default"
    assert volcano_queue(queued, PYTORCHJOB, None) == "team"
    assert volcano_queue(queued, PYTORCHJOB, existing) == "admitted"
    assert volcano_queue(queued, PYTORCHJOB, {"spec": {"queue": ""}}) == "team"
    # a queue-name annotation or Kueue label is not read (the reference's v1 jobs read neither)
    annotated = default_job(PYTORCHJOB, pytorch({"Master": 1}))
    annotated["metadata"]["annotations"] = {"scheduling.volcano.sh/queue-name": "other"}
    annotated["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": "other"}
    assert volcano_queue(annotated, PYTORCHJOB, None) == "default"


def test_volcano_podgroup() -> None:
    job = pytorch(
        {"Master": 1, "Worker": 2},
        schedulingPolicy={"queue": "team", "priorityClass": "high", "minAvailable": 2},
    )
    job["metadata"]["annotations"] = {"owner": "alice"}
    with_resources(job, "Master", {"requests": {"cpu": "1"}})
    with_resources(job, "Worker", {"requests": {"cpu": "2"}})
    podgroup = desired_podgroup(VOLCANO, default_job(PYTORCHJOB, job), PYTORCHJOB, GangView())
    assert podgroup == {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "PodGroup",
        "metadata": {
            "name": "j",
            "namespace": "ns",
            "annotations": {"owner": "alice"},
            "ownerReferences": [
                {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "PyTorchJob",
                    "name": "j",
                    "uid": "uid-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "minMember": 2,
            "queue": "team",
            "priorityClassName": "high",
            "minResources": {"cpu": "3"},
        },
    }
    assert podgroup_reference(VOLCANO, job) == ("scheduling.volcano.sh/v1beta1", "PodGroup", "j")


def test_volcano_podgroup_keeps_the_existing_queue() -> None:
    job = default_job(PYTORCHJOB, pytorch({"Master": 1}, schedulingPolicy={"queue": "team"}))
    view = GangView(podgroup={"spec": {"queue": "admitted"}})
    assert desired_podgroup(VOLCANO, job, PYTORCHJOB, view)["spec"]["queue"] == "admitted"


def test_scheduler_plugins_podgroup_and_explicit_min_resources() -> None:
    job = pytorch(
        {"Master": 1, "Worker": 1},
        schedulingPolicy={
            "minResources": {"cpu": "10", "memory": "1Gi"},
            "scheduleTimeoutSeconds": 60,
            "queue": "ignored",
            "priorityClass": "ignored",
        },
    )
    with_resources(job, "Master", {"requests": {"cpu": "1"}})
    podgroup = desired_podgroup(PLUGINS, default_job(PYTORCHJOB, job), PYTORCHJOB, GangView())
    assert podgroup["apiVersion"] == "scheduling.x-k8s.io/v1alpha1"
    assert podgroup["kind"] == "PodGroup"
    assert "annotations" not in podgroup["metadata"]
    assert podgroup["spec"] == {
        "minMember": 2,
        "minResources": {"cpu": "10", "memory": "1Gi"},
        "scheduleTimeoutSeconds": 60,
    }
    assert podgroup_reference(PLUGINS, job) == ("scheduling.x-k8s.io/v1alpha1", "PodGroup", "j")


def test_no_requests_at_all_leaves_min_resources_out() -> None:
    job = default_job(TFJOB, make_job("TFJob", {"Worker": 2}))
    podgroup = desired_podgroup(PLUGINS, job, TFJOB, GangView())
    assert podgroup["spec"] == {"minMember": 2}
