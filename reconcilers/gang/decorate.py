"""How a pod joins its job's gang (the reference's ``DecoratePodTemplateSpec``).

The scheduler finds a pod's group from the pod itself, so every pod of a gang-scheduled job
carries it: ``schedulerName`` (set only when the template names none: a template that names
another scheduler keeps it, with a Warning event ``SetPodTemplateSchedulerName``, since that
pod will not be gang-scheduled), and Volcano's annotations ``scheduling.k8s.io/group-name`` and
``volcano.sh/task-spec`` (the lower-case replica type), or scheduler-plugins' label
``scheduling.x-k8s.io/pod-group``.

The reference warns on every pod creation when *any* replica template names another scheduler;
kubetrain warns for the pods whose own template does, and names the replica type and the
scheduler, so the event points at the template to fix.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.decision import WARNING, Event

from .flavour import GangScheduler

__all__ = [
    "OTHER_SCHEDULER_REASON",
    "SCHEDULER_PLUGINS_POD_GROUP_LABEL",
    "VOLCANO_GROUP_NAME_ANNOTATION",
    "VOLCANO_TASK_SPEC_ANNOTATION",
    "decorate_pod_for_gang",
]

VOLCANO_GROUP_NAME_ANNOTATION = "scheduling.k8s.io/group-name"
VOLCANO_TASK_SPEC_ANNOTATION = "volcano.sh/task-spec"
SCHEDULER_PLUGINS_POD_GROUP_LABEL = "scheduling.x-k8s.io/pod-group"
OTHER_SCHEDULER_REASON = "SetPodTemplateSchedulerName"


def decorate_pod_for_gang(
    gang: GangScheduler, pod: Obj, *, job_name: str, rtype: str
) -> list[Event]:
    """Put ``pod`` (a freshly built pod body, mutated in place) in ``job_name``'s gang; the
    events it emits (the Warning when its template names another scheduler)."""
    events: list[Event] = []
    spec = pod.setdefault("spec", {})
    named = spec.get("schedulerName")
    if not named:
        spec["schedulerName"] = gang.scheduler_name
    elif named != gang.scheduler_name:
        events.append(
            Event(
                WARNING,
                OTHER_SCHEDULER_REASON,
                "Another scheduler is specified when gang-scheduling is enabled and it will not "
                f"be overwritten: replica type {rtype} names schedulerName {named!r}, not "
                f"{gang.scheduler_name!r}",
            )
        )
    meta = pod.setdefault("metadata", {})
    if gang.volcano:
        annotations = dict(meta.get("annotations") or {})
        annotations[VOLCANO_TASK_SPEC_ANNOTATION] = rtype.lower()
        annotations[VOLCANO_GROUP_NAME_ANNOTATION] = job_name
        meta["annotations"] = annotations
    else:
        labels = dict(meta.get("labels") or {})
        labels[SCHEDULER_PLUGINS_POD_GROUP_LABEL] = job_name
        meta["labels"] = labels
    return events
