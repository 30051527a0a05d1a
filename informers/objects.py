"""The shapes informers pass around, and the one function that names an object in a cache.

Objects are plain dicts parsed once with orjson (DESIGN.md); these aliases only name them for
readers and mypy. ``object_key`` is the client-go ``MetaNamespaceKeyFunc``: ``namespace/name`` for
namespaced objects, ``name`` for cluster-scoped ones. Stores, listers, indexes and work queues all
use that one key format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "IndexFunc",
    "Obj",
    "Transform",
    "object_key",
    "resource_version_of",
    "split_key",
]

Obj = dict[str, Any]
"""A Kubernetes object as parsed by orjson. Cached ones are read-only (see ``Store``)."""

IndexFunc = Callable[[Obj], list[str]]
"""Maps an object to the index values it is filed under (none, one or several)."""

Transform = Callable[[Obj], Obj]
"""Called once per object at ingest, before it is cached. May mutate its argument and return it,
or return a new dict. Must be idempotent and fast (it runs for every listed and watched object)."""


def object_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` when the object has no (or an empty) namespace.

    Raises ``ValueError`` naming the missing field when ``metadata.name`` is absent.
    """
    try:
        meta = obj["metadata"]
        name: str = meta["name"]
    except (KeyError, TypeError):
        raise ValueError(
            f"object of kind {obj.get('kind', '?')!r} has no metadata.name; "
            "cannot key it (an object from a LIST or WATCH always has one)"
        ) from None
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if namespace else name


def split_key(key: str) -> tuple[str | None, str]:
    """The inverse of ``object_key``: ``(namespace or None, name)``."""
    namespace, sep, name = key.partition("/")
    return (namespace, name) if sep else (None, key)


def resource_version_of(obj: Obj) -> str:
    """``metadata.resourceVersion``, or "" when absent."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return ""
    rv = meta.get("resourceVersion")
    return rv if isinstance(rv, str) else ""
