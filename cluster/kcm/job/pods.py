"""What a pod is to the Job controller (``controller_utils.go`` and ``job_controller.go``).

- active: not Succeeded/Failed and not being deleted (``FilterActivePods``);
- terminating: being deleted and not yet Succeeded/Failed (``CountTerminatingPods``);
- failed, for a Job: phase Failed, or (unless only failed pods are replaced) being deleted
  before it succeeded (``isPodFailed``);
- its completion index: the annotation, -1 when absent or not a non-negative integer;
- when it finished: the last container's ``finishedAt``, else the Ready=False transition, else
  the deletion time minus the grace period, else its creation (``getFinishedTime``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .constants import COMPLETION_INDEX, TRACKING_FINALIZER

__all__ = [
    "UNKNOWN_INDEX",
    "completion_index",
    "finished_time",
    "has_tracking_finalizer",
    "is_active",
    "is_pod_failed",
    "is_ready",
    "is_terminating",
    "only_replace_failed",
    "parse_time",
    "phase",
]

Obj = Mapping[str, Any]
UNKNOWN_INDEX = -1
_TERMINAL = ("Succeeded", "Failed")


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    return phase(pod) not in _TERMINAL and not _deleting(pod)


def is_terminating(pod: Obj) -> bool:
    return _deleting(pod) and phase(pod) not in _TERMINAL


def is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or ())


def only_replace_failed(job: Obj) -> bool:
    """``onlyReplaceFailedPods``: podReplacementPolicy Failed, or a podFailurePolicy."""
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return _deleting(pod) and phase(pod) != "Succeeded"


def completion_index(pod: Obj) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX)
    if value is None:
        return UNKNOWN_INDEX
    try:
        index = int(value)
    except ValueError:
        return UNKNOWN_INDEX
    return index if index >= 0 else UNKNOWN_INDEX


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp as kube writes it (``Z`` or an offset, optional fraction)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _containers_finished(statuses: Iterable[Mapping[str, Any]]) -> datetime | None:
    latest: datetime | None = None
    for status in statuses:
        finished = parse_time(
            ((status.get("state") or {}).get("terminated") or {}).get("finishedAt")
        )
        if finished is None:
            return None
        if latest is None or finished > latest:
            latest = finished
    return latest


def finished_time(pod: Obj) -> datetime:
    status = pod.get("status") or {}
    finished = _containers_finished(status.get("containerStatuses") or ())
    if finished is not None:
        return finished
    for c in status.get("conditions") or ():
        if c.get("type") == "Ready" and c.get("status") == "False":
            at = parse_time(c.get("lastTransitionTime"))
            if at is not None:
                return at
    meta = pod["metadata"]
    deleted = parse_time(meta.get("deletionTimestamp"))
    if deleted is not None:
        return deleted - timedelta(seconds=int(meta.get("deletionGracePeriodSeconds") or 0))
    return parse_time(meta.get("creationTimestamp")) or datetime.fromtimestamp(0, UTC)
