"""The Kubernetes strategic merge patch, as far as Kubeflow Trainer's ``runtimePatches`` need it.

Why here: Trainer v2.3.0 applies each TrainJob ``runtimePatches[].trainingRuntimeSpec.template.spec``
to the runtime's JobSetSpec with apimachinery's ``strategicpatch.StrategicMergePatch(source, patch,
jobsetv1alpha2.JobSetSpec{})`` (``pkg/runtime/core/trainingruntime.go``). A JSON merge patch
would replace the ``replicatedJobs`` and ``containers`` lists where SMP merges them by ``name``,
so ``jobset_build`` needs SMP's own rules. The Go code reads the ``patchStrategy`` and
``patchMergeKey`` struct tags; here they are a small schema tree (``PatchMeta``) written out for the
types a runtime patch can reach: JobSetSpec (JobSet v0.12.0 tags ``replicatedJobs`` and
``dependsOn`` merge-by-``name``), batch/v1 JobTemplateSpec, core/v1 PodTemplateSpec, PodSpec,
Container and ResourceRequirements.

The rules, as ``k8s.io/apimachinery/pkg/util/strategicpatch`` applies them:

- maps merge key by key, recursively; a ``null`` value deletes the key;
- a list whose field has ``patchStrategy:"merge"`` and a ``patchMergeKey`` merges element by
  element on that key (a patch element matching an original one is merged into it, others are
  added). The order is apimachinery's ``normalizeElementOrder``: the patch's elements keep the
  patch's order, the original-only elements the original order, and the two are interleaved by
  original position, so an element new to the list lands before the original elements that
  follow the last patched one (patching ``env`` ``[A, B, C]`` with ``[D]`` gives ``[D, A, B, C]``);
- a merge list of scalars (``finalizers``) is the de-duplicated union;
- every other list, and every scalar, is replaced by the patch's value.

Not ported: the ``$patch``, ``$retainKeys``, ``$setElementOrder`` and ``$deleteFromPrimitiveList``
directives. A runtime patch is a typed Go struct marshalled to JSON, which never carries them (and
the API server prunes them from a stored TrainJob), so ``typed_patch`` drops any ``$`` key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubetrain.base.jsoncopy import json_copy

__all__ = [
    "JOBSET_SPEC",
    "RESOURCE_REQUIREMENTS",
    "PatchMeta",
    "StrategicMergeError",
    "strategic_merge",
    "typed_patch",
]


class StrategicMergeError(ValueError):
    """The patch cannot be applied (a merge-list element without its merge key, a list of lists):
    apimachinery returns an error for the same input."""


@dataclass(frozen=True)
class PatchMeta:
    """The strategic-merge tags of one field and, below it, of its fields (for a struct or a list
    of structs). ``merge`` is ``patchStrategy:"merge"``; ``key`` its ``patchMergeKey`` (``None``
    for a merge list of scalars)."""

    merge: bool = False
    key: str | None = None
    fields: Mapping[str, PatchMeta] = field(default_factory=dict)


_NONE = PatchMeta()

_OBJECT_META = PatchMeta(
    fields={
        "ownerReferences": PatchMeta(merge=True, key="uid"),
        "finalizers": PatchMeta(merge=True),
    }
)
_CONTAINER_FIELDS: Mapping[str, PatchMeta] = {
    "ports": PatchMeta(merge=True, key="containerPort"),
    "env": PatchMeta(merge=True, key="name"),
    "volumeMounts": PatchMeta(merge=True, key="mountPath"),
    "volumeDevices": PatchMeta(merge=True, key="devicePath"),
    "resources": PatchMeta(fields={"claims": PatchMeta(merge=True, key="name")}),
}
_POD_SPEC = PatchMeta(
    fields={
        "volumes": PatchMeta(merge=True, key="name"),
        "initContainers": PatchMeta(merge=True, key="name", fields=_CONTAINER_FIELDS),
        "containers": PatchMeta(merge=True, key="name", fields=_CONTAINER_FIELDS),
        "ephemeralContainers": PatchMeta(merge=True, key="name", fields=_CONTAINER_FIELDS),
        "imagePullSecrets": PatchMeta(merge=True, key="name"),
        "hostAliases": PatchMeta(merge=True, key="ip"),
        "topologySpreadConstraints": PatchMeta(merge=True, key="topologyKey"),
        "schedulingGates": PatchMeta(merge=True, key="name"),
        "resourceClaims": PatchMeta(merge=True, key="name"),
    }
)
_POD_TEMPLATE = PatchMeta(fields={"metadata": _OBJECT_META, "spec": _POD_SPEC})
_JOB_TEMPLATE = PatchMeta(
    fields={"metadata": _OBJECT_META, "spec": PatchMeta(fields={"template": _POD_TEMPLATE})}
)

#: ``jobsetv1alpha2.JobSetSpec`` (JobSet v0.12.0: ``replicatedJobs`` and ``dependsOn`` by name).
JOBSET_SPEC = PatchMeta(
    fields={
        "replicatedJobs": PatchMeta(
            merge=True,
            key="name",
            fields={"template": _JOB_TEMPLATE, "dependsOn": PatchMeta(merge=True, key="name")},
        )
    }
)
#: ``corev1.ResourceRequirements`` as Trainer merges ``resourcesPerNode``: limits and requests
#: per resource name, claims by name (``pkg/util/trainingruntime.MergeResourceRequirements``).
RESOURCE_REQUIREMENTS = _CONTAINER_FIELDS["resources"]


def typed_patch(patch: Any) -> Any:
    """``patch`` as Go's typed round trip (unmarshal into the patch struct, marshal with
    ``omitempty``) hands it to SMP: ``null``, ``""`` and ``[]`` values are dropped, and so is any
    ``$`` directive key. Empty objects stay (``emptyDir: {}`` means something)."""
    if isinstance(patch, dict):
        out: dict[str, Any] = {}
        for key, value in patch.items():
            if key.startswith("$") or value is None or value == "" or value == []:
                continue
            out[key] = typed_patch(value)
        return out
    if isinstance(patch, list):
        return [typed_patch(item) for item in patch]
    return patch


def strategic_merge(original: Mapping[str, Any], patch: Mapping[str, Any], meta: PatchMeta) -> Any:
    """A new object: ``patch`` applied to ``original`` by the strategic-merge ``meta`` of the
    type at the root. Neither argument is changed. Raises ``StrategicMergeError``."""
    return _merge_map(json_copy(dict(original)), patch, meta)


def _merge_map(
    original: dict[str, Any], patch: Mapping[str, Any], meta: PatchMeta
) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            original.pop(key, None)
            continue
        sub = meta.fields.get(key, _NONE)
        current = original.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            original[key] = _merge_map(current, value, sub)
        elif isinstance(current, list) and isinstance(value, list) and sub.merge:
            original[key] = _merge_list(current, value, sub)
        else:
            original[key] = _without_nulls(json_copy(value))
    return original


def _without_nulls(value: Any) -> Any:
    """``discardNullValuesFromPatch``: a value new to the original loses its ``null`` members."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _merge_list(original: list[Any], patch: list[Any], meta: PatchMeta) -> list[Any]:
    if not original and not patch:
        return original
    if any(isinstance(item, list) for item in (*original, *patch)):
        raise StrategicMergeError("strategic merge of a list of lists is not supported")
    if not all(isinstance(item, dict) for item in (*original, *patch)):
        # A merge list of scalars: the de-duplicated union, original first.
        union: list[Any] = []
        for item in (*original, *patch):
            if item not in union:
                union.append(item)
        return union
    key = meta.key
    if key is None:
        raise StrategicMergeError("cannot merge a list of objects without a merge key")
    for item in (*original, *patch):
        if key not in item:
            raise StrategicMergeError(f"list element {item!r} has no merge key {key!r}")
    merged = list(original)
    for element in patch:
        at = _index(merged, element[key], key)
        if at >= 0:
            merged[at] = _merge_map(merged[at], element, meta)
        else:
            merged.append(_without_nulls(json_copy(element)))
    patch_keys = [element[key] for element in patch]
    server_order = [item[key] for item in original]
    # normalizeElementOrder: patched elements in patch order, the others in original order.
    patched = sorted(
        (item for item in merged if item[key] in patch_keys),
        key=lambda item: patch_keys.index(item[key]),
    )
    server_only = [item for item in merged if item[key] not in patch_keys]
    return _merge_sorted(server_only, patched, server_order, key)


def _merge_sorted(
    left: list[dict[str, Any]], right: list[dict[str, Any]], server_order: list[Any], key: str
) -> list[dict[str, Any]]:
    """apimachinery's ``mergeSortedSlice``: take ``left`` (original-only) first only when both
    heads are in the original and ``left``'s comes earlier there; otherwise take ``right``'s."""
    out: list[dict[str, Any]] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
        elif i >= len(left):
            out.append(right[j])
            j += 1
        else:
            li = _position(server_order, left[i][key])
            ri = _position(server_order, right[j][key])
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _index(items: list[dict[str, Any]], value: Any, key: str) -> int:
    for at, item in enumerate(items):
        if key in item and _same(item[key], value):
            return at
    return -1


def _position(order: list[Any], value: Any) -> int:
    for at, item in enumerate(order):
        if _same(item, value):
            return at
    return -1


def _same(a: Any, b: Any) -> bool:
    """Go compares decoded JSON values with ``==``: ``1`` and ``1.0`` are one float64, but a
    number never equals a string or a boolean."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b) and isinstance(a, str) == isinstance(b, str)
