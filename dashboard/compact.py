"""What the dashboard caches of a finished job: its row's fields, not its pod templates.

A finished job never changes again, and on a long-lived cluster finished jobs are nearly all of
them; a row needs only its metadata, its terminal conditions and times, and its replica counts.
Cached whole, 50,000 finished PyTorchJobs of five pods took 360 MiB of the dashboard's memory
(``python -m kubetrain.bench.dashboard_cost``); compacted as the job controllers compact them
(``reconcilers/common/compact.py``), plus each replica type's ``replicas``, a fraction of it.
A job's page still shows the whole object: the detail of a compacted job GETs it once
(``JobDetails.remember_full``), which a person opening one job can afford and a cache of every job
cannot.

Contract: a compacted object carries ``COMPACTED`` at its top level; it is never written back.
"""

from __future__ import annotations

from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.informers.objects import Transform
from kubetrain.informers.transforms import strip_managed_fields
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.reconcilers.common.compact import compact_job
from kubetrain.reconcilers.jobview import FINISHED, TRAINJOB, job_state

__all__ = ["COMPACTED", "compact_finished_job", "is_compacted"]

#: The top-level key marking a compacted job (not a Kubernetes field: it never leaves the cache).
COMPACTED = "__dashboardCompacted__"
_TRAINJOB_STATUS_KEEP = ("phase", "startTime", "conditions")


def is_compacted(job: Obj) -> bool:
    """Whether ``job`` is a finished job's compacted form (see the module docstring)."""
    return bool(job.get(COMPACTED))


def compact_finished_job(kind: str) -> Transform:
    """The ingest transform of ``kind``'s informer: a finished job compacted, the others only
    stripped of managedFields. Idempotent."""
    field = BY_KIND[kind].replica_field if kind in BY_KIND else ""

    def transform(obj: Obj) -> Obj:
        if obj.get(COMPACTED) or job_state(kind, obj) not in FINISHED:
            return strip_managed_fields(obj)
        spec = obj.get("spec") or {}
        if kind == TRAINJOB:
            status = obj.get("status") or {}
            out: Obj = strip_managed_fields(
                {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind")}
                | {"metadata": obj.get("metadata") or {}}
            )
            out["spec"] = {"trainer": {"numNodes": (spec.get("trainer") or {}).get("numNodes")}}
            out["status"] = {k: status[k] for k in _TRAINJOB_STATUS_KEEP if k in status}
        else:
            counts: dict[str, Any] = {
                rtype: {"replicas": (rspec or {}).get("replicas", 1)}
                for rtype, rspec in (spec.get(field) or {}).items()
            }
            out = compact_job(obj)
            out["spec"] = {**(out.get("spec") or {}), field: counts}  # compact_job shares spec
        out[COMPACTED] = True
        return out

    transform.__name__ = f"compact_finished_job({kind})"
    return transform
