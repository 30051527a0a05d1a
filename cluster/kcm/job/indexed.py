"""Indexed Jobs (``indexed_job_utils.go``): which indexes succeeded or failed, which to create
next, which duplicate pods to remove, and the per-index failure counts of backoffLimitPerIndex.
Pods are counted once: only pods still carrying the tracking finalizer add to what the status
already says."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .constants import INDEX_FAILURE_COUNT, INDEX_IGNORED_FAILURE_COUNT
from .context import SyncContext
from .failure_policy import match_pod_failure_policy
from .intervals import Intervals, has, merge, parse_intervals, with_indexes
from .pods import (
    UNKNOWN_INDEX,
    completion_index,
    finished_time,
    has_tracking_finalizer,
    is_pod_failed,
    is_ready,
    is_terminating,
    only_replace_failed,
    phase,
)

__all__ = [
    "absolute_failure_count",
    "active_pods_for_removal",
    "failed_indexes",
    "first_pending_indexes",
    "new_index_failure_counts",
    "pods_with_delayed_deletion",
    "succeeded_indexes",
]

Obj = Mapping[str, Any]


def _valid(pod: Obj, completions: int) -> int:
    ix = completion_index(pod)
    return ix if ix != UNKNOWN_INDEX and ix < completions else UNKNOWN_INDEX


def succeeded_indexes(job: Obj, pods: Sequence[Obj]) -> tuple[Intervals, Intervals]:
    """(the status's completed indexes, those plus the newly succeeded pods' indexes)."""
    completions = int((job.get("spec") or {}).get("completions") or 0)
    prev = parse_intervals((job.get("status") or {}).get("completedIndexes"), completions)
    new = {
        ix
        for p in pods
        if phase(p) == "Succeeded"
        and has_tracking_finalizer(p)
        and (ix := _valid(p, completions)) != UNKNOWN_INDEX
    }
    return prev, with_indexes(prev, sorted(new))


def _count_annotation(pod: Obj, key: str) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(key)
    try:
        count = int(value) if value is not None else 0
    except ValueError:
        return 0
    return count if 0 <= count <= 2**31 - 1 else 0


def absolute_failure_count(pod: Obj) -> int:
    return _count_annotation(pod, INDEX_FAILURE_COUNT) + _count_annotation(
        pod, INDEX_IGNORED_FAILURE_COUNT
    )


def _is_index_failed(job: Obj, pod: Obj) -> bool:
    counted = False
    if is_pod_failed(pod, job):
        if (job.get("spec") or {}).get("podFailurePolicy") is not None:
            verdict = match_pod_failure_policy(job, pod)
            if verdict.action == "FailIndex":
                return True
            counted = verdict.count
        else:
            counted = True
    limit = int((job.get("spec") or {}).get("backoffLimitPerIndex") or 0)
    return counted and _count_annotation(pod, INDEX_FAILURE_COUNT) >= limit


def failed_indexes(job: Obj, pods: Sequence[Obj]) -> Intervals:
    completions = int((job.get("spec") or {}).get("completions") or 0)
    prev = parse_intervals((job.get("status") or {}).get("failedIndexes"), completions)
    new = {
        ix
        for p in pods
        if has_tracking_finalizer(p)
        and (ix := _valid(p, completions)) != UNKNOWN_INDEX
        and _is_index_failed(job, p)
    }
    return with_indexes(prev, sorted(new))


def _indexes(pods: Sequence[Obj]) -> set[int]:
    return {ix for p in pods if (ix := completion_index(p)) != UNKNOWN_INDEX}


def first_pending_indexes(ctx: SyncContext, count: int) -> list[int]:
    """Up to ``count`` indexes below completions neither active, succeeded nor failed (nor
    terminating, when only failed pods are replaced)."""
    if count <= 0:
        return []
    non_pending = with_indexes(ctx.succeeded_indexes, sorted(_indexes(ctx.active_pods)))
    if only_replace_failed(ctx.job):
        terminating = [p for p in ctx.pods if is_terminating(p)]
        non_pending = with_indexes(non_pending, sorted(_indexes(terminating)))
    if ctx.failed_indexes is not None:
        non_pending = merge(non_pending, ctx.failed_indexes)
    out: list[int] = []
    candidate = 0
    for first, last in non_pending:
        while candidate < ctx.completions and len(out) < count and candidate < first:
            out.append(candidate)
            candidate += 1
        candidate = max(candidate, last + 1)
    while candidate < ctx.completions and len(out) < count:
        out.append(candidate)
        candidate += 1
    return out


def _removal_order(pod: Obj) -> tuple[int, int, int, str]:
    """``controller.ActivePods`` order, first removed first: unscheduled < scheduled, pending <
    running, not ready < ready (then newest first is approximated by name)."""
    scheduled = 1 if (pod.get("spec") or {}).get("nodeName") else 0
    phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(phase(pod), 0)
    return (scheduled, phase_rank, 1 if is_ready(pod) else 0, str(pod["metadata"].get("name")))


def active_pods_for_removal(job: Obj, pods: Sequence[Obj], at_least: int) -> list[Obj]:
    """Pods to delete: for an Indexed Job every duplicate of an index (keeping the most
    advanced), pods without a valid index; then more, earliest-stage first, up to ``at_least``."""
    rm: list[Obj] = []
    left: list[Obj] = list(pods)
    if (job.get("spec") or {}).get("completionMode") == "Indexed":
        completions = int((job.get("spec") or {}).get("completions") or 0)
        by_index: dict[int, list[Obj]] = {}
        left = []
        for p in pods:
            ix = completion_index(p)
            if ix == UNKNOWN_INDEX or ix >= completions:
                rm.append(p)
            else:
                by_index.setdefault(ix, []).append(p)
        for group in by_index.values():
            group.sort(key=_removal_order)
            rm.extend(group[:-1])
            left.append(group[-1])
    if len(rm) < at_least:
        left.sort(key=_removal_order)
        rm.extend(left[: at_least - len(rm)])
    return rm


def pods_with_delayed_deletion(ctx: SyncContext) -> dict[int, dict[str, Any]]:
    """Per index, the last failed pod whose finalizer stays until its replacement carries the
    failure count on (``getPodsWithDelayedDeletionPerIndex``)."""
    active = _indexes(ctx.active_pods)
    out: dict[int, dict[str, Any]] = {}
    for p in ctx.pods:
        uid = p["metadata"].get("uid", "")
        if not has_tracking_finalizer(p) or uid in ctx.expected_rm_finalizers:
            continue
        if not is_pod_failed(p, ctx.job):
            continue
        ix = _valid(p, ctx.completions)
        if ix == UNKNOWN_INDEX:
            continue
        if has(ctx.succeeded_indexes, ix) or has(ctx.failed_indexes or [], ix) or ix in active:
            continue
        last = out.get(ix)
        if last is None or (
            absolute_failure_count(last) <= absolute_failure_count(p)
            and finished_time(p) >= finished_time(last)
        ):
            out[ix] = p
    return out


def new_index_failure_counts(job: Obj, replaced: Obj | None) -> tuple[int, int]:
    """(failed, ignored) counts for the pod replacing ``replaced`` in its index."""
    if replaced is None:
        return 0, 0
    failed = _count_annotation(replaced, INDEX_FAILURE_COUNT)
    ignored = _count_annotation(replaced, INDEX_IGNORED_FAILURE_COUNT)
    if (job.get("spec") or {}).get("podFailurePolicy") is not None:
        if match_pod_failure_policy(job, replaced).count:
            failed += 1
        else:
            ignored += 1
    else:
        failed += 1
    return failed, ignored
