"""``GangView``: what the cluster shows that one job's gang decision reads, as plain inputs.

The gang decision is pure; the controller reads its caches (the job's PodGroup, PriorityClass
values) and hands them over in this one value, so unit tests pass a dict and a lambda instead
of informers. The PriorityClass lookup is a function because only the classes a job's
templates name are read, and they are few next to the cluster's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubetrain.base.objects import Obj

__all__ = ["GangView", "PriorityLookup", "no_priority_classes"]

PriorityLookup = Callable[[str], int | None]
"""PriorityClass name -> its ``value``; None when no such class exists (counts as 0)."""


def no_priority_classes(name: str) -> int | None:
    """The lookup of a cluster with no PriorityClass."""
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class GangView:
    """``podgroup``: the job's PodGroup as cached (None: not there, or not seen yet);
    ``priority_value``: the PriorityClass lookup (``scheduling.k8s.io/v1``)."""

    podgroup: Obj | None = None
    priority_value: PriorityLookup = no_priority_classes


NO_VIEW = GangView()
"""Nothing cached: no PodGroup, no PriorityClass."""
