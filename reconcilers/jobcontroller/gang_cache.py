"""``GangCache``: the cached PodGroups and PriorityClasses a gang decision reads, as a ``GangView``.

Why a cache and not GETs: a job is reconciled many times and every reconcile reads its PodGroup
(its phase gates Volcano's pods) and, for the computed ``minResources``, the PriorityClass of
each replica template. Both come from informers the controller wires (``wiring.py``); the
PodGroup informer also wakes the job when its phase moves, in place of the reference's
self-triggering status writes. Unlike the reference, whose PriorityClass lister was never
started (every value read 0), these are real values.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj, is_controlled_by
from kubetrain.informers.lister import Lister
from kubetrain.reconcilers.gang.view import GangView

__all__ = ["GangCache"]


class GangCache:
    """Reads ``podgroups`` (the chosen flavour's, namespaced) and ``priority_classes``
    (cluster-scoped ``scheduling.k8s.io/v1``) listers."""

    __slots__ = ("_podgroups", "_priority_classes")

    def __init__(self, *, podgroups: Lister, priority_classes: Lister) -> None:
        self._podgroups = podgroups
        self._priority_classes = priority_classes

    def priority_value(self, name: str) -> int | None:
        """The ``value`` of PriorityClass ``name``; None when the cache has no such class."""
        found = self._priority_classes.get(None, name)
        if found is None:
            return None
        value = found.get("value")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def view(self, job: Obj) -> GangView:
        """What the cache shows for ``job``: its PodGroup (same name and namespace, controlled
        by this job: a deleted namesake's, until the garbage collector takes it, is not) and
        the PriorityClass lookup."""
        meta = job.get("metadata") or {}
        podgroup = self._podgroups.get(meta.get("namespace"), str(meta.get("name") or ""))
        if podgroup is not None and not is_controlled_by(podgroup, str(meta.get("uid") or "")):
            podgroup = None
        return GangView(podgroup=podgroup, priority_value=self.priority_value)
