"""One sync of one Job (``syncJob``): count, decide the terminal condition, manage the pods,
write the status.

Order of the decisions, as kube's:

1. a Job gone, finished, managed by another controller or of an unknown completion mode is
   left alone (the first and second forget its memory);
2. the pods are the cache's pods controlled by the Job (by owner UID, never a scan); counted:
   ``succeeded``/``failed`` = the status + pods finished since (with finalizer, not yet
   uncounted) + the uncounted ones; ``startTime`` is set when the Job first runs unsuspended;
3. the finishing condition, first match wins: SuccessCriteriaMet already set; FailureTarget
   already set (then Failed) or a podFailurePolicy FailJob; failed > backoffLimit (or, with
   OnFailure, container restarts reaching it): BackoffLimitExceeded; activeDeadlineSeconds
   passed: DeadlineExceeded (else a re-sync when it will); then for Indexed Jobs the failed
   indexes (MaxFailedIndexesExceeded, FailedIndexes) and the successPolicy;
4. finishing: active pods are deleted; not finishing: pods managed (when the expectations are
   met), completion checked (SuccessCriteriaMet "CompletionsReached"), the Suspended condition
   kept (resuming resets ``startTime``);
5. ``tracking.track_status`` counts and writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubetrain.base.jsoncopy import json_copy

from .conditions import (
    ensure_condition,
    find_condition,
    is_finished,
    new_condition,
    rfc3339,
)
from .constants import (
    BACKOFF_LIMIT_EXCEEDED,
    COMPLETIONS_REACHED,
    DEADLINE_EXCEEDED,
    FAILED,
    FAILED_INDEXES,
    FAILURE_TARGET,
    JOB_CONTROLLER_NAME,
    MAX_FAILED_INDEXES_EXCEEDED,
    POD_FAILURE_POLICY,
    SUCCESS_CRITERIA_MET,
    SUCCESS_POLICY,
    SUSPENDED,
)
from .context import Deps, SyncContext
from .failure_policy import match_pod_failure_policy
from .indexed import failed_indexes, pods_with_delayed_deletion, succeeded_indexes
from .intervals import total
from .manage import delete_active_pods, manage_job
from .pods import (
    UNKNOWN_INDEX,
    completion_index,
    has_tracking_finalizer,
    is_active,
    is_pod_failed,
    is_ready,
    is_terminating,
    parse_time,
    phase,
)
from .success_policy import match_success_policy
from .tracking import track_status

__all__ = ["managed_by_other", "sync_job"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def managed_by_other(job: Mapping[str, Any]) -> bool:
    managed_by = (job.get("spec") or {}).get("managedBy")
    return managed_by is not None and managed_by != JOB_CONTROLLER_NAME


def _new_finished_pods(ctx: SyncContext) -> tuple[list[Obj], list[Obj]]:
    """Pods finished and not yet counted (finalizer on, not in the uncounted lists)."""
    succeeded: list[Obj] = []
    failed: list[Obj] = []
    for p in ctx.pods:
        uid = p["metadata"].get("uid")
        if not has_tracking_finalizer(p) or uid in ctx.expected_rm_finalizers:
            continue
        if ctx.indexed:
            ix = completion_index(p)
            if ix == UNKNOWN_INDEX or ix >= ctx.completions:
                continue
        if phase(p) == "Succeeded" and uid not in ctx.uncounted_succeeded:
            succeeded.append(p)
        elif is_pod_failed(p, ctx.job) and uid not in ctx.uncounted_failed:
            failed.append(p)
    return succeeded, failed


def _past_backoff_limit_on_failure(ctx: SyncContext) -> bool:
    """restartPolicy OnFailure: the running pods' container restarts reach backoffLimit."""
    template_spec = (ctx.spec.get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for p in ctx.pods:
        if phase(p) in ("Running", "Pending"):
            status = p.get("status") or {}
            for key in ("initContainerStatuses", "containerStatuses"):
                restarts += sum(int(c.get("restartCount") or 0) for c in status.get(key) or ())
    limit = int(ctx.spec.get("backoffLimit") or 0)
    return restarts > 0 if limit == 0 else restarts >= limit


def _deadline_remaining(deps: Deps, ctx: SyncContext) -> float | None:
    """Seconds until activeDeadlineSeconds passes (<= 0: passed); None without a deadline or
    while suspended."""
    deadline = ctx.spec.get("activeDeadlineSeconds")
    started = parse_time(ctx.status.get("startTime"))
    if deadline is None or started is None or ctx.spec.get("suspend") is True:
        return None
    return float(deadline) - (deps.clock.utcnow() - started).total_seconds()


def _fail_job_message(ctx: SyncContext) -> str | None:
    if ctx.spec.get("podFailurePolicy") is None:
        return None
    for p in ctx.pods:
        if is_pod_failed(p, ctx.job):
            message = match_pod_failure_policy(ctx.job, p).fail_job_message
            if message is not None:
                return message
    return None


def _new_context(deps: Deps, key: str, job: Obj) -> SyncContext:
    pods = deps.pods_of(job)
    active = [p for p in pods if is_active(p)]
    status = job.setdefault("status", {})
    uncounted = status.get("uncountedTerminatedPods") or {}
    status["uncountedTerminatedPods"] = uncounted
    return SyncContext(
        key=key,
        job=job,
        pods=pods,
        active_pods=active,
        ready=sum(1 for p in active if is_ready(p)),
        terminating=sum(1 for p in pods if is_terminating(p)),
        uncounted_succeeded=frozenset(uncounted.get("succeeded") or ()),
        uncounted_failed=frozenset(uncounted.get("failed") or ()),
        expected_rm_finalizers=deps.finalizers.expected(key),
    )


def _finishing_condition(deps: Deps, ctx: SyncContext) -> Obj | None:
    now = deps.clock.utcnow()
    status = ctx.status
    met = find_condition(status, SUCCESS_CRITERIA_MET)
    if met is not None and met.get("status") == "True":
        return met
    target = find_condition(status, FAILURE_TARGET)
    if target is not None and target.get("status") == "True":
        return new_condition(
            FAILED, "True", target.get("reason", ""), target.get("message", ""), now
        )
    message = _fail_job_message(ctx)
    if message is not None:
        return new_condition(FAILURE_TARGET, "True", POD_FAILURE_POLICY, message, now)
    if ctx.failed > int(ctx.spec.get("backoffLimit") or 0) or _past_backoff_limit_on_failure(ctx):
        return new_condition(FAILURE_TARGET, "True", *BACKOFF_LIMIT_EXCEEDED, now)
    remaining = _deadline_remaining(deps, ctx)
    if remaining is not None:
        if remaining <= 0:
            return new_condition(FAILURE_TARGET, "True", *DEADLINE_EXCEEDED, now)
        deps.enqueue_after(ctx.key, remaining)
    return None


def _indexed_condition(deps: Deps, ctx: SyncContext) -> Obj | None:
    """Counts the indexes; the failed-indexes and success-policy conditions."""
    now = deps.clock.utcnow()
    ctx.prev_succeeded_indexes, ctx.succeeded_indexes = succeeded_indexes(ctx.job, ctx.pods)
    ctx.succeeded = total(ctx.succeeded_indexes)
    cond = ctx.finished_condition
    if ctx.per_index:
        ctx.failed_indexes = failed_indexes(ctx.job, ctx.pods)
        failed = total(ctx.failed_indexes)
        max_failed = ctx.spec.get("maxFailedIndexes")
        if cond is None:
            if max_failed is not None and failed > int(max_failed):
                cond = new_condition(FAILURE_TARGET, "True", *MAX_FAILED_INDEXES_EXCEEDED, now)
            elif failed > 0 and failed + total(ctx.succeeded_indexes) >= ctx.completions:
                cond = new_condition(FAILURE_TARGET, "True", *FAILED_INDEXES, now)
        ctx.delayed_deletion = pods_with_delayed_deletion(ctx)
    if cond is None:
        message = match_success_policy(ctx.job, ctx.succeeded_indexes)
        if message is not None:
            cond = new_condition(SUCCESS_CRITERIA_MET, "True", SUCCESS_POLICY, message, now)
    return cond


async def sync_job(deps: Deps, key: str, cached: Mapping[str, Any] | None) -> None:
    """Sync the Job ``key`` (``cached``: the informer's copy, None when gone)."""
    if cached is None:
        deps.expectations.delete(key)
        deps.finalizers.delete(key)
        deps.backoff.remove(key)
        return
    if managed_by_other(cached):
        return
    if is_finished(cached):
        deps.backoff.remove(key)
        return
    job: Obj = json_copy(dict(cached))
    spec = job.get("spec") or {}
    if spec.get("completionMode") not in (None, "NonIndexed", "Indexed"):
        deps.event(
            job,
            "Warning",
            "UnknownCompletionMode",
            "Skipped Job sync because completion mode is unknown",
        )
        return
    satisfied = deps.expectations.satisfied(key)
    ctx = _new_context(deps, key, job)
    status = ctx.status
    new_succeeded, new_failed = _new_finished_pods(ctx)
    counted_failed = [p for p in new_failed if match_pod_failure_policy(job, p).count]
    ctx.succeeded = (
        int(status.get("succeeded") or 0) + len(new_succeeded) + len(ctx.uncounted_succeeded)
    )
    ctx.failed = int(status.get("failed") or 0) + len(counted_failed) + len(ctx.uncounted_failed)
    suspended = spec.get("suspend") is True
    if not status.get("startTime") and not suspended:
        status["startTime"] = rfc3339(deps.clock.utcnow())
    ctx.new_backoff = deps.backoff.new_record(key, new_succeeded, new_failed)
    ctx.finished_condition = _finishing_condition(deps, ctx)
    if ctx.indexed:
        ctx.finished_condition = _indexed_condition(deps, ctx)
    active = len(ctx.active_pods)
    suspend_changed = False
    if ctx.finished_condition is not None:
        ready, deleted = await delete_active_pods(deps, ctx)
        if deleted != active or not satisfied:
            # pods left, or creations/deletions not seen yet: not finished in this sync
            ctx.finished_condition = None
        active -= deleted
        ctx.terminating += deleted
        ctx.ready -= ready
    else:
        managed = False
        if satisfied and not job["metadata"].get("deletionTimestamp"):
            active = await manage_job(deps, ctx)
            managed = True
        completions = spec.get("completions")
        if completions is None:
            complete = ctx.succeeded > 0 and active == 0
        else:
            complete = ctx.succeeded >= int(completions) and active == 0
        now = deps.clock.utcnow()
        if complete:
            ctx.finished_condition = new_condition(
                SUCCESS_CRITERIA_MET, "True", *COMPLETIONS_REACHED, now
            )
        elif managed:
            if suspended:
                if ensure_condition(
                    status, SUSPENDED, "True", "JobSuspended", "Job suspended", now
                ):
                    suspend_changed = True
                    deps.event(job, "Normal", "Suspended", "Job suspended")
                # a suspended Job has no startTime (kube v1.36 clears it; resuming sets it anew)
                suspend_changed = status.pop("startTime", None) is not None or suspend_changed
            elif ensure_condition(status, SUSPENDED, "False", "JobResumed", "Job resumed", now):
                suspend_changed = True
                deps.event(job, "Normal", "Resumed", "Job resumed")
                # activeDeadlineSeconds counts from the resume
                status["startTime"] = rfc3339(now)
    needs_update = (
        suspend_changed
        or active != int(status.get("active") or 0)
        or ctx.ready != status.get("ready")
        or ctx.terminating != status.get("terminating")
    )
    if active:
        status["active"] = active
    else:
        status.pop("active", None)  # omitempty
    status["ready"] = ctx.ready
    status["terminating"] = ctx.terminating
    await track_status(deps, ctx, needs_update)
