"""The built-in Kubernetes resources the embedded server serves, and their light defaulting.

Built-in kinds are stored as given (no schema validation: only ObjectMeta and the types of the
fields the server reads are checked, ``decoding.py`` and ``objectmeta.py``); on create they get
the defaults a real cluster's clients rely on reading back (pod phase Pending, a service
clusterIP, ...).
The namespaces every cluster has (``DEFAULT_NAMESPACES``) are created by the server at start.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from .jobs import default_job
from .podspec_defaults import default_pod_spec
from .resources import ALL_VERBS, BASE_FIELD_SELECTORS, ResourceInfo
from .webhookconfigs import (
    default_mutating_webhook_configuration,
    default_validating_webhook_configuration,
    validate_mutating_webhook_configuration,
    validate_validating_webhook_configuration,
)

__all__ = [
    "DEFAULT_NAMESPACES",
    "GENERATION_TRACKING",
    "POD_MERGE_KEYS",
    "ClusterIPAllocator",
    "builtin_resources",
    "default_namespace",
    "default_pod",
    "pod_qos_class",
]

DEFAULT_NAMESPACES: tuple[str, ...] = ("default", "kube-system", "kube-public", "kube-node-lease")

_META_KEYS: dict[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
    ("metadata", "finalizers"): "$set",
}
_POD_SPEC_KEYS: dict[tuple[str, ...], str] = {
    ("containers",): "name",
    ("initContainers",): "name",
    ("ephemeralContainers",): "name",
    ("containers", "*", "env"): "name",
    ("initContainers", "*", "env"): "name",
    ("containers", "*", "ports"): "containerPort",
    ("initContainers", "*", "ports"): "containerPort",
    ("containers", "*", "volumeMounts"): "mountPath",
    ("initContainers", "*", "volumeMounts"): "mountPath",
    ("volumes",): "name",
    ("imagePullSecrets",): "name",
    ("tolerations",): "key",
    ("hostAliases",): "ip",
}


def _under(
    prefix: tuple[str, ...], keys: Mapping[tuple[str, ...], str]
) -> dict[tuple[str, ...], str]:
    return {prefix + path: key for path, key in keys.items()}


POD_MERGE_KEYS: dict[tuple[str, ...], str] = {
    **_META_KEYS,
    **_under(("spec",), _POD_SPEC_KEYS),
    ("status", "conditions"): "type",
    ("status", "containerStatuses"): "name",
    ("status", "initContainerStatuses"): "name",
    ("status", "podIPs"): "ip",
}
_TEMPLATE_KEYS = {**_META_KEYS, **_under(("spec", "template", "spec"), _POD_SPEC_KEYS)}
_SERVICE_KEYS = {**_META_KEYS, ("spec", "ports"): "port"}
_NODE_KEYS = {
    **_META_KEYS,
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
    ("spec", "taints"): "key",
}
_CONDITION_KEYS = {**_META_KEYS, ("status", "conditions"): "type"}

_POD_FIELDS = BASE_FIELD_SELECTORS | {
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
}
_EVENT_FIELDS = BASE_FIELD_SELECTORS | {
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
}
_EVENTS_V1_FIELDS = _EVENT_FIELDS | {
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reportingController",
}


#: (group, plural) of the built-ins whose kube strategy sets ``metadata.generation = 1`` on create
#: and bumps it on spec changes (``grep -l "Generation = 1" pkg/registry/*/*/strategy.go`` in
#: kubernetes v1.36.3, plus apiextensions' CRD strategy). The others never get a generation.
GENERATION_TRACKING: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "pods"),
        ("", "podtemplates"),
        ("", "replicationcontrollers"),
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
        ("batch", "jobs"),
        ("batch", "cronjobs"),
        ("discovery.k8s.io", "endpointslices"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "ingressclasses"),
        ("networking.k8s.io", "networkpolicies"),
        ("policy", "poddisruptionbudgets"),
        ("scheduling.k8s.io", "priorityclasses"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations"),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"),
        ("admissionregistration.k8s.io", "validatingadmissionpolicies"),
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
        ("admissionregistration.k8s.io", "mutatingadmissionpolicybindings"),
        ("flowcontrol.apiserver.k8s.io", "flowschemas"),
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"),
        ("resource.k8s.io", "deviceclasses"),
        ("resource.k8s.io", "devicetaintrules"),
        ("resource.k8s.io", "resourceslices"),
    }
)


def _res(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    subresources: frozenset[str] = frozenset(),
    fields: frozenset[str] = BASE_FIELD_SELECTORS,
    merge_keys: Mapping[tuple[str, ...], str] = _META_KEYS,
    verbs: tuple[str, ...] = ALL_VERBS,
    defaulter: Callable[[dict[str, Any]], None] | None = None,
    validator: Callable[[dict[str, Any]], list[dict[str, str]]] | None = None,
) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        list_kind=f"{kind}List",
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        verbs=verbs,
        subresources=subresources,
        field_selectors=fields,
        merge_keys=dict(merge_keys),
        storage_version=version,
        builtin=True,
        tracks_generation=(group, plural) in GENERATION_TRACKING,
        defaulter=defaulter,
        validator=validator,
    )


def builtin_resources() -> list[ResourceInfo]:
    """Fresh infos for every built-in resource (core first, then the groups)."""
    ns_verbs = tuple(v for v in ALL_VERBS if v != "deletecollection")
    return [
        _res(
            "",
            "v1",
            "namespaces",
            "Namespace",
            namespaced=False,
            short=("ns",),
            subresources=frozenset({"status", "finalize"}),
            fields=BASE_FIELD_SELECTORS | {"status.phase"},
            verbs=ns_verbs,
        ),
        _res(
            "",
            "v1",
            "pods",
            "Pod",
            short=("po",),
            categories=("all",),
            subresources=frozenset({"status", "log", "binding"}),
            fields=_POD_FIELDS,
            merge_keys=POD_MERGE_KEYS,
        ),
        _res(
            "",
            "v1",
            "services",
            "Service",
            short=("svc",),
            categories=("all",),
            subresources=frozenset({"status"}),
            merge_keys=_SERVICE_KEYS,
        ),
        _res("", "v1", "events", "Event", short=("ev",), fields=_EVENT_FIELDS),
        _res("", "v1", "configmaps", "ConfigMap", short=("cm",)),
        _res("", "v1", "secrets", "Secret", fields=BASE_FIELD_SELECTORS | {"type"}),
        _res(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            short=("sa",),
            subresources=frozenset({"token"}),  # TokenRequest: tokenrequest.py
        ),
        _res("", "v1", "endpoints", "Endpoints", short=("ep",)),
        _res(
            "",
            "v1",
            "nodes",
            "Node",
            namespaced=False,
            short=("no",),
            subresources=frozenset({"status"}),
            fields=BASE_FIELD_SELECTORS | {"spec.unschedulable"},
            merge_keys=_NODE_KEYS,
        ),
        _res("events.k8s.io", "v1", "events", "Event", short=("ev",), fields=_EVENTS_V1_FIELDS),
        _res("coordination.k8s.io", "v1", "leases", "Lease"),
        # Stored as given (no endpoints controller here); a real kube-apiserver's service
        # resolver reads them (webhooks and aggregated APIs with --enable-aggregator-routing).
        _res("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
        _res("rbac.authorization.k8s.io", "v1", "roles", "Role"),
        _res("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
        _res("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
        _res(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            namespaced=False,
        ),
        _res(
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            short=("hpa",),
            categories=("all",),
            subresources=frozenset({"status"}),
            merge_keys=_CONDITION_KEYS,
        ),
        _res(
            "autoscaling",
            "v1",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            short=("hpa",),
            categories=("all",),
            subresources=frozenset({"status"}),
            merge_keys=_CONDITION_KEYS,
        ),
        _res(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "PriorityClass",
            namespaced=False,
            short=("pc",),
        ),
        _res(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            namespaced=False,
            short=("crd", "crds"),
            subresources=frozenset({"status"}),
            merge_keys=_CONDITION_KEYS,
        ),
        _res(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            namespaced=False,
            defaulter=default_validating_webhook_configuration,
            validator=validate_validating_webhook_configuration,
        ),
        _res(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            namespaced=False,
            defaulter=default_mutating_webhook_configuration,
            validator=validate_mutating_webhook_configuration,
        ),
        # create-only and never stored: answered by reviews.py (the delegated authentication
        # and authorization of the operator's secure /metrics)
        _res(
            "authentication.k8s.io",
            "v1",
            "tokenreviews",
            "TokenReview",
            namespaced=False,
            verbs=("create",),
        ),
        _res(
            "authorization.k8s.io",
            "v1",
            "subjectaccessreviews",
            "SubjectAccessReview",
            namespaced=False,
            verbs=("create",),
        ),
        _res(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            short=("deploy",),
            categories=("all",),
            subresources=frozenset({"status"}),
            merge_keys=_TEMPLATE_KEYS,
        ),
        # defaults on decode (jobs.py); selector generation and validation: jobs_validation.py
        _res(
            "batch",
            "v1",
            "jobs",
            "Job",
            categories=("all",),
            subresources=frozenset({"status"}),
            merge_keys={**_TEMPLATE_KEYS, ("status", "conditions"): "type"},
            defaulter=default_job,
        ),
    ]


# -- defaulting ------------------------------------------------------------------------------


def _has_requests_equal_limits(container: Mapping[str, Any]) -> bool:
    res = container.get("resources") or {}
    limits = res.get("limits") or {}
    requests = res.get("requests") or limits
    for r in ("cpu", "memory"):  # a loop, not all(genexpr): every pod create asks
        if r not in limits:
            return False
        limit = limits[r]
        if str(requests.get(r, limit)) != str(limit):
            return False
    return True


def _object_field(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]``, set to ``{}`` when missing or null (Go decodes a null struct as its zero
    value; ``decoding.check_body_types`` has refused any other non-object)."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = obj[key] = {}
    return value


def pod_qos_class(spec: Mapping[str, Any]) -> str:
    """Guaranteed, Burstable or BestEffort from the containers' requests/limits (simplified)."""
    containers = [
        c
        for key in ("containers", "initContainers")
        for c in spec.get(key) or ()
        if isinstance(c, dict)
    ]
    # plain loops, not any/all over generators: every pod create asks
    for c in containers:
        res = c.get("resources")
        if res and (res.get("requests") or res.get("limits")):
            break
    else:
        return "BestEffort"
    for c in containers:
        if not _has_requests_equal_limits(c):
            return "Burstable"
    return "Guaranteed"


def default_pod(pod: dict[str, Any]) -> None:
    """Fill pod defaults in place (``pod`` is a fresh copy the caller owns)."""
    spec = _object_field(pod, "spec")
    default_pod_spec(spec)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    status = _object_field(pod, "status")
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", pod_qos_class(spec))


def default_namespace(ns: dict[str, Any]) -> None:
    """Namespace defaults: ``spec.finalizers: [kubernetes]``, ``status.phase: Active``.

    The ``kubernetes`` finalizer is removed through ``namespaces/{name}/finalize`` by whoever
    empties a deleted namespace (the GC, ``gc.py``); until then a deleted namespace stays
    ``Terminating``, as on a real cluster.
    """
    spec = _object_field(ns, "spec")
    spec.setdefault("finalizers", ["kubernetes"])
    _object_field(ns, "status")["phase"] = "Active"


class ClusterIPAllocator:
    """Hands out service cluster IPs from a CIDR (default 10.96.0.0/12), never twice.

    Invariant: ``_used`` holds every allocated address; ``_next`` only moves forward (wrapping
    once the range is exhausted is not needed at this scale).
    """

    def __init__(self, cidr: str = "10.96.0.0/12") -> None:
        self._net = ipaddress.ip_network(cidr)
        self._next = int(self._net.network_address) + 1  # .1 is the kubernetes service's
        self._used: set[str] = set()

    def reserve(self, ip: str) -> None:
        """Mark ``ip`` as used (services loaded from storage)."""
        self._used.add(ip)

    def release(self, ip: str) -> None:
        """Free ``ip`` (its service was deleted)."""
        self._used.discard(ip)

    def allocate(self) -> str:
        """A free address; raises RuntimeError when the range is exhausted."""
        last = int(self._net.broadcast_address)
        while self._next < last:
            ip = str(ipaddress.ip_address(self._next))
            self._next += 1
            if ip not in self._used:
                self._used.add(ip)
                return ip
        raise RuntimeError(f"service cluster IP range {self._net} is exhausted")

    def default_service(self, svc: dict[str, Any]) -> None:
        """Service defaults in place: type ClusterIP, a clusterIP unless ``None``, port fields."""
        spec = _object_field(svc, "spec")
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("type") != "ExternalName":
            ip = spec.get("clusterIP")
            if not ip:
                ip = self.allocate()
                spec["clusterIP"] = ip
            elif ip != "None":
                self.reserve(ip)
            spec.setdefault("clusterIPs", [ip])
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
        _object_field(svc, "status").setdefault("loadBalancer", {})
