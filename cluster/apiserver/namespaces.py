"""Namespace lifecycle controller: empties a deleted namespace, then lets it go.

``DELETE namespaces/x`` (``rest.ObjectService.delete``) only marks the namespace: status.phase
``Terminating`` and a deletionTimestamp, held by ``spec.finalizers: [kubernetes]``; creates in it
are refused from then on (403, ``unable to create new content in namespace x because it is being
terminated``, done by the core's write path). Like kube-controller-manager's namespace
controller, this one then deletes every namespaced object of every served resource in it
(Background propagation, respecting each object's finalizers and pods' grace periods), and once
nothing is left removes the ``kubernetes`` finalizer through ``namespaces/x/finalize``, which
removes the namespace (unless other finalizers still hold it).

It re-checks a terminating namespace whenever an object in it is removed from the store, so an
object held by a finalizer delays the namespace exactly until that finalizer is gone. While
content remains it records kube's ``NamespaceContentRemaining`` /
``NamespaceFinalizersRemaining`` conditions on the namespace's status.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from . import errors
from .resources import ResourceInfo, ResourceRegistry
from .rest import ObjectService
from .rest_common import DeleteOptions, WriteOptions, now_rfc3339
from .store import ObjectStore
from .workers import StoreWorkers

__all__ = ["NamespaceController"]

log = logging.getLogger(__name__)

_NS_KEY = ("", "namespaces")
KUBERNETES_FINALIZER = "kubernetes"


class NamespaceController(StoreWorkers):
    """Deletes the content of terminating namespaces and finalizes them.

    ``start()`` from a running loop once the store is loaded (registers the listener and queues
    namespaces already terminating), ``await stop()`` at shutdown. ``workers`` namespaces are emptied
    concurrently.

    Invariant: ``_terminating`` holds the names of stored namespaces with a deletionTimestamp
    (kept by the listener), so the per-change check is one set lookup.
    """

    worker_name = "namespace-worker"

    def __init__(
        self,
        *,
        store: ObjectStore,
        registry: ResourceRegistry,
        rest: ObjectService,
        workers: int = 2,
        retry_max_seconds: float = 5.0,
    ) -> None:
        super().__init__(
            store=store,
            workers=workers,
            retry_base_seconds=0.01,
            retry_max_seconds=retry_max_seconds,
        )
        self.registry = registry
        self.rest = rest
        self._terminating: set[str] = set()

    def _queue_existing(self) -> None:
        """Queue namespaces already terminating (loaded from storage)."""
        for (_, name), ns in self.store.iter_range(_NS_KEY, None):
            if ns["metadata"].get("deletionTimestamp"):
                self._terminating.add(name)
                self.queue.add(name)

    # -- listener ----------------------------------------------------------------------------

    def _on_change(
        self, event_type: str, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        meta = obj["metadata"]
        if info.storage_key == _NS_KEY:
            name = meta["name"]
            if event_type == "DELETED":
                self._terminating.discard(name)
            elif meta.get("deletionTimestamp"):
                self._terminating.add(name)
                if old is None or not old["metadata"].get("deletionTimestamp"):
                    self.queue.add(name)
            return
        if event_type == "DELETED" and self._terminating:
            ns = meta.get("namespace")
            if ns and ns in self._terminating:
                self.queue.add(ns)

    # -- work --------------------------------------------------------------------------------

    async def _handle(self, item: Any) -> None:
        await self._sync(str(item))

    async def _after_item(self) -> None:
        # asyncio.Queue.get does not suspend while items wait: yield, so a burst of work never
        # holds up request handling for more than one item.
        await asyncio.sleep(0)

    def _namespaced_resources(self) -> list[ResourceInfo]:
        """One served info per namespaced storage key."""
        out: dict[tuple[str, str], ResourceInfo] = {}
        for info in self.registry.all():
            if info.namespaced and info.storage_key not in out:
                chosen = self.registry.any_version(info.storage_key)
                if chosen is not None:
                    out[info.storage_key] = chosen
        return list(out.values())

    async def _sync(self, name: str) -> None:
        ns = self.store.get(_NS_KEY, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if KUBERNETES_FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or ()):
            return
        remaining: dict[str, int] = {}
        held: dict[str, int] = {}  # finalizer -> objects it holds
        for info in self._namespaced_resources():
            key = info.storage_key
            if not self.store.count(key, name):
                continue
            for n, ((_, obj_name), obj) in enumerate(list(self.store.iter_range(key, name))):
                if n and n % 64 == 0:
                    await asyncio.sleep(0)  # a big namespace must not stall request handling
                meta = obj["metadata"]
                if not meta.get("deletionTimestamp"):
                    try:
                        await self.rest.delete(
                            info,
                            name,
                            obj_name,
                            DeleteOptions(
                                propagation_policy="Background", precondition_uid=meta["uid"]
                            ),
                        )
                    except errors.ApiError as exc:
                        if exc.code not in (404, 409):
                            raise
            left = self.store.count(key, name)
            if left:
                # kube prints resource.group, with the dot for core ("configmaps.")
                remaining[f"{info.plural}.{info.group}"] = left
                for _, obj in self.store.iter_range(key, name):
                    for f in obj["metadata"].get("finalizers") or ():
                        held[f] = held.get(f, 0) + 1
            await asyncio.sleep(0)
        if remaining:
            await self._set_conditions(name, remaining, held)
            return
        await self._finalize(name)

    async def _finalize(self, name: str) -> None:
        ns = self.store.get(_NS_KEY, "", name)
        if ns is None:
            return
        info = self.registry.lookup("", "v1", "namespaces")
        assert info is not None
        body = self.rest.stored_copy(info, ns)
        body["spec"]["finalizers"] = [
            f for f in body["spec"].get("finalizers") or () if f != KUBERNETES_FINALIZER
        ]
        try:
            await self.rest.update(info, "", name, body, WriteOptions(), subresource="finalize")
        except errors.ApiError as exc:
            if exc.code != 404:
                raise

    async def _set_conditions(
        self, name: str, remaining: dict[str, int], held: dict[str, int]
    ) -> None:
        """kube's NamespaceContentRemaining / NamespaceFinalizersRemaining, when they change."""
        ns = self.store.get(_NS_KEY, "", name)
        info = self.registry.lookup("", "v1", "namespaces")
        if ns is None or info is None:
            return
        content = ", ".join(
            f"{res} has {n} resource instances" for res, n in sorted(remaining.items())
        )
        wanted = [
            _condition(
                "NamespaceContentRemaining",
                "SomeResourcesRemain",
                f"Some resources are remaining: {content}",
            )
        ]
        if held:
            text = ", ".join(f"{f} in {n} resource instances" for f, n in sorted(held.items()))
            wanted.append(
                _condition(
                    "NamespaceFinalizersRemaining",
                    "SomeFinalizersRemain",
                    f"Some content in the namespace has finalizers remaining: {text}",
                )
            )
        status = ns.get("status") or {}
        kept = [
            c
            for c in status.get("conditions") or ()
            if c.get("type") not in ("NamespaceContentRemaining", "NamespaceFinalizersRemaining")
        ]
        old_by_type = {c.get("type"): c for c in status.get("conditions") or ()}
        for cond in wanted:
            previous = old_by_type.get(cond["type"])
            if previous is not None and previous.get("message") == cond["message"]:
                cond["lastTransitionTime"] = previous.get("lastTransitionTime")
            else:
                cond["lastTransitionTime"] = now_rfc3339(self.rest.clock())
        conditions = kept + wanted
        if conditions == status.get("conditions"):
            return
        body = self.rest.stored_copy(info, ns)
        body.setdefault("status", {})["conditions"] = conditions
        try:
            await self.rest.update(info, "", name, body, WriteOptions(), subresource="status")
        except errors.ApiError as exc:
            if exc.code not in (404, 409):
                raise


def _condition(cond_type: str, reason: str, message: str) -> dict[str, Any]:
    return {"type": cond_type, "status": "True", "reason": reason, "message": message}
