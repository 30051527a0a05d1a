"""What the server serves: one ``ResourceInfo`` per served (group, version, resource).

The registry is the single answer to "which resource is this path / this apiVersion+kind", used
by routing, discovery, OpenAPI and the store. Built-ins are added at start (``builtins.py``);
custom resources come and go with their CustomResourceDefinitions (``add_crd``/``remove_crd``).
All served versions of one resource share storage: ``storage_key`` is (group, plural).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import errors
from .conversion_spec import ConversionWebhook, conversion_causes, webhook_of
from .schema import SchemaError, StructuralSchema

__all__ = [
    "ALL_VERBS",
    "BASE_FIELD_SELECTORS",
    "ResourceInfo",
    "ResourceRegistry",
    "ScalePaths",
    "StorageKey",
    "infos_from_crd",
    "version_priority",
]

StorageKey = tuple[str, str]  # (group, plural); "" is the core group

ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
BASE_FIELD_SELECTORS: frozenset[str] = frozenset({"metadata.name", "metadata.namespace"})


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalePaths:
    """The scale subresource's JSON paths (``.spec.replicas`` style, leading dot)."""

    spec_replicas: str
    status_replicas: str
    label_selector: str | None = None


@dataclass(frozen=True, kw_only=True)
class ResourceInfo:
    """One served version of a resource.

    ``subresources`` holds names among ``status``, ``scale``, ``log``, ``binding``.
    ``field_selectors`` are the field paths LIST/WATCH accept (always includes metadata.name and
    metadata.namespace). ``merge_keys`` drive strategic merge patch (built-ins) and server-side apply's keyed lists
    (built-ins; custom resources from their schemas' ``x-kubernetes-list-map-keys``).
    ``schema`` validates/prunes/defaults custom resources (None: stored as given).
    ``defaulter`` fills built-in defaults on create and update (None: nothing).
    ``validator`` returns the StatusCauses of an invalid built-in object, checked after the
    defaults and the mutating admission, before it is stored (None: only the name is checked).
    ``tracks_generation``: the server owns ``metadata.generation`` (1 on create, +1 on every
    change outside metadata and status), as kube's strategies do for custom resources and the
    built-ins with a spec a controller acts on (``builtins.GENERATION_TRACKING``). Otherwise
    (ConfigMap, Secret, Service, Namespace...) a client-sent generation is kept as is and none
    is set. Either way a first graceful deletion bumps a generation that is > 0.

    The derived names (``api_version``, ``storage_key``...) are computed once per info
    (``cached_property``: the fields they come from never change, the info is frozen); the
    request path reads them a dozen times per write.
    """

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    list_kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: frozenset[str] = frozenset()
    scale: ScalePaths | None = None
    field_selectors: frozenset[str] = BASE_FIELD_SELECTORS
    merge_keys: Mapping[tuple[str, ...], str] = field(default_factory=dict)
    schema: StructuralSchema | None = None
    openapi_schema: Mapping[str, Any] | None = None
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    storage_version: str = ""
    builtin: bool = True
    tracks_generation: bool = False
    defaulter: Callable[[dict[str, Any]], None] | None = None
    validator: Callable[[dict[str, Any]], list[dict[str, str]]] | None = None
    conversion: ConversionWebhook | None = None
    """Set when the CRD converts through a webhook (``conversion.py``); None: relabeling."""

    @cached_property
    def api_version(self) -> str:
        """``group/version`` (``v1`` for the core group)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @cached_property
    def storage_api_version(self) -> str:
        """The apiVersion objects are stored with (all served versions share storage)."""
        version = self.storage_version or self.version
        return f"{self.group}/{version}" if self.group else version

    @cached_property
    def storage_key(self) -> StorageKey:
        """The key all served versions of this resource share in the store."""
        return (self.group, self.plural)

    @cached_property
    def qualified(self) -> str:
        """``plural.group`` (just ``plural`` for core), as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        """Whether a status subresource exists (the main resource then ignores ``.status``)."""
        return "status" in self.subresources


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key (ascending = preferred first) following kube's version priority.

    GA before beta before alpha, higher numbers first; non-kube-like versions last, by name.
    """
    m = _VERSION_RE.match(version)
    if not m:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, "")


class ResourceRegistry:
    """Lookup tables over the served resources.

    Invariant: every info in ``_by_gvr`` is also in ``_by_gvk`` and listed in ``_versions`` for
    its group; the preferred version of a group is ``_versions[group][0]``.
    """

    def __init__(self) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        self._by_gvk: dict[tuple[str, str], ResourceInfo] = {}
        self._by_key: dict[StorageKey, dict[str, ResourceInfo]] = {}
        self._versions: dict[str, list[str]] = {}
        self.generation = 0  # bumped on every change; discovery/OpenAPI caches key on it

    def add(self, info: ResourceInfo) -> None:
        """Serve ``info`` (replaces the same group/version/plural)."""
        self._by_gvr[(info.group, info.version, info.plural)] = info
        self._by_gvk[(info.api_version, info.kind)] = info
        self._by_key.setdefault(info.storage_key, {})[info.version] = info
        versions = self._versions.setdefault(info.group, [])
        if info.version not in versions:
            versions.append(info.version)
            versions.sort(key=version_priority)
        self.generation += 1

    def remove(self, info: ResourceInfo) -> None:
        """Stop serving ``info``."""
        self._by_gvr.pop((info.group, info.version, info.plural), None)
        if self._by_gvk.get((info.api_version, info.kind)) is info:
            del self._by_gvk[(info.api_version, info.kind)]
        per_key = self._by_key.get(info.storage_key, {})
        per_key.pop(info.version, None)
        if not per_key:
            self._by_key.pop(info.storage_key, None)
        if not any(g == info.group and v == info.version for g, v, _ in self._by_gvr):
            versions = self._versions.get(info.group, [])
            if info.version in versions:
                versions.remove(info.version)
            if not versions:
                self._versions.pop(info.group, None)
        self.generation += 1

    def add_crd(self, crd: Mapping[str, Any]) -> list[ResourceInfo]:
        """Serve every served version of ``crd`` (replacing what it served before).

        Raises ApiError 422 when the CRD cannot be served (see ``infos_from_crd``).
        """
        infos = infos_from_crd(crd)
        spec = crd["spec"]
        for old in list(self.served_versions((spec["group"], spec["names"]["plural"]))):
            self.remove(old)
        for info in infos:
            self.add(info)
        return infos

    def remove_crd(self, crd: Mapping[str, Any]) -> list[ResourceInfo]:
        """Stop serving ``crd``'s resources; return what was removed."""
        spec = crd.get("spec") or {}
        key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        removed = list(self.served_versions(key))
        for info in removed:
            self.remove(info)
        return removed

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        """The info serving ``/apis/group/version/.../plural``, or None."""
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceInfo | None:
        """The info for an object's ``apiVersion`` and ``kind``, or None."""
        return self._by_gvk.get((api_version, kind))

    def served_versions(self, key: StorageKey) -> Iterable[ResourceInfo]:
        """All served versions sharing storage ``key``."""
        return list(self._by_key.get(key, {}).values())

    def any_version(self, key: StorageKey) -> ResourceInfo | None:
        """One served version of ``key`` (the storage version when served), or None."""
        per_key = self._by_key.get(key)
        if not per_key:
            return None
        for info in per_key.values():
            if info.version == info.storage_version:
                return info
        return next(iter(per_key.values()))

    def has_group(self, group: str) -> bool:
        """Whether any version of ``group`` is served ("" is the core group)."""
        return group in self._versions

    def groups(self) -> list[tuple[str, list[str]]]:
        """(group, versions preferred first) in registration order; core group included as ""."""
        return [(g, list(v)) for g, v in self._versions.items()]

    def resources(self, group: str, version: str) -> list[ResourceInfo]:
        """The resources served in ``group/version``, in registration order."""
        return [i for (g, v, _), i in self._by_gvr.items() if g == group and v == version]

    def all(self) -> list[ResourceInfo]:
        """Every served info."""
        return list(self._by_gvr.values())


def _crd_invalid(crd: Mapping[str, Any], field_path: str, message: str) -> errors.ApiError:
    name = (crd.get("metadata") or {}).get("name", "")
    return errors.invalid(
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        name,
        [{"reason": "FieldValueInvalid", "message": message, "field": field_path}],
    )


def _jsonpath_field(path: str) -> str:
    return path[1:] if path.startswith(".") else path


def _check_selectable_fields_placement(
    crd: Mapping[str, Any], versions: list[Mapping[str, Any]]
) -> None:
    """Refuse selectableFields where kube-apiserver's v1 -> internal conversion leaves them
    without a schema beside them (messages verbatim from kube's CRD validation).

    That conversion moves a per-version field to the top level when it is identical in every
    version. So identical per-version schemas with differing per-version selectableFields leave
    a version with selectableFields and no schema; identical selectableFields with differing
    (or absent) schemas leave top-level selectableFields without a top-level schema. The valid
    forms: give every version the same selectableFields, or make the schemas differ.
    """
    fields = [list(v.get("selectableFields") or []) for v in versions]
    schemas = [(v.get("schema") or {}).get("openAPIV3Schema") for v in versions]
    schemas_identical = all(s == schemas[0] for s in schemas)
    if all(f == fields[0] for f in fields):
        if fields[0] and (not schemas_identical or schemas[0] is None):
            raise _crd_invalid(
                crd,
                "spec.selectableFields",
                'Invalid value: "": may only be set when validations.schema is included',
            )
        return
    for i, (own, schema) in enumerate(zip(fields, schemas, strict=True)):
        if own and (schemas_identical or schema is None):
            raise _crd_invalid(
                crd,
                f"spec.versions[{i}].selectableFields",
                'Invalid value: "": may only be set when `version.schema.openAPIV3Schema` '
                "is not included",
            )


def infos_from_crd(crd: Mapping[str, Any]) -> list[ResourceInfo]:
    """Build the infos for every served version of a v1 CustomResourceDefinition.

    Raises ApiError 422 (Invalid, field named) for a missing group/names/versions, a name other
    than ``plural.group``, not exactly one storage version, or an unusable schema.
    """
    spec = crd.get("spec")
    if not isinstance(spec, Mapping):
        raise _crd_invalid(crd, "spec", "Required value")
    group = spec.get("group")
    names = spec.get("names") or {}
    plural = names.get("plural")
    kind = names.get("kind")
    if not group:
        raise _crd_invalid(crd, "spec.group", "Required value")
    if not plural:
        raise _crd_invalid(crd, "spec.names.plural", "Required value")
    if not kind:
        raise _crd_invalid(crd, "spec.names.kind", "Required value")
    name = (crd.get("metadata") or {}).get("name", "")
    if name != f"{plural}.{group}":
        raise _crd_invalid(
            crd,
            "metadata.name",
            f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
        )
    scope = spec.get("scope", "Namespaced")
    if scope not in ("Namespaced", "Cluster"):
        raise _crd_invalid(
            crd,
            "spec.scope",
            f'Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"',
        )
    versions = spec.get("versions") or []
    if not versions:
        raise _crd_invalid(
            crd,
            "spec.versions",
            "Invalid value: null: must have exactly one version marked as storage version",
        )
    storage = [v.get("name") for v in versions if v.get("storage")]
    if len(storage) != 1:
        raise _crd_invalid(
            crd,
            "spec.versions",
            f"Invalid value: {len(storage)}: must have exactly one version marked as storage version",
        )
    _check_selectable_fields_placement(crd, versions)
    causes = conversion_causes(spec)
    if causes:
        raise errors.invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
    schemas: dict[str, StructuralSchema | None] = {}
    for i, ver in enumerate(versions):
        raw_schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        try:
            schemas[ver["name"]] = StructuralSchema(raw_schema) if raw_schema else None
        except SchemaError as exc:
            raise _crd_invalid(
                crd, f"spec.versions[{i}].schema.openAPIV3Schema", f"Invalid value: {exc}"
            ) from exc
    conversion = webhook_of(crd, schemas)
    infos: list[ResourceInfo] = []
    for ver in versions:
        if not ver.get("served", True):
            continue
        subs = ver.get("subresources") or {}
        subresources = set()
        scale: ScalePaths | None = None
        if "status" in subs:
            subresources.add("status")
        if "scale" in subs:
            sc = subs["scale"] or {}
            subresources.add("scale")
            scale = ScalePaths(
                spec_replicas=sc.get("specReplicasPath", ".spec.replicas"),
                status_replicas=sc.get("statusReplicasPath", ".status.replicas"),
                label_selector=sc.get("labelSelectorPath"),
            )
        raw_schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        schema = schemas[ver["name"]]
        selectable = {
            _jsonpath_field(f["jsonPath"])
            for f in ver.get("selectableFields") or []
            if isinstance(f, Mapping) and f.get("jsonPath")
        }
        infos.append(
            ResourceInfo(
                group=group,
                version=ver["name"],
                plural=plural,
                singular=names.get("singular") or kind.lower(),
                kind=kind,
                list_kind=names.get("listKind") or f"{kind}List",
                namespaced=scope == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=frozenset(subresources),
                scale=scale,
                field_selectors=BASE_FIELD_SELECTORS | selectable,
                schema=schema,
                openapi_schema=raw_schema,
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
                storage_version=storage[0],
                builtin=False,
                tracks_generation=True,
                conversion=conversion,
                merge_keys=schema_merge_keys(raw_schema),
            )
        )
    return infos


#: Metadata's keyed lists (as the built-ins' ``_META_KEYS``), whatever a CRD's schema says.
_CR_META_KEYS: dict[tuple[str, ...], str] = {
    ("metadata", "ownerReferences"): "uid",
    ("metadata", "finalizers"): "$set",
}


def schema_merge_keys(schema: Any) -> dict[tuple[str, ...], str]:
    """The keyed lists of a custom resource's schema, for server-side apply: every array with
    ``x-kubernetes-list-type: map`` and a single ``x-kubernetes-list-map-keys`` entry, by path
    (list items as ``*``), as kube's structured-merge-diff reads them (a list of another type,
    or keyed by several fields, stays atomic here)."""
    keys = dict(_CR_META_KEYS)

    def walk(node: Any, path: tuple[str, ...], depth: int) -> None:
        if not isinstance(node, Mapping) or depth > 64:
            return
        if node.get("type") == "array":
            map_keys = node.get("x-kubernetes-list-map-keys") or []
            if node.get("x-kubernetes-list-type") == "map" and len(map_keys) == 1:
                keys[path] = str(map_keys[0])
            walk(node.get("items"), (*path, "*"), depth + 1)
            return
        for name, child in (node.get("properties") or {}).items():
            walk(child, (*path, str(name)), depth + 1)

    walk(schema, (), 0)
    return keys
