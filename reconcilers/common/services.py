"""Headless services, one per pod, so each replica has a stable DNS name (2.5).

All kinds but MPIJob. A service has the pod's name, the job labels + replica type and index
(no ``job-role``), selects the same label set, and exposes every port of the default container.
Services are never updated; out-of-range ones are deleted on scale-down.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.decision import SpecError
from kubetrain.reconcilers.common.jobs import find_container, name_of, namespace_of, replica_specs
from kubetrain.reconcilers.common.kind_adapter import KindAdapter
from kubetrain.reconcilers.common.naming import (
    REPLICA_INDEX_LABEL,
    owner_reference,
    replica_labels,
)


def service_ports(adapter: KindAdapter, rspec: Obj) -> list[Obj]:
    """``[{name, port}]`` for every port of the default container, in container order.

    Raises SpecError(``failed to find the port``...) when no container has the default name.
    """
    containers = (rspec.get("template") or {}).get("spec", {}).get("containers") or []
    c = find_container(containers, adapter.kind.default_container)
    if c is None:
        raise SpecError(
            f"failed to find the port: no container named {adapter.kind.default_container!r} "
            f"in the replica template; name the training container "
            f"{adapter.kind.default_container!r}"
        )
    return [{"name": p.get("name", ""), "port": p["containerPort"]} for p in c.get("ports") or []]


def build_service(adapter: KindAdapter, job: Obj, rtype: str, index: int) -> Obj:
    """The headless service to create for ``(job, rtype, index)``. Raises SpecError."""
    kind = adapter.kind
    rspec = replica_specs(job, kind)[rtype]
    labels = replica_labels(kind, name_of(job), rtype, index, master_role=False)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": adapter.pod_name(name_of(job), rtype, index),
            "namespace": namespace_of(job),
            "labels": labels,
            "ownerReferences": [owner_reference(kind, job)],
        },
        "spec": {
            "clusterIP": "None",
            "selector": dict(labels),
            "ports": service_ports(adapter, rspec),
        },
    }


@dataclass(slots=True)
class ServicePlan:
    create: list[int] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)


def plan_services(adapter: KindAdapter, job: Obj, rtype: str, services: list[Obj]) -> ServicePlan:
    """Create missing indices < replicas; delete services at indices >= replicas."""
    replicas = int(replica_specs(job, adapter.kind)[rtype].get("replicas") or 0)
    seen: set[int] = set()
    plan = ServicePlan()
    for svc in services:
        raw = svc.get("metadata", {}).get("labels", {}).get(REPLICA_INDEX_LABEL)
        try:
            idx = int(raw)
        except (TypeError, ValueError):
            continue
        seen.add(idx)
        if idx >= replicas and not svc.get("metadata", {}).get("deletionTimestamp"):
            plan.delete.append(svc["metadata"]["name"])
    plan.create = [i for i in range(replicas) if i not in seen]
    return plan
