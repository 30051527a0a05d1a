"""The JobSet controller's pure parts: child Jobs and their labels (``children.py``), sorting
and counting child Jobs (``childjobs.py``), conditions (``conditions.py``) and the success,
failure, startup and dependsOn policies (``policies.py``)."""

from __future__ import annotations

import hashlib
from typing import Any

from kubetrain.cluster.jobset.childjobs import classify, replicated_job_statuses
from kubetrain.cluster.jobset.children import construct_job
from kubetrain.cluster.jobset.conditions import StatusUpdate, set_condition
from kubetrain.cluster.jobset.defaults import default_jobset
from kubetrain.cluster.jobset.policies import (
    dependency_reached,
    execute_failure_policy,
    execute_success_policy,
)

Obj = dict[str, Any]
P = "jobset.sigs.k8s.io/"


def make_js(**spec: Any) -> Obj:
    obj: Obj = {
        "metadata": {"name": "js", "namespace": "ns", "uid": "u-1"},
        "spec": {
            "replicatedJobs": [
                {"name": "a", "replicas": 2, "groupName": "g1", "template": {"spec": {}}},
                {"name": "b", "replicas": 3, "groupName": "g2", "template": {"spec": {}}},
                {"name": "c", "replicas": 1, "groupName": "g1", "template": {"spec": {}}},
            ],
            **spec,
        },
    }
    default_jobset(obj)
    return obj


def child(
    name: str, rjob: str, *, attempt: int = 0, state: str = "", when: str = "", **st: Any
) -> Obj:
    conditions = (
        [
            {
                "type": state,
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "lastTransitionTime": when,
            }
        ]
        if state
        else []
    )
    return {
        "metadata": {
            "name": name,
            "labels": {P + "replicatedjob-name": rjob, P + "restart-attempt": str(attempt)},
        },
        "spec": {"parallelism": 2, "completions": 2},
        "status": {"conditions": conditions, **st},
    }


def update() -> StatusUpdate:
    return StatusUpdate(now=lambda: "2026-01-01T00:00:00Z")


def test_construct_job_labels_and_indexes() -> None:
    js = make_js(suspend=True)
    job = construct_job(js, js["spec"]["replicatedJobs"][2], 0)
    labels = job["metadata"]["labels"]
    assert job["metadata"]["name"] == "js-c-0"
    assert labels[P + "job-global-index"] == "5"
    assert labels[P + "global-replicas"] == "6"
    assert labels[P + "group-replicas"] == "3"
    assert labels[P + "job-group-index"] == "2"
    assert labels[P + "job-key"] == hashlib.sha1(b"ns/js-c-0").hexdigest()
    assert job["metadata"]["annotations"] == labels
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert job["spec"]["suspend"] is True
    assert job["spec"]["template"]["spec"]["subdomain"] == "js"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u-1"


def test_classify_and_counts() -> None:
    js = make_js()
    js["status"] = {"restarts": 1}
    jobs = [
        child("js-a-0", "a", attempt=0),
        child("js-a-1", "a", attempt=1, ready=2, active=2),
        child("js-b-0", "b", attempt=1, state="Complete"),
        child("js-b-1", "b", attempt=1, state="Failed", when="t1"),
    ]
    sorted_jobs = classify(js, jobs)
    assert [j["metadata"]["name"] for j in sorted_jobs.previous] == ["js-a-0"]
    statuses = {s["name"]: s for s in replicated_job_statuses(js, sorted_jobs)}
    assert statuses["a"] == {
        "name": "a",
        "ready": 1,
        "succeeded": 0,
        "failed": 0,
        "active": 1,
        "suspended": 0,
    }
    assert (statuses["b"]["succeeded"], statuses["b"]["failed"]) == (1, 1)


def test_success_policy_all_and_any() -> None:
    js = make_js(successPolicy={"operator": "All", "targetReplicatedJobs": ["c"]})
    jobs = classify(js, [child("js-c-0", "c", state="Complete")])
    up = update()
    assert execute_success_policy(js, jobs, up)
    assert js["status"]["terminalState"] == "Completed"
    js = make_js()
    assert not execute_success_policy(
        js, classify(js, [child("js-c-0", "c", state="Complete")]), update()
    )
    js = make_js(successPolicy={"operator": "Any"})
    assert execute_success_policy(
        js, classify(js, [child("js-a-0", "a", state="Complete")]), update()
    )


def test_failure_policy_restart_then_max() -> None:
    js = make_js(failurePolicy={"maxRestarts": 1})
    failed = classify(
        js,
        [
            child("js-a-1", "a", state="Failed", when="t2"),
            child("js-b-0", "b", state="Failed", when="t1"),
        ],
    )
    up = update()
    execute_failure_policy(js, failed, up)
    assert js["status"]["restarts"] == 1 and js["status"]["restartsCountTowardsMax"] == 1
    cond = js["status"]["conditions"][0]
    assert (cond["type"], cond["reason"]) == ("RestartingJobSet", "DefaultFailurePolicy")
    assert (
        cond["message"] == "applying RestartJobSet failure policy action (first failed job: js-b-0)"
    )
    assert ("Warning", "RestartJobSetFailurePolicyAction", cond["message"]) in up.events
    execute_failure_policy(js, failed, up)
    assert js["status"]["terminalState"] == "Failed"
    failed_cond = next(c for c in js["status"]["conditions"] if c["type"] == "Failed")
    assert failed_cond["reason"] == "ReachedMaxRestarts"


def test_failure_policy_rules_match_in_order() -> None:
    rules = [
        {"name": "onlyB", "action": "FailJobSet", "targetReplicatedJobs": ["b"]},
        {"name": "deadline", "action": "FailJobSet", "onJobFailureReasons": ["DeadlineExceeded"]},
        {"name": "ignore", "action": "RestartJobSetAndIgnoreMaxRestarts"},
    ]
    js = make_js(failurePolicy={"maxRestarts": 0, "rules": rules})
    execute_failure_policy(
        js, classify(js, [child("js-a-0", "a", state="Failed", when="t")]), update()
    )
    assert js["status"]["restarts"] == 1 and js["status"].get("restartsCountTowardsMax", 0) == 0
    assert js["status"]["conditions"][0]["reason"] == "FailurePolicy_ignore"
    js = make_js(failurePolicy={"maxRestarts": 0, "rules": rules})
    execute_failure_policy(
        js, classify(js, [child("js-b-0", "b", state="Failed", when="t")]), update()
    )
    assert js["status"]["conditions"][0]["reason"] == "FailJobSetFailurePolicyAction"


def test_depends_on() -> None:
    rjob = {"name": "b", "dependsOn": [{"name": "a", "status": "Complete"}]}
    statuses = [{"name": "a", "ready": 2, "succeeded": 1, "failed": 0, "active": 0, "suspended": 0}]
    assert not dependency_reached(rjob, {"a": 2}, statuses)
    statuses[0]["succeeded"] = 2
    assert dependency_reached(rjob, {"a": 2}, statuses)
    ready = {"name": "b", "dependsOn": [{"name": "a", "status": "Ready"}]}
    statuses[0].update(succeeded=0, ready=1, failed=1)
    assert dependency_reached(ready, {"a": 2}, statuses)


def test_conditions_startup_exclusive_and_false_not_added() -> None:
    js: Obj = {"status": {}}
    up = update()
    set_condition(js, up, "RestartingJobSet", "False", "JobsReady", "m")
    assert js["status"]["conditions"] == [] and not up.should_update
    set_condition(js, up, "StartupPolicyInProgress", "True", "r", "m")
    set_condition(js, up, "StartupPolicyCompleted", "True", "r2", "m2")
    assert [(c["type"], c["status"]) for c in js["status"]["conditions"]] == [
        ("StartupPolicyInProgress", "False"),
        ("StartupPolicyCompleted", "True"),
    ]
