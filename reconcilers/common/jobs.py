"""Read-only accessors over a job dict, so every module reads the spec the same way.

A job is the plain dict parsed from the API (``metadata``, ``spec``, ``status``). These helpers
never mutate it; missing fields read as the reference's zero values. Callers that read replica
counts should pass a *defaulted* job (``api.defaults.default_job``): then every replica spec has
``replicas`` and ``restartPolicy`` set.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.api.kinds import JobKind

# runPolicy.managedBy values the reference accepts; only the first is reconciled by kubetrain.
MANAGED_BY_OPERATOR = "kubeflow.org/training-operator"
MANAGED_BY_MULTIKUEUE = "kueue.x-k8s.io/multikueue"


def name_of(obj: Obj) -> str:
    name: str = obj.get("metadata", {}).get("name", "")
    return name


def namespace_of(obj: Obj) -> str:
    ns: str = obj.get("metadata", {}).get("namespace", "")
    return ns


def uid_of(obj: Obj) -> str:
    uid: str = obj.get("metadata", {}).get("uid", "")
    return uid


def replica_specs(job: Obj, kind: JobKind) -> dict[str, Obj]:
    """The replica map (``spec.<kind.replica_field>``), ``{}`` when absent."""
    specs: dict[str, Obj] | None = job.get("spec", {}).get(kind.replica_field)
    return specs or {}


def replicas_of(spec: Obj | None, *, default: int = 1) -> int:
    """``spec.replicas``; nil counts as ``default`` (the reference's isDistributed rule: 1)."""
    if not spec:
        return 0
    value = spec.get("replicas")
    return default if value is None else int(value)


def total_replicas(job: Obj, kind: JobKind) -> int:
    return sum(replicas_of(s) for s in replica_specs(job, kind).values())


def run_policy(job: Obj, kind: JobKind) -> Obj:
    """``spec.runPolicy`` ({} when absent). MPIJob's deprecated top-level field is merged by
    defaulting, so readers never look at ``spec.cleanPodPolicy``."""
    spec = job.get("spec")
    policy = spec.get("runPolicy") if isinstance(spec, dict) else None
    # read before validation (managedBy, suspend): a part of the wrong JSON type is no policy
    return policy if isinstance(policy, dict) else {}


def is_suspended_spec(job: Obj, kind: JobKind) -> bool:
    return bool(run_policy(job, kind).get("suspend"))


def managed_by_other(job: Obj, kind: JobKind) -> bool:
    """True when ``runPolicy.managedBy`` names another controller: kubetrain must not touch the
    job at all (no status writes). Applies to every kind, JAX included (fix of quirk 14)."""
    managed = run_policy(job, kind).get("managedBy")
    return managed is not None and managed != MANAGED_BY_OPERATOR


@functools.lru_cache(maxsize=64)
def format_time(t: datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time marshals.

    Cached: one reconcile formats its ``now`` several times (conditions, startTime,
    completionTime), and ``strftime`` costs ten times the lookup."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def unix_time(value: object) -> float | None:
    """An RFC 3339 time of the API as Unix seconds; None for a missing or non-string value."""
    parsed = parse_time(value) if isinstance(value, str) else None
    return parsed.timestamp() if parsed else None


def find_container(containers: list[Obj], name: str) -> Obj | None:
    for c in containers:
        if c.get("name") == name:
            return c
    return None


def default_container_index(containers: list[Obj], name: str) -> int:
    """Index of the container named ``name``, else 0 (``getDefaultContainerIndex``)."""
    for i, c in enumerate(containers):
        if c.get("name") == name:
            return i
    return 0


def container_port(spec: Obj | None, container: str, port_name: str) -> int | None:
    """``containerPort`` of port ``port_name`` in container ``container`` of a replica template."""
    if not spec:
        return None
    containers = spec.get("template", {}).get("spec", {}).get("containers") or []
    c = find_container(containers, container)
    if c is None:
        return None
    for p in c.get("ports") or []:
        if p.get("name") == port_name:
            return int(p["containerPort"])
    return None
