"""Factories for the reconciler tests: jobs as the API returns them, pods as the kubelet reports.

Pods are built with the product's own ``build_pod`` (so labels and owner references are the real
ones) and then given a status, the way the node simulator would. ``new_reconciler`` builds a
``JobReconciler`` over in-memory stores and a fake writer (``fakes.RecordingJobWriter``).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from fakes import RecordingRecorder

from kubetrain.base.objects import Obj
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.lister import Lister
from kubetrain.informers.store import Store
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.common.kind_adapter import DomainOptions, KindAdapter
from kubetrain.reconcilers.common.pods import build_pod
from kubetrain.reconcilers.jobcontroller import (
    EventSink,
    JobControllerOptions,
    JobReconciler,
    JobWriter,
)
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.metrics import JobMetrics

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


def container(kind_name: str, **extra: Any) -> Obj:
    adapter = ADAPTERS[kind_name]
    return {"name": adapter.kind.default_container, "image": "img:1", **extra}


def make_job(
    kind_name: str,
    replicas: dict[str, int | None],
    *,
    name: str = "j",
    namespace: str = "ns",
    uid: str = "uid-1",
    restart_policy: str | None = None,
    run_policy: Obj | None = None,
    status: Obj | None = None,
    **spec_extra: Any,
) -> Obj:
    adapter = ADAPTERS[kind_name]
    specs: Obj = {}
    for rtype, n in replicas.items():
        rspec: Obj = {"template": {"spec": {"containers": [container(kind_name)]}}}
        if n is not None:
            rspec["replicas"] = n
        if restart_policy is not None:
            rspec["restartPolicy"] = restart_policy
        specs[rtype] = rspec
    job: Obj = {
        "apiVersion": "kubeflow.org/v1",
        "kind": kind_name,
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "spec": {adapter.kind.replica_field: specs, **spec_extra},
    }
    if run_policy is not None:
        job["spec"]["runPolicy"] = run_policy
    if status is not None:
        job["status"] = status
    return job


def adapter_of(job: Obj) -> KindAdapter:
    return ADAPTERS[job["kind"]]


def make_pod(
    job: Obj,
    rtype: str,
    index: int,
    phase: str = "Running",
    *,
    exit_code: int | None = None,
    restart_count: int = 0,
    reason: str | None = None,
    deleting: bool = False,
) -> Obj:
    adapter = adapter_of(job)
    pod, _ = build_pod(adapter, default_job(adapter.kind, job), rtype, index, options=_opts())
    pod = copy.deepcopy(pod)
    cs: Obj = {"name": adapter.kind.default_container, "restartCount": restart_count, "state": {}}
    if exit_code is not None:
        cs["state"] = {"terminated": {"exitCode": exit_code}}
    pod["status"] = {"phase": phase, "containerStatuses": [cs]}
    if reason:
        pod["status"]["reason"] = reason
    if deleting:
        pod["metadata"]["deletionTimestamp"] = "2025-01-01T12:00:00Z"
    return pod


def _opts() -> DomainOptions:
    return DomainOptions()


def cond_list(status: Obj) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c["reason"]) for c in status.get("conditions") or []]


def uid_indexed_store(*objs: Obj) -> Store:
    """A store of ``objs`` with the controller-UID index, as the owned-object informers have."""
    store = Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})
    for obj in objs:
        store.upsert(obj)
    return store


def new_reconciler(
    kind_name: str,
    *,
    client: JobWriter,
    jobs: Store,
    pods: Store | None = None,
    services: Store | None = None,
    extras: dict[str, Store] | None = None,
    recorder: EventSink | None = None,
    expectations: Expectations | None = None,
    options: JobControllerOptions | None = None,
) -> JobReconciler:
    """A ``JobReconciler`` of ``kind_name`` over these stores (empty indexed ones by default),
    with metrics in a registry of its own."""
    return JobReconciler(
        ADAPTERS[kind_name],
        client=client,
        jobs=Lister(jobs),
        pods=Lister(pods if pods is not None else uid_indexed_store()),
        services=Lister(services if services is not None else uid_indexed_store()),
        extras={plural: Lister(store) for plural, store in (extras or {}).items()},
        recorder=recorder if recorder is not None else RecordingRecorder(),
        metrics=JobMetrics(new_registry(process_metrics=False)),
        expectations=expectations if expectations is not None else Expectations(),
        options=options,
    )


#: A PyTorchJob's status while its one Master runs.
RUNNING: Obj = {
    "conditions": [
        {"type": "Created", "status": "True", "reason": "PyTorchJobCreated"},
        {"type": "Running", "status": "True", "reason": "PyTorchJobRunning"},
    ],
    "replicaStatuses": {"Master": {"active": 1}},
    "startTime": "2025-01-01T12:00:00Z",
}


def finished_status() -> Obj:
    """``RUNNING`` after the Master succeeded."""
    status = copy.deepcopy(RUNNING)
    status["conditions"].append({"type": "Succeeded", "status": "True", "reason": "Done"})
    status["completionTime"] = "2025-01-01T12:01:00Z"
    status["replicaStatuses"] = {"Master": {"succeeded": 1}}
    return status


def job_with(*, status: Obj, rv: str, ttl: int | None = 3600) -> Obj:
    """A one-Master PyTorchJob ``ns/done`` with ``status`` at resourceVersion ``rv`` (and a
    ``ttlSecondsAfterFinished`` unless ``ttl`` is None)."""
    policy = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    job = make_job("PyTorchJob", {"Master": 1}, name="done", run_policy=policy, status=status)
    job["metadata"]["resourceVersion"] = rv
    return job
