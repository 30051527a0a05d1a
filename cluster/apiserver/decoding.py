"""What kube-apiserver's decoding of a body into Go structs refuses: fields of the wrong type.

kube decodes a write's body into the kind's Go type before anything reads it, so a wrongly typed
field is a 400 BadRequest naming it (``Pod in version "v1" cannot be handled as a Pod: json:
cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type string``). The
embedded server keeps bodies as JSON trees; ``check_body_types`` makes the same refusal before
the write path reads a tree, for ``apiVersion``/``kind``, ObjectMeta (every kind, custom
resources too) and, of the built-ins the server defaults or reads (``builtins.py``, the GC, the
namespace controller), the fields it reads. A custom resource's spec and status are its
schema's (``schema.py``, 422). JSON ``null`` decodes as the zero value in Go and passes here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import errors
from .resources import ResourceInfo

__all__ = ["check_binding_types", "check_body_types", "check_delete_options_types"]


class _T:
    """A Go type as far as it is checked: its name in messages, the JSON values it takes, and
    for a struct its Go name and checked fields, for a slice or map its element type."""

    __slots__ = ("elem", "fields", "flat", "leaf", "leaf_elem", "name", "struct", "types")

    def __init__(
        self,
        name: str,
        json: tuple[type, ...],
        struct: str = "",
        fields: Mapping[str, _T] | None = None,
        elem: _T | None = None,
    ) -> None:
        self.name = name
        self.types = frozenset(json)
        self.struct = struct
        self.fields: Mapping[str, _T] = fields or {}
        self.elem = elem
        self.leaf = not self.fields and elem is None
        # a slice or map of leaves (labels, string lists, resource lists): its element types
        self.leaf_elem = elem.types if elem is not None and elem.leaf else None
        # a struct of leaves only (env vars, ports): field -> the JSON types it takes
        self.flat = (
            {k: f.types for k, f in self.fields.items()}
            if self.fields and all(f.leaf for f in self.fields.values())
            else None
        )


_STR = _T("string", (str,))
_INT64 = _T("int64", (int,))
_INT32 = _T("int32", (int,))
_BOOL = _T("bool", (bool,))
_OBJ = (dict,)
_LIST = (list,)


def _struct(go_name: str, /, **fields: _T) -> _T:
    """A Go struct ``v1.<go_name>`` with the given checked fields."""
    return _T(f"v1.{go_name}", _OBJ, struct=go_name, fields=fields or None)


def _slice(elem: _T) -> _T:
    return _T(f"[]{elem.name}", _LIST, elem=elem)


def _map(elem: _T) -> _T:
    return _T(f"map[string]{elem.name}", _OBJ, elem=elem)


_STRINGS = _slice(_STR)
_STRING_MAP = _map(_STR)

_OWNER_REFERENCE = _struct(
    "OwnerReference",
    apiVersion=_STR,
    kind=_STR,
    name=_STR,
    uid=_T("types.UID", (str,)),
    controller=_BOOL,
    blockOwnerDeletion=_BOOL,
)
_MANAGED_FIELDS_ENTRY = _struct(
    "ManagedFieldsEntry",
    manager=_STR,
    operation=_T("v1.ManagedFieldsOperationType", (str,)),
    apiVersion=_STR,
    time=_T("string", (str,)),
    fieldsType=_STR,
    fieldsV1=_T("v1.FieldsV1", _OBJ),
    subresource=_STR,
)
_TIME = _T("string", (str,))  # metav1.Time decodes from an RFC 3339 string
_OBJECT_META = _struct(
    "ObjectMeta",
    name=_STR,
    generateName=_STR,
    namespace=_STR,
    selfLink=_STR,
    uid=_T("types.UID", (str,)),
    resourceVersion=_STR,
    generation=_INT64,
    creationTimestamp=_TIME,
    deletionTimestamp=_TIME,
    deletionGracePeriodSeconds=_INT64,
    labels=_STRING_MAP,
    annotations=_STRING_MAP,
    ownerReferences=_slice(_OWNER_REFERENCE),
    finalizers=_STRINGS,
    managedFields=_slice(_MANAGED_FIELDS_ENTRY),
)

_QUANTITY = _T("resource.Quantity", (str, int, float))
_RESOURCE_LIST = _T("v1.ResourceList", _OBJ, elem=_QUANTITY)
_CONTAINER = _struct(
    "Container",
    name=_STR,
    image=_STR,
    imagePullPolicy=_T("v1.PullPolicy", (str,)),
    command=_STRINGS,
    args=_STRINGS,
    workingDir=_STR,
    terminationMessagePath=_STR,
    terminationMessagePolicy=_T("v1.TerminationMessagePolicy", (str,)),
    ports=_slice(
        _struct(
            "ContainerPort",
            name=_STR,
            containerPort=_INT32,
            hostPort=_INT32,
            protocol=_T("v1.Protocol", (str,)),
            hostIP=_STR,
        )
    ),
    env=_slice(_struct("EnvVar", name=_STR, value=_STR)),
    resources=_struct("ResourceRequirements", limits=_RESOURCE_LIST, requests=_RESOURCE_LIST),
    volumeMounts=_slice(_struct("VolumeMount", name=_STR, mountPath=_STR)),
)
_POD_SPEC = _struct(
    "PodSpec",
    containers=_slice(_CONTAINER),
    initContainers=_slice(_CONTAINER),
    ephemeralContainers=_slice(_struct("EphemeralContainer", name=_STR, image=_STR)),
    volumes=_slice(_struct("Volume", name=_STR)),
    restartPolicy=_T("v1.RestartPolicy", (str,)),
    terminationGracePeriodSeconds=_INT64,
    dnsPolicy=_T("v1.DNSPolicy", (str,)),
    nodeName=_STR,
    serviceAccountName=_STR,
    serviceAccount=_STR,
    schedulerName=_STR,
    hostNetwork=_BOOL,
    priority=_INT32,
    enableServiceLinks=_BOOL,
    securityContext=_struct("PodSecurityContext"),
    nodeSelector=_STRING_MAP,
    tolerations=_slice(_struct("Toleration", key=_STR, value=_STR)),
    imagePullSecrets=_slice(_struct("LocalObjectReference", name=_STR)),
)
_CONDITIONS = _slice(_T("object", _OBJ))
_POD_STATUS = _struct(
    "PodStatus",
    phase=_T("v1.PodPhase", (str,)),
    conditions=_CONDITIONS,
    podIP=_STR,
    hostIP=_STR,
    qosClass=_T("v1.PodQOSClass", (str,)),
    nominatedNodeName=_STR,
    containerStatuses=_slice(_struct("ContainerStatus", name=_STR)),
    initContainerStatuses=_slice(_struct("ContainerStatus", name=_STR)),
)
_SERVICE_SPEC = _struct(
    "ServiceSpec",
    type=_T("v1.ServiceType", (str,)),
    clusterIP=_STR,
    clusterIPs=_STRINGS,
    ports=_slice(
        _struct(
            "ServicePort",
            name=_STR,
            protocol=_T("v1.Protocol", (str,)),
            port=_INT32,
            nodePort=_INT32,
            targetPort=_T("intstr.IntOrString", (str, int)),
        )
    ),
    selector=_STRING_MAP,
    sessionAffinity=_T("v1.ServiceAffinity", (str,)),
    externalName=_STR,
    ipFamilies=_slice(_T("v1.IPFamily", (str,))),
    ipFamilyPolicy=_T("v1.IPFamilyPolicy", (str,)),
    internalTrafficPolicy=_T("v1.ServiceInternalTrafficPolicy", (str,)),
)
_SERVICE_STATUS = _struct("ServiceStatus", loadBalancer=_struct("LoadBalancerStatus"))
_NAMESPACE_SPEC = _struct("NamespaceSpec", finalizers=_slice(_T("v1.FinalizerName", (str,))))
_NAMESPACE_STATUS = _struct(
    "NamespaceStatus", phase=_T("v1.NamespacePhase", (str,)), conditions=_CONDITIONS
)

#: (group, plural) -> the checked top-level fields (besides metadata) of that built-in kind
_BUILTIN_FIELDS: dict[tuple[str, str], dict[str, _T]] = {
    ("", "pods"): {"spec": _POD_SPEC, "status": _POD_STATUS},
    ("", "services"): {"spec": _SERVICE_SPEC, "status": _SERVICE_STATUS},
    ("", "namespaces"): {"spec": _NAMESPACE_SPEC, "status": _NAMESPACE_STATUS},
    ("", "configmaps"): {
        "data": _STRING_MAP,
        "binaryData": _map(_T("[]uint8", (str,))),
        "immutable": _BOOL,
    },
    ("", "secrets"): {
        "data": _map(_T("[]uint8", (str,))),
        "stringData": _STRING_MAP,
        "type": _T("v1.SecretType", (str,)),
        "immutable": _BOOL,
    },
}


def _json_kind(value: Any) -> str:
    """The JSON type as Go's ``UnmarshalTypeError`` names it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _ok(value: Any, t: _T) -> bool:
    """Whether ``value`` decodes as a ``t``: the fast check every write makes (exact types:
    parsed JSON holds nothing else; a bool is no number). Slices and maps of leaves and
    structs of leaves are checked in their container's loop: a call each cost more than the
    check (half of the calls on a pod)."""
    if type(value) not in t.types:
        return value is None
    fields = t.fields
    if fields:
        for key, item in value.items():
            field_type = fields.get(key)
            if field_type is None or item is None:
                continue
            if type(item) not in field_type.types:
                return False
            if field_type.leaf:
                continue
            types = field_type.leaf_elem
            if types is not None:
                for x in item.values() if type(item) is dict else item:
                    if x is not None and type(x) not in types:
                        return False
            elif not _ok(item, field_type):
                return False
        return True
    elem = t.elem
    if elem is not None:
        items = value.values() if type(value) is dict else value
        types = t.leaf_elem
        flat = elem.flat
        if types is not None:
            for item in items:
                if item is not None and type(item) not in types:
                    return False
        elif flat is not None:
            types = elem.types
            for item in items:
                if item is None:
                    continue
                if type(item) not in types:
                    return False
                for key, x in item.items():
                    field_types = flat.get(key)
                    if field_types is not None and x is not None and type(x) not in field_types:
                        return False
        else:
            for item in items:
                if item is not None and not _ok(item, elem):
                    return False
    return True


def _check(value: Any, t: _T, path: str, owner: str) -> str | None:
    """The decoding error of ``value`` (at JSON ``path``, a field of Go struct ``owner``) as
    a ``t``, or None. Go names the field by its path without list indexes."""
    if value is None:
        return None
    if type(value) not in t.types:
        return (
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
            f"{owner}.{path} of type {t.name}"
        )
    if t.fields:
        for key, item in value.items():
            field_type = t.fields.get(key)
            if field_type is not None:
                err = _check(item, field_type, f"{path}.{key}", t.struct)
                if err is not None:
                    return err
    elif t.elem is not None:
        for item in value.values() if type(value) is dict else value:
            err = _check(item, t.elem, path, owner)
            if err is not None:
                return err
    return None


def _problem(value: Any, t: _T, path: str, owner: str) -> str | None:
    """``_check``'s message, looked for only when the fast ``_ok`` finds a problem."""
    return None if _ok(value, t) else _check(value, t, path, owner)


def check_body_types(info: ResourceInfo, body: dict[str, Any]) -> None:
    """400 BadRequest, worded as kube's decoder, when a field of ``body`` has the wrong type."""
    for key in ("apiVersion", "kind"):
        value = body.get(key)
        if value is not None and not isinstance(value, str):
            raise errors.bad_request(
                "couldn't get version/kind; json parse error: json: cannot unmarshal "
                f"{_json_kind(value)} into Go struct field .{key} of type string"
            )
    err = _problem(body.get("metadata"), _OBJECT_META, "metadata", info.kind)
    if err is None and info.builtin:
        checked = _BUILTIN_FIELDS.get(info.storage_key)
        if checked is not None:
            for key, t in checked.items():
                err = _problem(body.get(key), t, key, info.kind)
                if err is not None:
                    break
    if err is not None:
        raise errors.bad_request(
            f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: {err}'
        )


_DELETE_OPTIONS = _struct(
    "DeleteOptions",
    kind=_STR,
    apiVersion=_STR,
    gracePeriodSeconds=_INT64,
    preconditions=_struct("Preconditions", uid=_T("types.UID", (str,)), resourceVersion=_STR),
    orphanDependents=_BOOL,
    propagationPolicy=_T("v1.DeletionPropagation", (str,)),
    dryRun=_STRINGS,
)


def check_delete_options_types(body: Any) -> str | None:
    """The decoding error of a DELETE's body as ``v1.DeleteOptions``, or None when it decodes.
    (kube answers it with 500, the decoder's error being no Status; it is a 400 here.)"""
    if not isinstance(body, dict):
        return f"json: cannot unmarshal {_json_kind(body)} into Go value of type v1.DeleteOptions"
    for key, t in _DELETE_OPTIONS.fields.items():
        err = _problem(body.get(key), t, key, "DeleteOptions")
        if err is not None:
            return err
    return None


_BINDING_TARGET = _struct(
    "ObjectReference", kind=_STR, namespace=_STR, name=_STR, uid=_T("types.UID", (str,))
)


def check_binding_types(body: dict[str, Any]) -> None:
    """400 BadRequest when a ``pods/binding`` body does not decode as a ``v1.Binding``."""
    err = _problem(body.get("metadata"), _OBJECT_META, "metadata", "Binding") or _problem(
        body.get("target"), _BINDING_TARGET, "target", "Binding"
    )
    if err is not None:
        raise errors.bad_request(f'Binding in version "v1" cannot be handled as a Binding: {err}')
