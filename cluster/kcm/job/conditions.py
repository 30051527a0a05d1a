"""Job conditions as kube writes them (``newCondition``, ``ensureJobConditionStatus``).

Order of the terminal ones (kube >= 1.31, JobManagedBy/JobPodReplacementPolicy on): first the
interim ``SuccessCriteriaMet`` or ``FailureTarget`` (pods may still be running or terminating),
then, once every pod is gone and counted, ``Complete`` or ``Failed`` with the same reason and
message. A Job with ``Complete`` or ``Failed`` True is finished and never synced again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .constants import COMPLETE, FAILED, SUCCESS_CRITERIA_MET

__all__ = [
    "ensure_condition",
    "find_condition",
    "is_finished",
    "is_success_criteria_met",
    "is_true",
    "new_condition",
    "rfc3339",
]


def rfc3339(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def new_condition(
    ctype: str, status: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    stamp = rfc3339(now)
    cond: dict[str, Any] = {
        "type": ctype,
        "status": status,
        "lastProbeTime": stamp,
        "lastTransitionTime": stamp,
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def find_condition(status: Mapping[str, Any], ctype: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or ():
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def is_true(status: Mapping[str, Any], ctype: str) -> bool:
    cond = find_condition(status, ctype)
    return cond is not None and cond.get("status") == "True"


def is_finished(job: Mapping[str, Any]) -> bool:
    status = job.get("status") or {}
    return is_true(status, COMPLETE) or is_true(status, FAILED)


def is_success_criteria_met(cond: Mapping[str, Any] | None) -> bool:
    return (
        cond is not None
        and cond.get("type") == SUCCESS_CRITERIA_MET
        and cond.get("status") == "True"
    )


def ensure_condition(
    status: dict[str, Any], ctype: str, value: str, reason: str, message: str, now: datetime
) -> bool:
    """Set condition ``ctype`` to ``value``/``reason``/``message`` in place; a False one that
    does not exist is not added. True when the list changed."""
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    for i, cond in enumerate(conditions):
        if cond.get("type") == ctype:
            if (
                cond.get("status") != value
                or cond.get("reason", "") != reason
                or cond.get("message", "") != message
            ):
                conditions[i] = new_condition(ctype, value, reason, message, now)
                return True
            return False
    if value != "False":
        conditions.append(new_condition(ctype, value, reason, message, now))
        return True
    if not conditions:
        status.pop("conditions", None)
    return False
