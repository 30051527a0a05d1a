"""Creating and deleting a Job's pods (``manageJob``, ``deleteJobPods``, ``deleteActivePods``).

A suspended Job loses its active pods (their finalizer removed first: they are not failures).
Otherwise the wanted number of active pods is ``min(completions - succeeded, parallelism)``
(``parallelism`` until a first success when completions is unset); extra pods are deleted,
missing ones created once the failure backoff has passed, in slow-start batches (1, 2, 4...:
a batch with an error ends the round). With podReplacementPolicy Failed, terminating pods
still hold their place. Expectations are raised before each write and lowered for each write
that failed, so the next sync waits only for what the cache will show.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kubetrain.informers.transport import ApiStatusError

from .backoff import remaining_seconds
from .constants import MAX_POD_CREATE_DELETE_PER_SYNC, SLOW_START_INITIAL_BATCH
from .context import Deps, SyncContext
from .indexed import (
    absolute_failure_count,
    active_pods_for_removal,
    first_pending_indexes,
    new_index_failure_counts,
)
from .pods import finished_time, is_ready, only_replace_failed
from .podtemplate import new_pod

__all__ = ["delete_active_pods", "manage_job"]

log = logging.getLogger(__name__)
Obj = Mapping[str, Any]


def deps_key(job: Obj) -> str:
    meta = job["metadata"]
    return f"{meta.get('namespace')}/{meta['name']}"


async def _delete_one(deps: Deps, job: Obj, pod: Obj, *, remove_finalizer: bool) -> bool:
    meta = pod["metadata"]
    ns, name = meta.get("namespace", ""), meta["name"]
    try:
        if remove_finalizer:
            await deps.api.remove_tracking_finalizer(ns, name)
        if not await deps.api.delete_pod(ns, name):
            # already gone: its deletion may have been observed before we expected it
            deps.expectations.deletion_observed(str(deps_key(job)))
    except ApiStatusError as exc:
        deps.event(job, "Warning", "FailedDelete", f"Error deleting: {exc}")
        return False
    deps.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
    return True


async def delete_job_pods(
    deps: Deps, ctx: SyncContext, pods: Sequence[Obj], *, remove_finalizer: bool
) -> tuple[int, int]:
    """Delete ``pods``: (deleted ready pods, deleted pods). Failed deletions lower the
    deletion expectations (the cache will not show them)."""
    results = await asyncio.gather(
        *(_delete_one(deps, ctx.job, p, remove_finalizer=remove_finalizer) for p in pods)
    )
    deleted = ready = 0
    for pod, ok in zip(pods, results, strict=True):
        if ok:
            deleted += 1
            ready += 1 if is_ready(pod) else 0
        elif remove_finalizer:
            deps.expectations.deletion_observed(ctx.key)
    return ready, deleted


async def delete_active_pods(deps: Deps, ctx: SyncContext) -> tuple[int, int]:
    """A finished (or failing) Job: DELETE every active pod, finalizers kept (they are counted
    by the tracking that follows)."""
    return await delete_job_pods(deps, ctx, ctx.active_pods, remove_finalizer=False)


def _want_active(ctx: SyncContext, active: int) -> int:
    parallelism = int(ctx.spec.get("parallelism") or 0)
    completions = ctx.spec.get("completions")
    if completions is None:
        return active if ctx.succeeded > 0 else parallelism
    return max(0, min(int(completions) - ctx.succeeded, parallelism))


async def manage_job(deps: Deps, ctx: SyncContext) -> int:
    """Bring the active pods to what the Job wants; returns the active count afterwards and
    updates ``ctx.terminating``/``ctx.ready`` for what it deleted."""
    active = len(ctx.active_pods)
    if ctx.spec.get("suspend") is True:
        doomed = active_pods_for_removal(ctx.job, ctx.active_pods, active)
        deps.expectations.expect_deletions(ctx.key, len(doomed))
        ready, deleted = await delete_job_pods(deps, ctx, doomed, remove_finalizer=True)
        ctx.terminating += deleted
        ctx.ready -= ready
        return active - deleted
    want = _want_active(ctx, active)
    doomed = active_pods_for_removal(ctx.job, ctx.active_pods, max(0, active - want))
    doomed = doomed[:MAX_POD_CREATE_DELETE_PER_SYNC]
    if doomed:
        # deletion takes precedence: no creation in the same sync
        deps.expectations.expect_deletions(ctx.key, len(doomed))
        ready, deleted = await delete_job_pods(deps, ctx, doomed, remove_finalizer=True)
        ctx.terminating += deleted
        ctx.ready -= ready
        return active - deleted
    terminating = ctx.terminating if only_replace_failed(ctx.job) else 0
    diff = want - terminating - active
    if diff <= 0:
        return active
    if not ctx.per_index and ctx.new_backoff is not None:
        wait = remaining_seconds(
            deps.clock.utcnow(),
            ctx.new_backoff.failures_after_last_success,
            ctx.new_backoff.last_failure,
        )
        if wait > 0:
            deps.enqueue_after(ctx.key, max(wait, deps.batch_seconds))
            return active
    diff = min(diff, MAX_POD_CREATE_DELETE_PER_SYNC)
    indexes: list[int | None] = [None] * diff
    if ctx.indexed:
        pending = first_pending_indexes(ctx, diff)
        if ctx.per_index:
            pending, wait = _ready_indexes(deps, ctx, pending)
            if not pending:
                if wait > 0:
                    deps.enqueue_after(ctx.key, max(wait, deps.batch_seconds))
                return active
        indexes = list(pending)
        diff = len(indexes)
    deps.expectations.expect_creations(ctx.key, diff)
    return active + await _create_in_batches(deps, ctx, indexes)


def _ready_indexes(deps: Deps, ctx: SyncContext, pending: list[int]) -> tuple[list[int], float]:
    """backoffLimitPerIndex: the indexes whose own backoff has passed, else the least wait."""
    now = deps.clock.utcnow()
    ready: list[int] = []
    least: float | None = None
    for ix in pending:
        last = ctx.delayed_deletion.get(ix)
        wait = 0.0
        if last is not None:
            wait = remaining_seconds(now, absolute_failure_count(last) + 1, finished_time(last))
        if wait == 0:
            ready.append(ix)
        elif least is None or wait < least:
            least = wait
    return ready, (0.0 if ready else least or 0.0)


async def _create_one(deps: Deps, ctx: SyncContext, index: int | None) -> bool:
    counts = None
    if index is not None and ctx.per_index:
        counts = new_index_failure_counts(ctx.job, ctx.delayed_deletion.get(index))
    pod = new_pod(ctx.job, index=index, failure_counts=counts)
    ns = str(ctx.job["metadata"].get("namespace") or "")
    try:
        created = await deps.api.create_pod(ns, pod)
    except ApiStatusError as exc:
        deps.expectations.creation_observed(ctx.key)
        if "NamespaceTerminating" not in str(exc):
            deps.event(ctx.job, "Warning", "FailedCreate", f"Error creating: {exc}")
        return False
    deps.event(ctx.job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
    return True


async def _create_in_batches(deps: Deps, ctx: SyncContext, indexes: list[int | None]) -> int:
    created = 0
    batch = min(len(indexes), SLOW_START_INITIAL_BATCH)
    start = 0
    while start < len(indexes):
        chunk = indexes[start : start + batch]
        results = await asyncio.gather(*(_create_one(deps, ctx, ix) for ix in chunk))
        created += sum(results)
        start += len(chunk)
        if not all(results):
            for _ in indexes[start:]:  # skipped: never expected to appear
                deps.expectations.creation_observed(ctx.key)
            break
        batch = min(2 * batch, len(indexes) - start)
    return created
