"""The pods, headless services and conditions of a PyTorchJob, as the baselines build them.

A reduced version of what kubetrain's reconcilers build (names, labels, owner reference, the
PyTorch rendezvous env, one headless service per pod): enough for the simulated nodes to run the
pods and for the harness to follow them, with the same objects for both baselines.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "JOB_NAME_LABEL",
    "MASTER_PORT",
    "children_of",
    "condition",
    "now_rfc3339",
    "owner_reference",
]

Obj = dict[str, Any]
GROUP = "training.kubeflow.org/"
JOB_NAME_LABEL = GROUP + "job-name"
MASTER_PORT = 23456


def now_rfc3339() -> str:
    """Now, to the second, as kube writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_reference(job: Obj) -> Obj:
    meta = job["metadata"]
    return {
        "apiVersion": job.get("apiVersion", "kubeflow.org/v1"),
        "kind": job.get("kind", "PyTorchJob"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def condition(ctype: str, reason: str, message: str, *, status: str = "True") -> Obj:
    now = now_rfc3339()
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }


def children_of(job: Obj, *, operator_name: str, owner: bool = True) -> tuple[list[Obj], list[Obj]]:
    """(pods, services) of ``job``: ``<job>-<type>-<i>`` each. ``owner`` False leaves the owner
    reference out (kopf's ``adopt`` sets it)."""
    meta = job["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    specs: dict[str, Obj] = job["spec"]["pytorchReplicaSpecs"]
    world = sum(int(s.get("replicas", 1)) for s in specs.values())
    pods: list[Obj] = []
    services: list[Obj] = []
    rank = 0
    for rtype in sorted(specs, key=lambda t: (t != "Master", t)):
        spec = specs[rtype]
        for i in range(int(spec.get("replicas", 1))):
            pod_name = f"{name}-{rtype.lower()}-{i}"
            labels = {
                GROUP + "operator-name": operator_name,
                JOB_NAME_LABEL: name,
                GROUP + "replica-type": rtype.lower(),
                GROUP + "replica-index": str(i),
            }
            template = copy.deepcopy(spec.get("template") or {})
            pod_meta = template.get("metadata") or {}
            pod_meta.update(name=pod_name, namespace=namespace)
            pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
            if owner:
                pod_meta["ownerReferences"] = [owner_reference(job)]
            pod_spec = template.get("spec") or {}
            pod_spec.setdefault("restartPolicy", spec.get("restartPolicy", "OnFailure"))
            env = [
                {"name": "MASTER_ADDR", "value": f"{name}-master-0"},
                {"name": "MASTER_PORT", "value": str(MASTER_PORT)},
                {"name": "WORLD_SIZE", "value": str(world)},
                {"name": "RANK", "value": str(rank)},
                {"name": "PYTHONUNBUFFERED", "value": "1"},
            ]
            for c in pod_spec.get("containers") or []:
                c["env"] = [*(c.get("env") or []), *env]
                c.setdefault("ports", [{"name": "pytorchjob-port", "containerPort": MASTER_PORT}])
            pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec})
            svc_meta: Obj = {"name": pod_name, "namespace": namespace, "labels": dict(labels)}
            if owner:
                svc_meta["ownerReferences"] = [owner_reference(job)]
            services.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": svc_meta,
                    "spec": {
                        "clusterIP": "None",
                        "selector": labels,
                        "ports": [{"name": "pytorchjob-port", "port": MASTER_PORT}],
                    },
                }
            )
            rank += 1
    return pods, services
