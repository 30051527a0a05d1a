"""compute_status: condition sequences, cleanup, TTL, deadlines, backoff, counters (reference 2.6)."""

from __future__ import annotations

import copy
from datetime import timedelta

from jobkit import T0, adapter_of, cond_list, make_job, make_pod

from kubetrain.reconcilers.common.decision import StatusDecision
from kubetrain.reconcilers.common.runpolicy import OPERATOR_RESTARTS_ANNOTATION
from kubetrain.reconcilers.common.status import compute_status


def step(
    job: dict, pods: list[dict], services: list[dict] | None = None, *, dt: float = 0
) -> StatusDecision:
    before = copy.deepcopy(job)
    d = compute_status(adapter_of(job), job, pods, services or [], now=T0 + timedelta(seconds=dt))
    assert job == before, "compute_status must not mutate the job"
    if d.status_changed:
        job["status"] = d.status
    for k, v in d.job_annotations.items():
        job["metadata"].setdefault("annotations", {})[k] = v
    return d


def test_pytorch_success_sequence_and_counters() -> None:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 2})
    d = step(job, [])
    assert cond_list(job["status"]) == [("Created", "True", "PyTorchJobCreated")]
    assert d.counters.created == 1 and [p["metadata"]["name"] for p in d.create_pods] == [
        "j-master-0",
        "j-worker-0",
        "j-worker-1",
    ]
    assert [s["metadata"]["name"] for s in d.create_services] == [
        "j-master-0",
        "j-worker-0",
        "j-worker-1",
    ]
    assert job["status"]["startTime"] == "2025-01-01T12:00:00Z"
    running = [make_pod(job, t, i) for t, i in (("Master", 0), ("Worker", 0), ("Worker", 1))]
    d = step(job, running, dt=5)
    assert d.counters.created == 0 and not d.create_pods
    assert cond_list(job["status"])[-1] == ("Running", "True", "PyTorchJobRunning")
    assert job["status"]["conditions"][-1]["message"] == "PyTorchJob j is running."
    assert job["status"]["replicaStatuses"]["Worker"]["active"] == 2
    d = step(job, running, dt=6)
    assert not d.status_changed, "nothing changed: no status write"
    done = [make_pod(job, "Master", 0, "Succeeded", exit_code=0), *running[1:]]
    d = step(job, done, dt=10)
    assert cond_list(job["status"]) == [
        ("Created", "True", "PyTorchJobCreated"),
        ("Running", "False", "PyTorchJobRunning"),
        ("Succeeded", "True", "PyTorchJobSucceeded"),
    ]
    assert job["status"]["completionTime"] == "2025-01-01T12:00:10Z"
    assert job["status"]["replicaStatuses"]["Worker"] == {
        "succeeded": 2,
        "selector": "training.kubeflow.org/job-name=j,training.kubeflow.org/operator-name="
        "pytorchjob-controller,training.kubeflow.org/replica-type=worker",
    }
    assert d.counters.successful == 1
    assert [(e.type, e.reason) for e in d.events if e.reason.startswith("PyTorch")] == [
        ("Normal", "PyTorchJobSucceeded")
    ]
    assert d.delete_pods == [], "cleanPodPolicy None keeps pods"
    d = step(job, done, dt=20)
    assert not d.status_changed and not d.delete_pods and d.counters.successful == 0
    assert d.requeue_after is None


def test_success_waits_for_replicas_that_were_never_created() -> None:
    """A crash between a job's creates: the Master exists (and has succeeded), the Workers were
    never created. They are created first; the job succeeds only once they exist."""
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 2}, run_policy={"cleanPodPolicy": "All"})
    step(job, [])
    master = make_pod(job, "Master", 0, "Succeeded", exit_code=0)
    d = step(job, [master], dt=5)
    assert [p["metadata"]["name"] for p in d.create_pods] == ["j-worker-0", "j-worker-1"]
    assert cond_list(job["status"]) == [("Created", "True", "PyTorchJobCreated")]
    assert d.counters.successful == 0 and "completionTime" not in job["status"]
    workers = [make_pod(job, "Worker", i, "Pending") for i in range(2)]
    d = step(job, [master, *workers], dt=6)
    assert cond_list(job["status"])[-1] == ("Succeeded", "True", "PyTorchJobSucceeded")
    assert not d.create_pods and d.counters.successful == 1
    assert sorted(d.delete_pods) == ["j-master-0", "j-worker-0", "j-worker-1"], "then cleaned"


def test_a_failed_replica_fails_the_job_even_with_replicas_missing() -> None:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 2}, restart_policy="Never")
    step(job, [])
    d = step(job, [make_pod(job, "Master", 0, "Failed", exit_code=1)], dt=5)
    assert cond_list(job["status"])[-1][:2] == ("Failed", "True")
    assert not d.create_pods


def test_fast_success_and_cleanup_all_with_ttl() -> None:
    job = make_job(
        "JAXJob", {"Worker": 2}, run_policy={"cleanPodPolicy": "All", "ttlSecondsAfterFinished": 60}
    )
    step(job, [])
    pods = [make_pod(job, "Worker", i, "Succeeded", exit_code=0) for i in range(2)]
    services = [{"metadata": dict(p["metadata"])} for p in pods]
    d = step(job, pods, services, dt=1)
    assert [t for t, _, _ in cond_list(job["status"])] == ["Created", "Succeeded"]
    assert sorted(d.delete_pods) == ["j-worker-0", "j-worker-1"]
    assert sorted(d.delete_services) == ["j-worker-0", "j-worker-1"]
    assert d.requeue_after == 60
    d = step(job, pods, services, dt=61)
    assert d.delete_job and d.counters.deleted == 1
    assert [(e.reason, e.message) for e in d.events] == [("SuccessfulDeleteJob", "Deleted job: j")]


def test_suspend_then_resume() -> None:
    job = make_job("TFJob", {"Worker": 2})
    step(job, [])
    pods = [make_pod(job, "Worker", i) for i in range(2)]
    services = [{"metadata": dict(p["metadata"])} for p in pods]
    step(job, pods, services, dt=1)
    job["spec"]["runPolicy"] = {"suspend": True}
    d = step(job, pods, services, dt=2)
    assert sorted(d.delete_pods) == ["j-worker-0", "j-worker-1"] and len(d.delete_services) == 2
    assert cond_list(job["status"]) == [
        ("Created", "True", "TFJobCreated"),
        ("Running", "False", "TFJobSuspended"),
        ("Suspended", "True", "TFJobSuspended"),
    ]
    assert "active" not in job["status"]["replicaStatuses"]["Worker"]
    assert [e.reason for e in d.events] == ["TFJobSuspended"]
    d = step(job, [], dt=3)
    assert not d.events and not d.status_changed, "Suspended event only on the transition"
    job["spec"]["runPolicy"] = {"suspend": False}
    d = step(job, [], dt=10)
    assert cond_list(job["status"])[-1] == ("Suspended", "False", "TFJobResumed")
    assert job["status"]["startTime"] == "2025-01-01T12:00:10Z"
    assert len(d.create_pods) == 2 and [e.reason for e in d.events] == ["TFJobResumed"]


def test_suspended_at_creation_creates_nothing() -> None:
    job = make_job("PyTorchJob", {"Worker": 2}, run_policy={"suspend": True})
    d = step(job, [])
    assert not d.create_pods and not d.create_services
    assert [t for t, _, _ in cond_list(job["status"])] == ["Created", "Suspended"]
    assert job["status"]["replicaStatuses"]["Worker"]["selector"]


def test_failure_never_policy_warning_event_and_counter() -> None:
    job = make_job("TFJob", {"Worker": 2})
    step(job, [])
    pods = [make_pod(job, "Worker", 0), make_pod(job, "Worker", 1, "Failed", exit_code=1)]
    d = step(job, pods, dt=1)
    assert cond_list(job["status"])[-1] == ("Failed", "True", "TFJobFailed")
    assert job["status"]["conditions"][-1]["message"] == (
        "TFJob ns/j has failed because 1 Worker replica(s) failed."
    )
    failed = [e for e in d.events if e.reason == "TFJobFailed"]
    assert [e.type for e in failed] == ["Warning"] and d.counters.failed == 1


def test_exit_code_restart_counts_and_persists_recreations() -> None:
    job = make_job(
        "PyTorchJob", {"Worker": 2}, restart_policy="ExitCode", run_policy={"backoffLimit": 2}
    )
    step(job, [])
    ok = make_pod(job, "Worker", 0)
    d = step(job, [ok, make_pod(job, "Worker", 1, "Failed", exit_code=137)], dt=1)
    assert d.delete_pods == ["j-worker-1"] and d.counters.restarted == 1
    assert d.job_annotations == {OPERATOR_RESTARTS_ANNOTATION: "1"}
    assert cond_list(job["status"])[-1] == ("Restarting", "True", "PyTorchJobRestarting")
    d = step(job, [ok], dt=2)
    assert [p["metadata"]["name"] for p in d.create_pods] == ["j-worker-1"]
    d = step(job, [ok, make_pod(job, "Worker", 1, "Failed", exit_code=143)], dt=3)
    assert job["metadata"]["annotations"][OPERATOR_RESTARTS_ANNOTATION] == "2"
    d = step(job, [ok], dt=4)
    assert cond_list(job["status"])[-1] == ("Failed", "True", "PyTorchJobFailed")
    assert job["status"]["conditions"][-1]["message"] == (
        "Job j has failed because it has reached the specified backoff limit"
    )
    assert not d.create_pods


def test_exit_code_permanent_failure() -> None:
    job = make_job("TFJob", {"Worker": 1}, restart_policy="ExitCode")
    step(job, [])
    d = step(job, [make_pod(job, "Worker", 0, "Failed", exit_code=1)], dt=1)
    assert cond_list(job["status"])[-1] == ("Failed", "True", "TFJobFailed")
    assert job["status"]["conditions"][-1]["message"] == (
        'job "j" is failing because "Worker" replica(s) failed.'
    )
    assert not d.delete_pods
    # ExitedWithCode is the controller's, once per termination (tests/reconcilers/test_exits.py).
    assert "ExitedWithCode" not in [e.reason for e in d.events]


def test_active_deadline_requeue_then_failure_respects_clean_policy() -> None:
    job = make_job(
        "XGBoostJob",
        {"Master": 1, "Worker": 1},
        run_policy={"activeDeadlineSeconds": 30, "cleanPodPolicy": "Running"},
    )
    d = step(job, [])
    assert d.requeue_after == 30
    pods = [make_pod(job, "Master", 0), make_pod(job, "Worker", 0, "Succeeded", exit_code=0)]
    d = step(job, pods, dt=12)
    assert d.requeue_after == 18
    d = step(job, pods, dt=30)
    assert cond_list(job["status"])[-1] == ("Failed", "True", "XGBoostJobFailed")
    assert job["status"]["conditions"][-1]["message"] == (
        "Job j has failed because it was active longer than specified deadline"
    )
    assert d.delete_pods == ["j-master-0"], "cleanPodPolicy Running: the succeeded pod stays"
    assert job["status"]["completionTime"] == "2025-01-01T12:00:30Z"


def test_created_counted_once_even_after_operator_restart() -> None:
    job = make_job("JAXJob", {"Worker": 1})
    assert step(job, []).counters.created == 1
    assert step(copy.deepcopy(job), []).counters.created == 0


def test_managed_by_other_and_invalid_job() -> None:
    job = make_job("JAXJob", {"Worker": 1}, run_policy={"managedBy": "kueue.x-k8s.io/multikueue"})
    d = step(job, [])
    assert not d.status_changed and not d.create_pods and "status" not in job
    bad = make_job("MPIJob", {"Worker": 1})
    d = step(bad, [])
    assert d.invalid and d.error is None
    assert [e.reason for e in d.events] == ["MPIJobFailedValidation"]
    assert [e.message for e in d.events] == [d.invalid]
    assert "spec.mpiReplicaSpecs[Launcher]" in d.invalid
    # The decision carries the whole outcome: Created, then Failed naming the field.
    assert d.status_changed and d.status["completionTime"]
    conds = {c["type"]: c for c in d.status["conditions"]}
    assert conds["Created"]["reason"] == "MPIJobCreated"
    assert conds["Failed"]["reason"] == "MPIJobFailedValidation"
    assert conds["Failed"]["message"] == d.invalid
    assert (d.counters.created, d.counters.failed) == (1, 1)
    assert not d.create_pods
    # Already reported: nothing to write, no event, no count.
    stale = {**bad, "status": {"conditions": [{**conds["Failed"], "status": "False"}]}}
    again = step(stale, [])
    assert again.invalid == d.invalid and not again.status_changed
    assert not again.events and (again.counters.created, again.counters.failed) == (0, 0)


def test_mpi_flow() -> None:
    job = make_job("MPIJob", {"Launcher": 1, "Worker": 2})
    d = step(job, [])
    assert [p["metadata"]["name"] for p in d.create_pods] == [
        "j-launcher",
        "j-worker-0",
        "j-worker-1",
    ]
    assert not d.create_services
    assert [o["kind"] for o in d.apply_objects] == [
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    ]
    pods = [make_pod(job, "Launcher", 0), make_pod(job, "Worker", 0), make_pod(job, "Worker", 1)]
    step(job, pods, dt=1)
    assert cond_list(job["status"])[-1] == ("Running", "True", "MPIJobRunning")
    pods[0] = make_pod(job, "Launcher", 0, "Succeeded", exit_code=0)
    d = step(job, pods, dt=2)
    assert cond_list(job["status"])[-1] == ("Succeeded", "True", "MPIJobSucceeded")
    assert "MPIJobSucceeded" in [e.reason for e in d.events]
    evicted = make_job("MPIJob", {"Launcher": 1, "Worker": 1}, uid="u2", name="e")
    step(evicted, [])
    d = step(evicted, [make_pod(evicted, "Worker", 0, "Failed", reason="Evicted")], dt=1)
    assert cond_list(evicted["status"])[-1] == ("Failed", "True", "MPIJobEvicted")


def test_foreign_pods_are_ignored() -> None:
    job = make_job("JAXJob", {"Worker": 1})
    other = make_job("JAXJob", {"Worker": 1}, uid="someone-else")
    d = step(job, [make_pod(other, "Worker", 0)])
    assert [p["metadata"]["name"] for p in d.create_pods] == ["j-worker-0"]


def test_a_started_job_is_not_failed_by_rules_it_was_not_judged_by() -> None:
    """A job judged valid when it started (say, by an earlier kubetrain) keeps running when a
    stricter rule would refuse it now; the same spec on a job not started yet is refused."""
    job = make_job("TFJob", {"Worker": 1})
    container = job["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 8080}]  # unnamed, beside the default port: refused
    fresh = step(copy.deepcopy(job), [])
    assert fresh.invalid and "ports[0].name" in fresh.invalid
    started = copy.deepcopy(job)
    started["status"] = {  # admitted and started by an earlier, less strict kubetrain
        "conditions": [
            {"type": "Created", "status": "True", "reason": "TFJobCreated"},
            {"type": "Running", "status": "True", "reason": "TFJobRunning"},
        ],
        "startTime": "2026-01-01T00:00:00Z",
    }
    running = step(started, [make_pod(started, "Worker", 0, phase="Running")])
    assert running.invalid is None and not running.error
