"""What the write path's parts share: patch types, storage keys, write and delete options,
and ``ObjectWrites``, the part of ``rest.ObjectService`` that the PATCH and DELETE paths
(``rest_patch.py``, ``rest_delete.py``) call, so they need not import the service itself."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .builtins import ClusterIPAllocator
from .hooks import AdmissionRequest
from .resources import ResourceInfo, ResourceRegistry
from .store import ObjectStore

__all__ = [
    "APPLY_PATCH",
    "BUILTIN_PATCH_TYPES",
    "CRD_KEY",
    "CUSTOM_PATCH_TYPES",
    "JSON_PATCH",
    "MERGE_PATCH",
    "NS_KEY",
    "POD_KEY",
    "RETURN_DELETED_OBJECT",
    "STRATEGIC_PATCH",
    "SVC_KEY",
    "DeleteOptions",
    "ObjectWrites",
    "WriteOptions",
    "has_namespace_finalizers",
    "new_uid",
    "now_rfc3339",
    "object_meta",
]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
CUSTOM_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH, "application/apply-patch+cbor")
BUILTIN_PATCH_TYPES = (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_PATCH,
    APPLY_PATCH,
    "application/apply-patch+cbor",
)

RETURN_DELETED_OBJECT = frozenset({("", "pods"), ("", "services"), ("", "namespaces")})
CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
NS_KEY = ("", "namespaces")
POD_KEY = ("", "pods")
SVC_KEY = ("", "services")


_last_stamp: tuple[int, str] = (-1, "")  # (whole second, its text): writes come many a second


def now_rfc3339(at: float) -> str:
    """``at`` (seconds since the epoch, from the server's clock) in RFC 3339 UTC with seconds and
    ``Z``, as kube prints metav1.Time."""
    global _last_stamp
    second = int(at // 1)
    if _last_stamp[0] == second:
        return _last_stamp[1]
    text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
    _last_stamp = (second, text)
    return text


_UUID_VARIANT = {f"{i:x}": f"{(i & 3) | 8:x}" for i in range(16)}


_UID_BATCH = 128
# uids made ahead, 128 from one os.urandom call (a syscall) instead of one call per create;
# taken from the end
_uid_pool: list[str] = []


def _reset_uid_pool() -> None:
    """Drop the pool (in a forked child: it must not hand out the parent's next uids)."""
    _uid_pool.clear()


os.register_at_fork(after_in_child=_reset_uid_pool)


def new_uid() -> str:
    """A random (version 4, RFC 4122 variant) UUID as text: ``str(uuid.uuid4())`` without
    building the UUID object (a quarter of the cost; every create makes one)."""
    if not _uid_pool:
        digits = os.urandom(16 * _UID_BATCH).hex()
        variant = _UUID_VARIANT
        _uid_pool.extend(
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant[h[16]]}{h[17:20]}-{h[20:]}"
            for h in [digits[i : i + 32] for i in range(0, len(digits), 32)]
        )
    return _uid_pool.pop()


@dataclass(slots=True, kw_only=True)
class WriteOptions:
    """Query options of a write. ``field_validation``: Strict, Warn or Ignore (kube's default
    for requests that do not say is Warn)."""

    dry_run: bool = False
    field_validation: str = "Warn"
    field_manager: str = ""
    force: bool = False
    warnings: list[str] = field(default_factory=list)  # filled: one Warning header each


@dataclass(slots=True, kw_only=True)
class DeleteOptions:
    """DeleteOptions from the query string and/or the body."""

    propagation_policy: str | None = None
    grace_period_seconds: int | None = None
    precondition_uid: str | None = None
    precondition_rv: str | None = None
    dry_run: bool = False


def object_meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj.metadata`` when it is a dict, else an empty (throwaway) dict."""
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def has_namespace_finalizers(info: ResourceInfo, obj: dict[str, Any]) -> bool:
    """Whether ``obj`` is a namespace whose ``spec.finalizers`` still hold its removal."""
    return info.storage_key == NS_KEY and bool((obj.get("spec") or {}).get("finalizers"))


class ObjectWrites(Protocol):
    """The service the PATCH and DELETE paths write through (``rest.ObjectService``)."""

    store: ObjectStore
    registry: ResourceRegistry
    cluster_ips: ClusterIPAllocator
    clock: Callable[[], float]

    def now(self) -> str: ...

    def get_existing(self, info: ResourceInfo, namespace: str, name: str) -> dict[str, Any]: ...

    def present(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def converted(
        self, info: ResourceInfo, obj: dict[str, Any], version: str = ""
    ) -> dict[str, Any]: ...

    def check_type(self, info: ResourceInfo, body: Any) -> dict[str, Any]: ...

    async def admit(
        self, request: AdmissionRequest, *, mutating: bool
    ) -> dict[str, Any] | None: ...

    def stored_copy(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]: ...

    async def create(
        self,
        info: ResourceInfo,
        namespace: str,
        body: Any,
        opts: WriteOptions,
        *,
        owned: bool = False,
    ) -> dict[str, Any]: ...

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
    ) -> dict[str, Any]: ...
