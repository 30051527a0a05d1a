"""What create, update, patch and delete mean for an object: kube-apiserver's registry rules.

The HTTP layer (``server.py``) parses requests and calls ``ObjectService``; this module owns
metadata (uid, generateName, generation, resourceVersion preconditions), status/spec separation
for the status subresource, CR schema pruning/defaulting/validation and field validation modes,
finalizers and deletionTimestamp, propagation policies, pod graceful deletion, CRD registration,
and the admission chain. All object dicts it hands to the store are fresh copies.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from kubetrain.base.jsoncopy import json_copy

from . import errors
from ._kubetext import go_quote
from .builtins import ClusterIPAllocator, default_namespace, default_pod
from .conversion import Converter
from .conversion_spec import default_conversion
from .decoding import check_binding_types, check_body_types
from .hooks import AdmissionPlugin, AdmissionRequest
from .jobs_validation import job_causes
from .objectmeta import object_meta_causes
from .resources import ResourceInfo, ResourceRegistry, infos_from_crd
from .rest_common import (
    CRD_KEY,
    NS_KEY,
    POD_KEY,
    SVC_KEY,
    DeleteOptions,
    WriteOptions,
    has_namespace_finalizers,
    new_uid,
    now_rfc3339,
    object_meta,
)
from .rest_delete import delete_object
from .rest_patch import patch_object
from .store import API_VERSION, DATA, ObjectStore, Record
from .watch import reversion
from .workloads import validate_deployment

__all__ = ["ObjectService", "served_bytes"]

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apiserver's SimpleNameGenerator alphabet
DEPLOYMENT_KEY = ("apps", "deployments")
JOB_KEY = ("batch", "jobs")


def served_bytes(rec: Record, api_version: str) -> bytes:
    """A stored record's bytes as served under ``api_version`` (rewritten only if it differs)."""
    data = rec[DATA]
    return data if rec[API_VERSION] == api_version else reversion(data, api_version)


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Everything a generation bump depends on: all but metadata, status, apiVersion, kind."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class ObjectService:
    """The write path for every resource. ``admission`` is the server's plugin list (shared)."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        registry: ResourceRegistry,
        admission: list[AdmissionPlugin],
        cluster_ips: ClusterIPAllocator,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.registry = registry
        self.admission = admission
        self.cluster_ips = cluster_ips
        self.clock = clock
        self.converter: Converter | None = None
        """Set by the server: converts objects of CRDs with a conversion webhook."""

    # -- helpers -----------------------------------------------------------------------------

    def now(self) -> str:
        """The current time as kube prints it."""
        return now_rfc3339(self.clock())

    def get_existing(self, info: ResourceInfo, namespace: str, name: str) -> dict[str, Any]:
        """The stored object or 404."""
        obj = self.store.get(info.storage_key, namespace, name)
        if obj is None:
            raise errors.not_found(info, name)
        return obj

    def get_encoded(self, info: ResourceInfo, namespace: str, name: str) -> bytes:
        """The stored object's bytes as served under ``info``'s version, or 404; parses
        nothing unless the apiVersion must be rewritten."""
        rec = self.store.record(info.storage_key, namespace, name)
        if rec is None:
            raise errors.not_found(info, name)
        return served_bytes(rec, info.api_version)

    def present(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """``obj`` as served under ``info``'s version (apiVersion rewritten when it differs)."""
        if obj.get("apiVersion") != info.api_version:
            return {**obj, "apiVersion": info.api_version}
        return obj

    # -- conversion webhooks (``conversion.py``; only for ``info.conversion`` set) ------------

    async def converted(
        self, info: ResourceInfo, obj: dict[str, Any], version: str = ""
    ) -> dict[str, Any]:
        """``obj`` in ``version`` (default ``info``'s): ``obj`` itself when it is in it, else
        a new object the webhook converted (500 when it fails)."""
        version = version or info.version
        if obj.get("apiVersion") == f"{info.group}/{version}":
            return obj
        if self.converter is None:
            raise errors.internal("no converter for a CRD with a conversion webhook")
        (out,) = await self.converter.convert(info, [json_copy(obj)], version, as_list=False)
        return out

    async def get_converted(self, info: ResourceInfo, namespace: str, name: str) -> bytes:
        """``get_encoded`` for a resource converted by a webhook: the stored bytes when they
        are in ``info``'s version, else the object converted."""
        rec = self.store.record(info.storage_key, namespace, name)
        if rec is None:
            raise errors.not_found(info, name)
        if rec[API_VERSION] == info.api_version:
            return rec[DATA]
        return orjson.dumps(await self.converted(info, orjson.loads(rec[DATA])))

    async def encode_converted(self, info: ResourceInfo, obj: dict[str, Any]) -> bytes:
        """``encode`` for a resource converted by a webhook."""
        if obj.get("apiVersion") == info.api_version:
            return self.encode(info, obj)
        return orjson.dumps(await self.converted(info, obj))

    def stored_copy(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """A deep copy of ``obj``, for a write to change: parsed afresh from the stored bytes
        when ``obj`` is the stored object (what ``get_existing`` returned), which costs half of
        copying the tree."""
        data = self.store.encoded(info.storage_key, obj)
        return orjson.loads(data) if data is not None else json_copy(obj)

    def encode(self, info: ResourceInfo, obj: dict[str, Any]) -> bytes:
        """``present(info, obj)`` serialized: the stored bytes when ``obj`` is the stored
        object (what a write returned), so a write's answer costs no serialization."""
        if obj.get("apiVersion") == info.api_version:
            data = self.store.encoded(info.storage_key, obj)
            if data is not None:
                return data
        return orjson.dumps(self.present(info, obj))

    def _check_namespace(self, info: ResourceInfo, namespace: str, name: str) -> None:
        if not info.namespaced:
            return
        ns = self.store.get(NS_KEY, "", namespace)
        if ns is None:
            raise errors.ApiError(
                404,
                "NotFound",
                f'namespaces "{namespace}" not found',
                details={"name": namespace, "kind": "namespaces"},
            )
        if object_meta(ns).get("deletionTimestamp"):
            raise errors.forbidden(
                info,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def check_type(self, info: ResourceInfo, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        check_body_types(info, body)
        api_version = body.get("apiVersion")
        kind = body.get("kind")
        if api_version and api_version != info.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({info.api_version})"
            )
        if kind and kind != info.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({info.kind})"
            )
        return body

    def admission_idle(self) -> bool:
        """Whether every admission plugin says it would do nothing (``AdmissionPlugin.idle``):
        then a write skips admission, request object and all."""
        for plugin in self.admission:
            idle = getattr(plugin, "idle", None)
            if idle is None or not idle():
                return False
        return True

    async def _mutating_admission(
        self,
        info: ResourceInfo,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        *,
        operation: str,
        name: str,
        opts: WriteOptions,
        subresource: str = "",
    ) -> tuple[dict[str, Any], AdmissionRequest | None]:
        """``obj`` through the mutating admission plugins, and the request the validating ones
        read next (``_validating_admission``). While admission is idle (no webhooks: most
        writes) ``obj`` comes back as it is and no request is built."""
        if self.admission_idle():
            return obj, None
        request = AdmissionRequest(
            operation=operation,
            info=info,
            namespace=obj["metadata"].get("namespace", ""),
            name=name,
            obj=obj,
            old_obj=old,
            subresource=subresource,
            dry_run=opts.dry_run,
        )
        admitted = await self.admit(request, mutating=True)
        assert admitted is not None
        return admitted, request

    async def _validating_admission(
        self, request: AdmissionRequest | None, obj: dict[str, Any], opts: WriteOptions
    ) -> None:
        """The validating admission plugins on ``obj`` (the object about to be stored), their
        warnings added to ``opts``; nothing when ``_mutating_admission`` built no request."""
        if request is None:
            return
        request.obj = obj
        await self.admit(request, mutating=False)
        opts.warnings.extend(request.warnings)

    async def admit(self, request: AdmissionRequest, *, mutating: bool) -> dict[str, Any] | None:
        """Run the mutating (or the validating) admission plugins; return the final object."""
        obj = request.obj
        for plugin in self.admission:
            if bool(getattr(plugin, "mutating", False)) != mutating:
                continue
            request.obj = obj
            changed = await plugin.admit(request)
            if mutating and changed is not None:
                obj = changed
        return obj

    def _prepare_custom(self, info: ResourceInfo, obj: dict[str, Any], opts: WriteOptions) -> None:
        """Prune unknown fields per the field validation mode, then apply schema defaults."""
        schema = info.schema
        if schema is None:
            return
        removed = schema.prune(obj)
        if removed and opts.field_validation != "Ignore":
            if opts.field_validation == "Strict":
                raise errors.bad_request(
                    f'{info.kind} in version "{info.version}" cannot be handled as a '
                    f"{info.kind}: strict decoding error: "
                    + ", ".join(f"unknown field {go_quote(p)}" for p in removed)
                )
            opts.warnings.extend(f"unknown field {go_quote(p)}" for p in removed)
        schema.apply_defaults(obj)

    def _validate(
        self,
        info: ResourceInfo,
        obj: dict[str, Any],
        *,
        creating: bool,
        old: dict[str, Any] | None = None,
        subresource: str = "",
    ) -> None:
        meta = object_meta(obj)
        name = meta.get("name", "")
        causes = object_meta_causes(info.storage_key, meta, creating=creating)
        if info.schema is not None:
            causes.extend(c.to_dict() for c in info.schema.validate(obj))
        elif info.builtin and info.storage_key == DEPLOYMENT_KEY:
            causes.extend(validate_deployment(obj))
        elif info.builtin and info.storage_key == JOB_KEY:
            # on create also the strategy's selector generation (after mutating admission)
            causes.extend(job_causes(obj, old, subresource=subresource))
        if info.validator is not None:
            causes.extend(info.validator(obj))
        if causes:
            raise errors.invalid(info.kind, info.group, name, causes)

    def _status_reset_on_create(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        if info.builtin:
            if info.storage_key in (POD_KEY, SVC_KEY, NS_KEY, CRD_KEY):
                obj.pop("status", None)
            if info.storage_key in (DEPLOYMENT_KEY, JOB_KEY):
                obj.pop("status", None)
        elif info.has_status:
            obj.pop("status", None)

    def _default_builtin(
        self, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        key = info.storage_key
        if key == POD_KEY:
            default_pod(obj)
        elif key == SVC_KEY:
            if old is not None:
                spec = obj.get("spec")
                if not isinstance(spec, dict):  # null: Go's zero ServiceSpec
                    spec = obj["spec"] = {}
                old_spec = old.get("spec") or {}
                for f in ("clusterIP", "clusterIPs"):
                    if f not in spec and f in old_spec:
                        spec[f] = old_spec[f]
            self.cluster_ips.default_service(obj)
        elif key == ("", "secrets"):
            obj.setdefault("type", "Opaque")
        elif key == NS_KEY and old is None:
            default_namespace(obj)
        elif key == CRD_KEY:
            default_conversion(obj)
            if old is None:
                obj["status"] = _crd_status(obj, self.now())
        if info.defaulter is not None:
            info.defaulter(obj)

    # -- create ------------------------------------------------------------------------------

    async def create(
        self,
        info: ResourceInfo,
        namespace: str,
        body: Any,
        opts: WriteOptions,
        *,
        owned: bool = False,
    ) -> dict[str, Any]:
        """POST: returns the stored object (or what would be stored, under dry run).

        ``owned``: the caller hands ``body`` over (parsed for this request, shared with
        nothing), so it is used in place instead of copied; by default it is copied.
        """
        body = self.check_type(info, body)
        obj: dict[str, Any] = {"apiVersion": info.api_version, "kind": info.kind}
        obj.update(body if owned else json_copy(body))
        obj["apiVersion"] = (
            info.storage_api_version if info.conversion is None else info.api_version
        )
        obj["kind"] = info.kind
        meta = _own_metadata(obj)
        if info.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name:
            prefix = meta.get("generateName")
            if not prefix:
                raise errors.invalid(
                    info.kind,
                    info.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: name or generateName is required",
                            "field": "metadata.name",
                        }
                    ],
                )
            name = self._generate_name(info, namespace, prefix)
            meta["name"] = name
        self._check_namespace(info, namespace, name)
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion", "selfLink"):
            meta.pop(f, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = self.now()
        if info.tracks_generation:
            meta["generation"] = 1
        self._status_reset_on_create(info, obj)
        if info.builtin:
            self._default_builtin(info, obj, None)
        else:
            self._prepare_custom(info, obj, opts)
        return await self._persist_create(info, obj, opts)

    async def _persist_create(
        self, info: ResourceInfo, obj: dict[str, Any], opts: WriteOptions
    ) -> dict[str, Any]:
        meta = obj["metadata"]
        obj, request = await self._mutating_admission(
            info, obj, None, operation="CREATE", name=meta["name"], opts=opts
        )
        self._validate(info, obj, creating=True)
        if info.storage_key == CRD_KEY:
            infos_from_crd(obj)  # 422 for a CRD that cannot be served
        await self._validating_admission(request, obj, opts)
        if info.conversion is not None:
            obj = await self.converted(info, obj, info.storage_version)
            meta = obj["metadata"]
        if opts.dry_run:
            if self.store.contains(info.storage_key, meta.get("namespace", ""), meta["name"]):
                raise errors.already_exists(info, meta["name"])
            return obj
        stored = self.store.create(info, obj)
        self._after_commit(info, stored)
        return stored

    def _generate_name(self, info: ResourceInfo, namespace: str, prefix: str) -> str:
        base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
        for _ in range(8):
            name = base + "".join(random.choices(_NAME_CHARS, k=5))
            if not self.store.contains(
                info.storage_key, namespace if info.namespaced else "", name
            ):
                return name
        raise errors.already_exists(info, name)

    def _after_commit(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        if info.storage_key == CRD_KEY:
            self.registry.add_crd(obj)

    # -- update ------------------------------------------------------------------------------

    async def update(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions,
        *,
        subresource: str = "",
        require_rv: bool | None = None,
        owned: bool = False,
    ) -> dict[str, Any]:
        """PUT (also the end of every PATCH): returns the stored object.

        ``require_rv``: whether a missing metadata.resourceVersion is an error (default: for
        custom resources, as kube). A given rv that is not the stored one -> 409. ``owned``:
        as for ``create`` (``body`` is used in place, not copied).
        """
        self.check_type(info, body)
        meta_in = object_meta(body)
        ns = namespace if info.namespaced else ""
        if meta_in.get("name") and meta_in["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta_in['name']}) does not match the name on the URL ({name})"
            )
        if info.namespaced and meta_in.get("namespace") and meta_in["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        old = stored_old = self.get_existing(info, ns, name)
        if info.conversion is not None:
            old = await self.converted(info, old)
        rv = meta_in.get("resourceVersion")
        if not rv:
            if require_rv if require_rv is not None else not info.builtin:
                raise errors.invalid(
                    info.kind,
                    info.group,
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "message": "Invalid value: 0x0: must be specified for an update",
                            "field": "metadata.resourceVersion",
                        }
                    ],
                )
        elif rv != old["metadata"].get("resourceVersion"):
            raise errors.conflict(info, name)
        new = self._merge_for_update(info, old, body if owned else json_copy(body), subresource)
        if info.builtin:
            if not subresource:
                self._default_builtin(info, new, old)
        else:
            self._prepare_custom(info, new, opts)
        return await self._persist_update(
            info, old, new, opts, subresource=subresource, stored_old=stored_old
        )

    def _merge_for_update(
        self, info: ResourceInfo, old: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        old_meta = old["metadata"]
        if subresource == "finalize":
            merged = self.stored_copy(info, old)
            merged.setdefault("spec", {})["finalizers"] = list(
                (new.get("spec") or {}).get("finalizers") or []
            )
            return merged
        if subresource == "status":
            # everything but the status (and managedFields) stays as stored; ``new`` is owned
            merged = self.stored_copy(info, old)
            merged.pop("status", None)
            if "managedFields" in object_meta(new):
                merged["metadata"]["managedFields"] = object_meta(new)["managedFields"]
            if "status" in new:
                merged["status"] = new["status"]
            return merged
        new["apiVersion"] = (
            info.storage_api_version if info.conversion is None else info.api_version
        )
        new["kind"] = info.kind
        meta = _own_metadata(new)
        for f in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if f in old_meta:
                meta[f] = old_meta[f]
            else:
                meta.pop(f, None)
        for f in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in old_meta:
                meta[f] = old_meta[f]
            else:
                meta.pop(f, None)
        if "managedFields" not in meta and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        if info.has_status:
            if "status" in old:
                new["status"] = json_copy(old["status"])
            else:
                new.pop("status", None)
        return new

    async def _persist_update(
        self,
        info: ResourceInfo,
        old: dict[str, Any],
        new: dict[str, Any],
        opts: WriteOptions,
        *,
        subresource: str,
        stored_old: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Admit, validate and store ``new`` over ``old`` (both in ``info``'s version);
        ``stored_old``: the stored object when ``old`` is it converted (webhook conversion)."""
        old_meta = old["metadata"]
        meta = new["metadata"]
        name = meta["name"]
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
            if added:
                raise errors.invalid(
                    info.kind,
                    info.group,
                    name,
                    [
                        {
                            "reason": "FieldValueForbidden",
                            "message": "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers "
                            + "[]string{"
                            + ", ".join(go_quote(f) for f in sorted(added))
                            + "}",
                            "field": "metadata.finalizers",
                        }
                    ],
                )
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if info.tracks_generation and _spec_part(new) != _spec_part(old):
            meta["generation"] = int(old_meta.get("generation") or 0) + 1
        new, request = await self._mutating_admission(
            info, new, old, operation="UPDATE", name=name, opts=opts, subresource=subresource
        )
        self._validate(info, new, creating=False, old=old, subresource=subresource)
        if info.storage_key == CRD_KEY:
            infos_from_crd(new)
        await self._validating_admission(request, new, opts)
        if info.conversion is not None and stored_old is not None:
            new = await self.converted(info, new, info.storage_version)
            meta = new["metadata"]
            if new == stored_old:
                return old  # no-op, as below (compared in the storage version, as kube)
        if new == old:
            return old  # no-op: kube writes nothing and keeps the resourceVersion
        if opts.dry_run:
            return new
        rv = old_meta.get("resourceVersion")
        if (
            meta.get("deletionTimestamp")
            and not meta.get("finalizers")
            and not has_namespace_finalizers(info, new)
            and not meta.get("deletionGracePeriodSeconds")
        ):
            # like kube: the DELETED event carries the last stored state (finalizers as they
            # were) at a new resourceVersion; the caller gets the update as applied, at the
            # last stored resourceVersion
            self.store.delete(info, meta.get("namespace", ""), name, expected_rv=rv)
            return new
        stored = self.store.update(info, new, expected_rv=rv)
        self._after_commit(info, stored)
        return stored

    # -- patch and delete (rest_patch.py, rest_delete.py) -------------------------------------

    async def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        content_type: str,
        body: bytes,
        opts: WriteOptions,
        *,
        subresource: str = "",
        parse_json: Callable[[bytes], Any],
    ) -> tuple[dict[str, Any], bool]:
        """PATCH with any supported patch type; returns (object, created)."""
        return await patch_object(
            self,
            info,
            namespace,
            name,
            content_type,
            body,
            opts,
            subresource=subresource,
            parse_json=parse_json,
        )

    async def delete(
        self, info: ResourceInfo, namespace: str, name: str, options: DeleteOptions
    ) -> tuple[dict[str, Any], bool]:
        """DELETE: returns (object or Status, gone). ``gone`` False: still there (finalizers)."""
        return await delete_object(self, info, namespace, name, options)

    # -- subresources ------------------------------------------------------------------------

    async def bind(
        self, info: ResourceInfo, namespace: str, name: str, binding: Any
    ) -> dict[str, Any]:
        """POST pods/{name}/binding: set spec.nodeName (409 if already bound)."""
        if not isinstance(binding, dict):
            raise errors.bad_request("the body of the request must be a Binding object")
        check_binding_types(binding)
        target = binding.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid(
                "Binding",
                "",
                name,
                [
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": "target.name",
                    }
                ],
            )
        pod = self.get_existing(info, namespace, name)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict(info, name, "pod is being deleted, cannot be assigned to a host")
        current = (pod.get("spec") or {}).get("nodeName")
        if current:
            raise errors.conflict(
                info, name, f"pod {name} is already assigned to node {go_quote(current)}"
            )
        new = self.stored_copy(info, pod)
        new["spec"]["nodeName"] = node
        annotations = object_meta(binding).get("annotations")
        if annotations:
            new["metadata"].setdefault("annotations", {}).update(annotations)
        conds = new.setdefault("status", {}).setdefault("conditions", [])
        conds[:] = [c for c in conds if c.get("type") != "PodScheduled"]
        conds.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": self.now(),
            }
        )
        self.store.update(info, new, expected_rv=pod["metadata"]["resourceVersion"])
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "code": 201,
        }

    def register_loaded_crds(self) -> None:
        """Serve the CRDs found in the store (after a reload from persistence)."""
        crd_info = self.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        if crd_info is None:
            return
        for _, crd in self.store.iter_range(CRD_KEY, None):
            try:
                self.registry.add_crd(crd)
            except errors.ApiError:
                continue


def _own_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj.metadata`` (``obj`` is the write's own tree), ``{}`` set for a missing or null
    one (Go decodes null as the zero ObjectMeta; ``check_type`` refused other non-objects)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _crd_status(crd: dict[str, Any], now: str) -> dict[str, Any]:
    spec = crd.get("spec") or {}
    storage = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
    names = dict(spec.get("names") or {})
    if "singular" not in names and names.get("kind"):
        names["singular"] = str(names["kind"]).lower()
    if "listKind" not in names and names.get("kind"):
        names["listKind"] = f"{names['kind']}List"
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "lastTransitionTime": now,
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": storage,
    }
