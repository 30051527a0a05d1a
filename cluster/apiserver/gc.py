"""The garbage collector: kube-controller-manager's ownerReference GC, inside the API server.

There is no kube-controller-manager next to the embedded API server, so this module does its
garbage collector's job, through the same write path as any client (``rest.ObjectService``:
admission webhooks see the GC's writes, as on a real cluster):

- an owner gone from the store (Background propagation, or removed by a finalizer update):
  its dependents are deleted; a dependent that still names another live owner only loses the
  dead owner's reference;
- ``foregroundDeletion`` finalizer on a deleting owner: the dependents are deleted (in foreground
  themselves when they have dependents, so it recurses), and once no dependent with
  ``blockOwnerDeletion: true`` is left the finalizer is removed (the owner then disappears);
- ``orphan`` finalizer: the owner's reference is removed from every dependent, then the finalizer;
- an object whose ownerReference names an absent owner (no object under that kind/name, or one
  with another uid) is collected like a dependent of a deleted owner.

Owner references are resolved by (apiVersion, kind) -> resource, the dependent's namespace (for
namespaced owners) and name, then compared by uid. Dependents are found through the store's
owner-uid index (``ObjectStore.dependents``), never by scanning. References whose kind is not served
are left alone (kube retries those forever; a reference to a cluster-scoped dependent's
namespaced owner is likewise unresolvable and never collected, as in kube >= 1.20).

Work is queued (keys, deduplicated, one worker per key at a time) from the store's change
listener and done by a bounded pool of asyncio workers, so request handling never waits on GC.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from . import errors
from .resources import ResourceInfo, ResourceRegistry
from .rest import ObjectService
from .rest_common import DeleteOptions, WriteOptions
from .store import DATA, OWNERS, ObjectStore
from .workers import StoreWorkers

__all__ = ["GarbageCollector", "GcOptions"]

log = logging.getLogger(__name__)

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_GC_FINALIZERS = frozenset({FOREGROUND, ORPHAN})


@dataclass(kw_only=True)
class GcOptions:
    """Garbage collector options.

    - ``workers``: keys processed concurrently (kube's ``--concurrent-gc-syncs`` is 20; the
      store is in memory, so concurrency only helps while admission webhooks are called).
    - ``retry_base_seconds`` / ``retry_max_seconds``: per-key exponential backoff after a
      failed write (409 conflicts, webhook denials); retried until it succeeds, as kube does.
    - ``yield_every``: dependents handled between two yields to the event loop, so one owner with
      many dependents does not stall request handling.
    - ``time_slice_seconds``: how long the workers together run queued items back to back
      before they let the event loop serve requests (about the longest stall a GC burst causes
      per loop iteration; 0 yields after every item).
    """

    workers: int = 8
    retry_base_seconds: float = 0.005
    retry_max_seconds: float = 5.0
    yield_every: int = 64
    time_slice_seconds: float = 0.002


# Work items: ("obj", storage key, namespace, name): look at an object as a dependent (verify its
# owners) and, when it is being deleted with a GC finalizer, as an owner.
# ("gone", uid): an owner left the store: look at each of its dependents.
_Item = tuple[Any, ...]


class GarbageCollector(StoreWorkers):
    """Deletes dependents of deleted owners; runs the foreground and orphan finalizers.

    ``start()`` from a running loop once the store is loaded, ``await stop()`` at shutdown.
    """

    worker_name = "gc-worker"

    def __init__(
        self,
        *,
        store: ObjectStore,
        registry: ResourceRegistry,
        rest: ObjectService,
        options: GcOptions | None = None,
    ) -> None:
        self.options = options or GcOptions()
        super().__init__(
            store=store,
            workers=self.options.workers,
            retry_base_seconds=self.options.retry_base_seconds,
            retry_max_seconds=self.options.retry_max_seconds,
        )
        self.registry = registry
        self.rest = rest
        self._slice_start = 0.0  # loop time the workers' current shared time slice began
        self._next_slice: asyncio.Future[None] | None = None  # resolved when a new slice starts

    def _queue_existing(self) -> None:
        # from the records: only an object that names a finalizer at all is parsed
        for key in self.store.keys():  # noqa: SIM118 (ObjectStore, not a dict)
            for (ns, name), rec in self.store.iter_records(key, None):
                if rec[OWNERS] or (
                    b'"finalizers"' in rec[DATA]
                    and _gc_finalizers(orjson.loads(rec[DATA])["metadata"])
                ):
                    self.queue.add(("obj", key, ns, name))

    # -- listener (synchronous, O(owner refs) per change) -----------------------------------

    def _on_change(
        self, event_type: str, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        meta = obj["metadata"]
        key = info.storage_key
        okey = ("obj", key, meta.get("namespace", ""), meta["name"])
        refs = meta.get("ownerReferences") or ()
        if event_type == "DELETED":
            uid = meta.get("uid")
            if uid and self.store.has_dependents(uid):
                self.queue.add(("gone", uid))
            # an owner in foreground deletion may have been waiting for this one
            self._wake_foreground_owners(meta.get("namespace", ""), refs)
            return
        old_meta = old["metadata"] if old is not None else {}
        old_refs = old_meta.get("ownerReferences") or ()
        if refs and (old is None or refs != old_refs) and not self._owners_solid(meta, refs):
            self.queue.add(okey)
        if old_refs and refs != old_refs:
            self._wake_foreground_owners(meta.get("namespace", ""), old_refs)
        if (
            meta.get("deletionTimestamp")
            and _gc_finalizers(meta)
            and (old is None or meta.get("finalizers") != old_meta.get("finalizers"))
        ):
            self.queue.add(okey)

    def _owners_solid(self, meta: dict[str, Any], refs: Iterable[dict[str, Any]]) -> bool:
        """Whether ``_attempt_to_delete`` would find nothing to do for this object now: it is not
        being deleted and every owner it names is live (same uid, not in foreground deletion)
        or of a kind not served. Checked at commit so that the common case (a controller's new
        pod, its owner right there) never goes through the queue; it stays correct later
        because whatever changes an owner afterwards (deleted, replaced, foreground deletion
        started) queues its dependents itself (``gone`` items, the foreground finalizer)."""
        if meta.get("deletionTimestamp"):
            return False
        namespace = meta.get("namespace", "")
        for ref in refs:
            if not isinstance(ref, dict):
                return False  # the worker reports it
            found = self._resolve(ref, namespace)
            if found is None:
                continue  # a kind not served: solid, never collected on its account
            owner = found[1]
            if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
                return False
            ometa = owner["metadata"]
            if ometa.get("deletionTimestamp") and FOREGROUND in (ometa.get("finalizers") or ()):
                return False
        return True

    def _wake_foreground_owners(self, namespace: str, refs: Iterable[dict[str, Any]]) -> None:
        for ref in refs:
            found = self._resolve(ref, namespace)
            if found is None:
                continue
            info, owner = found
            if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
                continue
            ometa = owner["metadata"]
            if ometa.get("deletionTimestamp") and FOREGROUND in (ometa.get("finalizers") or ()):
                self.queue.add(("obj", info.storage_key, ometa.get("namespace", ""), ometa["name"]))

    # -- workers -----------------------------------------------------------------------------

    async def _before_item(self) -> None:
        await self._wait_for_slice(asyncio.get_running_loop())

    async def _handle(self, item: Any) -> None:
        await self._process(item)

    def _log_failure(self, item: Hashable, delay: float, exc: Exception) -> None:
        if not (isinstance(exc, errors.ApiError) and exc.code == 409):  # a race, retried quietly
            super()._log_failure(item, delay, exc)

    async def _wait_for_slice(self, loop: asyncio.AbstractEventLoop) -> None:
        """asyncio.Queue.get does not suspend while items wait: once the time slice shared by
        all workers is used up, every worker waits for the next loop iteration, where a new
        slice starts, so a burst never holds up request handling for long."""
        if loop.time() - self._slice_start < self.options.time_slice_seconds:
            return
        next_slice = self._next_slice
        if next_slice is None:
            next_slice = self._next_slice = loop.create_future()
            loop.call_soon(self._renew_slice, loop)
        await asyncio.shield(next_slice)

    def _renew_slice(self, loop: asyncio.AbstractEventLoop) -> None:
        next_slice, self._next_slice = self._next_slice, None
        self._slice_start = loop.time()
        if next_slice is not None and not next_slice.done():
            next_slice.set_result(None)

    async def _process(self, item: _Item) -> None:
        if item[0] == "gone":
            for key, (ns, name) in self.store.dependents(item[1]):
                self.queue.add(("obj", key, ns, name))
            return
        _, key, ns, name = item
        obj = self.store.get(key, ns, name)
        if obj is None:
            return
        info = self.registry.any_version(key)
        if info is None:
            return
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or ()
            if ORPHAN in finalizers:
                await self._orphan_dependents(info, obj)
            elif FOREGROUND in finalizers:
                await self._delete_dependents_then_owner(info, obj)
            return
        if meta.get("ownerReferences"):
            await self._attempt_to_delete(info, obj)

    # -- owners ------------------------------------------------------------------------------

    def _resolve(
        self, ref: dict[str, Any], namespace: str
    ) -> tuple[ResourceInfo, dict[str, Any] | None] | None:
        """(owner's resource, owner or None when absent); None when the kind is not served."""
        api_version = str(ref.get("apiVersion") or "")
        kind = str(ref.get("kind") or "")
        info = self.registry.by_kind(api_version, kind)
        if info is None:
            group = api_version.rpartition("/")[0] if "/" in api_version else ""
            info = next(
                (i for i in self.registry.all() if i.group == group and i.kind == kind), None
            )
            if info is None:
                return None
        if info.namespaced and not namespace:
            return None  # a cluster-scoped dependent cannot name a namespaced owner
        owner_ns = namespace if info.namespaced else ""
        return info, self.store.get(info.storage_key, owner_ns, str(ref.get("name") or ""))

    async def _attempt_to_delete(self, info: ResourceInfo, obj: dict[str, Any]) -> None:
        """kube's attemptToDeleteItem: classify each owner as solid, dangling or waiting."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        solid = False
        drop: set[str] = set()  # uids of dangling and waiting owners
        waiting = False
        for ref in meta.get("ownerReferences") or ():
            found = self._resolve(ref, namespace)
            if found is None:
                solid = True  # unresolvable: never collect on its account
                continue
            owner = found[1]
            if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
                drop.add(str(ref.get("uid")))
            elif owner["metadata"].get("deletionTimestamp") and FOREGROUND in (
                owner["metadata"].get("finalizers") or ()
            ):
                drop.add(str(ref.get("uid")))
                waiting = True
            else:
                solid = True
        if solid:
            if drop:
                await self._remove_owner_refs(info, obj, drop)
            return
        if waiting and self.store.has_dependents(meta["uid"]):
            policy = "Foreground"
        else:
            finalizers = meta.get("finalizers") or ()
            policy = (
                "Orphan"
                if ORPHAN in finalizers
                else "Foreground"
                if FOREGROUND in finalizers
                else "Background"
            )
        await self._delete(info, obj, policy)

    async def _delete(self, info: ResourceInfo, obj: dict[str, Any], policy: str) -> None:
        meta = obj["metadata"]
        try:
            await self.rest.delete(
                info,
                meta.get("namespace", ""),
                meta["name"],
                DeleteOptions(propagation_policy=policy, precondition_uid=meta["uid"]),
            )
        except errors.ApiError as exc:
            if exc.code != 404:
                raise

    async def _remove_owner_refs(
        self, info: ResourceInfo, obj: dict[str, Any], uids: set[str]
    ) -> None:
        new = self.rest.stored_copy(info, obj)
        meta = new["metadata"]
        meta["ownerReferences"] = [
            r for r in meta.get("ownerReferences") or () if r.get("uid") not in uids
        ]
        if not meta["ownerReferences"]:
            del meta["ownerReferences"]
        await self._update(info, new)

    async def _remove_finalizer(self, info: ResourceInfo, obj: dict[str, Any], name: str) -> None:
        new = self.rest.stored_copy(info, obj)
        meta = new["metadata"]
        meta["finalizers"] = [f for f in meta.get("finalizers") or () if f != name]
        if not meta["finalizers"]:
            del meta["finalizers"]
        await self._update(info, new)

    async def _update(self, info: ResourceInfo, new: dict[str, Any]) -> None:
        """Write ``new`` with its resourceVersion as precondition (409 -> retried later)."""
        meta = new["metadata"]
        try:
            await self.rest.update(
                info,
                meta.get("namespace", ""),
                meta["name"],
                self.rest.present(info, new),
                WriteOptions(field_manager="garbage-collector"),
                require_rv=True,
            )
        except errors.ApiError as exc:
            if exc.code != 404:
                raise

    async def _delete_dependents_then_owner(
        self, info: ResourceInfo, owner: dict[str, Any]
    ) -> None:
        """Foreground: delete every dependent; drop the finalizer once none blocks."""
        uid = owner["metadata"]["uid"]
        blocking = 0
        for n, (key, (ns, name)) in enumerate(self.store.dependents(uid)):
            if n and n % self.options.yield_every == 0:
                await asyncio.sleep(0)
            dep = self.store.get(key, ns, name)
            dep_info = self.registry.any_version(key)
            if dep is None or dep_info is None:
                continue
            if not dep["metadata"].get("deletionTimestamp"):
                await self._attempt_to_delete(dep_info, dep)
                dep = self.store.get(key, ns, name)
                if dep is None:
                    continue
            if any(
                r.get("uid") == uid and r.get("blockOwnerDeletion")
                for r in dep["metadata"].get("ownerReferences") or ()
            ):
                blocking += 1
        if blocking == 0:
            current = self.store.get(info.storage_key, *_okey(owner))
            if current is not None and current["metadata"].get("uid") == uid:
                await self._remove_finalizer(info, current, FOREGROUND)

    async def _orphan_dependents(self, info: ResourceInfo, owner: dict[str, Any]) -> None:
        """Orphan: remove the owner's reference from every dependent, then the finalizer."""
        uid = owner["metadata"]["uid"]
        for n, (key, (ns, name)) in enumerate(self.store.dependents(uid)):
            if n and n % self.options.yield_every == 0:
                await asyncio.sleep(0)
            dep = self.store.get(key, ns, name)
            dep_info = self.registry.any_version(key)
            if dep is None or dep_info is None:
                continue
            await self._remove_owner_refs(dep_info, dep, {uid})
        current = self.store.get(info.storage_key, *_okey(owner))
        if current is not None and current["metadata"].get("uid") == uid:
            await self._remove_finalizer(info, current, ORPHAN)


def _gc_finalizers(meta: dict[str, Any]) -> bool:
    return bool(_GC_FINALIZERS.intersection(meta.get("finalizers") or ()))


def _okey(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]
