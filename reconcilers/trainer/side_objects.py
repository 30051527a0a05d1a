"""What every object a plugin builds beside a TrainJob's JobSet carries, and how a plugin
returns them: ``SideObjects`` (applied, or created once), the controller ownerReference to the
TrainJob, and kubetrain's ``TRAINJOB_NAME_LABEL``. A leaf the plugins and ``objects.py`` share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubetrain.base.objects import Obj

from .jobset_build import TRAINER_API_VERSION

__all__ = ["TRAINJOB_NAME_LABEL", "SideObjects", "owner_reference", "side_object_metadata"]

#: kubetrain's label on the side objects it makes for a TrainJob (Trainer v2.3.0 labels none of
#: them; with it the operator watches only its own ConfigMaps and Secrets, not the cluster's).
TRAINJOB_NAME_LABEL = "trainer.kubeflow.org/trainjob-name"


@dataclass(slots=True)
class SideObjects:
    """What one plugin builds beside the JobSet."""

    applied: list[Obj] = field(default_factory=list)
    """Server-side applied whenever the JobSet is (at creation, and while suspended)."""
    created: list[Obj] = field(default_factory=list)
    """Created once and never updated (an immutable Secret); already existing is fine."""


def owner_reference(trainjob: Obj) -> Obj:
    """The controller ownerReference every object built for ``trainjob`` carries."""
    meta = trainjob.get("metadata") or {}
    return {
        "apiVersion": TRAINER_API_VERSION,
        "kind": "TrainJob",
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def side_object_metadata(trainjob: Obj, name: str, **extra: Any) -> Obj:
    """``metadata`` of a side object named ``name`` in the TrainJob's namespace: the owner
    reference and ``TRAINJOB_NAME_LABEL``; ``extra`` keys (``annotations``...) are added."""
    meta = trainjob.get("metadata") or {}
    out: Obj = {
        "name": name,
        "namespace": meta.get("namespace", ""),
        "labels": {TRAINJOB_NAME_LABEL: str(meta.get("name", ""))},
        "ownerReferences": [owner_reference(trainjob)],
    }
    out.update(extra)
    return out
