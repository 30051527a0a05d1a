"""The informer cache: objects by key, with named indexes, for one event loop.

One ``Store`` backs one informer. It is deliberately not thread-safe: everything runs on the
operator's single event loop, so plain dicts suffice and no lock is paid per read.

Read-only contract: objects handed in become owned by the store, and everything returned by
``get``/``list``/``by_index`` (and passed to event handlers) is shared with every other reader. Callers
must never mutate them; copy first (``copy.deepcopy`` or ``orjson.loads(orjson.dumps(obj))``).
Debug aid: ``detect_mutations=True`` (or env ``KUBETRAIN_CACHE_MUTATION_DETECTOR=true``) snapshots each
object on insert and raises ``CacheMutationError`` when a cached object changed behind the store's
back (checked when it is replaced or deleted, and by ``check_mutations()``), like client-go's
``KUBE_CACHE_MUTATION_DETECTOR``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from kubetrain.base.objects import Obj, object_key, resource_version_of

from .indexers import NAMESPACE_INDEX, namespace_index
from .objects import IndexFunc
from .tombstone import DeletedFinalStateUnknown

__all__ = ["CacheMutationError", "IndexNotFoundError", "ReplaceResult", "Store"]

_MUTATION_DETECTOR_ENV = "KUBETRAIN_CACHE_MUTATION_DETECTOR"


class IndexNotFoundError(KeyError):
    """``by_index``/``index_keys`` named an index the store does not have."""


class CacheMutationError(RuntimeError):
    """A cached object was mutated by a reader (see the read-only contract of ``Store``)."""


@dataclass(slots=True)
class ReplaceResult:
    """What ``Store.replace`` changed, for the informer to turn into handler calls."""

    added: list[Obj] = field(default_factory=list)
    """Objects that were not cached before."""
    updated: list[tuple[Obj, Obj]] = field(default_factory=list)
    """``(old, new)`` pairs. When the resourceVersion did not change the store keeps the cached
    object and reports ``(old, old)``: the same identity, i.e. nothing to do (a resync)."""
    deleted: list[DeletedFinalStateUnknown] = field(default_factory=list)
    """Cached objects missing from the new list: deleted while we were not watching."""


class Store:
    """Objects by ``object_key``, with named indexes. Single event loop; read-only objects."""

    def __init__(
        self,
        *,
        indexers: Mapping[str, IndexFunc] | None = None,
        detect_mutations: bool | None = None,
    ) -> None:
        """``indexers`` are added to the default ``namespace`` index.

        ``detect_mutations``: None reads env ``KUBETRAIN_CACHE_MUTATION_DETECTOR`` (default off).
        """
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = {NAMESPACE_INDEX: namespace_index}
        # Invariant: for each index name, value -> non-empty set of keys, and key is in
        # _indices[name][v] iff v is in _indexers[name](_items[key]). Empty sets are removed.
        self._indices: dict[str, dict[str, set[str]]] = {NAMESPACE_INDEX: {}}
        self._resource_version = ""
        if detect_mutations is None:
            detect_mutations = os.environ.get(_MUTATION_DETECTOR_ENV, "").lower() in ("1", "true")
        # key -> orjson snapshot taken on insert; only when detecting mutations.
        self._snapshots: dict[str, bytes] | None = {} if detect_mutations else None
        if indexers:
            self.add_indexers(indexers)

    # -- reads ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: str) -> Obj | None:
        """The cached object with ``key`` (``namespace/name`` or ``name``), or None."""
        return self._items.get(key)

    def list(self) -> builtins.list[Obj]:
        """Every cached object (a new list of shared, read-only objects). O(n): not per event."""
        return list(self._items.values())

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    @property
    def resource_version(self) -> str:
        """The last resourceVersion the store is synced to (list, event or bookmark); "" if none."""
        return self._resource_version

    def has_index(self, index_name: str) -> bool:
        return index_name in self._indices

    @property
    def indexer_names(self) -> builtins.list[str]:
        return list(self._indexers)

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        """Keys of the objects filed under ``value`` in index ``index_name``."""
        return list(self._index(index_name).get(value, ()))

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        """Objects filed under ``value`` in index ``index_name`` (shared, read-only)."""
        items = self._items
        return [items[key] for key in self._index(index_name).get(value, ())]

    def index_values(self, index_name: str) -> builtins.list[str]:
        """Every value with at least one object in index ``index_name``."""
        return list(self._index(index_name))

    def _index(self, index_name: str) -> dict[str, set[str]]:
        try:
            return self._indices[index_name]
        except KeyError:
            raise IndexNotFoundError(
                f"no index named {index_name!r} (have {sorted(self._indices)}); "
                "add it with add_indexers() or the informer's indexers= option"
            ) from None

    # -- writes (the informer's; readers never call these) ---------------------------------------

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add indexes; existing items are indexed now. Re-adding the same function is a no-op.

        Raises ``ValueError`` when a name is already taken by a different function.
        """
        for name, func in indexers.items():
            existing = self._indexers.get(name)
            if existing is not None:
                if existing is not func:
                    raise ValueError(
                        f"index {name!r} already exists with another function ({existing!r}); "
                        "pick another name or share the same function object"
                    )
                continue
            self._indexers[name] = func
            index: dict[str, set[str]] = {}
            self._indices[name] = index
            for key, obj in self._items.items():
                for value in func(obj):
                    index.setdefault(value, set()).add(key)

    def upsert(self, obj: Obj) -> Obj | None:
        """Cache ``obj`` (added or updated); returns the object it replaced, or None."""
        key = object_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._check_snapshot(key, old)
        self._items[key] = obj
        self._reindex(key, old, obj)
        self._snapshot(key, obj)
        self._advance(resource_version_of(obj))
        return old

    def delete(self, obj: Obj) -> Obj | None:
        """Remove the object with ``obj``'s key; returns the cached object, or None if absent."""
        key = object_key(obj)
        old = self._items.pop(key, None)
        if old is not None:
            self._check_snapshot(key, old)
            self._reindex(key, old, None)
            if self._snapshots is not None:
                self._snapshots.pop(key, None)
        self._advance(resource_version_of(obj))
        return old

    def replace(self, objs: Iterable[Obj], resource_version: str) -> ReplaceResult:
        """Make the store hold exactly ``objs`` (a full LIST), synced to ``resource_version``.

        Objects whose resourceVersion equals the cached one keep the cached object (reported as
        ``(old, old)``); cached keys missing from ``objs`` become tombstones.
        """
        result = ReplaceResult()
        previous = self._items
        fresh: dict[str, Obj] = {}
        for obj in objs:
            key = object_key(obj)
            old = previous.get(key)
            if old is None:
                fresh[key] = obj
                self._reindex(key, None, obj)
                self._snapshot(key, obj)
                result.added.append(obj)
                continue
            self._check_snapshot(key, old)
            rv = resource_version_of(obj)
            if rv and rv == resource_version_of(old):
                fresh[key] = old
                result.updated.append((old, old))
            else:
                fresh[key] = obj
                self._reindex(key, old, obj)
                self._snapshot(key, obj)
                result.updated.append((old, obj))
        for key, old in previous.items():
            if key not in fresh:
                self._check_snapshot(key, old)
                self._reindex(key, old, None)
                if self._snapshots is not None:
                    self._snapshots.pop(key, None)
                result.deleted.append(DeletedFinalStateUnknown(key, old))
        self._items = fresh
        self._resource_version = resource_version
        return result

    def bookmark(self, resource_version: str) -> None:
        """Record that the store is synced to ``resource_version`` (a watch BOOKMARK)."""
        self._advance(resource_version)

    def check_mutations(self) -> None:
        """Raise ``CacheMutationError`` if any cached object changed since it was cached.

        Only meaningful with ``detect_mutations``; otherwise a no-op.
        """
        if self._snapshots is None:
            return
        for key, obj in self._items.items():
            self._check_snapshot(key, obj)

    # -- internals ----------------------------------------------------------------------------

    def _advance(self, resource_version: str) -> None:
        if resource_version:
            self._resource_version = resource_version

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, func in self._indexers.items():
            old_values = func(old) if old is not None else []
            new_values = func(new) if new is not None else []
            if old_values == new_values:
                continue
            index = self._indices[name]
            for value in old_values:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in new_values:
                keys = index.get(value)
                if keys is None:
                    index[value] = {key}
                else:
                    keys.add(key)

    def _snapshot(self, key: str, obj: Obj) -> None:
        if self._snapshots is not None:
            self._snapshots[key] = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)

    def _check_snapshot(self, key: str, obj: Obj) -> None:
        if self._snapshots is None:
            return
        snapshot = self._snapshots.get(key)
        if snapshot is not None and snapshot != orjson.dumps(obj, option=orjson.OPT_SORT_KEYS):
            raise CacheMutationError(
                f"cached object {key!r} was mutated by a reader; cached objects are read-only: "
                "copy before changing (copy.deepcopy(obj))"
            )
