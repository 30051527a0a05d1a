"""The resources a job controller reads and writes besides its jobs, pods and services."""

from __future__ import annotations

from kubetrain.informers.resource import (
    CONFIGMAPS,
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
    SERVICEACCOUNTS,
    ResourceRef,
)
from kubetrain.reconcilers.common.naming import OPERATOR_NAME_LABEL

__all__ = [
    "CACHED_EXTRAS",
    "DELETION_EVENTS",
    "EXTRA_RESOURCES",
    "HORIZONTAL_POD_AUTOSCALERS",
    "OWNED_SELECTOR",
    "ROLEBINDINGS",
    "ROLES",
]

ROLES = ResourceRef("rbac.authorization.k8s.io", "v1", "roles", True, "Role")
ROLEBINDINGS = ResourceRef("rbac.authorization.k8s.io", "v1", "rolebindings", True, "RoleBinding")
HORIZONTAL_POD_AUTOSCALERS = ResourceRef(
    "autoscaling", "v2", "horizontalpodautoscalers", True, "HorizontalPodAutoscaler"
)

#: The extra objects a decision may apply or delete, by (apiVersion, kind).
EXTRA_RESOURCES: dict[tuple[str, str], ResourceRef] = {
    (r.api_version, r.kind): r
    for r in (
        CONFIGMAPS,
        SERVICEACCOUNTS,
        ROLES,
        ROLEBINDINGS,
        HORIZONTAL_POD_AUTOSCALERS,
        PODGROUPS_VOLCANO,
        PODGROUPS_SCHEDULER_PLUGINS,
    )
}

#: Extra object kinds whose deletion is recorded on the job (``SuccessfulDelete<Kind>`` /
#: ``FailedDelete<Kind>``): the reference's PodGroup events.
DELETION_EVENTS: frozenset[str] = frozenset({"PodGroup"})

#: Extra object kinds cached (label-filtered) per job kind; the others are remembered as applied.
#: With gang scheduling every kind also caches the PodGroups of the chosen flavour (``wiring.py``).
CACHED_EXTRAS: dict[str, tuple[ResourceRef, ...]] = {
    "MPIJob": (CONFIGMAPS,),
    "PyTorchJob": (HORIZONTAL_POD_AUTOSCALERS,),
}

#: Label selector of every dependent informer: objects some kubetrain controller labelled, so
#: pods and services are not cached cluster-wide.
OWNED_SELECTOR = OPERATOR_NAME_LABEL
