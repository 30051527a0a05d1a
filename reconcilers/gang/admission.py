"""Volcano's admission gate: no pod is created while the job's PodGroup waits (reference
section 3, "Delaying pods"), and the job says so.

Why: Volcano admits a PodGroup (phase ``Inqueue``, later ``Running``) once its queue can hold
the whole gang; pods created before that would only wait in the scheduler. scheduler-plugins
never delays: its scheduler holds the pods itself.

The reference wrote ``status.lastReconcileTime`` on every reconcile while waiting, and that write
woke the next reconcile (a loop of status writes). kubetrain's controller watches PodGroups
instead: the phase change enqueues the job. While it waits the job stays ``Created``; the
Created condition's message says what it waits for, and one Warning event
``WaitingForPodGroup`` names the PodGroup and its phase when the wait begins. The message goes
back to the usual one when pods are created.

Once pods exist, a gang scheduler (scheduler-plugins at once, Volcano after admission) may still
hold them: the whole gang does not fit. Until the job runs, the Created condition's message then
says how many pods wait and the scheduler's own reason (the first waiting pod's ``PodScheduled``
message, e.g. "pod group is not ready, 10 minAvailable"), and one Warning event
``PodsUnschedulable`` says so when that wait begins. Written only when the message changes: the
scheduler's reason is stable while nothing changes.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.decision import WARNING, StatusWork
from kubetrain.reconcilers.common.jobs import format_time

from .flavour import GangScheduler

__all__ = [
    "PENDING_PHASE",
    "UNSCHEDULABLE_REASON",
    "WAITING_REASON",
    "podgroup_phase",
    "pods_wait_for_podgroup",
    "show_podgroup_wait",
    "unschedulable_message",
    "waiting_message",
]

PENDING_PHASE = "Pending"
WAITING_REASON = "WaitingForPodGroup"
UNSCHEDULABLE_REASON = "PodsUnschedulable"
_UNSCHEDULABLE_MARK = " pods wait for "


def podgroup_phase(podgroup: Obj | None) -> str:
    """``status.phase`` of a PodGroup ("" when absent)."""
    return str(((podgroup or {}).get("status") or {}).get("phase") or "")


def pods_wait_for_podgroup(gang: GangScheduler, podgroup: Obj | None) -> bool:
    """True when pod creation must wait: Volcano, and the PodGroup is not cached yet or its
    phase is empty or ``Pending``."""
    return gang.volcano and podgroup_phase(podgroup) in ("", PENDING_PHASE)


def waiting_message(kind: str, job_name: str, scheduler_name: str) -> str:
    """The Created condition's message while pods wait (no phase in it: a phase change while
    waiting costs no status write)."""
    return (
        f"{cond.created_message(kind, job_name)} Pods are created once {scheduler_name} admits "
        f"PodGroup {job_name} (phase Inqueue or Running)."
    )


def unschedulable_message(
    kind: str, job_name: str, scheduler_name: str, waiting: int, total: int, reason: str
) -> str:
    """The Created condition's message while ``waiting`` of the job's ``total`` pods cannot be
    placed; ``reason`` is the scheduler's."""
    return (
        f"{cond.created_message(kind, job_name)} {waiting} of {total}{_UNSCHEDULABLE_MARK}"
        f"{scheduler_name} to place them: {reason}"
    )


def _unschedulable(pods: list[Obj]) -> tuple[int, str]:
    """(pods that wait unplaced with ``PodScheduled=False, Unschedulable``, the message of the
    first of them by name). Reads what ``common/compact.slim_pod`` keeps."""
    waiting: list[tuple[str, str]] = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue  # (no spec.nodeName in the cache: a bound pod has PodScheduled True)
        for c in (pod.get("status") or {}).get("conditions") or []:
            if (
                c.get("type") == "PodScheduled"
                and c.get("status") == "False"
                and c.get("reason") == "Unschedulable"
            ):
                waiting.append((str(pod["metadata"].get("name", "")), str(c.get("message") or "")))
                break
    if not waiting:
        return 0, ""
    return len(waiting), min(waiting)[1]


def show_podgroup_wait(
    work: StatusWork,
    gang: GangScheduler,
    podgroup: Obj | None,
    *,
    waiting: bool,
    pods: list[Obj] | None = None,
) -> None:
    """Set the Created condition's message for ``waiting`` (pods held back), for ``pods`` the
    scheduler cannot place (until the job runs), or for neither, and emit the Warning event when
    a wait begins. The condition keeps its status, reason and transition time; only its message
    and update time change."""
    conditions = work.status.get("conditions") or []
    created = cond.get_condition(conditions, cond.CREATED)
    if created is None:
        return
    kind, name = work.kind.kind, work.name
    held = waiting_message(kind, name, gang.scheduler_name)
    plain = cond.created_message(kind, name)
    unplaced, reason = (0, "") if waiting or pods is None else _unschedulable(pods)
    running = cond.get_condition(conditions, cond.RUNNING)
    if running is not None and running.get("status") == cond.TRUE:
        unplaced = 0
    if waiting:
        wanted = held
    elif unplaced:
        wanted = unschedulable_message(
            kind, name, gang.scheduler_name, unplaced, len(pods or ()), reason
        )
    else:
        wanted = plain
    current = str(created.get("message") or "")
    if current == wanted:
        return
    was_unplaced = current.startswith(plain) and _UNSCHEDULABLE_MARK in current
    if current not in (plain, held) and not was_unplaced:
        return  # a message kubetrain did not write: leave it
    work.status["conditions"] = [
        {**c, "message": wanted, "lastUpdateTime": format_time(work.now)} if c is created else c
        for c in conditions
    ]
    where = f"{work.namespace}/{name}"
    if waiting:
        phase = podgroup_phase(podgroup)
        state = (
            "is not created yet"
            if podgroup is None
            else (f"is in phase {phase}" if phase else "has no phase yet")
        )
        work.event(
            WARNING,
            WAITING_REASON,
            f"PodGroup {where} {state}; pods are created once {gang.scheduler_name} admits it",
        )
    elif unplaced and not was_unplaced:
        work.event(
            WARNING,
            UNSCHEDULABLE_REASON,
            f"{unplaced} pods of {where} cannot be placed by {gang.scheduler_name}: {reason}",
        )
