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
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.decision import WARNING, StatusWork
from kubetrain.reconcilers.common.jobs import format_time

from .flavour import GangScheduler

__all__ = [
    "PENDING_PHASE",
    "WAITING_REASON",
    "podgroup_phase",
    "pods_wait_for_podgroup",
    "show_podgroup_wait",
    "waiting_message",
]

PENDING_PHASE = "Pending"
WAITING_REASON = "WaitingForPodGroup"


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


def show_podgroup_wait(
    work: StatusWork, gang: GangScheduler, podgroup: Obj | None, *, waiting: bool
) -> None:
    """Set the Created condition's message for ``waiting`` (pods held back) or not, and emit
    the Warning event when the wait begins. The condition keeps its status, reason and
    transition time; only its message and update time change."""
    conditions = work.status.get("conditions") or []
    created = cond.get_condition(conditions, cond.CREATED)
    if created is None:
        return
    wanted = (
        waiting_message(work.kind.kind, work.name, gang.scheduler_name)
        if waiting
        else cond.created_message(work.kind.kind, work.name)
    )
    if created.get("message") == wanted:
        return
    if not waiting and created.get("message") != waiting_message(
        work.kind.kind, work.name, gang.scheduler_name
    ):
        return  # a message kubetrain did not write: leave it
    work.status["conditions"] = [
        {**c, "message": wanted, "lastUpdateTime": format_time(work.now)} if c is created else c
        for c in conditions
    ]
    if waiting:
        phase = podgroup_phase(podgroup)
        where = f"{work.namespace}/{work.name}"
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
