"""Ingest transforms: shrink objects before they are cached.

Every listed or watched object passes through the informer's transform exactly once, before it is
stored and before handlers see it. Caches of finished jobs and their pods are the operator's largest
memory cost, and most of each object is never read: ``metadata.managedFields`` alone is 20-30 % of a
cached object (controller-machinery.md 2.7), the ``last-applied-configuration`` annotation repeats
the whole spec.

- ``strip_managed_fields`` (the default transform) drops both, in place.
- ``metadata_only(keep=...)`` keeps ``apiVersion``, ``kind``, ``metadata`` and chosen paths (e.g.
  ``status.phase``); for informers that only need ownership, labels and a few status fields.
- ``compact_when(predicate, keep=...)`` applies ``metadata_only`` to objects matching a predicate
  (e.g. finished pods) and the default transform to the rest.

Contract for all transforms: idempotent (an already transformed object passes unchanged), fast,
and allowed to mutate their argument (it is freshly parsed and owned by the informer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .objects import Obj, Transform

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "compact_when",
    "compose",
    "identity",
    "metadata_only",
    "strip_managed_fields",
]

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def identity(obj: Obj) -> Obj:
    """Cache objects as received."""
    return obj


def strip_managed_fields(obj: Obj) -> Obj:
    """Drop ``metadata.managedFields`` and the kubectl last-applied annotation, in place.

    An annotations map left empty is removed too.
    """
    meta = obj.get("metadata")
    if meta is None:
        return obj
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED_ANNOTATION in annotations:
        del annotations[LAST_APPLIED_ANNOTATION]
        if not annotations:
            del meta["annotations"]
    return obj


def _parse_paths(keep: Iterable[str]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for path in keep:
        parts = tuple(path.split("."))
        if not path or "" in parts:
            raise ValueError(f"keep path {path!r} is not a dotted path like 'status.phase'")
        if parts[0] in ("apiVersion", "kind", "metadata"):
            raise ValueError(f"keep path {path!r}: apiVersion, kind and metadata are always kept")
        paths.append(parts)
    return paths


def _copy_path(source: Obj, target: Obj, parts: tuple[str, ...]) -> None:
    node: Any = source
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    dest = target
    for part in parts[:-1]:
        dest = dest.setdefault(part, {})
    dest[parts[-1]] = node


def metadata_only(keep: Iterable[str] = ()) -> Transform:
    """A transform keeping ``apiVersion``, ``kind``, stripped ``metadata`` and the ``keep`` paths.

    ``keep``: dotted paths into the object, such as ``"status.phase"`` or ``"status.conditions"``;
    missing paths are skipped; values are kept whole (a list stays a list). Raises ``ValueError`` for
    an empty or malformed path.
    """
    paths = _parse_paths(keep)

    def transform(obj: Obj) -> Obj:
        out: Obj = {}
        if "apiVersion" in obj:
            out["apiVersion"] = obj["apiVersion"]
        if "kind" in obj:
            out["kind"] = obj["kind"]
        if "metadata" in obj:
            out["metadata"] = obj["metadata"]
            strip_managed_fields(out)
        for parts in paths:
            _copy_path(obj, out, parts)
        return out

    transform.__name__ = f"metadata_only{tuple('.'.join(p) for p in paths)}"
    return transform


def compact_when(
    predicate: Callable[[Obj], bool],
    *,
    keep: Iterable[str] = (),
    otherwise: Transform = strip_managed_fields,
) -> Transform:
    """``metadata_only(keep)`` for objects where ``predicate(obj)``, ``otherwise`` for the rest.

    Use for objects that stop changing, e.g. pods in phase Succeeded/Failed: the predicate must
    still hold on the compacted object (keep the fields it reads) so the transform stays idempotent.
    """
    compact = metadata_only(keep)

    def transform(obj: Obj) -> Obj:
        return compact(obj) if predicate(obj) else otherwise(obj)

    return transform


def compose(*transforms: Transform) -> Transform:
    """Apply ``transforms`` left to right."""
    if len(transforms) == 1:
        return transforms[0]

    def transform(obj: Obj) -> Obj:
        for step in transforms:
            obj = step(obj)
        return obj

    return transform
