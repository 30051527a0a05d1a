"""An MPIJob's status, computed as mpi-operator v0.8.2 computes it.

The ``Created``/``Running``/``Succeeded``/``Failed``/``Suspended`` conditions, their reasons and
messages, the replica counts and the start and completion times are what Kueue, the SDK and
dashboards read; a job moved from mpi-operator must show the same history. This is a port of
``updateMPIJobStatus``, ``updateMPIJobFailedStatus``, the status part of ``cleanUpWorkerPods``
and the condition helpers of ``mpi_job_controller_status.go``, as pure functions: they take the
job, its current status and what the caches show, and return the new status with the events to
record and what happened (for metrics). The reconciler writes the status when ``changed``.

Timestamps are RFC 3339 strings at second precision (``now``), as ``metav1.Time`` marshals.
Conditions keep Go's order: a changed condition moves to the end of the list.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.conditions import (
    is_finished,
)

from .objects import (
    LAUNCHER_REPLICA_TYPE,
    WORKER_REPLICA_TYPE,
    count_running_pods,
    is_job_failed,
    is_job_succeeded,
    is_mpijob_suspended,
    is_pod_failed,
    job_condition,
)

# -- condition types and reasons ------------------------------------------------------------------

CREATED = "Created"
RUNNING = "Running"
RESTARTING = "Restarting"
SUCCEEDED = "Succeeded"
SUSPENDED = "Suspended"
FAILED = "Failed"

TRUE = "True"
FALSE = "False"

MPIJOB_CREATED_REASON = "MPIJobCreated"
MPIJOB_SUCCEEDED_REASON = "MPIJobSucceeded"
MPIJOB_RUNNING_REASON = "MPIJobRunning"
MPIJOB_SUSPENDED_REASON = "MPIJobSuspended"
MPIJOB_RESUMED_REASON = "MPIJobResumed"
MPIJOB_FAILED_REASON = "MPIJobFailed"
MPIJOB_EVICT_REASON = "MPIJobEvicted"

BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
"""``batchv1.JobReasonBackoffLimitExceeded``."""

EVENT_MESSAGE_LIMIT = 1024
NORMAL = "Normal"
WARNING = "Warning"

Event = tuple[str, str, str]
"""(type ``Normal``|``Warning``, reason, message)."""

_COUNTERS = ("active", "succeeded", "failed")


@dataclass(slots=True)
class StatusUpdate:
    """The new status, the events to record on the MPIJob, and what happened in this pass.

    The flags mirror mpi-operator's metrics: ``created`` (mpi_operator_jobs_created_total),
    ``succeeded`` and ``failed`` (mpi_operator_jobs_successful_total / _failed_total; Go bumps
    them on every pass that sees the launcher finished, which is normally one, since a finished
    job with a completionTime is not synced again). ``evicted``, ``suspended`` and ``resumed``
    say an eviction was seen, or the Suspended condition turned True or False in this pass.
    ``changed`` compares ``status`` with the status the function was given (both canonical, see
    ``canonical_status``); across several steps of one pass, compare the final status with the
    cached job's ``canonical_status`` to decide the write.
    """

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    changed: bool = False
    created: bool = False
    succeeded: bool = False
    failed: bool = False
    evicted: bool = False
    suspended: bool = False
    resumed: bool = False


# -- helpers ------------------------------------------------------------------------------------


def truncate_message(message: str) -> str:
    """At most 1024 bytes, ending in ``...`` when cut (Go's ``truncateMessage``).

    Go counts and cuts bytes; a character cut in half becomes U+FFFD per stray byte, as Go's JSON
    encoder writes it.
    """
    raw = message.encode("utf-8")
    if len(raw) <= EVENT_MESSAGE_LIMIT:
        return message
    suffix = "..."
    head = raw[: EVENT_MESSAGE_LIMIT - len(suffix)].decode("utf-8", "surrogateescape")
    head = "".join("\ufffd" if "\udc80" <= ch <= "\udcff" else ch for ch in head)
    return head + suffix


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not value:
        return datetime.min.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _conditions(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(status.get("conditions") or [])


def get_condition(status: Mapping[str, Any], condition_type: str) -> dict[str, Any] | None:
    """The first condition of ``condition_type``, or None."""
    for cond in _conditions(status):
        if cond.get("type") == condition_type:
            return dict(cond)
    return None


def new_condition(
    condition_type: str, status: str, reason: str, message: str, now: str
) -> dict[str, Any]:
    """A condition stamped ``now`` for both times; empty reason or message left out."""
    cond: dict[str, Any] = {"type": condition_type, "status": status}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    cond["lastUpdateTime"] = now
    cond["lastTransitionTime"] = now
    return cond


def _filter_out_condition(
    conditions: Sequence[Mapping[str, Any]], condition_type: str
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in conditions:
        ctype = c.get("type")
        if condition_type == RESTARTING and ctype == RUNNING:
            continue
        if condition_type == RUNNING and ctype == RESTARTING:
            continue
        if ctype == condition_type:
            continue
        cond = dict(c)
        if condition_type in (FAILED, SUCCEEDED) and ctype in (RUNNING, FAILED):
            cond["status"] = FALSE
        out.append(cond)
    return out


def set_condition(status: dict[str, Any], condition: Mapping[str, Any]) -> bool:
    """Go's ``setCondition`` on ``status`` (a copy the caller owns): nothing when a condition of
    the type has the same status and reason; otherwise the condition replaces it at the end,
    keeping the old lastTransitionTime when the status did not change. Setting Succeeded or
    Failed turns Running False; Running and Restarting replace each other. Returns whether
    anything changed."""
    current = get_condition(status, str(condition["type"]))
    if (
        current is not None
        and current.get("status") == condition.get("status")
        and current.get("reason") == condition.get("reason")
    ):
        return False
    new = dict(condition)
    if current is not None and current.get("status") == condition.get("status"):
        if "lastTransitionTime" in current:
            new["lastTransitionTime"] = current["lastTransitionTime"]
        else:
            new.pop("lastTransitionTime", None)
    status["conditions"] = [
        *_filter_out_condition(_conditions(status), str(condition["type"])),
        new,
    ]
    return True


def update_conditions(
    status: dict[str, Any],
    condition_type: str,
    condition_status: str,
    reason: str,
    message: str,
    now: str,
) -> bool:
    """``updateMPIJobConditions``: ``set_condition`` with a new condition stamped ``now``."""
    return set_condition(
        status, new_condition(condition_type, condition_status, reason, message, now)
    )


def _replica_status(counts: Mapping[str, int]) -> dict[str, int]:
    # The JSON of a ReplicaStatus: zero counters are omitted.
    return {k: int(counts[k]) for k in _COUNTERS if counts.get(k)}


def _initialize_replica_status(status: dict[str, Any], replica_type: str) -> None:
    statuses = dict(status.get("replicaStatuses") or {})
    statuses[replica_type] = {}
    status["replicaStatuses"] = statuses


def canonical_status(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """``status`` as Go would read it back: null fields dropped, replica statuses without zero
    counters (Go's structs cannot tell an absent counter from 0)."""
    out = {k: copy.deepcopy(v) for k, v in (status or {}).items() if v is not None}
    statuses = out.get("replicaStatuses")
    if isinstance(statuses, dict):
        canon: dict[str, Any] = {}
        for rtype, rs in statuses.items():
            if rs is None:
                continue
            kept = {k: v for k, v in rs.items() if v not in (None, 0, "")}
            canon[rtype] = kept
        out["replicaStatuses"] = canon
    return out


def _job_key(job: Obj) -> tuple[str, str]:
    meta = job.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


# -- entry points -------------------------------------------------------------------------------


def created_status(job: Obj, now: str) -> StatusUpdate:
    """What syncHandler does to a job without conditions: a ``Created`` condition (reason
    ``MPIJobCreated``) and the ``MPIJobCreated`` event. A job with conditions is returned as is."""
    old = canonical_status(job.get("status"))
    status = copy.deepcopy(old)
    if _conditions(status):
        return StatusUpdate(status=status)
    namespace, name = _job_key(job)
    msg = f"MPIJob {namespace}/{name} is created."
    update_conditions(status, CREATED, TRUE, MPIJOB_CREATED_REASON, msg, now)
    return StatusUpdate(
        status=status,
        events=[(NORMAL, "MPIJobCreated", msg)],
        changed=True,
        created=True,
    )


def with_workers_cleaned(status: dict[str, Any]) -> dict[str, Any]:
    """The status part of cleanUpWorkerPods: the Worker replica status reset (active 0)."""
    out = canonical_status(status)
    _initialize_replica_status(out, WORKER_REPLICA_TYPE)
    return out


def _last_failed_pod(pods: Sequence[Obj]) -> Obj | None:
    last: Obj | None = None
    last_time = datetime.min.replace(tzinfo=UTC)
    for pod in pods:
        if not is_pod_failed(pod):
            continue
        created = _parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
        if last is None or last_time < created:
            last, last_time = pod, created
    return last


def _failed_status(
    job: Obj, status: dict[str, Any], launcher: Obj, launcher_pods: Sequence[Obj], now: str
) -> Event:
    """updateMPIJobFailedStatus: the Failed condition from the launcher's, with the last failed
    launcher pod's reason and message appended when it hit its backoff limit."""
    namespace, name = _job_key(job)
    cond = job_condition(launcher, "Failed") or {}
    reason = str(cond.get("reason") or "") or MPIJOB_FAILED_REASON
    msg = str(cond.get("message") or "") or f"MPIJob {namespace}/{name} has failed"
    if reason == BACKOFF_LIMIT_EXCEEDED:
        last = _last_failed_pod(launcher_pods)
        if last is not None:
            pod_status = last.get("status") or {}
            reason += "/" + str(pod_status.get("reason") or "")
            msg += ": " + str(pod_status.get("message") or "")
            msg = truncate_message(msg)
    if status.get("completionTime") is None:
        status["completionTime"] = now
    update_conditions(status, FAILED, TRUE, reason, msg, now)
    return (WARNING, reason, msg)


def next_status(
    job: Obj,
    status: dict[str, Any],
    launcher: Obj | None,
    launcher_pods: Sequence[Obj],
    workers: Sequence[Obj],
    *,
    now: str,
) -> StatusUpdate:
    """updateMPIJobStatus: the status after one sync pass.

    ``status`` is the status so far in this pass (after ``created_status`` and, when suspended,
    ``with_workers_cleaned``); ``launcher`` the launcher Job or None; ``launcher_pods`` the pods
    the launcher controls; ``workers`` the worker pods getOrCreateWorker returned (empty while
    suspended). First, as syncHandler does before, a missing startTime is set to ``now`` unless
    the job is suspended.
    """
    old = canonical_status(status)
    st = copy.deepcopy(old)
    namespace, name = _job_key(job)
    suspended = is_mpijob_suspended(job)
    update = StatusUpdate(status=st)
    events = update.events

    if st.get("startTime") is None and not suspended:
        st["startTime"] = now

    if suspended:
        if update_conditions(st, SUSPENDED, TRUE, MPIJOB_SUSPENDED_REASON, "MPIJob suspended", now):
            events.append((NORMAL, "MPIJobSuspended", "MPIJob suspended"))
            update.suspended = True
    elif get_condition(st, SUSPENDED) is not None and update_conditions(
        st, SUSPENDED, FALSE, MPIJOB_RESUMED_REASON, "MPIJob resumed", now
    ):
        events.append((NORMAL, "MPIJobResumed", "MPIJob resumed"))
        st["startTime"] = now
        update.resumed = True

    launcher_running = 0
    if launcher is not None:
        launcher_running = count_running_pods(launcher_pods)
        counts = {"failed": int((launcher.get("status") or {}).get("failed") or 0)}
        if is_job_succeeded(launcher):
            counts["succeeded"] = 1
            msg = f"MPIJob {namespace}/{name} successfully completed."
            events.append((NORMAL, MPIJOB_SUCCEEDED_REASON, msg))
            if st.get("completionTime") is None:
                completion = (launcher.get("status") or {}).get("completionTime")
                if completion is not None:
                    st["completionTime"] = completion
            update_conditions(st, SUCCEEDED, TRUE, MPIJOB_SUCCEEDED_REASON, msg, now)
            update.succeeded = True
        elif is_job_failed(launcher):
            events.append(_failed_status(job, st, launcher, launcher_pods, now))
            update.failed = True
        else:
            counts["active"] = launcher_running
        _initialize_replica_status(st, LAUNCHER_REPLICA_TYPE)
        st["replicaStatuses"][LAUNCHER_REPLICA_TYPE] = _replica_status(counts)

    running = evicted = 0
    worker_counts = {"active": 0, "succeeded": 0, "failed": 0}
    for pod in workers:
        pod_status = pod.get("status") or {}
        phase = pod_status.get("phase")
        if phase == "Failed":
            worker_counts["failed"] += 1
            if pod_status.get("reason") == "Evicted":
                evicted += 1
        elif phase == "Succeeded":
            worker_counts["succeeded"] += 1
        elif phase == "Running":
            running += 1
            worker_counts["active"] += 1
    _initialize_replica_status(st, WORKER_REPLICA_TYPE)
    st["replicaStatuses"][WORKER_REPLICA_TYPE] = _replica_status(worker_counts)
    if evicted > 0:
        msg = f"{evicted}/{len(workers)} workers are evicted"
        update_conditions(st, FAILED, TRUE, MPIJOB_EVICT_REASON, msg, now)
        events.append((WARNING, MPIJOB_EVICT_REASON, msg))
        update.evicted = True

    if suspended:
        msg = f"MPIJob {namespace}/{name} is suspended."
        update_conditions(st, RUNNING, FALSE, MPIJOB_SUSPENDED_REASON, msg, now)
    elif is_finished(st):
        # Never Running=True after the end; a job that ended unseen gets Running=False dated at
        # its completion, so durations computed from conditions still work.
        if get_condition(st, RUNNING) is None:
            when = str(st.get("completionTime") or now)
            msg = f"MPIJob {namespace}/{name} is finished but Running condition was never set."
            cond = new_condition(RUNNING, FALSE, MPIJOB_RUNNING_REASON, msg, when)
            st["conditions"] = [*_conditions(st), cond]
    elif launcher is not None and launcher_running >= 1 and running == len(workers):
        msg = f"MPIJob {namespace}/{name} is running."
        update_conditions(st, RUNNING, TRUE, MPIJOB_RUNNING_REASON, msg, now)
        # Go records this event on every such pass, changed or not.
        events.append((NORMAL, "MPIJobRunning", f"MPIJob {namespace}/{name} is running"))

    update.changed = st != old
    return update
