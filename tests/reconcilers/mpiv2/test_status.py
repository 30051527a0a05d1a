"""MPIJob v2beta1 status transitions, as mpi-operator v0.8.2's updateMPIJobStatus makes them.

Scenarios follow the Go controller tests (``TestLauncherSucceeded``, ``TestLauncherFailed``,
``TestCreateSuspendedMPIJob``, ``TestSuspendedRunningMPIJob``, ``TestResumeMPIJob``,
``TestLauncherActiveWorker{Not,}Ready``, ``TestWorkerReady``, ``TestShutdownWorker``) plus the
branches they do not reach (eviction, failure reasons, truncation, condition bookkeeping).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.mpiv2 import status as st
from kubetrain.reconcilers.mpiv2.status import StatusUpdate, created_status, next_status

from .mpijobs import BACKOFF_FAILED, COMPLETE, launcher_job, mpijob, pod, with_status

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:01:00Z"
T2 = "2026-01-01T00:02:00Z"
NOW = "2026-01-01T00:10:00Z"


def cond(
    type_: str,
    status: str,
    reason: str,
    message: str,
    updated: str,
    transitioned: str | None = None,
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": updated,
        "lastTransitionTime": transitioned or updated,
    }


CREATED = cond("Created", "True", "MPIJobCreated", "MPIJob bar/foo is created.", T0)
RUNNING = cond("Running", "True", "MPIJobRunning", "MPIJob bar/foo is running.", T1)
SUSPENDED_CONDS = [
    CREATED,
    cond("Suspended", "True", "MPIJobSuspended", "MPIJob suspended", T0),
    cond("Running", "False", "MPIJobSuspended", "MPIJob bar/foo is suspended.", T0),
]


def workers(*phases: str | None, reason: str | None = None) -> list[Obj]:
    return [
        pod(f"foo-worker-{i}", phase=p, reason=reason if p == "Failed" else None)
        for i, p in enumerate(phases)
    ]


def run(
    job: Obj,
    launcher: Obj | None = None,
    launcher_pods: list[Obj] | None = None,
    worker_pods: list[Obj] | None = None,
) -> StatusUpdate:
    before = copy.deepcopy((job, launcher, launcher_pods, worker_pods))
    status = job.get("status") or {}
    update = next_status(job, status, launcher, launcher_pods or [], worker_pods or [], now=NOW)
    assert (job, launcher, launcher_pods, worker_pods) == before  # inputs are never mutated
    return update


# -- created --------------------------------------------------------------------------------------


def test_created_status_adds_the_created_condition_and_event() -> None:
    job = mpijob()
    update = created_status(job, T0)
    assert update.status == {"conditions": [CREATED]}
    assert update.events == [("Normal", "MPIJobCreated", "MPIJob bar/foo is created.")]
    assert update.created and update.changed
    assert "status" not in job


def test_created_status_leaves_a_job_with_conditions_alone() -> None:
    job = with_status(mpijob(), {"conditions": [RUNNING], "startTime": T0})
    update = created_status(job, NOW)
    assert update.status == {"conditions": [RUNNING], "startTime": T0}
    assert update.events == [] and not update.created and not update.changed


# -- TestAllResourcesCreated, TestWorkerReady, TestLauncherActiveWorker{Not,}Ready -----------------


def test_all_resources_created() -> None:
    job = mpijob(workers=5)
    created = created_status(job, NOW)
    update = next_status(job, created.status, launcher_job(), [], workers(*[None] * 5), now=NOW)
    assert update.status == {
        "conditions": [{**CREATED, "lastUpdateTime": NOW, "lastTransitionTime": NOW}],
        "startTime": NOW,
        "replicaStatuses": {"Launcher": {}, "Worker": {}},
    }
    assert update.events == [] and update.changed


def test_start_time_is_set_once_and_not_while_suspended() -> None:
    job = with_status(mpijob(), {"conditions": [CREATED], "startTime": T0})
    assert run(job).status["startTime"] == T0
    assert "startTime" not in run(mpijob(runPolicy={"suspend": True})).status


def test_workers_ready_without_launcher_pods_is_not_running() -> None:
    job = with_status(mpijob(workers=16), {"conditions": [CREATED], "startTime": T0})
    update = run(job, launcher_job(), [], workers(*["Running"] * 16))
    assert update.status["replicaStatuses"] == {"Launcher": {}, "Worker": {"active": 16}}
    assert update.status["conditions"] == [CREATED]


def test_launcher_active_workers_not_ready() -> None:
    job = with_status(mpijob(workers=8), {"conditions": [CREATED], "startTime": T0})
    update = run(job, launcher_job(), [pod("l", phase="Running")], workers(*["Pending"] * 8))
    assert update.status["replicaStatuses"] == {"Launcher": {"active": 1}, "Worker": {}}
    assert update.status["conditions"] == [CREATED]
    assert update.events == []


def test_launcher_active_workers_ready_is_running() -> None:
    job = with_status(mpijob(workers=8), {"conditions": [CREATED], "startTime": T0})
    update = run(job, launcher_job(), [pod("l", phase="Running")], workers(*["Running"] * 8))
    assert update.status["replicaStatuses"] == {
        "Launcher": {"active": 1},
        "Worker": {"active": 8},
    }
    assert update.status["conditions"] == [
        CREATED,
        cond("Running", "True", "MPIJobRunning", "MPIJob bar/foo is running.", NOW),
    ]
    assert update.events == [("Normal", "MPIJobRunning", "MPIJob bar/foo is running")]
    assert update.changed


def test_still_running_keeps_times_but_records_the_event_again() -> None:
    status = {
        "conditions": [CREATED, RUNNING],
        "startTime": T0,
        "replicaStatuses": {"Launcher": {"active": 1}, "Worker": {"active": 2}},
    }
    job = with_status(mpijob(workers=2), status)
    update = run(job, launcher_job(), [pod("l", phase="Running")], workers("Running", "Running"))
    assert update.status == status
    assert not update.changed
    assert update.events == [("Normal", "MPIJobRunning", "MPIJob bar/foo is running")]


def test_zero_counters_written_explicitly_are_not_a_change() -> None:
    status = {
        "conditions": [CREATED],
        "startTime": T0,
        "replicaStatuses": {
            "Launcher": {"active": 0, "succeeded": 0, "failed": 0},
            "Worker": {"active": 0, "succeeded": 0, "failed": 0},
        },
    }
    job = with_status(mpijob(workers=1), status)
    update = run(job, launcher_job(), [], workers("Pending"))
    assert not update.changed
    assert update.status["replicaStatuses"] == {"Launcher": {}, "Worker": {}}


def test_worker_counts() -> None:
    job = with_status(mpijob(workers=5), {"conditions": [CREATED], "startTime": T0})
    pods = workers("Running", "Succeeded", "Failed", "Pending", None)
    update = run(job, launcher_job(), [], pods)
    assert update.status["replicaStatuses"]["Worker"] == {
        "active": 1,
        "succeeded": 1,
        "failed": 1,
    }
    assert update.status["conditions"] == [CREATED]  # a failed worker alone fails nothing


def test_replica_status_extras_are_dropped_as_go_reinitializes_them() -> None:
    status = {
        "conditions": [CREATED],
        "startTime": T0,
        "replicaStatuses": {"Worker": {"active": 3, "selector": "x", "labelSelector": {}}},
    }
    update = run(with_status(mpijob(workers=1), status), None, [], workers("Running"))
    assert update.status["replicaStatuses"] == {"Worker": {"active": 1}}


# -- TestLauncherSucceeded / WithRunningPod -------------------------------------------------------


def test_launcher_succeeded() -> None:
    job = with_status(
        mpijob(workers=64), {"conditions": [CREATED], "startTime": T0, "completionTime": T2}
    )
    update = run(job, launcher_job(conditions=COMPLETE))
    msg = "MPIJob bar/foo successfully completed."
    assert update.status == {
        "conditions": [
            CREATED,
            cond("Succeeded", "True", "MPIJobSucceeded", msg, NOW),
            cond(
                "Running",
                "False",
                "MPIJobRunning",
                "MPIJob bar/foo is finished but Running condition was never set.",
                T2,
            ),
        ],
        "startTime": T0,
        "completionTime": T2,
        "replicaStatuses": {"Launcher": {"succeeded": 1}, "Worker": {}},
    }
    assert update.events == [("Normal", "MPIJobSucceeded", msg)]
    assert update.succeeded and not update.failed and update.changed


def test_completion_time_comes_from_the_launcher() -> None:
    job = with_status(mpijob(), {"conditions": [CREATED], "startTime": T0})
    update = run(job, launcher_job(conditions=COMPLETE, completion_time=T1))
    assert update.status["completionTime"] == T1
    running = st.get_condition(update.status, "Running")
    assert running is not None
    assert running["lastTransitionTime"] == T1 and running["lastUpdateTime"] == T1


def test_launcher_succeeded_without_completion_time_dates_running_now() -> None:
    job = with_status(mpijob(), {"conditions": [CREATED], "startTime": T0})
    update = run(job, launcher_job(conditions=COMPLETE))
    assert "completionTime" not in update.status
    running = st.get_condition(update.status, "Running")
    assert running is not None and running["lastTransitionTime"] == NOW


def test_launcher_succeeded_with_running_pod() -> None:
    status = {"conditions": [CREATED, {**RUNNING, "lastTransitionTime": T0}], "startTime": T0}
    job = with_status(mpijob(workers=64), status)
    update = run(
        job,
        launcher_job(conditions=COMPLETE, completion_time=T2),
        [pod("foo-launcher-x", phase="Running")],
    )
    assert update.status["conditions"] == [
        CREATED,
        # Succeeded turns Running False in place: reason, message and times unchanged
        {**RUNNING, "status": "False", "lastTransitionTime": T0},
        cond("Succeeded", "True", "MPIJobSucceeded", "MPIJob bar/foo successfully completed.", NOW),
    ]
    assert update.status["replicaStatuses"]["Launcher"] == {"succeeded": 1}
    assert update.status["completionTime"] == T2
    assert all(e[1] != "MPIJobRunning" for e in update.events)


# -- TestLauncherFailed and the failure reasons ----------------------------------------------------


def test_launcher_failed_backoff_limit_names_the_last_failed_pod() -> None:
    job = with_status(
        mpijob(workers=64), {"conditions": [CREATED], "startTime": T0, "completionTime": T2}
    )
    launcher_pods = [
        pod("l-1", phase="Failed", reason="FailedReason1", message="first message", created=T0),
        pod("l-2", phase="Failed", reason="FailedReason2", message="second message", created=T1),
        pod("l-3", phase="Running", reason="Later", message="not failed", created=T2),
    ]
    update = run(job, launcher_job(conditions=BACKOFF_FAILED, failed=2), launcher_pods)
    reason = "BackoffLimitExceeded/FailedReason2"
    msg = "Job has reached the specified backoff limit: second message"
    assert update.status == {
        "conditions": [
            CREATED,
            cond("Failed", "True", reason, msg, NOW),
            cond(
                "Running",
                "False",
                "MPIJobRunning",
                "MPIJob bar/foo is finished but Running condition was never set.",
                T2,
            ),
        ],
        "startTime": T0,
        "completionTime": T2,
        "replicaStatuses": {"Launcher": {"failed": 2}, "Worker": {}},
    }
    assert update.events == [("Warning", reason, msg)]
    assert update.failed and not update.succeeded


def test_launcher_failed_sets_completion_time_now() -> None:
    job = with_status(mpijob(), {"conditions": [CREATED], "startTime": T0})
    update = run(job, launcher_job(conditions=BACKOFF_FAILED, failed=1))
    assert update.status["completionTime"] == NOW
    # no failed pod seen: reason and message of the Job as they are
    failed = st.get_condition(update.status, "Failed")
    assert failed is not None
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"


def test_first_of_equally_old_failed_pods_wins() -> None:
    job = with_status(mpijob(), {"conditions": [CREATED], "startTime": T0})
    pods = [
        pod("a", phase="Failed", reason="A", message="a", created=T1),
        pod("b", phase="Failed", reason="B", message="b", created=T1),
    ]
    update = run(job, launcher_job(conditions=BACKOFF_FAILED), pods)
    failed = st.get_condition(update.status, "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded/A"


def test_launcher_failed_without_reason_or_message() -> None:
    job = with_status(mpijob(), {"conditions": [CREATED], "startTime": T0})
    launcher = launcher_job(conditions=[{"type": "Failed", "status": "True"}])
    update = run(job, launcher, [pod("l", phase="Failed", reason="R", message="m")])
    assert update.events == [("Warning", "MPIJobFailed", "MPIJob bar/foo has failed")]
    failed = st.get_condition(update.status, "Failed")
    assert failed is not None
    assert (failed["reason"], failed["message"]) == ("MPIJobFailed", "MPIJob bar/foo has failed")


def test_launcher_failed_other_reason_does_not_look_at_pods() -> None:
    job = with_status(mpijob(), {"conditions": [CREATED], "startTime": T0})
    launcher = launcher_job(
        conditions=[
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline",
            }
        ]
    )
    update = run(job, launcher, [pod("l", phase="Failed", reason="R", message="m")])
    assert update.events == [
        ("Warning", "DeadlineExceeded", "Job was active longer than specified deadline")
    ]


def test_backoff_message_is_truncated_to_1024() -> None:
    job = with_status(mpijob(), {"conditions": [CREATED], "startTime": T0})
    pods = [pod("l", phase="Failed", reason="OOMKilled", message="x" * 2000, created=T0)]
    update = run(job, launcher_job(conditions=BACKOFF_FAILED), pods)
    _, reason, msg = update.events[0]
    assert reason == "BackoffLimitExceeded/OOMKilled"
    assert len(msg) == 1024 and msg.endswith("...")
    assert msg.startswith("Job has reached the specified backoff limit: xxx")
    failed = st.get_condition(update.status, "Failed")
    assert failed is not None and failed["message"] == msg


def test_truncate_message() -> None:
    assert st.truncate_message("short") == "short"
    assert st.truncate_message("a" * 1024) == "a" * 1024
    assert st.truncate_message("a" * 1025) == "a" * 1021 + "..."
    # bytes, as Go counts: a 3-byte character cut after one byte becomes one U+FFFD per byte
    cut = st.truncate_message("a" * 1020 + "€" * 10)
    assert cut == "a" * 1020 + "\ufffd" + "..."
    cut = st.truncate_message("a" * 1019 + "€" * 10)
    assert cut == "a" * 1019 + "\ufffd\ufffd" + "..."


# -- eviction -------------------------------------------------------------------------------------


def test_evicted_workers_fail_the_job() -> None:
    job = with_status(mpijob(workers=3), {"conditions": [CREATED, RUNNING], "startTime": T0})
    pods = workers("Running", "Failed", "Failed", reason="Evicted")
    pods[2]["status"]["reason"] = "Error"
    update = run(job, launcher_job(), [pod("l", phase="Running")], pods)
    msg = "1/3 workers are evicted"
    assert update.status["conditions"] == [
        CREATED,
        {**RUNNING, "status": "False"},
        cond("Failed", "True", "MPIJobEvicted", msg, NOW),
    ]
    assert update.status["replicaStatuses"]["Worker"] == {"active": 1, "failed": 2}
    assert "completionTime" not in update.status  # Go does not end the job's clock here
    assert update.events == [("Warning", "MPIJobEvicted", msg)]
    assert update.evicted and not update.failed


def test_eviction_before_running_adds_running_false_dated_now() -> None:
    job = with_status(mpijob(workers=1), {"conditions": [CREATED], "startTime": T0})
    update = run(job, launcher_job(), [], workers("Failed", reason="Evicted"))
    assert update.status["conditions"][-1] == cond(
        "Running",
        "False",
        "MPIJobRunning",
        "MPIJob bar/foo is finished but Running condition was never set.",
        NOW,
    )


def test_same_status_new_reason_keeps_the_transition_time() -> None:
    evicted = cond("Failed", "True", "MPIJobEvicted", "1/1 workers are evicted", T1)
    job = with_status(mpijob(workers=1), {"conditions": [CREATED, evicted], "startTime": T0})
    update = run(job, launcher_job(conditions=BACKOFF_FAILED), [], [])
    failed = st.get_condition(update.status, "Failed")
    assert failed is not None
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed["lastTransitionTime"] == T1 and failed["lastUpdateTime"] == NOW


# -- suspend and resume ---------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", ["OpenMPI", "Intel", "MPICH"])
def test_create_suspended_mpijob(implementation: str) -> None:
    job = mpijob(workers=8, mpiImplementation=implementation, runPolicy={"suspend": True})
    created = created_status(job, T0)
    update = next_status(job, created.status, launcher_job(suspend=True), [], [], now=T0)
    assert update.status == {
        "conditions": SUSPENDED_CONDS,
        "replicaStatuses": {"Launcher": {}, "Worker": {}},
    }
    assert update.events == [("Normal", "MPIJobSuspended", "MPIJob suspended")]
    assert update.suspended and not update.resumed


def test_suspend_a_running_mpijob() -> None:
    status = {
        "conditions": [CREATED, RUNNING],
        "startTime": T0,
        "replicaStatuses": {"Launcher": {"active": 1}, "Worker": {"active": 8}},
    }
    job = with_status(mpijob(workers=8, runPolicy={"suspend": True}), status)
    cleaned = st.with_workers_cleaned(status)
    assert cleaned["replicaStatuses"] == {"Launcher": {"active": 1}, "Worker": {}}
    update = next_status(
        job, cleaned, launcher_job(suspend=True), [pod("l", phase="Running")], [], now=NOW
    )
    assert update.status == {
        "conditions": [
            CREATED,
            cond("Suspended", "True", "MPIJobSuspended", "MPIJob suspended", NOW),
            cond("Running", "False", "MPIJobSuspended", "MPIJob bar/foo is suspended.", NOW),
        ],
        "startTime": T0,
        # the launcher pod is still counted: the Job controller removes it later
        "replicaStatuses": {"Launcher": {"active": 1}, "Worker": {}},
    }
    assert update.events == [("Normal", "MPIJobSuspended", "MPIJob suspended")]
    assert update.suspended


def test_staying_suspended_changes_nothing() -> None:
    status = {
        "conditions": SUSPENDED_CONDS,
        "replicaStatuses": {"Launcher": {}, "Worker": {}},
    }
    job = with_status(mpijob(workers=2, runPolicy={"suspend": True}), status)
    update = run(job, launcher_job(suspend=True))
    assert update.status == status
    assert update.events == [] and not update.changed and not update.suspended


def test_resume_mpijob() -> None:
    status = {
        "conditions": SUSPENDED_CONDS,
        "startTime": T0,
        "replicaStatuses": {"Launcher": {}, "Worker": {}},
    }
    job = with_status(mpijob(workers=8, runPolicy={"suspend": False}), status)
    update = run(job, launcher_job(suspend=False), [], workers(*[None] * 8))
    assert update.status == {
        "conditions": [
            CREATED,
            SUSPENDED_CONDS[2],  # Running stays False until the launcher and workers run
            cond("Suspended", "False", "MPIJobResumed", "MPIJob resumed", NOW),
        ],
        "startTime": NOW,
        "replicaStatuses": {"Launcher": {}, "Worker": {}},
    }
    assert update.events == [("Normal", "MPIJobResumed", "MPIJob resumed")]
    assert update.resumed and update.changed


def test_resume_then_run() -> None:
    resumed = cond("Suspended", "False", "MPIJobResumed", "MPIJob resumed", T1)
    status = {"conditions": [CREATED, SUSPENDED_CONDS[2], resumed], "startTime": T1}
    job = with_status(mpijob(workers=1), status)
    update = run(job, launcher_job(), [pod("l", phase="Running")], workers("Running"))
    assert update.status["startTime"] == T1  # only a transition to resumed restarts the clock
    assert update.status["conditions"] == [
        CREATED,
        resumed,
        # Running False -> True: a new transition
        cond("Running", "True", "MPIJobRunning", "MPIJob bar/foo is running.", NOW),
    ]
    assert not update.resumed


def test_suspend_again_after_resume() -> None:
    resumed = cond("Suspended", "False", "MPIJobResumed", "MPIJob resumed", T1)
    status = {"conditions": [CREATED, RUNNING, resumed], "startTime": T1}
    job = with_status(mpijob(workers=1, runPolicy={"suspend": True}), status)
    update = run(job, launcher_job(suspend=True))
    suspended = st.get_condition(update.status, "Suspended")
    assert suspended == cond("Suspended", "True", "MPIJobSuspended", "MPIJob suspended", NOW)
    assert update.suspended


# -- cleanup after the end: TestShutdownWorker -----------------------------------------------------


def test_with_workers_cleaned() -> None:
    done = cond("Succeeded", "True", "MPIJobSucceeded", "x", T1)
    status = {"conditions": [done], "startTime": T0, "completionTime": T1}
    before = copy.deepcopy(status)
    out = st.with_workers_cleaned(status)
    assert out == {**status, "replicaStatuses": {"Worker": {}}}
    assert status == before
    busy = {**status, "replicaStatuses": {"Launcher": {"succeeded": 1}, "Worker": {"active": 3}}}
    assert st.with_workers_cleaned(busy)["replicaStatuses"] == {
        "Launcher": {"succeeded": 1},
        "Worker": {},
    }


# -- conditions -----------------------------------------------------------------------------------


def test_set_condition_rules() -> None:
    status: dict[str, Any] = {"conditions": [CREATED, RUNNING]}
    # same status and reason: nothing changes, not even the message
    assert not st.update_conditions(status, "Running", "True", "MPIJobRunning", "other", NOW)
    assert status["conditions"] == [CREATED, RUNNING]
    # Restarting replaces Running (and the other way round)
    assert st.update_conditions(status, "Restarting", "True", "R", "m", NOW)
    assert [c["type"] for c in status["conditions"]] == ["Created", "Restarting"]
    assert st.update_conditions(status, "Running", "True", "MPIJobRunning", "m", NOW)
    assert [c["type"] for c in status["conditions"]] == ["Created", "Running"]
    # Failed turns Running and an older Failed False... the older Failed is replaced
    assert st.update_conditions(status, "Failed", "True", "F", "m", NOW)
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("Created", "True"),
        ("Running", "False"),
        ("Failed", "True"),
    ]


def test_canonical_status() -> None:
    assert st.canonical_status(None) == {}
    assert st.canonical_status(
        {"startTime": None, "replicaStatuses": {"Worker": {"active": 0, "failed": 2}, "X": None}}
    ) == {"replicaStatuses": {"Worker": {"failed": 2}}}
