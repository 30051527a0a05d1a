"""DELETE: preconditions, propagation-policy finalizers, deletionTimestamp, pod graceful
deletion, what the response carries, and CRD teardown. Part of ``rest.ObjectService``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import errors
from .hooks import AdmissionRequest
from .resources import ResourceInfo
from .rest_common import (
    CRD_KEY,
    NS_KEY,
    POD_KEY,
    RETURN_DELETED_OBJECT,
    SVC_KEY,
    DeleteOptions,
    ObjectWrites,
    has_namespace_finalizers,
    now_rfc3339,
)

__all__ = ["delete_object"]


@dataclass(frozen=True, slots=True)
class _KindAsResource:
    """An ``errors.GroupResource`` whose "plural" is the Kind, as kube names the resource in
    delete-precondition conflicts (``Operation cannot be fulfilled on ConfigMap "x"``)."""

    group: str
    plural: str


async def delete_object(
    svc: ObjectWrites, info: ResourceInfo, namespace: str, name: str, options: DeleteOptions
) -> tuple[dict[str, Any], bool]:
    """DELETE: returns (object or Status, gone). ``gone`` False: still there (finalizers)."""
    ns = namespace if info.namespaced else ""
    policy = options.propagation_policy
    if policy not in (None, "Orphan", "Background", "Foreground"):
        raise errors.invalid(
            "DeleteOptions",
            "meta.k8s.io",
            "",
            [
                {
                    "reason": "FieldValueNotSupported",
                    "message": f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan"',
                    "field": "propagationPolicy",
                }
            ],
        )
    old = svc.get_existing(info, ns, name)
    old_meta = old["metadata"]
    # kube's rest.BeforeDelete: the conflict names the Kind (GroupResource{group, Kind})
    by_kind = _KindAsResource(group=info.group, plural=info.kind)
    if options.precondition_uid and options.precondition_uid != old_meta.get("uid"):
        raise errors.conflict(
            by_kind,
            name,
            f"the UID in the precondition ({options.precondition_uid}) does not match the UID "
            f"in record ({old_meta.get('uid')}). The object might have been deleted and then "
            "recreated",
        )
    if options.precondition_rv and options.precondition_rv != old_meta.get("resourceVersion"):
        raise errors.conflict(
            by_kind,
            name,
            f"the ResourceVersion in the precondition ({options.precondition_rv}) does not match "
            f"the ResourceVersion in record ({old_meta.get('resourceVersion')}). The object "
            "might have been modified",
        )
    finalizers = list(old_meta.get("finalizers") or [])
    if policy == "Orphan" and "orphan" not in finalizers:
        finalizers.append("orphan")
        finalizers = [f for f in finalizers if f != "foregroundDeletion"]
    elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
        finalizers.append("foregroundDeletion")
        finalizers = [f for f in finalizers if f != "orphan"]
    grace = _grace_period(svc, info, old, options)
    pending = bool(finalizers) or grace > 0 or has_namespace_finalizers(info, old)
    request = AdmissionRequest(
        operation="DELETE",
        info=info,
        namespace=ns,
        name=name,
        obj=None,
        old_obj=old,
        dry_run=options.dry_run,
    )
    await svc.admit(request, mutating=True)
    await svc.admit(request, mutating=False)
    if pending:
        new = svc.stored_copy(info, old)
        meta = new["metadata"]
        if finalizers:
            meta["finalizers"] = finalizers
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = now_rfc3339(svc.clock() + grace)
            meta["deletionGracePeriodSeconds"] = grace
            if int(meta.get("generation") or 0) > 0:  # kube: bump a generation only if set
                meta["generation"] = int(meta["generation"]) + 1
        elif grace < int(meta.get("deletionGracePeriodSeconds") or 0):
            meta["deletionTimestamp"] = now_rfc3339(svc.clock() + grace)
            meta["deletionGracePeriodSeconds"] = grace
        if info.storage_key == NS_KEY:
            new.setdefault("status", {})["phase"] = "Terminating"
        if new == old or options.dry_run:
            return svc.present(info, new), False
        stored = svc.store.update(info, new, expected_rv=old_meta.get("resourceVersion"))
        return svc.present(info, stored), False
    if options.dry_run:
        return _deleted_result(svc, info, old), True
    if info.storage_key == CRD_KEY:
        _delete_custom_resources(svc, old)
    final = svc.store.delete(info, ns, name, expected_rv=old_meta.get("resourceVersion"))
    if info.storage_key == CRD_KEY:
        svc.registry.remove_crd(final)
    if info.storage_key == SVC_KEY:
        ip = (final.get("spec") or {}).get("clusterIP")
        if ip and ip != "None":
            svc.cluster_ips.release(ip)
    return _deleted_result(svc, info, final), True


def _grace_period(
    svc: ObjectWrites, info: ResourceInfo, old: dict[str, Any], options: DeleteOptions
) -> int:
    """Pods bound to a node and not finished are deleted gracefully, as by kube."""
    if info.storage_key != POD_KEY:
        return 0
    spec = old.get("spec") or {}
    phase = (old.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    if options.grace_period_seconds is not None:
        return max(0, options.grace_period_seconds)
    current = old["metadata"].get("deletionGracePeriodSeconds")
    if current is not None:
        return int(current)
    return int(spec.get("terminationGracePeriodSeconds", 30))


def _deleted_result(svc: ObjectWrites, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    if info.storage_key in RETURN_DELETED_OBJECT:
        return svc.present(info, obj)
    meta = obj["metadata"]
    details: dict[str, Any] = {
        "name": meta.get("name"),
        "kind": info.plural,
        "uid": meta.get("uid"),
    }
    if info.group:
        details["group"] = info.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _delete_custom_resources(svc: ObjectWrites, crd: dict[str, Any]) -> None:
    spec = crd.get("spec") or {}
    key = (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
    info = svc.registry.any_version(key)
    if info is None:
        return
    for (ns, name), _rec in list(svc.store.iter_records(key, None)):
        svc.store.delete(info, ns, name)
