"""Priorities the simulated scheduler orders waiting pods and groups by: the value of a
``scheduling.k8s.io/v1`` PriorityClass.

Why not ``spec.priority`` alone: kube's Priority admission plugin resolves ``priorityClassName``
into ``spec.priority``, but a server without that plugin (the embedded one defaults the field to
0) leaves it unresolved, and a PodGroup carries only the class name. So a class name wins and is
looked up in a PriorityClass cache; a name not (yet) known counts as the global default class, or
0, as kube does for a pod without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubetrain.informers.lister import Lister

__all__ = ["Priorities"]

# kube's built-in classes, served by every real API server
_SYSTEM = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


class Priorities:
    """Class name -> value, from a PriorityClass lister (None: no such cache, all 0)."""

    def __init__(self, classes: Lister | None = None) -> None:
        self._classes = classes

    def value(self, class_name: str) -> int:
        """The value of ``class_name`` ("" or unknown: the global default, else 0)."""
        if class_name:
            if class_name in _SYSTEM:
                return _SYSTEM[class_name]
            if self._classes is not None:
                found = self._classes.get(None, class_name)
                if found is not None:
                    return _int(found.get("value"))
        return self._global_default()

    def of_pod(self, pod: Mapping[str, Any]) -> int:
        """A pod's priority: its class's value, else ``spec.priority``, else the default."""
        spec = pod.get("spec") or {}
        name = str(spec.get("priorityClassName") or "")
        if name:
            return self.value(name)
        if isinstance(spec.get("priority"), int) and spec["priority"]:
            return int(spec["priority"])
        return self._global_default()

    def never_preempts(self, pod: Mapping[str, Any] | None, class_name: str = "") -> bool:
        """True when ``preemptionPolicy`` is ``Never``: on the pod's spec (kube's Priority
        admission copies it there from the class), else on its (or ``class_name``'s)
        PriorityClass."""
        spec = (pod.get("spec") or {}) if pod is not None else {}
        if spec.get("preemptionPolicy"):
            return bool(spec["preemptionPolicy"] == "Never")
        name = class_name or str(spec.get("priorityClassName") or "")
        if name and self._classes is not None:
            found = self._classes.get(None, name)
            if found is not None:
                return bool(found.get("preemptionPolicy") == "Never")
        return False

    def _global_default(self) -> int:
        if self._classes is None:
            return 0
        for pc in self._classes.list():  # a handful of classes; read only for unnamed ones
            if pc.get("globalDefault") is True:
                return _int(pc.get("value"))
        return 0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
