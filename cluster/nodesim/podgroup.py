"""PodGroups as the simulated scheduler reads them: which group a pod belongs to, what a group
asks for, and the status each flavour's scheduler would write. Pure functions, no I/O.

Two flavours (``kubetrain.cluster.podgroups`` serves both CRDs):

- Volcano (``scheduling.volcano.sh/v1beta1``): a pod of ``schedulerName: volcano`` belongs to the
  group its annotation ``scheduling.k8s.io/group-name`` names. A group is first *admitted*
  (Volcano's ``enqueue`` action: phase ``Pending`` -> ``Inqueue`` once the cluster has room for
  its ``minResources``), and only then are its pods bound, ``minMember`` of them at once. The
  phases follow Volcano's ``jobStatus``: ``Running`` once ``minMember`` pods are allocated
  (bound, running) or succeeded, ``Completed`` when all of those succeeded, else ``Inqueue`` when
  admitted, else ``Pending``. The simulator keeps an admitted group ``Inqueue`` when it falls
  below ``minMember`` (Volcano would pass through ``Pending`` again for a session), and a
  ``Completed`` group completed.
- scheduler-plugins (``scheduling.x-k8s.io/v1alpha1``, the coscheduling plugin): a pod of another
  gang scheduler name (``scheduler-plugins-scheduler``...) belongs to the group its label
  ``scheduling.x-k8s.io/pod-group`` names; while that group does not exist the pod waits (the
  plugin's Permit denies a pod whose PodGroup is not found). No admission; the phases follow the project's PodGroup
  controller: ``Pending`` -> ``Scheduling`` (``minMember`` pods exist) -> ``Running``
  (``minMember`` running or succeeded), ``Failed`` (some failed and ``minMember`` are done or
  running), ``Finished`` (``minMember`` succeeded); no pods at all: ``Pending``. The controller
  takes one step per reconcile; here the steps are taken at once (one write, not three).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .quantity import PODS, Resources, milli

__all__ = [
    "ALLOCATED_STATES",
    "PLUGINS",
    "PLUGINS_LABEL",
    "VOLCANO",
    "VOLCANO_ANNOTATION",
    "VOLCANO_SCHEDULER",
    "Counts",
    "Flavour",
    "GroupKey",
    "GroupSpec",
    "MemberState",
    "group_of",
    "member_state",
    "plugins_status",
    "volcano_status",
]

Flavour = Literal["volcano", "plugins"]
VOLCANO: Flavour = "volcano"
PLUGINS: Flavour = "plugins"
VOLCANO_SCHEDULER = "volcano"
VOLCANO_ANNOTATION = "scheduling.k8s.io/group-name"
PLUGINS_LABEL = "scheduling.x-k8s.io/pod-group"
_NOT_GANG = frozenset({"default-scheduler", VOLCANO_SCHEDULER})

GroupKey = tuple[Flavour, str, str]
"""(flavour, namespace, name)."""

MemberState = Literal["waiting", "binding", "bound", "running", "succeeded", "failed"]
ALLOCATED_STATES: frozenset[str] = frozenset({"binding", "bound", "running"})
"""Volcano's allocated task states: holding a node, not finished."""


def group_of(pod: Mapping[str, Any], flavours: frozenset[Flavour]) -> GroupKey | None:
    """The group ``pod`` belongs to, among the ``flavours`` the API server serves."""
    meta = pod["metadata"]
    scheduler = (pod.get("spec") or {}).get("schedulerName", "default-scheduler")
    ns = meta.get("namespace", "")
    if scheduler == VOLCANO_SCHEDULER:
        name = (meta.get("annotations") or {}).get(VOLCANO_ANNOTATION)
        if name and VOLCANO in flavours:
            return (VOLCANO, ns, str(name))
        return None
    if scheduler not in _NOT_GANG and PLUGINS in flavours:
        name = (meta.get("labels") or {}).get(PLUGINS_LABEL)
        if name:
            return (PLUGINS, ns, str(name))
    return None


def member_state(pod: Mapping[str, Any]) -> MemberState | None:
    """Where a member pod stands; None for one being deleted before it got a node."""
    phase = (pod.get("status") or {}).get("phase", "Pending")
    if phase == "Succeeded":
        return "succeeded"
    if phase == "Failed":
        return "failed"
    if (pod.get("spec") or {}).get("nodeName"):
        return "running" if phase == "Running" else "bound"
    if pod["metadata"].get("deletionTimestamp"):
        return None
    return "waiting"


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """What a PodGroup asks for. ``reservation``: what Volcano admits it against (its
    ``minResources``, with at least one ``pods`` per member); ``min_resources``: the
    ``minResources`` as written (None when absent: Volcano's queue capability does not apply);
    ``queue``: a Volcano group's queue (``default`` when unset), "" for scheduler-plugins;
    ``valid`` False when ``minResources`` does not parse (the group then waits, as Volcano cannot
    admit it)."""

    min_member: int
    reservation: Resources
    priority_class: str
    created: str
    valid: bool = True
    queue: str = ""
    min_resources: Resources | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any], *, volcano: bool = False) -> GroupSpec:
        """The spec of ``obj``; ``volcano``: a Volcano group (it has a queue)."""
        spec = obj.get("spec") or {}
        try:
            min_member = max(0, int(spec.get("minMember") or 0))
        except (TypeError, ValueError):
            min_member = 0
        reservation: Resources = {}
        valid = True
        raw = spec.get("minResources")
        try:
            for name, value in (raw if isinstance(raw, Mapping) else {}).items():
                reservation[str(name)] = milli(value, field=f"spec.minResources[{name}]")
        except ValueError:
            valid = False
        written = dict(reservation) if isinstance(raw, Mapping) and valid else None
        reservation[PODS] = max(reservation.get(PODS, 0), min_member * 1000)
        return cls(
            min_member=min_member,
            reservation={k: v for k, v in reservation.items() if v > 0},
            priority_class=str(spec.get("priorityClassName") or ""),
            created=str(obj["metadata"].get("creationTimestamp") or ""),
            valid=valid,
            queue=str(spec.get("queue") or "default") if volcano else "",
            min_resources=written,
        )


@dataclass(frozen=True, slots=True)
class Counts:
    """A group's members by state."""

    waiting: int = 0
    allocated: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def placed(self) -> int:
        """Members that count towards ``minMember``: allocated or succeeded."""
        return self.allocated + self.succeeded

    @property
    def total(self) -> int:
        return self.waiting + self.allocated + self.succeeded + self.failed

    @classmethod
    def of(cls, states: Mapping[str, int]) -> Counts:
        return cls(
            waiting=states.get("waiting", 0),
            allocated=sum(states.get(s, 0) for s in ALLOCATED_STATES),
            running=states.get("running", 0),
            succeeded=states.get("succeeded", 0),
            failed=states.get("failed", 0),
        )


def _counts_into(status: dict[str, Any], counts: Counts) -> None:
    # Go's omitempty: a zero count is absent
    for name, value in (
        ("running", counts.running),
        ("succeeded", counts.succeeded),
        ("failed", counts.failed),
    ):
        if value:
            status[name] = value
        else:
            status.pop(name, None)


def volcano_status(
    observed: Mapping[str, Any],
    spec: GroupSpec,
    counts: Counts,
    *,
    admitted: bool,
    reason: str,
    now: str,
    message: str = "",
) -> dict[str, Any]:
    """The status Volcano would show; ``reason`` why the group is not running yet
    (``NotEnoughResources``, ``NotEnoughTasks``, ``QueueNotFound``, ``QueueClosed``) or "" when
    nothing blocks it, ``message`` the condition's message when not the gang plugin's. Unchanged parts
    of ``observed`` (a condition's ``lastTransitionTime``) are kept, so the result equals
    ``observed`` when nothing changed."""
    status = {k: v for k, v in observed.items() if k not in ("phase", "conditions")}
    previous = str(observed.get("phase") or "")
    if previous == "Completed":
        phase = "Completed"
    elif counts.placed >= max(spec.min_member, 1) or (spec.min_member == 0 and counts.placed > 0):
        phase = "Completed" if counts.succeeded == counts.placed else "Running"
    elif admitted:
        phase = "Inqueue"
    else:
        phase = "Pending"
    status["phase"] = phase
    _counts_into(status, counts)
    if phase in ("Running", "Completed"):
        want = {
            "type": "Scheduled",
            "status": "True",
            "reason": "tasks in gang are ready to be scheduled",
            "message": "",
        }
    elif reason:
        blocked = "not enough resources" if reason == "NotEnoughResources" else "too few pods"
        want = {
            "type": "Unschedulable",
            "status": "True",
            "reason": reason,
            "message": message
            or f"pod group is not ready, {spec.min_member} minAvailable: {blocked}",
        }
    else:
        want = {}
    conditions: list[dict[str, Any]] = []
    if want:
        kept = next(
            (
                c
                for c in observed.get("conditions") or []
                if isinstance(c, Mapping) and all(c.get(k) == v for k, v in want.items())
            ),
            None,
        )
        conditions.append(dict(kept) if kept else {**want, "lastTransitionTime": now})
    elif observed.get("conditions"):
        conditions = [dict(c) for c in observed["conditions"] if isinstance(c, Mapping)]
    if conditions:
        status["conditions"] = conditions
    return status


def plugins_status(observed: Mapping[str, Any], spec: GroupSpec, counts: Counts) -> dict[str, Any]:
    """The status scheduler-plugins' PodGroup controller would reach (its steps at once)."""
    status = dict(observed)
    phase = str(observed.get("phase") or "")
    mm = spec.min_member
    for _ in range(4):  # "" -> Pending -> Scheduling -> Running/Failed/Finished
        if phase in ("Finished", "Failed"):
            break
        if phase == "":
            nxt = "Pending"
        elif phase == "Pending":
            nxt = "Scheduling" if counts.total >= mm and counts.total > 0 else "Pending"
        elif counts.total == 0:
            nxt = "Pending"
        else:
            nxt = phase
            if counts.running + counts.succeeded >= mm and nxt == "Scheduling":
                nxt = "Running"
            if counts.failed and counts.failed + counts.running + counts.succeeded >= mm:
                nxt = "Failed"
            if counts.succeeded >= mm:
                nxt = "Finished"
        if nxt == phase:
            break
        phase = nxt
    status["phase"] = phase
    _counts_into(status, counts)
    return status
