"""Free capacity per simulated node, kept incrementally from pod events.

The scheduler asks ``fit`` for every decision, so this must never scan pods: each pod that holds
resources on a node is filed under its key with its node and requests, and each node keeps the sum.
A pod holds resources from the moment the scheduler *assumes* it onto a node (before the binding
is confirmed) until it is terminal (Succeeded/Failed) or deleted, as in kube's scheduler cache.
The cluster-wide free total (what Volcano admits a gang against) is kept the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .quantity import PODS, Resources, add_into, subtract_into

__all__ = ["FitResult", "NodeCapacity"]


@dataclass(slots=True)
class _Node:
    name: str
    labels: dict[str, str]
    allocatable: Resources
    used: Resources = field(default_factory=dict)
    """Invariant: the sum of ``requests`` of the pods filed under this node in ``_holders``."""


@dataclass(frozen=True, slots=True)
class FitResult:
    """Where a pod fits (``node``), or why it fits nowhere (``message``, kube's wording)."""

    node: str | None
    message: str


class NodeCapacity:
    """Nodes' allocatable and used resources; pods filed by key."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}
        # pod key -> (node, requests). Invariant: every entry is counted in its node's ``used``.
        self._holders: dict[str, tuple[str, Resources]] = {}
        # Invariant: the sums over nodes of ``allocatable`` and of ``used``.
        self._allocatable_total: Resources = {}
        self._used_total: Resources = {}

    def add_node(
        self, name: str, allocatable: Mapping[str, int], labels: Mapping[str, str]
    ) -> None:
        """Register (or re-shape) a node; pods already filed under it stay."""
        node = self._nodes.get(name)
        if node is None:
            self._nodes[name] = _Node(name, dict(labels), dict(allocatable))
        else:
            subtract_into(self._allocatable_total, node.allocatable)
            node.allocatable = dict(allocatable)
            node.labels = dict(labels)
        add_into(self._allocatable_total, allocatable)

    def __contains__(self, node: str) -> bool:
        return node in self._nodes

    @property
    def node_names(self) -> list[str]:
        return list(self._nodes)

    def holder(self, key: str) -> str | None:
        """The node ``key`` holds resources on, or None."""
        entry = self._holders.get(key)
        return entry[0] if entry else None

    def hold(self, key: str, node: str, requests: Resources) -> None:
        """File ``key`` under ``node`` (moving it if it was elsewhere). Unknown nodes are ignored."""
        self.release(key)
        target = self._nodes.get(node)
        if target is None:
            return
        self._holders[key] = (node, requests)
        add_into(target.used, requests)
        add_into(self._used_total, requests)

    def release(self, key: str) -> bool:
        """Unfile ``key``; True if it held anything (capacity was freed)."""
        entry = self._holders.pop(key, None)
        if entry is None:
            return False
        node = self._nodes.get(entry[0])
        if node is not None:
            subtract_into(node.used, entry[1])
            subtract_into(self._used_total, entry[1])
        return True

    def used(self, node: str) -> Resources:
        return dict(self._nodes[node].used)

    def held(self, key: str) -> Resources | None:
        """What ``key`` holds (its requests), or None."""
        entry = self._holders.get(key)
        return entry[1] if entry else None

    def free_total(self) -> Resources:
        """Allocatable minus used, summed over nodes (a resource no node has is absent)."""
        free = dict(self._allocatable_total)
        subtract_into(free, self._used_total)
        return free

    def allocatable_total(self) -> Resources:
        """Allocatable summed over nodes (Volcano's cluster total)."""
        return dict(self._allocatable_total)

    def fit(self, requests: Resources, node_selector: Mapping[str, str] | None = None) -> FitResult:
        """The node with the most free capacity (kube's LeastAllocated) that fits ``requests``.

        When none fits, ``message`` is kube's: ``0/4 nodes are available: 4 Insufficient
        nvidia.com/gpu.`` (one count per reason, a node counted under each of its reasons).
        """
        reasons: dict[str, int] = {}
        best: str | None = None
        best_score = -1.0
        for node in self._nodes.values():
            if node_selector and any(node.labels.get(k) != v for k, v in node_selector.items()):
                why = "node(s) didn't match Pod's node affinity/selector"
                reasons[why] = reasons.get(why, 0) + 1
                continue
            missing = []
            score = 0.0
            for name, want in requests.items():
                have = node.allocatable.get(name, 0)
                free = have - node.used.get(name, 0)
                if want > free:
                    missing.append("Too many pods" if name == PODS else f"Insufficient {name}")
                elif have:
                    score += (free - want) / have
            if missing:
                for why in missing:
                    reasons[why] = reasons.get(why, 0) + 1
                continue
            if score > best_score:
                best, best_score = node.name, score
        if best is not None:
            return FitResult(best, "")
        detail = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items()))
        total = len(self._nodes)
        message = (
            f"0/{total} nodes are available: {detail}."
            if detail
            else (f"0/{total} nodes are available.")
        )
        return FitResult(None, message)
