"""``status.replicaStatuses``: counting pods per replica type (reference 2.3).

Counts are recomputed from the pods on every reconcile (the map is re-initialised to zero), so
they never drift. Zero counts are omitted, as Go's ``omitempty`` marshals them, so a recomputed
status compares equal to the stored one and no write happens for nothing.
"""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JobKind
from kubetrain.reconcilers.common.naming import REPLICA_TYPE_LABEL, replica_selector


def pods_of_type(pods: list[Obj], rtype: str) -> list[Obj]:
    """The pods whose ``replica-type`` label is ``lower(rtype)``."""
    return group_by_replica_type(pods).get(rtype.lower(), [])


def group_by_replica_type(objs: list[Obj]) -> dict[str, list[Obj]]:
    """``objs`` (pods or services) by their ``replica-type`` label, in one pass: a reconcile
    looks up every type's pods several times, and one scan per lookup was a tenth of
    ``compute_status``. Keys are the label values (lower case); objects without one are left out.
    """
    groups: dict[str, list[Obj]] = {}
    for obj in objs:
        value = obj.get("metadata", {}).get("labels", {}).get(REPLICA_TYPE_LABEL)
        if value is not None:
            groups.setdefault(value, []).append(obj)
    return groups


def count_pods(pods: list[Obj]) -> dict[str, int]:
    """``{active, succeeded, failed}`` of pods of one type (zeros omitted).

    Running without deletionTimestamp -> active; Running *with* one -> failed (its node is gone,
    the pod will not finish); Succeeded -> succeeded; Failed -> failed; Pending is not counted.
    """
    active = succeeded = failed = 0
    for pod in pods:
        phase = pod.get("status", {}).get("phase")
        if phase == "Running":
            if pod.get("metadata", {}).get("deletionTimestamp"):
                failed += 1
            else:
                active += 1
        elif phase == "Succeeded":
            succeeded += 1
        elif phase == "Failed":
            failed += 1
    out: dict[str, int] = {}
    for key, value in (("active", active), ("succeeded", succeeded), ("failed", failed)):
        if value:
            out[key] = value
    return out


def replica_statuses(
    kind: JobKind, job_name: str, rtypes: list[str], pods: list[Obj]
) -> dict[str, Obj]:
    """The fresh ``replicaStatuses`` map for ``rtypes``: counts, plus ``selector`` for the kinds
    with a scale subresource (PyTorch, Paddle, JAX), e.g.
    ``training.kubeflow.org/job-name=j,training.kubeflow.org/operator-name=...,...=worker``."""
    out: dict[str, Obj] = {}
    groups = group_by_replica_type(pods)
    for rtype in rtypes:
        entry: Obj = dict(count_pods(groups.get(rtype.lower(), [])))
        if kind.scalable:
            entry["selector"] = replica_selector(kind, job_name, rtype)
        out[rtype] = entry
    return out


def fold_active_into_succeeded(statuses: dict[str, Obj]) -> dict[str, Obj]:
    """For a Succeeded job: remaining ``active`` pods count as succeeded, ``active`` becomes 0."""
    out: dict[str, Obj] = {}
    for rtype, entry in statuses.items():
        new = dict(entry)
        active = new.pop("active", 0)
        if active:
            new["succeeded"] = new.get("succeeded", 0) + active
        out[rtype] = new
    return out


def zero_active(statuses: dict[str, Obj]) -> dict[str, Obj]:
    """Suspended job: ``active`` is 0 for every type (other counts kept)."""
    return {rtype: {k: v for k, v in e.items() if k != "active"} for rtype, e in statuses.items()}
