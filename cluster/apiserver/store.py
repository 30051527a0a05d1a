"""The object store: every object of every resource, one global resourceVersion counter.

Objects are plain dicts. The store takes ownership of a dict when it commits it and never
mutates it afterwards (copy on write): handlers, watchers and listeners may keep references.
Per storage key the objects sit in a ``SortedDict`` keyed by (namespace, name), so a namespace
is a contiguous range and a page of a LIST costs O(log n + page), whatever the total.

Every commit goes, in order, to: the watch hub (history + fan-out), the registered listeners
(GC, persistence, metrics) and the storage backend (batched once per loop iteration).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from sortedcontainers import SortedDict

from . import errors
from .resources import ResourceInfo, StorageKey
from .selectors import FieldSelector, LabelSelector
from .watch import ADDED, DELETED, MODIFIED, WatchEvent, WatchHub

__all__ = [
    "Change",
    "Listener",
    "MemoryBackend",
    "ObjectKey",
    "ObjectStore",
    "StorageBackend",
]

ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

Listener = Callable[[str, ResourceInfo, dict[str, Any], "dict[str, Any] | None"], None]
"""``cb(event_type, info, obj, old_obj)`` after each commit; must not block or mutate."""


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, as the storage backend receives it."""

    type: str  # ADDED | MODIFIED | DELETED
    key: StorageKey
    obj: dict[str, Any]
    rv: int


class StorageBackend(Protocol):
    """Durable storage under the in-memory store.

    ``load`` runs once at start and returns the last committed resourceVersion and every stored
    object (with its storage key). ``append`` receives the changes committed during one event
    loop iteration, in rv order; it must not mutate them.
    """

    def load(self) -> tuple[int, Iterable[tuple[StorageKey, dict[str, Any]]]]: ...

    def append(self, changes: Sequence[Change]) -> None: ...


class MemoryBackend:
    """The default backend: nothing to load, nothing to keep."""

    def load(self) -> tuple[int, Iterable[tuple[StorageKey, dict[str, Any]]]]:
        return 0, ()

    def append(self, changes: Sequence[Change]) -> None:
        return None


def object_key(obj: dict[str, Any]) -> ObjectKey:
    """(namespace, name) of ``obj``."""
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


class ObjectStore:
    """All objects, indexed by storage key, (namespace, name) and owner uid.

    Invariants: ``rv`` is the resourceVersion of the last commit and only grows; every stored
    object's ``metadata.resourceVersion`` is the str of the commit that stored it;
    ``_dependents[uid]`` holds exactly the objects with an ownerReference to ``uid``.
    """

    def __init__(self, *, hub: WatchHub, backend: StorageBackend | None = None) -> None:
        self.hub = hub
        self.backend: StorageBackend = backend or MemoryBackend()
        self.rv = 0
        self._tables: dict[StorageKey, SortedDict] = {}
        self._dependents: dict[str, set[tuple[StorageKey, ObjectKey]]] = {}
        self._listeners: list[Listener] = []
        self._pending: list[Change] = []
        self._flush_scheduled = False

    # -- setup -------------------------------------------------------------------------------

    def load(self) -> list[tuple[StorageKey, dict[str, Any]]]:
        """Load the backend's objects (no events); return them so the caller can register CRDs."""
        rv, items = self.backend.load()
        loaded = list(items)
        for key, obj in loaded:
            self._table(key)[object_key(obj)] = obj
            self._index_owners(key, obj, None)
        self.rv = max(self.rv, rv)
        self.hub.start_rv = max(self.hub.start_rv, self.rv)
        return loaded

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event_type, info, obj, old_obj)`` after every commit."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    # -- reads -------------------------------------------------------------------------------

    def _table(self, key: StorageKey) -> SortedDict:
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = SortedDict()
        return table

    def get(self, key: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object or None. Do not mutate it."""
        table = self._tables.get(key)
        return None if table is None else table.get((namespace, name))

    def count(self, key: StorageKey, namespace: str | None = None) -> int:
        """Number of objects of ``key`` (in ``namespace`` when given): O(log n)."""
        table = self._tables.get(key)
        if not table:
            return 0
        if namespace is None:
            return len(table)
        lo = table.bisect_left((namespace, ""))
        hi = table.bisect_left((namespace + "\x00", ""))
        return int(hi - lo)

    def iter_range(
        self, key: StorageKey, namespace: str | None, *, after: ObjectKey | None = None
    ) -> Iterator[tuple[ObjectKey, dict[str, Any]]]:
        """(key, object) in (namespace, name) order, starting after ``after``; lazy."""
        table = self._tables.get(key)
        if not table:
            return
        if namespace is None:
            keys = table.irange(minimum=after, inclusive=(False, True)) if after else iter(table)
        else:
            lo = after if after and after[0] == namespace else (namespace, "")
            keys = table.irange(
                minimum=lo,
                maximum=(namespace + "\x00", ""),
                inclusive=(lo == (namespace, "") and after is None, False),
            )
        for k in keys:
            yield k, table[k]

    def list(
        self,
        key: StorageKey,
        namespace: str | None,
        *,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
        limit: int = 0,
        after: ObjectKey | None = None,
    ) -> tuple[list[dict[str, Any]], ObjectKey | None, int | None]:
        """A page of matching objects.

        Returns (items, last_key, remaining): ``last_key`` is set when more objects may follow
        (the caller builds a continue token from it); ``remaining`` counts the objects after the
        page when no selector is used (kube's remainingItemCount), else None.
        """
        lsel = None if label_selector is None or label_selector.empty else label_selector
        fsel = None if field_selector is None or field_selector.empty else field_selector
        items: list[dict[str, Any]] = []
        it = self.iter_range(key, namespace, after=after)
        if lsel is None and fsel is None:
            if limit <= 0:
                return [obj for _, obj in it], None, None
            page = list(islice(it, limit + 1))
            if len(page) <= limit:
                return [obj for _, obj in page], None, None
            page.pop()
            last = page[-1][0]
            remaining = self._count_after(key, namespace, last)
            return [obj for _, obj in page], last, remaining
        last_key: ObjectKey | None = None
        for k, obj in it:
            if lsel is not None and not lsel.matches((obj.get("metadata") or {}).get("labels")):
                continue
            if fsel is not None and not fsel.matches(obj):
                continue
            if limit > 0 and len(items) == limit:
                return items, last_key, None
            items.append(obj)
            last_key = k
        return items, None, None

    def _count_after(self, key: StorageKey, namespace: str | None, last: ObjectKey) -> int:
        table = self._tables[key]
        pos = table.bisect_right(last)
        end = len(table) if namespace is None else table.bisect_left((namespace + "\x00", ""))
        return int(end - pos)

    def dependents(self, owner_uid: str) -> builtins.list[tuple[StorageKey, ObjectKey]]:
        """Objects that list ``owner_uid`` in their ownerReferences (for the GC)."""
        return list(self._dependents.get(owner_uid, ()))

    def has_dependents(self, owner_uid: str) -> bool:
        """Whether any object lists ``owner_uid`` in its ownerReferences: O(1)."""
        return owner_uid in self._dependents

    def keys(self) -> builtins.list[StorageKey]:
        """Storage keys that have (or had) objects."""
        return list(self._tables)

    # -- writes ------------------------------------------------------------------------------

    def create(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        """ObjectStore a new object (the store takes ``obj`` and sets its resourceVersion).

        Raises 409 AlreadyExists when (namespace, name) is taken.
        """
        key = info.storage_key
        okey = object_key(obj)
        table = self._table(key)
        if okey in table:
            raise errors.already_exists(info, okey[1])
        return self._commit(ADDED, info, okey, obj, None)

    def update(
        self, info: ResourceInfo, obj: dict[str, Any], *, expected_rv: str | None = None
    ) -> dict[str, Any]:
        """Replace an existing object with ``obj`` (taken over; gets a new resourceVersion).

        ``expected_rv``: when given and not the stored object's, raises 409 Conflict.
        Raises 404 when the object does not exist.
        """
        okey = object_key(obj)
        old = self.get(info.storage_key, *okey)
        if old is None:
            raise errors.not_found(info, okey[1])
        if expected_rv is not None and old["metadata"].get("resourceVersion") != expected_rv:
            raise errors.conflict(info, okey[1])
        return self._commit(MODIFIED, info, okey, obj, old)

    def delete(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        *,
        expected_rv: str | None = None,
        final: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Remove an object; return it as deleted (carrying the deletion's rv).

        ``final`` (taken over) is the object's last state when a write removes it (an update
        that drops the last finalizer); by default a copy of the stored object.
        """
        old = self.get(info.storage_key, namespace, name)
        if old is None:
            raise errors.not_found(info, name)
        if expected_rv is not None and old["metadata"].get("resourceVersion") != expected_rv:
            raise errors.conflict(info, name)
        if final is None:
            final = {**old, "metadata": dict(old["metadata"])}
        return self._commit(DELETED, info, (namespace, name), final, old)

    def _commit(
        self,
        event_type: str,
        info: ResourceInfo,
        okey: ObjectKey,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> dict[str, Any]:
        self.rv += 1
        rv = self.rv
        obj["metadata"]["resourceVersion"] = str(rv)
        key = info.storage_key
        table = self._table(key)
        if event_type == DELETED:
            del table[okey]
            self._index_owners(key, None, old)
        else:
            table[okey] = obj
            self._index_owners(key, obj, old)
        self.hub.publish(key, WatchEvent(event_type, rv, obj, old, okey[0]))
        for listener in self._listeners:
            listener(event_type, info, obj, old)
        self._pending.append(Change(event_type, key, obj, rv))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()
        return obj

    def flush(self) -> None:
        """Hand pending changes to the backend now (also runs once per loop iteration)."""
        self._flush_scheduled = False
        if self._pending:
            batch, self._pending = self._pending, []
            self.backend.append(batch)

    def _index_owners(
        self, key: StorageKey, obj: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> None:
        new_uids = _owner_uids(obj)
        old_uids = _owner_uids(old)
        if new_uids == old_uids:
            return
        ref_old = (key, object_key(old)) if old is not None else None
        ref_new = (key, object_key(obj)) if obj is not None else None
        for uid in old_uids - new_uids:
            deps = self._dependents.get(uid)
            if deps is not None and ref_old is not None:
                deps.discard(ref_old)
                if not deps:
                    del self._dependents[uid]
        for uid in new_uids - old_uids:
            if ref_new is not None:
                self._dependents.setdefault(uid, set()).add(ref_new)


def _owner_uids(obj: dict[str, Any] | None) -> frozenset[str]:
    if obj is None:
        return frozenset()
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    if not refs:
        return frozenset()
    return frozenset(r["uid"] for r in refs if isinstance(r, dict) and r.get("uid"))
