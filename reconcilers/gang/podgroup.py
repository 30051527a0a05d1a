"""The PodGroup of a job (reference section 3): its minMember, minResources and the spec of
each flavour.

Why computed here and compared by the controller: the reference re-built the PodGroup and PUT
it on every reconcile (its diff compared values of two types, never equal); kubetrain builds the
desired object as data, and the controller writes it only when it differs from the cached one
(``jobcontroller/extras.py``).

Rules, each the reference's unless said:
- name and namespace are the job's; annotations are copied from the job; the owner reference is
  the job's controller reference (the labels ``operator-name``/``job-name`` are added by the
  controller, as on every extra object, so its PodGroup informer can select them);
- ``minMember``: ``runPolicy.schedulingPolicy.minAvailable``, else the total of the replicas;
- ``minResources``: ``schedulingPolicy.minResources``, else computed: the replica types sorted
  by the value of their pod template's PriorityClass, highest first (kubetrain reads real values
  from its PriorityClass cache; the reference's lister was never started, so every value was 0;
  equal values keep the kind's canonical replica order, where the reference's order was random),
  then the first ``minMember`` pods in that order add their containers' requests (a container
  with no ``requests`` at all adds its ``limits``; init containers are not counted). An empty
  total is left out;
- Volcano: ``queue`` is the existing PodGroup's when set (a queue is fixed once the group is
  admitted), else ``schedulingPolicy.queue``, else ``default``; ``priorityClassName`` is
  ``schedulingPolicy.priorityClass``. The job's ``scheduling.volcano.sh/queue-name`` annotation
  and Kueue's ``kueue.x-k8s.io/queue-name`` label are not read (only mpi-operator v2beta1 reads
  the former; the reference's v1 jobs read neither);
- scheduler-plugins: ``scheduleTimeoutSeconds`` is ``schedulingPolicy.scheduleTimeoutSeconds``;
- empty fields are omitted, as Go's ``omitempty`` does.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common.decision import SpecError
from kubetrain.reconcilers.common.jobs import (
    name_of,
    namespace_of,
    replica_specs,
    replicas_of,
    run_policy,
)
from kubetrain.reconcilers.common.naming import owner_reference

from .flavour import GangScheduler
from .quantity import ResourceSum
from .view import GangView, PriorityLookup

__all__ = [
    "DEFAULT_QUEUE",
    "PODGROUP_KIND",
    "desired_podgroup",
    "min_member",
    "min_resources",
    "podgroup_reference",
    "scheduling_policy",
    "volcano_queue",
]

PODGROUP_KIND = "PodGroup"
DEFAULT_QUEUE = "default"
"""Volcano's queue when neither the PodGroup nor the job names one."""


def scheduling_policy(job: Obj, kind: JobKind) -> Obj:
    """``spec.runPolicy.schedulingPolicy`` ({} when absent or not an object)."""
    policy = run_policy(job, kind).get("schedulingPolicy")
    return policy if isinstance(policy, dict) else {}


def min_member(job: Obj, kind: JobKind) -> int:
    """``schedulingPolicy.minAvailable``, else the total of the replicas. ``job`` defaulted."""
    min_available = scheduling_policy(job, kind).get("minAvailable")
    if min_available is not None:
        return int(min_available)
    return sum(replicas_of(spec) for spec in replica_specs(job, kind).values())


def _priority_ordered_types(job: Obj, kind: JobKind, priority_value: PriorityLookup) -> list[str]:
    """Replica types by their template's PriorityClass value, highest first; equal values in
    the kind's canonical order, then the other types by name."""
    specs = replica_specs(job, kind)
    canonical = [t for t in kind.replica_types if t in specs]
    ordered = canonical + sorted(t for t in specs if t not in canonical)

    def priority(rtype: str) -> int:
        template_spec = (specs[rtype].get("template") or {}).get("spec") or {}
        class_name = template_spec.get("priorityClassName") or ""
        value = priority_value(class_name) if class_name else None
        return value if value is not None else 0

    return sorted(ordered, key=lambda rtype: -priority(rtype))  # stable: ties keep ``ordered``


def min_resources(
    job: Obj, kind: JobKind, *, members: int, priority_value: PriorityLookup
) -> dict[str, str]:
    """The computed ``minResources`` of the first ``members`` pods (see the module docstring).

    Raises ``SpecError`` naming the field of a request or limit that is not a quantity.
    """
    specs = replica_specs(job, kind)
    total = ResourceSum()
    counted = 0
    for rtype in _priority_ordered_types(job, kind, priority_value):
        containers = ((specs[rtype].get("template") or {}).get("spec") or {}).get("containers")
        for _ in range(replicas_of(specs[rtype])):
            if counted >= members:
                return total.as_resource_list()
            counted += 1
            for index, container in enumerate(containers or []):
                path = f"spec.{kind.replica_field}[{rtype}].template.spec.containers[{index}]"
                resources = container.get("resources") or {}
                requests = resources.get("requests")
                source, amounts = (
                    ("requests", requests)
                    if requests is not None
                    else ("limits", resources.get("limits"))
                )
                try:
                    total.add(amounts or {}, field_path=f"{path}.resources.{source}")
                except ValueError as err:
                    raise SpecError(f"{err}; fix the quantity (the PodGroup sums them)") from None
    return total.as_resource_list()


def volcano_queue(job: Obj, kind: JobKind, existing: Obj | None) -> str:
    """The existing PodGroup's ``spec.queue`` if set, else ``schedulingPolicy.queue``, else
    ``default``."""
    current = ((existing or {}).get("spec") or {}).get("queue")
    if current:
        return str(current)
    return str(scheduling_policy(job, kind).get("queue") or DEFAULT_QUEUE)


def desired_podgroup(gang: GangScheduler, job: Obj, kind: JobKind, view: GangView) -> Obj:
    """The PodGroup ``job`` should have under ``gang`` (``job`` defaulted). Raises SpecError
    (from ``min_resources``)."""
    policy = scheduling_policy(job, kind)
    members = min_member(job, kind)
    resources = policy.get("minResources")
    if resources is None:
        resources = min_resources(job, kind, members=members, priority_value=view.priority_value)
    spec: Obj = {}
    if members:
        spec["minMember"] = members
    if gang.volcano:
        spec["queue"] = volcano_queue(job, kind, view.podgroup)
        if policy.get("priorityClass"):
            spec["priorityClassName"] = policy["priorityClass"]
        if resources:
            spec["minResources"] = dict(resources)
    else:
        if resources:
            spec["minResources"] = dict(resources)
        if policy.get("scheduleTimeoutSeconds") is not None:
            spec["scheduleTimeoutSeconds"] = int(policy["scheduleTimeoutSeconds"])
    metadata: Obj = {"name": name_of(job), "namespace": namespace_of(job)}
    annotations = (job.get("metadata") or {}).get("annotations")
    if annotations:
        metadata["annotations"] = dict(annotations)
    metadata["ownerReferences"] = [owner_reference(kind, job)]
    return {
        "apiVersion": gang.podgroup_resource.api_version,
        "kind": PODGROUP_KIND,
        "metadata": metadata,
        "spec": spec,
    }


def podgroup_reference(gang: GangScheduler, job: Obj) -> tuple[str, str, str]:
    """(apiVersion, kind, name) of the job's PodGroup, as ``StatusDecision.delete_objects``."""
    return gang.podgroup_resource.api_version, PODGROUP_KIND, name_of(job)
