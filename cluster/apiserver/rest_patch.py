"""PATCH: merge, JSON, strategic merge and server-side apply, ending in an update (or a create
for an apply of a missing object). Part of ``rest.ObjectService``'s write path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import errors
from .bodies import check_depth, load_yaml
from .patch import (
    ApplyConflict,
    PatchError,
    json_patch,
    merge_patch,
    server_side_apply,
    strategic_merge_patch,
)
from .resources import ResourceInfo
from .rest_common import (
    APPLY_PATCH,
    BUILTIN_PATCH_TYPES,
    CUSTOM_PATCH_TYPES,
    JSON_PATCH,
    MERGE_PATCH,
    ObjectWrites,
    WriteOptions,
    object_meta,
)

__all__ = ["patch_object"]


async def patch_object(
    svc: ObjectWrites,
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
    accepted = BUILTIN_PATCH_TYPES if info.builtin else CUSTOM_PATCH_TYPES
    if content_type not in accepted:
        raise errors.unsupported_media_type(content_type, accepted)
    ns = namespace if info.namespaced else ""
    old = svc.store.get(info.storage_key, ns, name)
    if old is not None and info.conversion is not None:
        old = await svc.converted(info, old)  # patched in the request's version, as kube
    try:
        if content_type == APPLY_PATCH:
            return await _apply(svc, info, namespace, name, old, body, opts, subresource)
        if old is None:
            raise errors.not_found(info, name)
        try:
            patch_doc = parse_json(body)
        except ValueError as exc:
            raise errors.bad_request(f"error decoding patch: {exc}") from exc
        if content_type == MERGE_PATCH:
            if not isinstance(patch_doc, dict):
                raise errors.bad_request("merge patch must be a JSON object")
            # patched in place on a fresh copy of the stored object, not copied value by value
            result = merge_patch(
                svc.present(info, svc.stored_copy(info, old)), patch_doc, owned=True
            )
        elif content_type == JSON_PATCH:
            result = json_patch(svc.present(info, old), patch_doc)
            check_depth(result)  # added values may land deep in the object
        else:
            if not isinstance(patch_doc, dict):
                raise errors.bad_request("strategic merge patch must be a JSON object")
            result = strategic_merge_patch(svc.present(info, old), patch_doc, info.merge_keys)
    except PatchError as exc:
        raise errors.ApiError(422, "Invalid", str(exc)) from exc
    if not isinstance(result, dict):
        raise errors.ApiError(422, "Invalid", "the patched object is not a JSON object")
    result_meta = object_meta(result)
    patched_rv = result_meta.get("resourceVersion")
    if patched_rv != old["metadata"].get("resourceVersion"):
        # the patch set a resourceVersion: it is a precondition, like kube
        pass
    else:
        result_meta.pop("resourceVersion", None)
    # the patched object is a new tree (the patch functions copy what they keep): handed over
    stored = await svc.update(
        info, namespace, name, result, opts, subresource=subresource, require_rv=False, owned=True
    )
    return stored, False


async def _apply(
    svc: ObjectWrites,
    info: ResourceInfo,
    namespace: str,
    name: str,
    old: dict[str, Any] | None,
    body: bytes,
    opts: WriteOptions,
    subresource: str,
) -> tuple[dict[str, Any], bool]:
    if not opts.field_manager:
        raise errors.invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value: is required for apply patch",
                    "field": "fieldManager",
                }
            ],
        )
    applied = load_yaml(body)
    if not isinstance(applied, dict):
        raise errors.bad_request("apply patch must be an object")
    svc.check_type(info, applied)
    if applied.get("metadata") is None:  # null: Go's zero ObjectMeta (the name is the URL's)
        applied["metadata"] = {}
    try:
        result = server_side_apply(
            svc.present(info, old) if old is not None else None,
            applied,
            manager=opts.field_manager,
            force=opts.force,
            merge_keys=info.merge_keys,
            now=svc.now(),
        )
    except ApplyConflict as exc:
        n = len(exc.conflicts)
        text = "; ".join(f'conflict with "{m}": {p}' for m, p in exc.conflicts)
        raise errors.ApiError(
            409,
            "Conflict",
            f"Apply failed with {n} conflict{'s' if n != 1 else ''}: {text}",
            details={
                "causes": [
                    {
                        "reason": "FieldManagerConflict",
                        "message": f'conflict with "{m}"',
                        "field": p,
                    }
                    for m, p in exc.conflicts
                ]
            },
        ) from exc
    if old is None:
        if subresource:
            raise errors.not_found(info, name)
        object_meta(result)["name"] = name
        return await svc.create(info, namespace, result, opts, owned=True), True
    object_meta(result).pop("resourceVersion", None)
    # the patched object is a new tree (the patch functions copy what they keep): handed over
    stored = await svc.update(
        info, namespace, name, result, opts, subresource=subresource, require_rv=False, owned=True
    )
    return stored, False
