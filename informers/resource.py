"""``ResourceRef``: how every room names an API resource and builds its paths.

Informers, the engine's API client and the reconcilers share this one immutable, hashable type, so
a resource is spelled once (group, version, plural, scope, kind) and paths are never hand-built.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BATCH_JOBS",
    "CONFIGMAPS",
    "CUSTOM_RESOURCE_DEFINITIONS",
    "EVENTS",
    "EVENTS_V1",
    "LEASES",
    "NAMESPACES",
    "NODES",
    "PODGROUPS_SCHEDULER_PLUGINS",
    "PODGROUPS_VOLCANO",
    "PODS",
    "PRIORITYCLASSES",
    "SECRETS",
    "SERVICEACCOUNTS",
    "SERVICES",
    "ResourceRef",
    "kubeflow",
]


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """One API resource. ``group`` is "" for the core group (paths under ``/api``)."""

    group: str
    version: str
    plural: str
    namespaced: bool
    kind: str

    @property
    def api_version(self) -> str:
        """The objects' ``apiVersion``: ``v1`` or ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``plural.group`` (just ``plural`` for core), as kube names resources in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def _prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def collection_path(self, namespace: str | None = None) -> str:
        """The LIST/WATCH/CREATE path; ``namespace=None`` means all namespaces.

        Raises ``ValueError`` when a namespace is given for a cluster-scoped resource.
        """
        if namespace is None:
            return f"{self._prefix()}/{self.plural}"
        if not self.namespaced:
            raise ValueError(
                f"{self.group_resource} is cluster-scoped: pass namespace=None, not {namespace!r}"
            )
        return f"{self._prefix()}/namespaces/{namespace}/{self.plural}"

    def item_path(self, namespace: str | None, name: str, subresource: str | None = None) -> str:
        """The path of one object (optionally a subresource such as ``status``).

        ``namespace`` is required for namespaced resources and must be ``None`` (or "") otherwise.
        """
        if not name:
            raise ValueError(f"{self.group_resource}: item_path needs a non-empty name")
        if self.namespaced:
            if not namespace:
                raise ValueError(
                    f"{self.group_resource} is namespaced: item_path needs a namespace for {name!r}"
                )
            path = f"{self._prefix()}/namespaces/{namespace}/{self.plural}/{name}"
        else:
            if namespace:
                raise ValueError(
                    f"{self.group_resource} is cluster-scoped: pass namespace=None, not {namespace!r}"
                )
            path = f"{self._prefix()}/{self.plural}/{name}"
        return f"{path}/{subresource}" if subresource else path

    def __str__(self) -> str:
        return self.group_resource


PODS = ResourceRef("", "v1", "pods", True, "Pod")
SERVICES = ResourceRef("", "v1", "services", True, "Service")
EVENTS = ResourceRef("", "v1", "events", True, "Event")
EVENTS_V1 = ResourceRef("events.k8s.io", "v1", "events", True, "Event")
CONFIGMAPS = ResourceRef("", "v1", "configmaps", True, "ConfigMap")
SECRETS = ResourceRef("", "v1", "secrets", True, "Secret")
BATCH_JOBS = ResourceRef("batch", "v1", "jobs", True, "Job")
CUSTOM_RESOURCE_DEFINITIONS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
SERVICEACCOUNTS = ResourceRef("", "v1", "serviceaccounts", True, "ServiceAccount")
NAMESPACES = ResourceRef("", "v1", "namespaces", False, "Namespace")
NODES = ResourceRef("", "v1", "nodes", False, "Node")
LEASES = ResourceRef("coordination.k8s.io", "v1", "leases", True, "Lease")
PRIORITYCLASSES = ResourceRef("scheduling.k8s.io", "v1", "priorityclasses", False, "PriorityClass")
PODGROUPS_VOLCANO = ResourceRef("scheduling.volcano.sh", "v1beta1", "podgroups", True, "PodGroup")
PODGROUPS_SCHEDULER_PLUGINS = ResourceRef(
    "scheduling.x-k8s.io", "v1alpha1", "podgroups", True, "PodGroup"
)


def kubeflow(kind: str) -> ResourceRef:
    """The ``kubeflow.org/v1`` resource of a job kind, e.g. ``kubeflow("PyTorchJob")``."""
    return ResourceRef("kubeflow.org", "v1", kind.lower() + "s", True, kind)
