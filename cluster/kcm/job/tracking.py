"""Counting finished pods exactly once: the tracking finalizer and
``status.uncountedTerminatedPods`` (``trackJobStatusAndRemoveFinalizers`` and what it calls).

Every pod a Job creates carries ``batch.kubernetes.io/job-tracking``, so it stays readable
until counted. A finished pod is counted in three steps, each surviving a crash in between:

1. its UID goes into ``uncountedTerminatedPods.succeeded``/``failed`` (an Indexed Job's
   success goes straight into ``completedIndexes``) and the status is written;
2. its finalizer is removed (the UID expected removed until the cache shows it);
3. the UIDs of pods without finalizer leave the uncounted lists and move into
   ``succeeded``/``failed``, and the status is written again.

The interim condition (``FailureTarget``/``SuccessCriteriaMet``) is written in step 1, before
any finalizer goes; the terminal one (``Failed``/``Complete``) only when nothing is uncounted
and no pod is terminating any more, with ``completionTime`` for Complete, and its events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kubetrain.informers.transport import ApiStatusError

from .conditions import ensure_condition, is_success_criteria_met, new_condition
from .constants import COMPLETE, FAILED, FAILURE_TARGET, MAX_UNCOUNTED_PODS
from .context import Deps, SyncContext
from .failure_policy import match_pod_failure_policy
from .intervals import format_intervals, has, total, with_indexes
from .pods import UNKNOWN_INDEX, completion_index, has_tracking_finalizer, is_pod_failed, phase

__all__ = ["track_status"]

Obj = dict[str, Any]


def _uncounted(status: Obj) -> Obj:
    value = status.get("uncountedTerminatedPods")
    if not isinstance(value, dict):
        value = status["uncountedTerminatedPods"] = {}
    return value


def _clean_uncounted(status: Obj, with_finalizer: set[str]) -> bool:
    """Move UIDs of pods that lost their finalizer from the uncounted lists to the counters."""
    uncounted = _uncounted(status)
    changed = False
    for key in ("succeeded", "failed"):
        uids = list(uncounted.get(key) or [])
        kept = [u for u in uids if u in with_finalizer]
        if len(kept) != len(uids):
            changed = True
            status[key] = int(status.get(key) or 0) + len(uids) - len(kept)
            if kept:
                uncounted[key] = kept
            else:
                uncounted.pop(key, None)
    return changed


def _can_remove_finalizer(
    ctx: SyncContext, pod: Mapping[str, Any], considered_failed: bool
) -> bool:
    if ctx.job["metadata"].get("deletionTimestamp") or ctx.finished_condition is not None:
        return True
    if phase(pod) == "Succeeded":
        return True
    if not considered_failed:
        return False
    if ctx.per_index:
        ix = completion_index(pod)
        kept = ctx.delayed_deletion.get(ix)
        if kept is not None and kept["metadata"].get("uid") == pod["metadata"].get("uid"):
            return False  # its replacement must inherit the index's failure count first
    return True


async def _remove_finalizers(
    deps: Deps, ctx: SyncContext, pods: list[Obj]
) -> tuple[list[bool], bool]:
    uids = [str(p["metadata"].get("uid")) for p in pods]
    deps.finalizers.expect_removed(ctx.key, uids)

    async def one(pod: Obj) -> bool:
        meta = pod["metadata"]
        try:
            await deps.api.remove_tracking_finalizer(meta.get("namespace", ""), meta["name"])
        except ApiStatusError:
            deps.finalizers.removal_observed(ctx.key, str(meta.get("uid")))
            return False
        return True

    results = list(await asyncio.gather(*(one(p) for p in pods)))
    return results, not all(results)


def _record_finished(deps: Deps, job: Obj, cond: Obj) -> None:
    if cond["type"] == COMPLETE:
        completions = (job.get("spec") or {}).get("completions")
        if (
            completions is not None
            and int((job.get("status") or {}).get("succeeded") or 0) > completions
        ):
            deps.event(
                job,
                "Warning",
                "TooManySucceededPods",
                "Too many succeeded pods running after completion count reached",
            )
        deps.event(job, "Normal", "Completed", "Job completed")
    else:
        deps.event(job, "Warning", str(cond.get("reason", "")), str(cond.get("message", "")))


def _enact_finished(deps: Deps, ctx: SyncContext) -> bool:
    cond = ctx.finished_condition
    if cond is None:
        return False
    uncounted = ctx.status.get("uncountedTerminatedPods") or {}
    if uncounted.get("succeeded") or uncounted.get("failed"):
        return False
    if ctx.terminating > 0:
        return False
    now = deps.clock.utcnow()
    ensure_condition(
        ctx.status, cond["type"], "True", cond.get("reason", ""), cond.get("message", ""), now
    )
    if cond["type"] == COMPLETE:
        final = next(c for c in ctx.status["conditions"] if c["type"] == COMPLETE)
        ctx.status["completionTime"] = final["lastTransitionTime"]
    return True


async def _write(deps: Deps, ctx: SyncContext) -> None:
    ctx.job = await deps.api.update_job_status(ctx.job)


async def track_status(deps: Deps, ctx: SyncContext, needs_flush: bool) -> None:
    """Count finished pods, write the status (twice when finalizers were removed), and mark
    the Job finished when it is."""
    status = ctx.status
    uncounted = _uncounted(status)
    pods = ctx.pods
    if ctx.indexed:
        pods = sorted(pods, key=completion_index)
    with_finalizer = {
        str(p["metadata"].get("uid"))
        for p in pods
        if has_tracking_finalizer(p) and p["metadata"].get("uid") not in ctx.expected_rm_finalizers
    }
    if _clean_uncounted(status, with_finalizer):
        needs_flush = True
    to_remove: list[Obj] = []
    new_indexes: list[int] = []
    reached_max = False
    failing = ctx.finished_condition is not None and not is_success_criteria_met(
        ctx.finished_condition
    )
    for pod in pods:
        uid = str(pod["metadata"].get("uid"))
        if not has_tracking_finalizer(pod) or uid in ctx.expected_rm_finalizers:
            continue  # counted in an earlier sync
        considered_failed = is_pod_failed(pod, ctx.job)
        if not _can_remove_finalizer(ctx, pod, considered_failed):
            continue
        to_remove.append(pod)
        ix = completion_index(pod)
        valid_ix = ix != UNKNOWN_INDEX and ix < ctx.completions
        if phase(pod) == "Succeeded" and uid not in ctx.uncounted_failed:
            if ctx.indexed:
                if valid_ix and not has(ctx.prev_succeeded_indexes, ix):
                    new_indexes.append(ix)
                    needs_flush = True
            elif uid not in ctx.uncounted_succeeded:
                needs_flush = True
                uncounted.setdefault("succeeded", []).append(uid)
        elif (
            # once the Job fails every pod not terminated is a failure
            (considered_failed or failing)
            and uid not in ctx.uncounted_failed
            and (not ctx.indexed or valid_ix)
            and match_pod_failure_policy(ctx.job, pod).count
        ):
            needs_flush = True
            uncounted.setdefault("failed", []).append(uid)
        counted = (
            len(new_indexes)
            + len(uncounted.get("succeeded") or ())
            + len(uncounted.get("failed") or ())
        )
        if counted >= MAX_UNCOUNTED_PODS:
            reached_max = True
            break
    if ctx.indexed:
        ctx.succeeded_indexes = with_indexes(ctx.succeeded_indexes, new_indexes)
        text = format_intervals(ctx.succeeded_indexes)
        if text != (status.get("completedIndexes") or ""):
            needs_flush = True
        if total(ctx.succeeded_indexes):
            status["succeeded"] = total(ctx.succeeded_indexes)
        else:
            status.pop("succeeded", None)  # omitempty
        if text:
            status["completedIndexes"] = text
        else:
            status.pop("completedIndexes", None)
        failed_text = (
            format_intervals(ctx.failed_indexes) if ctx.failed_indexes is not None else None
        )
        if failed_text != status.get("failedIndexes"):
            needs_flush = True
            if failed_text is None:
                status.pop("failedIndexes", None)
            else:
                status["failedIndexes"] = failed_text
    cond = ctx.finished_condition
    now = deps.clock.utcnow()
    if cond is not None and cond["type"] == FAILURE_TARGET:
        status.setdefault("conditions", []).append(cond)
        needs_flush = True
        ctx.finished_condition = new_condition(
            FAILED, "True", cond.get("reason", ""), cond.get("message", ""), now
        )
    elif is_success_criteria_met(cond):
        assert cond is not None
        if not any(
            c.get("type") == cond["type"] and c.get("status") == "True"
            for c in status.get("conditions") or ()
        ):
            status.setdefault("conditions", []).append(cond)
            needs_flush = True
        ctx.finished_condition = new_condition(
            COMPLETE, "True", cond.get("reason", ""), cond.get("message", ""), now
        )
    # step 1: the new uncounted UIDs and the interim condition
    if needs_flush:
        await _write(deps, ctx)
        if ctx.new_backoff is not None:
            deps.backoff.update(ctx.new_backoff)
        needs_flush = False
    # step 2: finalizers
    remove_failed = False
    if to_remove:
        results, remove_failed = await _remove_finalizers(deps, ctx, to_remove)
        for pod, ok in zip(to_remove, results, strict=True):
            if ok:
                with_finalizer.discard(str(pod["metadata"].get("uid")))
    # step 3: counters
    if _clean_uncounted(ctx.status, with_finalizer):
        needs_flush = True
    if remove_failed:
        if needs_flush:
            await _write(deps, ctx)
        raise RuntimeError(f"job {ctx.key}: removing tracking finalizers failed")
    finished = not reached_max and _enact_finished(deps, ctx)
    if finished or needs_flush:
        await _write(deps, ctx)
        if finished:
            assert ctx.finished_condition is not None
            _record_finished(deps, ctx.job, ctx.finished_condition)
