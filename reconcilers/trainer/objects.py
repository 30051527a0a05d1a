"""Everything a TrainJob's runtime builds: the JobSet plus the plugins' side objects.

Why one entry point: Trainer's ``NewObjects`` returns the JobSet and, per plugin, the objects
that run beside it (the MPI hostfile ConfigMap and SSH Secret, a PodGroup, the status server's
TLS ConfigMap). The reconciler applies what ``build_objects`` returns, in this order: the
``created`` objects (made once and never updated; a 409 means they exist), the ``applied`` ones
(server-side applied, field manager ``trainer``), then the JobSet.

A plugin that adds side objects registers a ``SideObjectBuilder`` in ``SIDE_OBJECT_BUILDERS``
(``plugins/``). A builder is pure: it reads the TrainJob, the runtime spec and the JobSet that
``build_jobset`` produced (never changing them) and returns new dicts, each with its
``apiVersion``, ``kind``, ``metadata.name``/``namespace`` and a controller ownerReference to the
TrainJob (``owner_reference``), labelled ``TRAINJOB_NAME_LABEL`` so the operator caches only its
own objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubetrain.base.objects import Obj

from .jobset_build import TRAINER_API_VERSION, build_jobset

__all__ = [
    "SIDE_OBJECT_BUILDERS",
    "TRAINJOB_NAME_LABEL",
    "SideObjectBuilder",
    "SideObjects",
    "TrainJobObjects",
    "build_objects",
    "owner_reference",
    "side_object_metadata",
]

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


#: ``(trainjob, runtime_spec, jobset) -> SideObjects``; must not change its arguments.
SideObjectBuilder = Callable[[Obj, Obj, Obj], SideObjects]

#: The registered builders, run in this order; plugins append themselves at import.
SIDE_OBJECT_BUILDERS: list[SideObjectBuilder] = []


@dataclass(slots=True)
class TrainJobObjects:
    jobset: Obj
    applied: list[Obj] = field(default_factory=list)
    created: list[Obj] = field(default_factory=list)


def build_objects(
    trainjob: Obj, runtime_spec: Obj, *, runtime_labels: Mapping[str, str] | None = None
) -> TrainJobObjects:
    """The JobSet ``build_jobset`` makes and every registered plugin's side objects. Raises what
    ``build_jobset`` and the builders raise (``UnsupportedRuntime``, ``BuildError``)."""
    from . import plugins  # noqa: F401  (registers the builders)

    jobset = build_jobset(trainjob, runtime_spec, runtime_labels=runtime_labels)
    built = TrainJobObjects(jobset=jobset)
    for builder in SIDE_OBJECT_BUILDERS:
        side = builder(trainjob, runtime_spec, jobset)
        built.applied.extend(side.applied)
        built.created.extend(side.created)
    return built


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
