"""podFailurePolicy and successPolicy verdicts (``failure_policy.py``, ``success_policy.py``),
with kube's messages."""

from __future__ import annotations

from typing import Any

from kubetrain.cluster.kcm.job.failure_policy import match_pod_failure_policy
from kubetrain.cluster.kcm.job.success_policy import match_success_policy


def failed_pod(code: int, *, container: str = "main", conditions: list[Any] | None = None) -> Any:
    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "status": {
            "phase": "Failed",
            "conditions": conditions or [],
            "containerStatuses": [{"name": container, "state": {"terminated": {"exitCode": code}}}],
        },
    }


def job_with(*rules: Any) -> Any:
    return {"spec": {"podFailurePolicy": {"rules": list(rules)}}}


def test_fail_job_on_exit_code_names_container_and_rule() -> None:
    job = job_with(
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
    )
    verdict = match_pod_failure_policy(job, failed_pod(42))
    assert verdict.action == "FailJob" and verdict.count
    assert verdict.fail_job_message == (
        "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
    )


def test_ignore_is_not_counted_and_no_match_counts() -> None:
    job = job_with({"action": "Ignore", "onExitCodes": {"operator": "NotIn", "values": [5]}})
    assert not match_pod_failure_policy(job, failed_pod(1)).count
    # NotIn [5] with exit 5: no rule matches, counted by default
    verdict = match_pod_failure_policy(job, failed_pod(5))
    assert verdict.count and verdict.action is None


def test_container_name_restricts_the_rule() -> None:
    job = job_with(
        {
            "action": "FailJob",
            "onExitCodes": {"containerName": "other", "operator": "In", "values": [3]},
        }
    )
    assert match_pod_failure_policy(job, failed_pod(3)).action is None


def test_pod_condition_rule() -> None:
    job = job_with(
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    )
    pod = failed_pod(137, conditions=[{"type": "DisruptionTarget", "status": "True"}])
    verdict = match_pod_failure_policy(job, pod)
    assert verdict.action == "Ignore" and not verdict.count
    fail = job_with(
        {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    )
    assert match_pod_failure_policy(fail, pod).fail_job_message == (
        "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0"
    )


def test_count_and_fail_index_actions() -> None:
    job = job_with(
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [2]}},
        {"action": "Count", "onExitCodes": {"operator": "In", "values": [3]}},
    )
    assert match_pod_failure_policy(job, failed_pod(2)).action == "FailIndex"
    assert match_pod_failure_policy(job, failed_pod(3)).action == "Count"


def success_job(*rules: Any, completions: int = 5) -> Any:
    return {"spec": {"completions": completions, "successPolicy": {"rules": list(rules)}}}


def test_success_policy_indexes_count_and_order() -> None:
    job = success_job({"succeededIndexes": "0,2"}, {"succeededCount": 3})
    assert match_success_policy(job, [(0, 0)]) is None
    assert match_success_policy(job, [(0, 0), (2, 2)]) == "Matched rules at index 0"
    assert match_success_policy(job, [(1, 1), (3, 4)]) == "Matched rules at index 1"
    partial = success_job({"succeededIndexes": "1-3", "succeededCount": 2})
    assert match_success_policy(partial, [(2, 3)]) == "Matched rules at index 0"
    assert match_success_policy(partial, [(0, 0), (4, 4)]) is None
