"""Trainer v2.3.0's gang plugins: the PodGroup beside the JobSet of a runtime with a
``podGroupPolicy`` (``plugins/coscheduling/coscheduling.go``, ``plugins/volcano/volcano.go``).

Why a side object: a gang scheduler binds a group's pods all or nothing only once it can read
the group (its size and what it needs). For TrainJobs the runtime decides the flavour
(``podGroupPolicy.coscheduling`` or ``.volcano``), not the operator's ``--gang-scheduler-name``
flag the v1 jobs use; the pods join the group through the label or annotation
``jobset_build._enforce_pod_group_policy`` puts on them, and pick the scheduler through the
runtime's own ``schedulerName``.

Both flavours (one PodGroup named after the TrainJob, in its namespace, controlled by it):

- ``minMember`` = the sum of every replicatedJob's pod count (``parallelism`` after the build,
  so the trainer's ``numNodes``) *including the initializers*, as Go counts every PodSet;
- ``minResources`` = the sum over jobs of one pod's requests x its count. One pod's requests
  are Kubernetes' ``resourcehelpers.PodRequests``: the containers' ``requests`` summed, raised to
  the largest init container (restartable sidecars add up), plus ``overhead``; pod-level
  ``resources.requests`` (cpu, memory, hugepages) replace the containers' total. Limits are
  not read: a runtime that sets only ``limits`` (the TorchTune runtimes' ``nvidia.com/gpu: 2``)
  asks for nothing there, exactly as Go computes it from the undefaulted template;
- coscheduling (``scheduling.x-k8s.io/v1alpha1``): ``scheduleTimeoutSeconds`` from the policy
  (the CRD defaults it to 60; 60 here too when absent);
- volcano (``scheduling.volcano.sh/v1beta1``): ``queue`` from the JobSet's annotation
  ``scheduling.volcano.sh/queue-name`` (the runtime template's, or a runtimePatch's) only when
  present; ``priorityClassName`` from the pod templates (the last replicatedJob that sets one,
  as Go's loop leaves it); ``networkTopology{mode, highestTierAllowed}`` from the policy
  (``highestTierAllowed`` defaults to 1 as the CRD does).

Applied (server-side, field manager ``trainer``) whenever the reconciler applies the JobSet: at
creation and while suspended. Go's condition is "the PodGroup is absent or the TrainJob is
suspended"; the two differ only when a PodGroup is deleted under a running TrainJob, which Go
re-creates and this does not (its scheduler has placed the pods by then).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.informers.resource import PODGROUPS_SCHEDULER_PLUGINS, PODGROUPS_VOLCANO
from kubetrain.reconcilers.gang.quantity import ResourceSum, parse_quantity
from kubetrain.reconcilers.trainer.jobset_build import BuildError

from ..side_objects import SideObjects, side_object_metadata

__all__ = [
    "DEFAULT_SCHEDULE_TIMEOUT_SECONDS",
    "VOLCANO_QUEUE_ANNOTATION",
    "build_podgroups",
    "pod_requests",
]

PODGROUP_KIND = "PodGroup"
#: ``volcanov1beta1.QueueNameAnnotationKey``.
VOLCANO_QUEUE_ANNOTATION = "scheduling.volcano.sh/queue-name"
#: The runtime CRD's default of ``coscheduling.scheduleTimeoutSeconds``.
DEFAULT_SCHEDULE_TIMEOUT_SECONDS = 60
#: The runtime CRD's default of ``volcano.networkTopology.highestTierAllowed``.
DEFAULT_HIGHEST_TIER_ALLOWED = 1
#: Pod-level requests Kubernetes honours (``IsSupportedPodLevelResource``).
_POD_LEVEL = ("cpu", "memory")


def build_podgroups(trainjob: Obj, runtime_spec: Obj, jobset: Obj) -> SideObjects:
    """The ``SideObjectBuilder``: the PodGroup of each flavour the runtime's
    ``podGroupPolicy`` names (none without one). Raises ``BuildError`` for a request that is
    not a quantity."""
    policy = runtime_spec.get("podGroupPolicy") or {}
    coscheduling = policy.get("coscheduling")
    volcano = policy.get("volcano")
    if coscheduling is None and volcano is None:
        return SideObjects()
    members, resources = _members_and_resources(jobset)
    name = str((trainjob.get("metadata") or {}).get("name", ""))
    built = SideObjects()
    if coscheduling is not None:
        timeout = coscheduling.get("scheduleTimeoutSeconds")
        built.applied.append(
            {
                "apiVersion": PODGROUPS_SCHEDULER_PLUGINS.api_version,
                "kind": PODGROUP_KIND,
                "metadata": side_object_metadata(trainjob, name),
                "spec": {
                    "minMember": members,
                    "minResources": dict(resources),
                    "scheduleTimeoutSeconds": int(
                        DEFAULT_SCHEDULE_TIMEOUT_SECONDS if timeout is None else timeout
                    ),
                },
            }
        )
    if volcano is not None:
        built.applied.append(
            {
                "apiVersion": PODGROUPS_VOLCANO.api_version,
                "kind": PODGROUP_KIND,
                "metadata": side_object_metadata(trainjob, name),
                "spec": _volcano_spec(volcano, jobset, members, resources),
            }
        )
    return built


def _volcano_spec(
    volcano: Mapping[str, Any], jobset: Obj, members: int, resources: dict[str, str]
) -> Obj:
    spec: Obj = {"minMember": members, "minResources": dict(resources)}
    annotations = (jobset.get("metadata") or {}).get("annotations") or {}
    if VOLCANO_QUEUE_ANNOTATION in annotations:
        spec["queue"] = annotations[VOLCANO_QUEUE_ANNOTATION]
    for rjob in _replicated_jobs(jobset):
        priority_class = _pod_spec(rjob).get("priorityClassName")
        if priority_class is not None:
            spec["priorityClassName"] = priority_class
    topology = volcano.get("networkTopology")
    if topology is not None:
        tier = topology.get("highestTierAllowed")
        spec["networkTopology"] = {
            "mode": topology.get("mode", ""),
            "highestTierAllowed": int(DEFAULT_HIGHEST_TIER_ALLOWED if tier is None else tier),
        }
    return spec


def _members_and_resources(jobset: Obj) -> tuple[int, dict[str, str]]:
    """``Σ count`` and ``Σ requests x count`` over the JobSet's replicatedJobs."""
    members = 0
    total = ResourceSum()
    for index, rjob in enumerate(_replicated_jobs(jobset)):
        parallelism = ((rjob.get("template") or {}).get("spec") or {}).get("parallelism")
        count = 1 if parallelism is None else int(parallelism)
        members += count
        path = f"spec.replicatedJobs[{index}].template.spec.template.spec"
        for name, (amount, binary) in pod_requests(_pod_spec(rjob), field_path=path).items():
            total.amounts[name] = total.amounts.get(name, Decimal(0)) + amount * count
            total.binary.setdefault(name, binary)
    return members, total.as_resource_list()


def pod_requests(
    pod_spec: Mapping[str, Any], *, field_path: str
) -> dict[str, tuple[Decimal, bool]]:
    """One pod's requests (``resourcehelpers.PodRequests`` with default options), each as
    ``(amount, binary)``; see the module docstring. ``BuildError`` names a bad quantity."""
    reqs = _Requests()
    for i, container in enumerate(pod_spec.get("containers") or []):
        reqs.add(_container_requests(container), f"{field_path}.containers[{i}]")
    init_max = _Requests()
    sidecars = _Requests()
    for i, container in enumerate(pod_spec.get("initContainers") or []):
        where = f"{field_path}.initContainers[{i}]"
        own = _container_requests(container)
        if container.get("restartPolicy") == "Always":
            reqs.add(own, where)
            sidecars.add(own, where)
            init_max.maximize(sidecars)
        else:
            step = _Requests()
            step.add(own, where)
            step.merge(sidecars)
            init_max.maximize(step)
    reqs.maximize(init_max)
    reqs.add(pod_spec.get("overhead") or {}, f"{field_path}.overhead")
    pod_level = (pod_spec.get("resources") or {}).get("requests") or {}
    for name, raw in pod_level.items():
        if name in _POD_LEVEL or str(name).startswith("hugepages-"):
            reqs.values[name] = _parse(raw, f"{field_path}.resources.requests[{name}]")
    return dict(reqs.values)


class _Requests:
    """A ResourceList under construction: name -> (amount, binary format)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[Decimal, bool]] = {}

    def add(self, resources: Mapping[str, Any], where: str) -> None:
        for name, raw in resources.items():
            amount, binary = _parse(raw, f"{where}[{name}]")
            self._add_one(name, amount, binary)

    def merge(self, other: _Requests) -> None:
        for name, (amount, binary) in other.values.items():
            self._add_one(name, amount, binary)

    def _add_one(self, name: str, amount: Decimal, binary: bool) -> None:
        current = self.values.get(name)
        self.values[name] = (
            (amount, binary) if current is None else (current[0] + amount, current[1])
        )

    def maximize(self, other: _Requests) -> None:
        """``maxResourceList``: each resource becomes the larger of the two."""
        for name, (amount, binary) in other.values.items():
            current = self.values.get(name)
            if current is None or amount > current[0]:
                self.values[name] = (amount, binary)


def _container_requests(container: Mapping[str, Any]) -> Mapping[str, Any]:
    requests = (container.get("resources") or {}).get("requests")
    return requests if isinstance(requests, Mapping) else {}


def _parse(raw: Any, field_path: str) -> tuple[Decimal, bool]:
    try:
        return parse_quantity(raw, field_path=field_path)
    except ValueError as err:
        raise BuildError(f"{err}; the PodGroup sums the pods' requests") from None


def _replicated_jobs(jobset: Obj) -> list[Obj]:
    jobs = (jobset.get("spec") or {}).get("replicatedJobs")
    return [job for job in jobs if isinstance(job, dict)] if isinstance(jobs, list) else []


def _pod_spec(rjob: Mapping[str, Any]) -> Obj:
    spec = (((rjob.get("template") or {}).get("spec") or {}).get("template") or {}).get("spec")
    return spec if isinstance(spec, dict) else {}
