"""``Lister``: the read API reconcilers use on an informer's cache. Reads never hit the API.

Lookups go through indexes: ``list(namespace=...)`` uses the namespace index, a label-equality
selector uses a ``label_index`` on one of its keys when the store has one (``indexers.py``), and
``by_index`` exposes any named index. Only ``list()`` across all namespaces without a usable index
walks every object: do not call that per event.

Returned objects are the cached ones: read-only, copy before changing (see ``Store``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping

from kubetrain.base.objects import Obj

from .indexers import NAMESPACE_INDEX, label_index_name, label_index_value
from .store import Store

__all__ = ["Lister", "Selector"]

Selector = Mapping[str, str] | Callable[[Obj], bool]
"""Label equalities (every key must have that value), or a predicate on the object."""


def _matches_labels(obj: Obj, wanted: Mapping[str, str]) -> bool:
    labels = obj["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in wanted.items())


class Lister:
    """Read-only, indexed queries over one ``Store``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, namespace: str | None, name: str) -> Obj | None:
        """The object ``namespace/name`` (``namespace=None`` for cluster-scoped), or None."""
        return self._store.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None, selector: Selector | None = None) -> list[Obj]:
        """Objects in ``namespace`` (all when None) matching ``selector`` (all when None)."""
        store = self._store
        candidates: builtins.list[Obj] | None = None
        # A label index holds namespace-qualified values: usable for one namespace, or for a
        # store without namespaced objects (cluster-scoped resources).
        if (
            isinstance(selector, Mapping)
            and selector
            and (namespace or not store.index_values(NAMESPACE_INDEX))
        ):
            for key, value in selector.items():
                index = label_index_name(key)
                if store.has_index(index):
                    candidates = store.by_index(index, label_index_value(namespace, value))
                    break
        if candidates is None:
            candidates = store.by_index(NAMESPACE_INDEX, namespace) if namespace else store.list()
        if selector is None:
            return candidates
        if isinstance(selector, Mapping):
            return [o for o in candidates if _matches_labels(o, selector)]
        return [o for o in candidates if selector(o)]

    def by_index(self, index_name: str, value: str) -> builtins.list[Obj]:
        """Objects filed under ``value`` in the store's index ``index_name``."""
        return self._store.by_index(index_name, value)
