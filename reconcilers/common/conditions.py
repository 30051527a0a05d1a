"""Job conditions: the reference's update algorithm (2.4), reasons and messages (2.3).

Conditions are the job's public state: the printer column shows the *last* condition, the SDK
waits on ``Succeeded``/``Failed``, Kueue reads ``Suspended``. The algorithm is reproduced exactly,
including its ordering (a changed condition moves to the end of the list).

A condition is a dict ``{type, status, reason, message, lastUpdateTime, lastTransitionTime}``.
Functions here never mutate their inputs; they return new lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubetrain.reconcilers.common.jobs import format_time

Condition = dict[str, Any]

CREATED = "Created"
RUNNING = "Running"
RESTARTING = "Restarting"
SUCCEEDED = "Succeeded"
SUSPENDED = "Suspended"
FAILED = "Failed"
CONDITION_TYPES = (CREATED, RUNNING, RESTARTING, SUCCEEDED, SUSPENDED, FAILED)

TRUE = "True"
FALSE = "False"

# The reason suffixes of NewReason: the full reason is "<Kind><suffix>", e.g. "PyTorchJobRunning".
REASON_CREATED = "Created"
REASON_RUNNING = "Running"
REASON_RESTARTING = "Restarting"
REASON_SUCCEEDED = "Succeeded"
REASON_FAILED = "Failed"
REASON_SUSPENDED = "Suspended"
REASON_RESUMED = "Resumed"
REASON_FAILED_VALIDATION = "FailedValidation"


def reason(kind: str, suffix: str) -> str:
    """``<Kind><Reason>`` (``NewReason``). Never double-prefixed (fix of quirk 13)."""
    return f"{kind}{suffix}"


def created_message(kind: str, name: str) -> str:
    return f"{kind} {name} is created."


def suspended_message(kind: str, name: str) -> str:
    return f"{kind} {name} is suspended."


def resumed_message(kind: str, name: str) -> str:
    return f"{kind} {name} is resumed."


def backoff_message(name: str) -> str:
    return f"Job {name} has failed because it has reached the specified backoff limit"


def deadline_message(name: str) -> str:
    return f"Job {name} has failed because it was active longer than specified deadline"


def get_condition(conditions: list[Condition], ctype: str) -> Condition | None:
    for c in conditions:
        if c.get("type") == ctype:
            return c
    return None


def has_condition(status: dict[str, Any], ctype: str) -> bool:
    """True when ``status`` has a condition of ``ctype`` with status True."""
    c = get_condition(status.get("conditions") or [], ctype)
    return c is not None and c.get("status") == TRUE


def is_succeeded(status: dict[str, Any]) -> bool:
    return has_condition(status, SUCCEEDED)


def is_failed(status: dict[str, Any]) -> bool:
    return has_condition(status, FAILED)


def is_finished(status: dict[str, Any]) -> bool:
    return is_succeeded(status) or is_failed(status)


def is_suspended(status: dict[str, Any]) -> bool:
    return has_condition(status, SUSPENDED)


def is_running(status: dict[str, Any]) -> bool:
    return has_condition(status, RUNNING)


def set_condition(
    conditions: list[Condition],
    ctype: str,
    status: str,
    reason: str,
    message: str,
    *,
    now: datetime,
) -> list[Condition]:
    """The conditions after setting one (``UpdateJobConditions``); ``conditions`` is unchanged.

    1. A list holding ``Failed=True`` is frozen: returned as is.
    2. Same type, status and reason already present: returned as is (no time bump).
    3. Same type and status: the old ``lastTransitionTime`` is kept.
    4. The old condition of the type is removed and the new one appended at the end.
    5. ``Running`` removes ``Restarting`` and vice versa.
    6. ``Succeeded``/``Failed`` flip an existing ``Running`` to ``status=False`` (kept in place).
    Returns the same list object when nothing changed, so ``result is conditions`` tests change.
    """
    failed = get_condition(conditions, FAILED)
    if failed is not None and failed.get("status") == TRUE:
        return conditions
    current = get_condition(conditions, ctype)
    if current is not None and current.get("status") == status and current.get("reason") == reason:
        return conditions
    stamp = format_time(now)
    transition = stamp
    if current is not None and current.get("status") == status:
        transition = current.get("lastTransitionTime", stamp)
    new: Condition = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": transition,
    }
    out: list[Condition] = []
    for c in conditions:
        t = c.get("type")
        if t == ctype:
            continue
        if (ctype == RESTARTING and t == RUNNING) or (ctype == RUNNING and t == RESTARTING):
            continue
        if ctype in (FAILED, SUCCEEDED) and t == RUNNING:
            c = {**c, "status": FALSE}
        out.append(c)
    out.append(new)
    return out
