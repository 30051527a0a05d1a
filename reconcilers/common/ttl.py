"""``ttlSecondsAfterFinished``: the one reading of a finished job's TTL and its deadline.

The state machine (deleting or requeueing a finished job) and the job event handler (queueing a
job that just finished at TTL priority) both ask here, so they never disagree on what a TTL is.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.jobs import parse_time, run_policy

__all__ = ["finished_at", "ttl_deadline", "ttl_seconds"]


def ttl_seconds(job: Obj, kind: JobKind) -> int | None:
    """``runPolicy.ttlSecondsAfterFinished`` as an int; None when unset or not a number (an
    invalid job reaches here unvalidated: a value that is not a number means no TTL)."""
    ttl = run_policy(job, kind).get("ttlSecondsAfterFinished")
    if ttl is None or isinstance(ttl, bool):
        return None
    try:
        return int(ttl)
    except (TypeError, ValueError):
        return None


def finished_at(status: Obj) -> datetime | None:
    """When the job finished: ``completionTime``, else the Succeeded/Failed condition's
    ``lastTransitionTime`` (a job failed without completionTime); None when not finished."""
    completed = parse_time(status.get("completionTime"))
    if completed is not None:
        return completed
    for ctype in (cond.SUCCEEDED, cond.FAILED):
        c = cond.get_condition(status.get("conditions") or [], ctype)
        if c is not None and c.get("status") == cond.TRUE:
            return parse_time(c.get("lastTransitionTime"))
    return None


def ttl_deadline(job: Obj, kind: JobKind, status: Obj | None = None) -> datetime | None:
    """When a finished job is due for deletion: ``finished_at + ttlSecondsAfterFinished``.

    ``status``: the status to read (default: the job's own), e.g. one just decided. None when no
    TTL is set or the job has not finished.
    """
    ttl = ttl_seconds(job, kind)
    if ttl is None:
        return None
    at = finished_at(job.get("status") or {} if status is None else status)
    return None if at is None else at + timedelta(seconds=ttl)
