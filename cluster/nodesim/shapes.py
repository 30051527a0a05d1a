"""Pods waiting for capacity to free, filed by *shape*: what they ask of a node.

Why by shape: pods of one shape fit on the same nodes, so when capacity frees the scheduler tries
each shape from its oldest pod and stops at the first that fits nowhere (the pods behind it ask
for the same). A freed place then costs a few fits, not one per waiting pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .quantity import Resources

__all__ = ["Shape", "WaitingPods", "pod_key", "shape_of"]

Shape = tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...], int]
"""What a pod asks of a node: its requests and its node selector, sorted, and its priority. Pods
of one shape fit on the same nodes and go in the same order."""


def pod_key(pod: Mapping[str, Any]) -> str:
    """The key a pod is filed under: ``namespace/name`` (``/name`` without a namespace)."""
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def shape_of(pod: Mapping[str, Any], requests: Resources, priority: int) -> Shape:
    """The shape of ``pod``, which requests ``requests`` at ``priority``."""
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    return (
        tuple(sorted(requests.items())),
        tuple(sorted((str(k), str(v)) for k, v in selector.items())),
        priority,
    )


class WaitingPods:
    """Waiting pod keys by shape, oldest first; shapes in the order they appeared."""

    def __init__(self) -> None:
        # shape -> {key: None}, oldest first. Invariant: a key is in at most one of them, the
        # one ``_shape_of`` names; none is empty; ``_seq_of`` has exactly their shapes.
        self._by_shape: dict[Shape, dict[str, None]] = {}
        self._shape_of: dict[str, Shape] = {}
        self._seq_of: dict[Shape, int] = {}  # order the shape appeared: oldest first
        self._seq = 0

    def __len__(self) -> int:
        """The number of waiting pods."""
        return len(self._shape_of)

    def __bool__(self) -> bool:
        return bool(self._by_shape)

    def shape(self, key: str) -> Shape | None:
        """The shape ``key`` waits under; None when it does not wait."""
        return self._shape_of.get(key)

    def file(self, key: str, shape: Shape) -> None:
        """File ``key`` as waiting under ``shape``; one filed there already keeps its place."""
        if self._shape_of.get(key) == shape:
            return
        self.unfile(key)
        if shape not in self._by_shape:
            self._seq += 1
            self._seq_of[shape] = self._seq
        self._by_shape.setdefault(shape, {})[key] = None
        self._shape_of[key] = shape

    def unfile(self, key: str) -> None:
        shape = self._shape_of.pop(key, None)
        if shape is not None:
            keys = self._by_shape[shape]
            del keys[key]
            if not keys:
                del self._by_shape[shape]
                del self._seq_of[shape]

    def oldest(self, shape: Shape) -> str | None:
        """The oldest pod waiting under ``shape``; None when none does."""
        keys = self._by_shape.get(shape)
        return next(iter(keys)) if keys is not None else None

    def ordered(self) -> list[tuple[int, int, Shape]]:
        """``(-priority, seq, shape)`` of each waiting shape: higher priority first, then
        oldest."""
        return sorted((-shape[2], self._seq_of[shape], shape) for shape in self._by_shape)
