"""Gang scheduling of a ``kubeflow.org/v2beta1`` MPIJob, as mpi-operator v0.8.2 does it.

Why a port and not ``reconcilers/gang/``: kubetrain's v1 gang code follows the training-operator
(minMember is the total of the replicas, ``limits`` count only when a container has no
``requests``, the queue defaults to ``default``, annotations are copied). mpi-operator's
``pkg/controller/podgroup.go`` differs on each point, and users move MPIJobs between the two
operators, so this module reproduces its ``newPodGroup``, ``calculatePGMinResources`` /
``calPGMinResource`` / ``addResources``, ``calculateMinAvailable``,
``calculatePriorityClassName``, ``pgSpecsAreEqual`` and ``decoratePodTemplateSpec`` for both
controllers (``VolcanoCtrl`` and ``SchedulerPluginsCtrl``). It reuses kubetrain's
``GangScheduler`` (which flavour), its PodGroup resource refs and its exact quantity arithmetic.

Everything is pure: objects are plain dicts, arguments are never mutated, and PriorityClass
values come from a lookup function instead of a lister. The reconciler decides when to create,
update or delete the PodGroup (Go's ``getOrCreatePodGroups``: create if missing, refuse one not
controlled by the job, update when ``pod_group_needs_update``).

Where Go's behaviour depends on chance or crashes, kubetrain picks one outcome:

- Go orders the replica types by PriorityClass value after iterating a map, so equal values
  come in random order; here they keep ``Launcher``, ``Worker``, then other types by name. The
  order only decides the printed format of a sum mixing binary and decimal suffixes.
- Go panics (nil dereference or index out of range) on a replica without ``replicas`` or a job
  whose single replica type outnumbers ``minMember``; here a missing count is 0 and a single type
  is capped at ``minMember``.
- Go logs a warning when it overwrites a template's ``schedulerName`` (even an empty one);
  ``overwritten_scheduler_name`` tells the caller when a named scheduler is replaced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.informers.resource import PODGROUPS_SCHEDULER_PLUGINS, PODGROUPS_VOLCANO
from kubetrain.reconcilers.common.decision import SpecError
from kubetrain.reconcilers.gang.decorate import (
    SCHEDULER_PLUGINS_POD_GROUP_LABEL,
    VOLCANO_GROUP_NAME_ANNOTATION,
)
from kubetrain.reconcilers.gang.flavour import GangScheduler
from kubetrain.reconcilers.gang.podgroup import PODGROUP_KIND
from kubetrain.reconcilers.gang.quantity import ResourceSum, format_quantity, parse_quantity
from kubetrain.reconcilers.gang.view import PriorityLookup

from .objects import (
    LAUNCHER_REPLICA_TYPE,
    WORKER_REPLICA_TYPE,
    owner_reference,
    replica_spec,
    worker_replicas,
)

__all__ = [
    "SCHEDULER_PLUGINS_POD_GROUP_LABEL",
    "VOLCANO_GROUP_NAME_ANNOTATION",
    "VOLCANO_QUEUE_NAME_ANNOTATION",
    "decorate_pod_template",
    "min_member",
    "min_resources",
    "new_pod_group",
    "overwritten_scheduler_name",
    "pod_group_needs_update",
    "priority_class_name",
    "scheduling_policy",
    "volcano_queue",
    "with_pod_group_spec",
]

VOLCANO_QUEUE_NAME_ANNOTATION = "scheduling.volcano.sh/queue-name"
"""``volcanov1beta1.QueueNameAnnotationKey``: the job annotation naming a Volcano queue."""

_CANONICAL_TYPES = (LAUNCHER_REPLICA_TYPE, WORKER_REPLICA_TYPE)

_POINTER_FIELDS: dict[str, frozenset[str]] = {
    PODGROUPS_VOLCANO.api_version: frozenset({"minResources", "networkTopology"}),
    PODGROUPS_SCHEDULER_PLUGINS.api_version: frozenset({"scheduleTimeoutSeconds"}),
}
"""Spec fields Go holds as pointers: there an absent field and a present zero value differ."""


# -- reading the MPIJob --------------------------------------------------------------------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def scheduling_policy(job: Obj) -> Mapping[str, Any]:
    """``spec.runPolicy.schedulingPolicy`` ({} when absent)."""
    run_policy = _mapping(_mapping(job.get("spec")).get("runPolicy"))
    return _mapping(run_policy.get("schedulingPolicy"))


def _replica_specs(job: Obj) -> dict[str, Mapping[str, Any]]:
    """``spec.mpiReplicaSpecs`` in kubetrain's fixed order: Launcher, Worker, others by name."""
    specs = _mapping(_mapping(job.get("spec")).get("mpiReplicaSpecs"))
    names = [t for t in _CANONICAL_TYPES if t in specs]
    names += sorted(t for t in specs if t not in _CANONICAL_TYPES)
    return {name: _mapping(specs[name]) for name in names if isinstance(specs[name], dict)}


def _template_spec(rspec: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _mapping(_mapping((rspec or {}).get("template")).get("spec"))


def min_member(job: Obj) -> int:
    """Go's ``calculateMinAvailable``: ``schedulingPolicy.minAvailable``, else the number of
    workers plus one (the launcher)."""
    min_available = scheduling_policy(job).get("minAvailable")
    if min_available is not None:
        return int(min_available)
    return worker_replicas(job) + 1


def priority_class_name(job: Obj) -> str:
    """Go's ``calculatePriorityClassName``: ``schedulingPolicy.priorityClass``, else the
    launcher template's ``priorityClassName``, else the worker template's, else ''."""
    policy_class = scheduling_policy(job).get("priorityClass")
    if policy_class:
        return str(policy_class)
    for rtype in _CANONICAL_TYPES:
        name = _template_spec(replica_spec(job, rtype)).get("priorityClassName")
        if name:
            return str(name)
    return ""


def volcano_queue(job: Obj) -> str:
    """The Volcano queue: ``schedulingPolicy.queue``, else the job's
    ``scheduling.volcano.sh/queue-name`` annotation, else '' (Volcano then uses its default)."""
    queue = scheduling_policy(job).get("queue")
    if queue:
        return str(queue)
    annotations = _mapping(_mapping(job.get("metadata")).get("annotations"))
    return str(annotations.get(VOLCANO_QUEUE_NAME_ANNOTATION) or "")


# -- minResources --------------------------------------------------------------------------------


def _canonical_resource_list(resources: Mapping[str, Any]) -> dict[str, Any]:
    """A ResourceList as Go writes it back: each quantity in canonical form (a value that does
    not parse is kept as given; the API server validated it)."""
    out: dict[str, Any] = {}
    for name, raw in resources.items():
        try:
            amount, binary = parse_quantity(raw, field_path=name)
        except ValueError:
            out[name] = copy.deepcopy(raw)
        else:
            out[name] = format_quantity(amount, binary=binary)
    return out


def _add_resources(
    total: ResourceSum, resources: Mapping[str, Any], replicas: int, *, field_path: str
) -> None:
    """Go's ``addResources``: a container's ``requests``, and its ``limits`` for the resources it
    does not request, times ``replicas``, added to ``total`` (a name appears even at 0)."""
    merged = dict(_mapping(resources.get("requests")))
    for name, limit in _mapping(resources.get("limits")).items():
        merged.setdefault(name, limit)
    for name, raw in merged.items():
        source = "requests" if name in _mapping(resources.get("requests")) else "limits"
        try:
            amount, binary = parse_quantity(raw, field_path=f"{field_path}.{source}[{name}]")
        except ValueError as err:
            raise SpecError(f"{err}; fix the quantity (the PodGroup sums them)") from None
        total.amounts[name] = total.amounts.get(name, Decimal(0)) + amount * replicas
        total.binary.setdefault(name, binary)


def _priority_order(
    job: Obj, priority_classes: PriorityLookup
) -> list[tuple[int, str, Mapping[str, Any]]]:
    """(priority, replica type, replica spec), highest PriorityClass value first; a class that
    is not named or does not exist counts as 0; ties keep ``_replica_specs``' order."""
    order: list[tuple[int, str, Mapping[str, Any]]] = []
    for rtype, rspec in _replica_specs(job).items():
        class_name = _template_spec(rspec).get("priorityClassName") or ""
        value = priority_classes(str(class_name)) if class_name else None
        order.append((int(value) if value is not None else 0, rtype, rspec))
    return sorted(order, key=lambda entry: -entry[0])  # stable


def _replicas(rspec: Mapping[str, Any]) -> int | None:
    count = rspec.get("replicas")
    return None if count is None else int(count)


def _calculated_min_resources(
    job: Obj, members: int | None, priority_classes: PriorityLookup
) -> dict[str, str] | None:
    """Go's ``calPGMinResource``."""
    order = _priority_order(job, priority_classes)
    if not order:
        return {}
    counts = [_replicas(rspec) for _, _, rspec in order]
    replicas = sum(count or 0 for count in counts[:2])
    if members is not None and replicas > members:
        if len(order) == 1:
            counts[0] = members
        elif order[0][0] == order[1][0]:
            # Equal priorities: the workers are the ones left out.
            worker = next((i for i, e in enumerate(order) if e[1] == WORKER_REPLICA_TYPE), None)
            if worker is None:
                return None
            counts[worker] = members - 1
        else:
            counts[1] = members - 1
    total = ResourceSum()
    for (_, rtype, rspec), count in zip(order, counts, strict=True):
        if count is None:
            continue
        for index, container in enumerate(_template_spec(rspec).get("containers") or []):
            resources = _mapping(_mapping(container).get("resources"))
            if resources:
                path = f"spec.mpiReplicaSpecs[{rtype}].template.spec.containers[{index}].resources"
                _add_resources(total, resources, count, field_path=path)
    return total.as_resource_list()


def min_resources(
    job: Obj, members: int | None, *, priority_classes: PriorityLookup
) -> dict[str, Any] | None:
    """Go's ``calculatePGMinResources`` (the same for both flavours).

    ``schedulingPolicy.minResources`` when given (even empty); None when ``members`` is 0;
    otherwise the sum of the container resources of the replicas, where, if the launcher and
    workers outnumber ``members``, the lower-priority replica type of the two highest is cut to
    ``members - 1`` pods (the workers when both have the same PriorityClass value; a job without
    workers then gets None). ``priority_classes(name)`` is a PriorityClass's value, None when
    the class does not exist (then it counts as 0).

    Raises ``SpecError`` naming a request or limit that is not a quantity.
    """
    given = scheduling_policy(job).get("minResources")
    if isinstance(given, dict):
        return _canonical_resource_list(given)
    if members == 0:
        return None
    return _calculated_min_resources(job, members, priority_classes)


# -- the PodGroup --------------------------------------------------------------------------------


def new_pod_group(job: Obj, gang: GangScheduler, *, priority_classes: PriorityLookup) -> Obj:
    """The PodGroup mpi-operator's ``newPodGroup`` makes for ``job`` (defaulted) under ``gang``.

    Both flavours: named and namespaced like the job, controlled by it (``kubeflow.org/v2beta1``),
    ``minMember`` from ``min_member``. Volcano (``scheduling.volcano.sh/v1beta1``) adds ``queue``,
    ``priorityClassName`` and ``minResources`` (present even when empty, as Go's pointer is);
    scheduler-plugins (``scheduling.x-k8s.io/v1alpha1``) adds ``scheduleTimeoutSeconds``
    (``schedulingPolicy.scheduleTimeoutSeconds``, else 0) and a non-empty ``minResources``, and
    ignores ``schedulingPolicy.queue`` and ``priorityClass``. Zero values Go omits are absent.

    Raises ``SpecError`` (from ``min_resources``).
    """
    members = min_member(job)
    resources = min_resources(job, members, priority_classes=priority_classes)
    spec: dict[str, Any] = {}
    if members:
        spec["minMember"] = members
    if gang.volcano:
        queue = volcano_queue(job)
        if queue:
            spec["queue"] = queue
        class_name = priority_class_name(job)
        if class_name:
            spec["priorityClassName"] = class_name
        if resources is not None:
            spec["minResources"] = resources
    else:
        if resources:
            spec["minResources"] = resources
        timeout = scheduling_policy(job).get("scheduleTimeoutSeconds")
        spec["scheduleTimeoutSeconds"] = 0 if timeout is None else int(timeout)
    meta = _mapping(job.get("metadata"))
    return {
        "apiVersion": gang.podgroup_resource.api_version,
        "kind": PODGROUP_KIND,
        "metadata": {
            "name": str(meta.get("name") or ""),
            "namespace": str(meta.get("namespace") or ""),
            "ownerReferences": [owner_reference(job)],
        },
        "spec": spec,
    }


def _is_zero(value: object) -> bool:
    return value is None or value is False or value == 0 or value == "" or value in ({}, [])


def _quantities_equal(a: object, b: object) -> bool:
    try:
        return parse_quantity(a, field_path="a")[0] == parse_quantity(b, field_path="b")[0]
    except ValueError:
        return a == b


def _resource_lists_equal(a: object, b: object) -> bool:
    if not isinstance(a, dict) or not isinstance(b, dict):
        return a == b
    return a.keys() == b.keys() and all(_quantities_equal(a[k], b[k]) for k in a)


def pod_group_needs_update(current: Obj, desired: Obj) -> bool:
    """The negation of Go's ``pgSpecsAreEqual``: True when the specs differ under
    ``equality.Semantic.DeepEqual``.

    Quantities compare by value (``1Gi`` equals ``1024Mi``); a field Go holds as a plain value is
    equal absent and at its zero value (``queue: ""``, ``minMember: 0``); a field Go holds as a
    pointer (Volcano's ``minResources`` and ``networkTopology``, scheduler-plugins'
    ``scheduleTimeoutSeconds``) differs absent and present. The flavour is read from
    ``desired``'s apiVersion. Every spec field counts: Go's structs (volcano.sh/apis v1.14,
    scheduler-plugins v0.34) know all the fields those CRDs serve.
    """
    have = _mapping(current.get("spec"))
    want = _mapping(desired.get("spec"))
    pointers = _POINTER_FIELDS.get(str(desired.get("apiVersion") or ""), frozenset())
    for name in have.keys() | want.keys():
        a, b = have.get(name), want.get(name)
        if name in pointers:
            if (a is None) != (b is None):
                return True
        elif _is_zero(a) and _is_zero(b):
            continue
        if name == "minResources":
            if not _resource_lists_equal(a, b):
                return True
        elif a != b:
            return True
    return False


def with_pod_group_spec(current: Obj, desired: Obj) -> Obj:
    """A copy of ``current`` (metadata, resourceVersion, status kept) whose spec is
    ``desired``'s, whole, as Go's ``updatePodGroup`` sets ``oldPG.Spec = newPG.Spec``."""
    out = copy.deepcopy(current)
    out["spec"] = copy.deepcopy(dict(_mapping(desired.get("spec"))))
    return out


# -- the pods ------------------------------------------------------------------------------------


def overwritten_scheduler_name(template: Obj, gang: GangScheduler) -> str | None:
    """The ``schedulerName`` that ``decorate_pod_template`` replaces, when the template names
    one other than ``gang``'s (Go logs a warning then); None otherwise."""
    named = _mapping(template.get("spec")).get("schedulerName")
    return str(named) if named and named != gang.scheduler_name else None


def decorate_pod_template(template: Obj, job_name: str, gang: GangScheduler) -> Obj:
    """Go's ``decoratePodTemplateSpec``, on a copy of ``template``: ``spec.schedulerName`` is
    ``gang``'s (overwriting any other), and the pod names its group ``job_name`` by the
    annotation ``scheduling.k8s.io/group-name`` (Volcano) or the label
    ``scheduling.x-k8s.io/pod-group`` (scheduler-plugins)."""
    out = copy.deepcopy(template)
    spec = out.get("spec")
    if not isinstance(spec, dict):
        spec = out["spec"] = {}
    spec["schedulerName"] = gang.scheduler_name
    meta = out.get("metadata")
    if not isinstance(meta, dict):
        meta = out["metadata"] = {}
    field, group_key = (
        ("annotations", VOLCANO_GROUP_NAME_ANNOTATION)
        if gang.volcano
        else ("labels", SCHEDULER_PLUGINS_POD_GROUP_LABEL)
    )
    entries = meta.get(field)
    if not isinstance(entries, dict):
        entries = meta[field] = {}
    entries[group_key] = job_name
    return out
