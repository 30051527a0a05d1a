"""JobSet's policies, pure: success (``success_policy.go``), failure (``failure_policy.go``, the
actions FailJobSet, RestartJobSet, RestartJobSetAndIgnoreMaxRestarts; RestartJob* need a gate
that is off), startup order and dependsOn (``startup_policy.go``, ``depends_on.go``).

A failed Job is matched against the rules in order; the first rule with a matching failed Job
(reason, message pattern, target replicatedJob; the earliest such failure) decides. No rule
matching means RestartJobSet. A restart raises ``status.restarts`` (and
``restartsCountTowardsMax`` unless the action ignores the maximum); the next reconcile sees
every Job as a previous attempt's, deletes it and creates the new attempt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .childjobs import ChildJobs, status_of
from .conditions import StatusUpdate, set_completed, set_condition, set_failed
from .constants import (
    DEPENDENCY_COMPLETE,
    DEPENDENCY_READY,
    FAIL_JOBSET,
    FAIL_JOBSET_ACTION_MESSAGE,
    FAIL_JOBSET_ACTION_REASON,
    FAILED_JOBS_MESSAGE,
    FAILED_JOBS_REASON,
    OPERATOR_ANY,
    REACHED_MAX_RESTARTS_MESSAGE,
    REACHED_MAX_RESTARTS_REASON,
    REPLICATED_JOB_NAME_KEY,
    RESTART_IGNORE_MAX_ACTION_MESSAGE,
    RESTART_IGNORE_MAX_ACTION_REASON,
    RESTART_JOBSET,
    RESTART_JOBSET_ACTION_MESSAGE,
    RESTART_JOBSET_ACTION_REASON,
    RESTART_JOBSET_IGNORE_MAX,
    RESTARTING,
    RESTARTING_DEFAULT_FAILURE_POLICY,
    RESTARTING_FAILURE_POLICY_FORMAT,
)
from .spec import replicated_jobs

__all__ = [
    "all_jobs_ready",
    "all_replicas_started",
    "dependency_reached",
    "execute_failure_policy",
    "execute_success_policy",
]

Obj = dict[str, Any]


def _success_policy(js: Mapping[str, Any]) -> Mapping[str, Any]:
    return (js.get("spec") or {}).get("successPolicy") or {}


def execute_success_policy(js: Obj, jobs: ChildJobs, update: StatusUpdate) -> bool:
    policy = _success_policy(js)
    targets = policy.get("targetReplicatedJobs") or []
    matching = sum(
        1
        for job in jobs.successful
        if not targets
        or (job["metadata"].get("labels") or {}).get(REPLICATED_JOB_NAME_KEY) in targets
    )
    if policy.get("operator") == OPERATOR_ANY:
        expected = 1
    else:
        expected = sum(
            int(r.get("replicas") or 0)
            for r in replicated_jobs(js)
            if not targets or r.get("name") in targets
        )
    if matching >= expected:
        set_completed(js, update)
        return True
    return False


def _failure(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for c in (job.get("status") or {}).get("conditions") or ():
        if c.get("type") == "Failed" and c.get("status") == "True":
            return dict(c)
    return None


def _first_failed(jobs: list[Obj]) -> Obj | None:
    first: Obj | None = None
    first_time = ""
    for job in jobs:
        cond = _failure(job)
        when = str((cond or {}).get("lastTransitionTime") or "")
        if cond is not None and (first is None or when < first_time):
            first, first_time = job, when
    return first


def _rule_applies(rule: Mapping[str, Any], job: Mapping[str, Any], cond: Mapping[str, Any]) -> bool:
    reasons = rule.get("onJobFailureReasons") or []
    if reasons and cond.get("reason") not in reasons:
        return False
    patterns = rule.get("onJobFailureMessagePatterns") or []
    if patterns and not any(_search(p, str(cond.get("message") or "")) for p in patterns):
        return False
    parent = (job["metadata"].get("labels") or {}).get(REPLICATED_JOB_NAME_KEY)
    if not parent:
        return False
    targets = rule.get("targetReplicatedJobs") or []
    return not targets or parent in targets


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None  # Go's regexp.MatchString: unanchored
    except re.error:
        return False


def _matching_rule(
    rules: list[Mapping[str, Any]], failed: list[Obj]
) -> tuple[Mapping[str, Any], Obj] | None:
    for rule in rules:
        matched: Obj | None = None
        matched_time = ""
        for job in failed:
            cond = _failure(job)
            if cond is None:
                continue
            when = str(cond.get("lastTransitionTime") or "")
            if _rule_applies(rule, job, cond) and (matched is None or when < matched_time):
                matched, matched_time = job, when
        if matched is not None:
            return rule, matched
    return None


def _with_job(message: str, job: Obj | None) -> str:
    return f"{message} (first failed job: {job['metadata']['name'] if job else ''})"


def execute_failure_policy(js: Obj, jobs: ChildJobs, update: StatusUpdate) -> None:
    policy = (js.get("spec") or {}).get("failurePolicy")
    if not isinstance(policy, Mapping):
        set_failed(
            js,
            update,
            FAILED_JOBS_REASON,
            _with_job(FAILED_JOBS_MESSAGE, _first_failed(jobs.failed)),
        )
        return
    found = _matching_rule(
        [r for r in policy.get("rules") or () if isinstance(r, Mapping)], jobs.failed
    )
    rule: Mapping[str, Any] | None
    if found is None:
        rule, job, action = None, _first_failed(jobs.failed), RESTART_JOBSET
    else:
        rule, job = found
        action = str(rule.get("action") or "")
    status = js.setdefault("status", {})
    if action == FAIL_JOBSET:
        set_failed(
            js, update, FAIL_JOBSET_ACTION_REASON, _with_job(FAIL_JOBSET_ACTION_MESSAGE, job)
        )
        return
    if action not in (RESTART_JOBSET, RESTART_JOBSET_IGNORE_MAX):
        raise ValueError(
            f"failed to find a corresponding action for the FailurePolicyRuleAction {action}"
        )
    counts = action == RESTART_JOBSET
    if counts and int(status.get("restartsCountTowardsMax") or 0) >= int(
        policy.get("maxRestarts") or 0
    ):
        set_failed(
            js, update, REACHED_MAX_RESTARTS_REASON, _with_job(REACHED_MAX_RESTARTS_MESSAGE, job)
        )
        return
    base, event_reason = (
        (RESTART_JOBSET_ACTION_MESSAGE, RESTART_JOBSET_ACTION_REASON)
        if counts
        else (RESTART_IGNORE_MAX_ACTION_MESSAGE, RESTART_IGNORE_MAX_ACTION_REASON)
    )
    message = _with_job(base, job)
    reason = (
        RESTARTING_FAILURE_POLICY_FORMAT.format(rule.get("name"))
        if rule is not None
        else RESTARTING_DEFAULT_FAILURE_POLICY
    )
    status["restarts"] = int(status.get("restarts") or 0) + 1
    if counts:
        status["restartsCountTowardsMax"] = int(status.get("restartsCountTowardsMax") or 0) + 1
    update.should_update = True
    set_condition(js, update, RESTARTING, "True", reason, message, event_type="Warning")
    update.events.append(("Warning", event_reason, message))


def all_replicas_started(replicas: int, status: Mapping[str, Any] | None) -> bool:
    s = status or {}
    return replicas == int(s.get("failed", 0)) + int(s.get("ready", 0)) + int(s.get("succeeded", 0))


def dependency_reached(
    rjob: Mapping[str, Any], replicas: Mapping[str, int], statuses: list[Obj]
) -> bool:
    """Every dependsOn entry met: Complete (all succeeded) or Ready (ready+failed+succeeded)."""
    for dep in rjob.get("dependsOn") or ():
        actual = status_of(statuses, str(dep.get("name")))
        if actual is None:
            return False
        wanted = replicas.get(str(dep.get("name")), 0)
        if dep.get("status") == DEPENDENCY_COMPLETE and wanted != actual["succeeded"]:
            return False
        if dep.get("status") == DEPENDENCY_READY and wanted != (
            actual["failed"] + actual["ready"] + actual["succeeded"]
        ):
            return False
    return True


def all_jobs_ready(js: Mapping[str, Any], statuses: list[Obj]) -> bool:
    total = sum(int(r.get("replicas") or 0) for r in replicated_jobs(js))
    return total == sum(int(s["ready"]) + int(s["succeeded"]) for s in statuses)
