"""compute_status with gang scheduling (``DomainOptions.gang``, reference section 3): the PodGroup
among the objects to apply, decorated pods, Volcano's wait for the PodGroup's phase (the job stays
Created and says why), and the PodGroup's deletion when the job finishes or is suspended."""

from __future__ import annotations

import copy
from datetime import timedelta

from jobkit import T0, adapter_of, cond_list, make_job, make_pod

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.compact import slim_pod
from kubetrain.reconcilers.common.decision import StatusDecision
from kubetrain.reconcilers.common.kind_adapter import DomainOptions
from kubetrain.reconcilers.common.status import compute_status
from kubetrain.reconcilers.gang import GangScheduler, GangView

VOLCANO = DomainOptions(gang=GangScheduler(scheduler_name="volcano", volcano=True))
PLUGINS = DomainOptions(gang=GangScheduler(scheduler_name="sp-scheduler", volcano=False))


def step(
    job: Obj,
    pods: list[Obj],
    *,
    options: DomainOptions,
    podgroup: Obj | None = None,
    dt: float = 0,
) -> StatusDecision:
    before = copy.deepcopy(job)
    decision = compute_status(
        adapter_of(job),
        job,
        pods,
        [],
        now=T0 + timedelta(seconds=dt),
        options=options,
        gang_view=GangView(podgroup=podgroup),
    )
    assert job == before, "compute_status must not mutate the job"
    if decision.status_changed:
        job["status"] = decision.status
    return decision


def podgroup_of(decision: StatusDecision) -> Obj:
    (podgroup,) = [o for o in decision.apply_objects if o["kind"] == "PodGroup"]
    return podgroup


def with_phase(podgroup: Obj, phase: str) -> Obj:
    return {**podgroup, "status": {"phase": phase}}


def created_message(job: Obj) -> str:
    created = cond.get_condition(job["status"]["conditions"], cond.CREATED)
    assert created is not None
    return str(created["message"])


def test_volcano_holds_pods_until_the_podgroup_is_admitted() -> None:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 2})
    d = step(job, [], options=VOLCANO)
    podgroup = podgroup_of(d)
    assert podgroup["apiVersion"] == "scheduling.volcano.sh/v1beta1"
    assert podgroup["spec"] == {"minMember": 3, "queue": "default"}
    assert d.create_pods == [], "no pod before the PodGroup is admitted"
    assert len(d.create_services) == 3, "services are not held"
    assert cond_list(job["status"]) == [("Created", "True", "PyTorchJobCreated")]
    assert "Pods are created once volcano admits PodGroup j" in created_message(job)
    waits = [e for e in d.events if e.reason == "WaitingForPodGroup"]
    assert [(e.type, e.message) for e in waits] == [
        ("Warning", "PodGroup ns/j is not created yet; pods are created once volcano admits it")
    ]

    # the cache shows it, then Volcano marks it Pending: still waiting, nothing new to write
    for phase in ("", "Pending"):
        d = step(job, [], options=VOLCANO, podgroup=with_phase(podgroup, phase), dt=1)
        assert d.create_pods == [] and not d.status_changed
        assert not [e for e in d.events if e.reason == "WaitingForPodGroup"]
        assert podgroup_of(d) == podgroup

    # admitted: the pods are created, decorated, and the Created message is the usual one
    d = step(job, [], options=VOLCANO, podgroup=with_phase(podgroup, "Inqueue"), dt=2)
    assert [p["metadata"]["name"] for p in d.create_pods] == [
        "j-master-0",
        "j-worker-0",
        "j-worker-1",
    ]
    for pod in d.create_pods:
        assert pod["spec"]["schedulerName"] == "volcano"
        annotations = pod["metadata"]["annotations"]
        assert annotations["scheduling.k8s.io/group-name"] == "j"
        rtype = pod["metadata"]["labels"]["training.kubeflow.org/replica-type"]
        assert annotations["volcano.sh/task-spec"] == rtype
    assert created_message(job) == "PyTorchJob j is created."
    assert cond_list(job["status"]) == [("Created", "True", "PyTorchJobCreated")]


def test_a_job_never_succeeds_while_its_pods_are_held() -> None:
    """The Master succeeded before the PodGroup went back to Pending; the Workers were never
    created: the job waits for them rather than succeeding without them."""
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 1})
    podgroup = podgroup_of(step(job, [], options=VOLCANO))
    master = make_pod(job, "Master", 0, "Succeeded", exit_code=0)
    d = step(job, [master], options=VOLCANO, podgroup=with_phase(podgroup, "Pending"), dt=1)
    assert d.create_pods == []
    assert not cond.is_finished(job["status"])


def test_scheduler_plugins_creates_decorated_pods_at_once() -> None:
    job = make_job(
        "PyTorchJob",
        {"Master": 1, "Worker": 1},
        run_policy={"schedulingPolicy": {"scheduleTimeoutSeconds": 30}},
    )
    d = step(job, [], options=PLUGINS)
    assert podgroup_of(d)["apiVersion"] == "scheduling.x-k8s.io/v1alpha1"
    assert podgroup_of(d)["spec"] == {"minMember": 2, "scheduleTimeoutSeconds": 30}
    assert len(d.create_pods) == 2
    for pod in d.create_pods:
        assert pod["spec"]["schedulerName"] == "sp-scheduler"
        assert pod["metadata"]["labels"]["scheduling.x-k8s.io/pod-group"] == "j"
    assert created_message(job) == "PyTorchJob j is created."
    assert not [e for e in d.events if e.reason == "WaitingForPodGroup"]


def unschedulable(pod: Obj, message: str) -> Obj:
    pod["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    ]
    return slim_pod(pod)  # what the controller's cache holds


def test_pods_the_gang_scheduler_cannot_place_are_shown_until_the_job_runs() -> None:
    """scheduler-plugins creates the pods at once; while the gang does not fit, the Created
    message says how many wait and the scheduler's reason, with one Warning when it begins."""
    job = make_job(
        "PyTorchJob",
        {"Master": 1, "Worker": 1},
        run_policy={"schedulingPolicy": {"minAvailable": 10}},
    )
    step(job, [], options=PLUGINS)
    reason = "pod group is not ready, 10 minAvailable: 8 of its pods cannot be placed at once"
    pods = [
        unschedulable(make_pod(job, "Master", 0, "Pending"), reason),
        unschedulable(make_pod(job, "Worker", 0, "Pending"), reason),
    ]
    d = step(job, pods, options=PLUGINS, dt=1)
    assert d.status_changed
    assert created_message(job) == (
        f"PyTorchJob j is created. 2 of 2 pods wait for sp-scheduler to place them: {reason}"
    )
    assert cond_list(job["status"]) == [("Created", "True", "PyTorchJobCreated")]
    warnings = [(e.type, e.message) for e in d.events if e.reason == "PodsUnschedulable"]
    assert warnings == [("Warning", f"2 pods of ns/j cannot be placed by sp-scheduler: {reason}")]

    # nothing changed: no write, no second event
    d = step(job, pods, options=PLUGINS, dt=2)
    assert not d.status_changed
    assert not [e for e in d.events if e.reason == "PodsUnschedulable"]

    # placed and running: the usual message again
    running = [make_pod(job, "Master", 0, "Running"), make_pod(job, "Worker", 0, "Running")]
    d = step(job, running, options=PLUGINS, dt=3)
    assert created_message(job) == "PyTorchJob j is created."
    assert "Running" in [c[0] for c in cond_list(job["status"])]


def test_unschedulable_pods_are_not_shown_without_gang_scheduling() -> None:
    job = make_job("PyTorchJob", {"Master": 1})
    step(job, [], options=DomainOptions())
    pods = [unschedulable(make_pod(job, "Master", 0, "Pending"), "0/1 nodes are available")]
    step(job, pods, options=DomainOptions(), dt=1)
    assert created_message(job) == "PyTorchJob j is created."


def test_another_scheduler_in_a_template_is_kept_with_a_warning_per_pod() -> None:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 2})
    workers = job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    workers["schedulerName"] = "mine"
    d = step(job, [], options=PLUGINS)
    names = {p["metadata"]["name"]: p["spec"]["schedulerName"] for p in d.create_pods}
    assert names == {"j-master-0": "sp-scheduler", "j-worker-0": "mine", "j-worker-1": "mine"}
    warnings = [e for e in d.events if e.reason == "SetPodTemplateSchedulerName"]
    assert len(warnings) == 2 and all(e.type == "Warning" for e in warnings)


def test_the_podgroup_is_deleted_when_the_job_succeeds_and_while_it_is_cached() -> None:
    job = make_job("PyTorchJob", {"Master": 1})
    podgroup = with_phase(podgroup_of(step(job, [], options=PLUGINS)), "Running")
    running = [make_pod(job, "Master", 0)]
    d = step(job, running, options=PLUGINS, podgroup=podgroup, dt=1)
    assert d.delete_objects == [] and podgroup_of(d)
    done = [make_pod(job, "Master", 0, "Succeeded", exit_code=0)]
    d = step(job, done, options=PLUGINS, podgroup=podgroup, dt=2)
    assert cond.is_succeeded(job["status"])
    assert d.delete_objects == [("scheduling.x-k8s.io/v1alpha1", "PodGroup", "j")]
    assert ("Normal", "JobTerminated", "Job has been terminated. Deleting PodGroup") in [
        (e.type, e.reason, e.message) for e in d.events
    ]
    assert not [o for o in d.apply_objects if o["kind"] == "PodGroup"]
    # a finished job: deleted again while the cache still shows it, nothing once it is gone
    d = step(job, done, options=PLUGINS, podgroup=podgroup, dt=3)
    assert d.delete_objects == [("scheduling.x-k8s.io/v1alpha1", "PodGroup", "j")]
    d = step(job, done, options=PLUGINS, podgroup=None, dt=4)
    assert d.delete_objects == [] and d.apply_objects == []


def test_the_podgroup_is_deleted_when_the_job_fails_by_backoff() -> None:
    job = make_job(
        "PyTorchJob", {"Master": 1}, restart_policy="OnFailure", run_policy={"backoffLimit": 0}
    )
    podgroup = podgroup_of(step(job, [], options=VOLCANO))
    crashed = [make_pod(job, "Master", 0, restart_count=1)]
    d = step(job, crashed, options=VOLCANO, podgroup=with_phase(podgroup, "Running"), dt=1)
    assert cond.is_failed(job["status"])
    assert d.delete_objects == [("scheduling.volcano.sh/v1beta1", "PodGroup", "j")]
    assert "JobTerminated" in [e.reason for e in d.events]


def test_a_suspended_job_deletes_its_podgroup_and_clears_the_wait_message() -> None:
    job = make_job("PyTorchJob", {"Master": 1})
    podgroup = podgroup_of(step(job, [], options=VOLCANO))
    assert "admits" in created_message(job)
    job["spec"]["runPolicy"] = {"suspend": True}
    d = step(job, [], options=VOLCANO, podgroup=podgroup, dt=1)
    assert cond.is_suspended(job["status"])
    assert d.delete_objects == [("scheduling.volcano.sh/v1beta1", "PodGroup", "j")]
    assert "JobTerminated" not in [e.reason for e in d.events]  # suspended, not terminated
    assert d.apply_objects == [] and d.create_pods == []
    assert created_message(job) == "PyTorchJob j is created."
    # not cached (any more): nothing to delete
    assert step(job, [], options=VOLCANO, podgroup=None, dt=2).delete_objects == []


def test_a_podgroup_being_deleted_is_not_deleted_again() -> None:
    job = make_job("PyTorchJob", {"Master": 1}, run_policy={"suspend": True})
    podgroup = {"metadata": {"name": "j", "deletionTimestamp": "2025-01-01T12:00:00Z"}}
    assert step(job, [], options=VOLCANO, podgroup=podgroup).delete_objects == []


def test_a_podgroup_that_cannot_be_built_holds_the_pods_with_a_spec_error() -> None:
    job = make_job("PyTorchJob", {"Master": 1})
    spec = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    spec["containers"][0]["resources"] = {"requests": {"cpu": "lots"}}
    d = step(job, [], options=PLUGINS)
    assert d.error is not None and "requests[cpu]" in d.error
    assert d.create_pods == [] and d.apply_objects == []
    assert [e.reason for e in d.events if e.type == "Warning"] == ["FailedCreatePodGroup"]


def test_without_gang_scheduling_nothing_changes() -> None:
    job = make_job("PyTorchJob", {"Master": 1})
    d = step(job, [], options=DomainOptions(), podgroup={"metadata": {"name": "j"}})
    assert d.apply_objects == [] and len(d.create_pods) == 1
    assert "schedulerName" not in d.create_pods[0]["spec"]
