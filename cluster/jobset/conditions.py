"""JobSet's conditions (``updateCondition``/``setCondition``) and the one status write a
reconcile makes (``statusUpdateOpts``): a changed condition marks the status for writing and
queues an event with the condition's reason and message, recorded only once the write succeeds.

Rules kept from JobSet: a condition of the same type is replaced when its status changes
(``lastTransitionTime`` now) or rewritten keeping its time when only reason or message change;
a new condition is added only when True; StartupPolicyInProgress and StartupPolicyCompleted
exclude each other (the True one flips to False when the other is set True).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .constants import (
    ALL_JOBS_COMPLETED_MESSAGE,
    ALL_JOBS_COMPLETED_REASON,
    COMPLETED,
    FAILED,
    RESTARTING,
    RESTARTING_JOBSET_COMPLETED,
    RESTARTING_JOBSET_FAILED,
    RESTARTING_JOBSET_FAILED_MESSAGE,
    RESTARTING_JOBSET_SUSPENDED,
    RESUMED_MESSAGE,
    RESUMED_REASON,
    STARTUP_COMPLETED,
    STARTUP_IN_PROGRESS,
    SUSPENDED,
    SUSPENDED_MESSAGE,
    SUSPENDED_REASON,
)

__all__ = ["StatusUpdate", "finished", "set_condition"]

Obj = dict[str, Any]
_EXCLUSIVE = {STARTUP_IN_PROGRESS: STARTUP_COMPLETED, STARTUP_COMPLETED: STARTUP_IN_PROGRESS}


@dataclass(kw_only=True)
class StatusUpdate:
    """What one reconcile changed in the JobSet's status (it is edited in place)."""

    now: Callable[[], str]
    should_update: bool = False
    events: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, reason, message), recorded after the status write succeeds."""
    completed: bool = False
    failed: bool = False


def set_condition(
    js: Obj,
    update: StatusUpdate,
    ctype: str,
    status: str,
    reason: str,
    message: str,
    *,
    event_type: str = "Normal",
) -> None:
    conditions: list[Obj] = js.setdefault("status", {}).setdefault("conditions", []) or []
    js["status"]["conditions"] = conditions
    new: Obj = {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": update.now(),
    }
    changed = found = False
    for i, cur in enumerate(conditions):
        if cur.get("type") == ctype:
            found = True
            if cur.get("status") != status:
                conditions[i] = new
                changed = True
            elif cur.get("reason") != reason or cur.get("message") != message:
                new["lastTransitionTime"] = cur.get("lastTransitionTime")
                conditions[i] = new
                changed = True
        elif (
            _EXCLUSIVE.get(str(cur.get("type"))) == ctype
            and cur.get("status") == "True"
            and status == "True"
        ):
            cur["status"] = "False"
            changed = True
    if not found and status == "True":
        conditions.append(new)
        changed = True
    if changed:
        update.should_update = True
        update.events.append((event_type, reason, message))


def finished(js: Obj) -> bool:
    return any(
        c.get("type") in (COMPLETED, FAILED) and c.get("status") == "True"
        for c in (js.get("status") or {}).get("conditions") or ()
    )


def restarting_false(js: Obj, update: StatusUpdate, reason: str, message: str) -> None:
    set_condition(js, update, RESTARTING, "False", reason, message)


def set_completed(js: Obj, update: StatusUpdate) -> None:
    set_condition(
        js, update, COMPLETED, "True", ALL_JOBS_COMPLETED_REASON, ALL_JOBS_COMPLETED_MESSAGE
    )
    restarting_false(js, update, RESTARTING_JOBSET_COMPLETED, ALL_JOBS_COMPLETED_MESSAGE)
    js["status"]["terminalState"] = COMPLETED
    update.should_update = update.completed = True


def set_failed(js: Obj, update: StatusUpdate, reason: str, message: str) -> None:
    set_condition(js, update, FAILED, "True", reason, message, event_type="Warning")
    restarting_false(js, update, RESTARTING_JOBSET_FAILED, RESTARTING_JOBSET_FAILED_MESSAGE)
    js["status"]["terminalState"] = FAILED
    update.should_update = update.failed = True


def set_suspended(js: Obj, update: StatusUpdate) -> None:
    set_condition(js, update, SUSPENDED, "True", SUSPENDED_REASON, SUSPENDED_MESSAGE)
    restarting_false(js, update, RESTARTING_JOBSET_SUSPENDED, SUSPENDED_MESSAGE)


def set_resumed(js: Obj, update: StatusUpdate) -> None:
    set_condition(js, update, SUSPENDED, "False", RESUMED_REASON, RESUMED_MESSAGE)
