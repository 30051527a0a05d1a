"""What the TrainJob controller caches of finished TrainJobs, their JobSets and ConfigMaps.

Why: finished TrainJobs are most of a long-lived cluster's TrainJobs, and each comes with a
JobSet holding every pod template and a ConfigMap or two. Cached whole they took about 20 KB of
the operator's memory per finished TrainJob (``kubetrain bench backlog --job-kind trainjob``:
421 MiB after the sync of 20,000), so 200,000 would not fit a pod's memory. Once a TrainJob is
finished, its reconcile reads only a few fields (``reconciler.py``: the runtime reference, suspend,
managedBy, the status it may copy from the JobSet; the JobSet's ownership, suspend and status),
so the informers' ingest transforms keep just those, as the v1 job controllers do
(``reconcilers/common/compact.py``):

- ``compact_trainjob``: a TrainJob with a true ``Complete``/``Failed`` condition keeps
  ``apiVersion``, ``kind``, stripped ``metadata``, ``spec.runtimeRef``, ``spec.suspend``,
  ``spec.managedBy``, ``spec.activeDeadlineSeconds`` and its ``status`` without
  ``trainerStatus`` (a trainer's last progress report, up to 64 KiB, which the controller never
  reads). Conditions stay whole, so a finished TrainJob's status reads as before.
- ``compact_jobset``: a JobSet with a true ``Completed``/``Failed`` condition keeps stripped
  ``metadata``, ``spec.suspend`` and its whole ``status`` (the TrainJob's ``jobsStatus`` and the
  runtime-patch webhook's active-Job check read it), not its ``replicatedJobs``.
- ``slim_configmap``: the ConfigMaps made for TrainJobs keep their ``data`` only when they are a
  runtime snapshot (``<trainjob>-runtime-snapshot``, read to build); the plugins' ConfigMaps
  (``<trainjob>-tls-config``'s CA bundle, ``<trainjob>-mpi-hostfile``) are applied, never read.

Contract (caller duties): a compacted object is not a full object. NEVER PUT it: status writes
are merge patches of what changed, and a finished JobSet is never written
(``jobset_build.should_apply_jobset``). Running TrainJobs and JobSets are only stripped of
managedFields. The transforms are idempotent and may mutate their freshly parsed argument.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.informers.transforms import compact_when, metadata_only, strip_managed_fields

from .jobset_build import jobset_finished
from .snapshot import SNAPSHOT_SUFFIX
from .status import is_finished

__all__ = ["compact_jobset", "compact_trainjob", "slim_configmap"]

_FINISHED_TRAINJOB = metadata_only(
    (
        "spec.runtimeRef",
        "spec.suspend",
        "spec.managedBy",
        "spec.activeDeadlineSeconds",
        "status",
    )
)

compact_jobset = compact_when(jobset_finished, keep=("spec.suspend", "status"))


def compact_trainjob(obj: Obj) -> Obj:
    """The TrainJob as the TrainJob controller caches it (see the module docstring)."""
    if not is_finished(obj.get("status") or {}):  # the reconciler's own test
        return strip_managed_fields(obj)
    out = _FINISHED_TRAINJOB(obj)
    status = out.get("status")
    if isinstance(status, dict):
        status.pop("trainerStatus", None)
    return out


def slim_configmap(obj: Obj) -> Obj:
    """A TrainJob's ConfigMap as the controller caches it: a runtime snapshot whole, the
    plugins' ConfigMaps without ``data`` (see the module docstring)."""
    obj = strip_managed_fields(obj)
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not name.endswith(SNAPSHOT_SUFFIX):
        obj.pop("data", None)
        obj.pop("binaryData", None)
    return obj
