"""The ``kopf`` baseline: a PyTorchJob operator as a Python team would write it with kopf.

Written the way kopf's documentation shows: ``@kopf.on.create`` creates the children (adopted with
``kopf.adopt``) through the async Kubernetes client (kubernetes-asyncio) and sets the Created
condition through the handler's ``patch``; pod changes arrive through ``@kopf.on.event`` on
labelled pods, with ``@kopf.index`` keeping pod phases per job; the Running and Succeeded
conditions are status patches; ``ttlSecondsAfterFinished`` is a ``@kopf.daemon`` on finished
jobs. kopf's defaults are kept (progress annotations, handler events, per-object workers).

Run: ``kopf run --standalone --namespace NS path/to/kopf_operator.py`` (``KUBECONFIG`` set).
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import kopf
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from kubetrain.bench.baselines.children import (
    JOB_NAME_LABEL,
    children_of,
    condition,
    now_rfc3339,
)
from kubetrain.bench.measure import parse_time

GROUP, VERSION, PLURAL = "kubeflow.org", "v1", "pytorchjobs"
OPERATOR_NAME = "kopf-baseline"
OPERATOR_LABEL = "training.kubeflow.org/operator-name"

_api: dict[str, Any] = {}
# Conditions written per (namespace, job): what this process wrote or read back.
_conditions: dict[tuple[str, str], list[dict[str, Any]]] = {}


@kopf.on.startup()
async def startup(**_: Any) -> None:
    await k8s_config.load_kube_config()
    api = k8s.ApiClient()
    _api["core"] = k8s.CoreV1Api(api)
    _api["custom"] = k8s.CustomObjectsApi(api)


@kopf.index("pods", labels={OPERATOR_LABEL: OPERATOR_NAME})
def pod_phases(
    *, namespace: str | None, name: str, labels: kopf.Labels, status: kopf.Status, **_: Any
) -> dict[tuple[str, str], tuple[str, str]]:
    return {(namespace or "", labels[JOB_NAME_LABEL]): (name, status.get("phase", "Pending"))}


@kopf.index(GROUP, VERSION, PLURAL)
def job_specs(
    *, namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    replicas = sum(int(s.get("replicas", 1)) for s in spec["pytorchReplicaSpecs"].values())
    return {
        (namespace or "", name): {
            "pods": replicas,
            "conditions": copy.deepcopy(list(status.get("conditions") or [])),
        }
    }


@kopf.on.create(GROUP, VERSION, PLURAL)
async def create_job(
    *,
    body: kopf.Body,
    meta: kopf.Meta,
    spec: kopf.Spec,
    namespace: str | None,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    namespace = namespace or ""
    job = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PyTorchJob",
        "metadata": {"name": meta["name"], "namespace": namespace, "uid": meta["uid"]},
        "spec": copy.deepcopy(dict(spec)),
    }
    pods, services = children_of(job, operator_name=OPERATOR_NAME, owner=False)
    for child in [*pods, *services]:
        kopf.adopt(child, owner=body)
    core = _api["core"]
    await asyncio.gather(
        *(core.create_namespaced_pod(namespace, pod) for pod in pods),
        *(core.create_namespaced_service(namespace, svc) for svc in services),
    )
    conditions = [
        condition("Created", "PyTorchJobCreated", f"PyTorchJob {meta['name']} is created.")
    ]
    _conditions[(namespace, meta["name"])] = conditions
    patch.status["conditions"] = conditions


# kopf injects indices by their function names, which its handler protocol cannot express.
@kopf.on.event("pods", labels={OPERATOR_LABEL: OPERATOR_NAME})  # type: ignore[arg-type]
async def pod_event(
    *,
    namespace: str | None,
    labels: kopf.Labels,
    pod_phases: kopf.Index[tuple[str, str], tuple[str, str]],
    job_specs: kopf.Index[tuple[str, str], dict[str, Any]],
    **_: Any,
) -> None:
    namespace = namespace or ""
    job = labels[JOB_NAME_LABEL]
    key = (namespace, job)
    specs = list(job_specs.get(key, []))
    if not specs:
        return
    conditions = _conditions.setdefault(key, specs[0]["conditions"])
    written = {c["type"] for c in conditions if c.get("status") == "True"}
    if "Created" not in written or "Succeeded" in written:
        return
    phases = [phase for _name, phase in pod_phases.get(key, [])]
    if len(phases) < specs[0]["pods"]:
        return
    status: dict[str, Any] = {}
    if "Running" not in written and all(p in ("Running", "Succeeded") for p in phases):
        conditions.append(
            condition("Running", "PyTorchJobRunning", f"PyTorchJob {job} is running.")
        )
        status["startTime"] = now_rfc3339()
    if all(p == "Succeeded" for p in phases):
        for c in conditions:
            if c["type"] == "Running":
                c["status"] = "False"
        conditions.append(
            condition(
                "Succeeded", "PyTorchJobSucceeded", f"PyTorchJob {job} is successfully completed."
            )
        )
        status["completionTime"] = now_rfc3339()
    if not status:
        return
    status["conditions"] = conditions
    await _api["custom"].patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, job, {"status": status},
        _content_type="application/merge-patch+json",
    )  # fmt: skip


def _finished_with_ttl(*, spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    ttl = (spec.get("runPolicy") or {}).get("ttlSecondsAfterFinished")
    done = any(
        c.get("type") == "Succeeded" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    return ttl is not None and done and bool(status.get("completionTime"))


@kopf.daemon(GROUP, VERSION, PLURAL, when=_finished_with_ttl)
async def ttl_daemon(
    *,
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    status: kopf.Status,
    stopped: kopf.DaemonStopped,
    **_: Any,
) -> None:
    namespace = namespace or ""
    completion = parse_time(status.get("completionTime")) or time.time()
    due = completion + float(spec["runPolicy"]["ttlSecondsAfterFinished"])
    await stopped.wait(max(0.0, due - time.time()))
    if stopped:
        return
    await _api["custom"].delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, propagation_policy="Background"
    )
    _conditions.pop((namespace, name), None)
