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
  (e.g. finished pods, ``phase_in("Succeeded", "Failed")``) and the default transform to the rest.
- ``compact_finished(...)`` is that for objects with a terminal condition (kubeflow jobs'
  Succeeded/Failed): metadata, ``spec.runPolicy``, start/completion times and only the terminal
  condition, with common strings interned: a finished PyTorchJob costs under 2 KB cached
  (tests/informers/test_transforms.py measures it).

A compacted object is not a full object: never use it as the base of an update (PUT) -- it would
wipe the dropped fields. Write finished objects with patches, or read them from the API first.

Contract for all transforms: idempotent (an already transformed object passes unchanged), fast,
and allowed to mutate their argument (it is freshly parsed and owned by the informer).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from kubetrain.base.objects import Obj

from .objects import Transform

__all__ = [
    "LAST_APPLIED_ANNOTATION",
    "compact_finished",
    "compact_when",
    "compose",
    "has_true_condition",
    "identity",
    "metadata_only",
    "phase_in",
    "strip_managed_fields",
]

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"

_CONDITION_FIELDS = ("type", "status", "reason", "lastTransitionTime")
_INTERNED_META = ("namespace",)
_INTERNED_OWNER = ("apiVersion", "kind", "name")
_INTERNED_CONDITION = ("type", "status", "reason")


def _intern(mapping: dict[str, Any], keys: Iterable[str]) -> None:
    for key in keys:
        value = mapping.get(key)
        if type(value) is str:
            mapping[key] = sys.intern(value)


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


def _intern_metadata(meta: dict[str, Any]) -> None:
    """Share the strings that repeat across objects: namespace, label values, owner kinds."""
    _intern(meta, _INTERNED_META)
    labels = meta.get("labels")
    if labels:
        for key, value in labels.items():
            if type(value) is str:
                labels[key] = sys.intern(value)
    for ref in meta.get("ownerReferences") or ():
        _intern(ref, _INTERNED_OWNER)


def metadata_only(keep: Iterable[str] = ()) -> Transform:
    """A transform keeping ``apiVersion``, ``kind``, stripped ``metadata`` and the ``keep`` paths.

    Strings that repeat across objects (namespace, label values, owner apiVersion/kind/name) are
    interned so that many compacted objects share them.

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
            _intern_metadata(out["metadata"])
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


def has_true_condition(*types: str) -> Callable[[Obj], bool]:
    """A predicate: ``status.conditions`` has one of ``types`` with ``status: "True"``."""
    wanted = frozenset(types)

    def predicate(obj: Obj) -> bool:
        status = obj.get("status")
        if not status:
            return False
        for condition in status.get("conditions") or ():
            if condition.get("type") in wanted and condition.get("status") == "True":
                return True
        return False

    return predicate


def phase_in(*phases: str) -> Callable[[Obj], bool]:
    """A predicate: ``status.phase`` is one of ``phases`` (e.g. finished pods)."""
    wanted = frozenset(phases)

    def predicate(obj: Obj) -> bool:
        status = obj.get("status")
        return status is not None and status.get("phase") in wanted

    return predicate


def compact_finished(
    *,
    terminal: Iterable[str] = ("Succeeded", "Failed"),
    keep: Iterable[str] = ("spec.runPolicy", "status.startTime", "status.completionTime"),
    otherwise: Transform = strip_managed_fields,
) -> Transform:
    """Compact objects that reached a terminal condition; ``otherwise`` for the rest.

    A finished object keeps ``apiVersion``, ``kind``, stripped ``metadata``, the ``keep`` paths and
    ``status.conditions`` reduced to its true terminal conditions (``type``, ``status``,
    ``reason``, ``lastTransitionTime``); short repeated strings are interned. Idempotent. See the
    module docstring: never PUT a compacted object.
    """
    terminal_types = frozenset(terminal)
    finished = has_true_condition(*terminal_types)
    compact = metadata_only(keep)

    def transform(obj: Obj) -> Obj:
        if not finished(obj):
            return otherwise(obj)
        conditions = [
            {k: c[k] for k in _CONDITION_FIELDS if k in c}
            for c in obj["status"].get("conditions") or ()
            if c.get("type") in terminal_types and c.get("status") == "True"
        ]
        out = compact(obj)
        for condition in conditions:
            _intern(condition, _INTERNED_CONDITION)
        out.setdefault("status", {})["conditions"] = conditions
        _intern(out, ("apiVersion", "kind"))
        return out

    return transform
