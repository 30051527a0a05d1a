"""Everything a TrainJob's runtime builds: the JobSet plus the plugins' side objects.

Why one entry point: Trainer's ``NewObjects`` returns the JobSet and, per plugin, the objects
that run beside it (the MPI hostfile ConfigMap and SSH Secret, a PodGroup, the status server's
TLS ConfigMap). The reconciler applies what ``build_objects`` returns, in this order: the
``created`` objects (made once and never updated; a 409 means they exist), the ``applied`` ones
(server-side applied, field manager ``trainer``), then the JobSet.

The plugins that build side objects are listed in ``SIDE_OBJECT_BUILDERS`` (``plugins/``), run
in that order. A builder is pure: it reads the TrainJob, the runtime spec and the JobSet that
``build_jobset`` produced (never changing them) and returns new dicts, each with its
``apiVersion``, ``kind``, ``metadata.name``/``namespace``, a controller ownerReference to the
TrainJob and ``TRAINJOB_NAME_LABEL`` (``side_objects.side_object_metadata``), so the operator
caches only its own objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kubetrain.base.objects import Obj

from .jobset_build import build_jobset
from .plugins import trainjob_status
from .plugins.mpi import build_mpi_objects
from .plugins.podgroup import build_podgroups
from .plugins.trainjob_status import StatusServerSettings
from .side_objects import TRAINJOB_NAME_LABEL, SideObjects, owner_reference, side_object_metadata

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

#: ``(trainjob, runtime_spec, jobset) -> SideObjects``; must not change its arguments.
SideObjectBuilder = Callable[[Obj, Obj, Obj], SideObjects]

#: The plugins' builders, run in this order (each returns nothing for a runtime it is not for).
SIDE_OBJECT_BUILDERS: tuple[SideObjectBuilder, ...] = (build_mpi_objects, build_podgroups)


@dataclass(slots=True)
class TrainJobObjects:
    jobset: Obj
    applied: list[Obj] = field(default_factory=list)
    created: list[Obj] = field(default_factory=list)


def build_objects(
    trainjob: Obj,
    runtime_spec: Obj,
    *,
    runtime_labels: Mapping[str, str] | None = None,
    status_server: StatusServerSettings | None = None,
) -> TrainJobObjects:
    """The JobSet ``build_jobset`` makes and every plugin's side objects. Raises what
    ``build_jobset`` and the builders raise (``UnsupportedRuntime``, ``BuildError``).

    ``status_server``: the operator's status server (``plugins/trainjob_status.py``, Trainer's
    TrainJobStatus plugin); when given, the trainer job's containers get its env and token
    volume, after the other builders ran, and its ``<trainjob>-tls-config`` ConfigMap is
    among ``applied``. None: neither (the status server is off)."""
    jobset = build_jobset(trainjob, runtime_spec, runtime_labels=runtime_labels)
    built = TrainJobObjects(jobset=jobset)
    for builder in SIDE_OBJECT_BUILDERS:
        side = builder(trainjob, runtime_spec, jobset)
        built.applied.extend(side.applied)
        built.created.extend(side.created)
    if status_server is not None:
        trainjob_status.inject(trainjob, jobset, status_server)
        name = str((trainjob.get("metadata") or {}).get("name") or "")
        metadata = side_object_metadata(trainjob, trainjob_status.tls_config_map_name(name))
        built.applied.append(trainjob_status.tls_config_map(status_server, metadata))
    return built
