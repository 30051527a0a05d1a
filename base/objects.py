"""Kubernetes objects as plain dicts: their keys and their controller owner reference.

Objects are dicts parsed once with orjson (DESIGN.md); ``Obj`` only names them for readers and
mypy. ``object_key`` is client-go's ``MetaNamespaceKeyFunc``: ``namespace/name`` for namespaced
objects, ``name`` for cluster-scoped ones; stores, listers, indexes and work queues all use it.
``controller_ref`` is the one reading of ``ownerReferences``: the entry with ``controller: true``
(at most one is valid, as the API server enforces), so no caller parses the list again.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Obj",
    "controller_ref",
    "controller_uid",
    "group_of",
    "is_controlled_by",
    "json_type",
    "object_key",
    "resource_version_of",
    "split_key",
]

Obj = dict[str, Any]
"""A Kubernetes object as parsed by orjson. Cached ones are read-only."""


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


def group_of(api_version: str) -> str:
    """The API group of an ``apiVersion`` ("" for the core group's ``v1``)."""
    return api_version.rpartition("/")[0]


def controller_ref(obj: Obj) -> dict[str, Any] | None:
    """The ``ownerReferences`` entry with ``controller: true``, or None."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return None
    for ref in meta.get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def controller_uid(obj: Obj, *, kind: str | None = None, group: str | None = None) -> str | None:
    """The UID of ``obj``'s controller, or None when it has none (or no UID).

    With ``kind``/``group``: None unless the controller is of that kind and API group (the
    version may differ), so a controller of one kind ignores children of another.
    """
    ref = controller_ref(obj)
    if ref is None:
        return None
    if kind is not None and ref.get("kind") != kind:
        return None
    if group is not None and group_of(str(ref.get("apiVersion") or "")) != group:
        return None
    uid = ref.get("uid")
    return str(uid) if uid else None


def is_controlled_by(obj: Obj, uid: str) -> bool:
    """True when ``obj``'s controller owner reference has ``uid``."""
    ref = controller_ref(obj)
    return ref is not None and bool(uid) and ref.get("uid") == uid


def json_type(value: object) -> str:
    """The JSON type name of a parsed value (``string``, ``boolean``, ``integer``, ``number``,
    ``array``, ``object``, ``null``), as the API server's schema errors name it."""
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null" if value is None else type(value).__name__
