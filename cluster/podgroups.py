"""The gang-scheduling CRDs an embedded cluster serves: Volcano's and scheduler-plugins' PodGroup
and Volcano's Queue, plus Volcano's ``default`` Queue.

Why here: an operator started with ``--gang-scheduler-name`` refuses to start when its PodGroup
CRD is missing, and the node simulator (``nodesim/``) gang-schedules pods of a group only when it
can read the group. Installing both flavours in every embedded cluster makes the cluster a
gang-scheduling neighbour out of the box, as a real cluster with Volcano or scheduler-plugins is.

The manifests follow the projects' generated CRDs (field names, types, scopes, subresources),
without the descriptions and the fields nothing here reads (Volcano's ``networkTopology``, the
Queue's ``affinity``, ``extendClusters``, hierarchy fields):

- ``podgroups.scheduling.volcano.sh`` (volcano-sh/volcano
  ``config/crd/volcano/bases/scheduling.volcano.sh_podgroups.yaml``): spec ``minMember``,
  ``minTaskMember``, ``queue`` (default ``default``), ``priorityClassName``, ``minResources``;
  status ``phase``, ``conditions``, ``running``, ``succeeded``, ``failed``. Like the real one it
  has **no status subresource** (``subresources: {}``): status is written with the object, so a
  client's full update that drops ``status`` wipes it, as on a real cluster.
- ``podgroups.scheduling.x-k8s.io`` (kubernetes-sigs/scheduler-plugins
  ``config/crd/bases/scheduling.x-k8s.io_podgroups.yaml``): spec ``minMember`` (minimum 1),
  ``minResources``, ``scheduleTimeoutSeconds``; status ``phase``, ``occupiedBy``, ``running``,
  ``succeeded``, ``failed``, ``scheduleStartTime``; a status subresource.
- ``queues.scheduling.volcano.sh``: cluster-scoped, spec ``weight``, ``capability``,
  ``reclaimable``, ``guarantee``; status counts and ``state``; a status subresource.

This module is data only: ``embedded.py`` installs it (when absent, so a ``--data`` cluster keeps
what it has).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DEFAULT_QUEUE",
    "SCHEDULER_PLUGINS_PODGROUP_CRD",
    "VOLCANO_PODGROUP_CRD",
    "VOLCANO_QUEUE_CRD",
    "gang_crds",
]

_QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _resource_list() -> dict[str, Any]:
    """A ``v1.ResourceList`` as controller-gen renders it: quantities, int or string."""
    return {
        "type": "object",
        "additionalProperties": {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": _QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        },
    }


def _int32(**extra: Any) -> dict[str, Any]:
    return {"type": "integer", "format": "int32", **extra}


_STRING: dict[str, Any] = {"type": "string"}


def _crd(
    *,
    group: str,
    version: str,
    kind: str,
    plural: str,
    short_names: list[str],
    scope: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    status_subresource: bool,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
            },
            "scope": scope,
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    **({"additionalPrinterColumns": columns} if columns else {}),
                    "subresources": {"status": {}} if status_subresource else {},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": _STRING,
                                "kind": _STRING,
                                "metadata": {"type": "object"},
                                "spec": {"type": "object", "properties": spec},
                                "status": {"type": "object", "properties": status},
                            },
                        }
                    },
                }
            ],
        },
    }


_COUNTS: dict[str, Any] = {"running": _int32(), "succeeded": _int32(), "failed": _int32()}

VOLCANO_PODGROUP_CRD: dict[str, Any] = _crd(
    group="scheduling.volcano.sh",
    version="v1beta1",
    kind="PodGroup",
    plural="podgroups",
    short_names=["pg", "podgroup-v1beta1"],
    scope="Namespaced",
    spec={
        "minMember": _int32(),
        "minTaskMember": {"type": "object", "additionalProperties": _int32()},
        "queue": {"type": "string", "default": "default"},
        "priorityClassName": _STRING,
        "minResources": _resource_list(),
        "preemptable": {"type": "boolean"},
    },
    status={
        "phase": _STRING,
        "conditions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": _STRING,
                    "status": _STRING,
                    "transitionID": _STRING,
                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                    "reason": _STRING,
                    "message": _STRING,
                },
            },
        },
        **_COUNTS,
    },
    status_subresource=False,
    columns=[
        {"name": "STATUS", "type": "string", "jsonPath": ".status.phase"},
        {"name": "minMember", "type": "integer", "jsonPath": ".spec.minMember"},
        {"name": "RUNNINGS", "type": "integer", "jsonPath": ".status.running"},
        {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {"name": "QUEUE", "type": "string", "priority": 1, "jsonPath": ".spec.queue"},
    ],
)

SCHEDULER_PLUGINS_PODGROUP_CRD: dict[str, Any] = _crd(
    group="scheduling.x-k8s.io",
    version="v1alpha1",
    kind="PodGroup",
    plural="podgroups",
    short_names=["pg", "pgs"],
    scope="Namespaced",
    spec={
        "minMember": _int32(minimum=1),
        "minResources": _resource_list(),
        "scheduleTimeoutSeconds": _int32(),
    },
    status={
        "phase": _STRING,
        "occupiedBy": _STRING,
        **_COUNTS,
        "scheduleStartTime": {"type": "string", "format": "date-time"},
    },
    status_subresource=True,
    columns=[
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "MinMember", "type": "integer", "jsonPath": ".spec.minMember"},
        {"name": "Running", "type": "integer", "jsonPath": ".status.running"},
        {"name": "Succeeded", "type": "integer", "jsonPath": ".status.succeeded"},
        {"name": "Failed", "type": "integer", "jsonPath": ".status.failed"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ],
)

VOLCANO_QUEUE_CRD: dict[str, Any] = _crd(
    group="scheduling.volcano.sh",
    version="v1beta1",
    kind="Queue",
    plural="queues",
    short_names=["q", "queue-v1beta1"],
    scope="Cluster",
    spec={
        "weight": _int32(),
        "capability": _resource_list(),
        "deserved": _resource_list(),
        "reclaimable": {"type": "boolean"},
        "guarantee": {"type": "object", "properties": {"resource": _resource_list()}},
        "priority": _int32(),
        "parent": _STRING,
    },
    status={
        "state": _STRING,
        "allocated": _resource_list(),
        "unknown": _int32(),
        "pending": _int32(),
        "running": _int32(),
        "inqueue": _int32(),
        "completed": _int32(),
    },
    status_subresource=True,
    columns=[],
)

DEFAULT_QUEUE: dict[str, Any] = {
    "apiVersion": "scheduling.volcano.sh/v1beta1",
    "kind": "Queue",
    "metadata": {"name": "default"},
    "spec": {"weight": 1, "reclaimable": True},
}
"""The queue Volcano creates at install; PodGroups name it by default."""


def gang_crds() -> list[dict[str, Any]]:
    """The three CRDs, in install order."""
    return [VOLCANO_PODGROUP_CRD, VOLCANO_QUEUE_CRD, SCHEDULER_PLUGINS_PODGROUP_CRD]
