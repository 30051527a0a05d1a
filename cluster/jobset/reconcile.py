"""One reconcile of a JobSet (``JobSetReconciler.reconcile``), in JobSet's order:

1. skip a JobSet being deleted or managed by another controller;
2. sort the child Jobs (``childjobs.py``) and recount ``replicatedJobsStatus``;
3. finished: delete the active Jobs, apply ``ttlSecondsAfterFinished``, stop;
4. delete the previous attempts' Jobs; all Jobs ready -> RestartingJobSet False;
5. a failed Job -> the failure policy, stop; succeeded Jobs -> the success policy, stop if met;
6. the headless Service; the missing Jobs of each replicatedJob whose dependsOn is met
   (InOrder: one replicatedJob at a time, each waiting for the previous to be started);
7. suspend or resume the active Jobs;

then one status write, if anything changed, and the queued events once it succeeded.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubetrain.base.clock import Clock
from kubetrain.base.jsoncopy import json_copy

from .api import JobSetApi
from .childjobs import ChildJobs, classify, replicated_job_statuses, status_of
from .children import construct_job, controller_reference
from .conditions import (
    StatusUpdate,
    finished,
    restarting_false,
    set_condition,
    set_resumed,
    set_suspended,
)
from .constants import (
    BLOCKING_RECREATE,
    COMPLETED,
    FAILED,
    IN_ORDER_COMPLETED_MESSAGE,
    IN_ORDER_COMPLETED_REASON,
    IN_ORDER_IN_PROGRESS_MESSAGE,
    IN_ORDER_IN_PROGRESS_REASON,
    JOB_CREATION_FAILED_REASON,
    JOBSET_NAME_KEY,
    MAX_PARALLELISM,
    REPLICATED_JOB_NAME_KEY,
    RESTARTING_JOBS_READY,
    RESTARTING_JOBS_READY_MESSAGE,
    STARTUP_COMPLETED,
    STARTUP_IN_PROGRESS,
)
from .naming import job_name, subdomain
from .policies import (
    all_jobs_ready,
    all_replicas_started,
    dependency_reached,
    execute_failure_policy,
    execute_success_policy,
)
from .spec import dns_hostnames, in_order, managed_by_other, replicated_jobs, suspended

__all__ = ["Deps", "reconcile"]

Obj = dict[str, Any]
EventSink = Callable[[Mapping[str, Any], str, str, str], None]


@dataclass(kw_only=True)
class Deps:
    api: JobSetApi
    jobs_of: Callable[[Mapping[str, Any]], list[Obj]]
    """The Jobs whose controller is the JobSet (the cache, by owner UID)."""
    service_exists: Callable[[str, str], bool]
    event: EventSink
    clock: Clock


def _now(clock: Clock) -> Callable[[], str]:
    return lambda: clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


async def _parallel(calls: list[Callable[[], Awaitable[Any]]]) -> None:
    """At most ``MAX_PARALLELISM`` at once; the first error is raised once all are done."""
    gate = asyncio.Semaphore(MAX_PARALLELISM)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await call()

    results = await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _delete_jobs(deps: Deps, jobs: list[Obj]) -> None:
    await _parallel(
        [
            functools.partial(
                deps.api.delete_job, j["metadata"]["namespace"], j["metadata"]["name"]
            )
            for j in jobs
            if not j["metadata"].get("deletionTimestamp")
        ]
    )


def _finish_time(js: Mapping[str, Any]) -> datetime | None:
    for c in (js.get("status") or {}).get("conditions") or ():
        if c.get("type") in (COMPLETED, FAILED) and c.get("status") == "True":
            text = str(c.get("lastTransitionTime") or "")
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None
    return None


async def _ttl(deps: Deps, js: Obj) -> float | None:
    """``executeTTLAfterFinishedPolicy``: delete the expired JobSet, else the seconds left."""
    ttl = (js.get("spec") or {}).get("ttlSecondsAfterFinished")
    finish = _finish_time(js)
    if ttl is None or finish is None or js["metadata"].get("deletionTimestamp"):
        return None
    left = float(ttl) - (deps.clock.utcnow() - finish).total_seconds()
    if left <= 0:
        await deps.api.delete_jobset(js["metadata"]["namespace"], js["metadata"]["name"])
        return None
    return left


def _sorted(statuses: Any) -> list[Obj]:
    return sorted((dict(s) for s in statuses or ()), key=lambda s: str(s.get("name")))


async def _headless_service(deps: Deps, js: Obj) -> None:
    if not dns_hostnames(js):
        return
    name, ns = subdomain(js), js["metadata"]["namespace"]
    if deps.service_exists(ns, name):
        return
    network = (js.get("spec") or {}).get("network") or {}
    publish = network.get("publishNotReadyAddresses")
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": [controller_reference(js)]},
        "spec": {
            "clusterIP": "None",
            "selector": {JOBSET_NAME_KEY: js["metadata"]["name"]},
            "publishNotReadyAddresses": True if publish is None else bool(publish),
        },
    }
    await deps.api.create_service(service)


async def _create_jobs(
    deps: Deps, js: Obj, jobs: ChildJobs, statuses: list[Obj], update: StatusUpdate
) -> None:
    """``reconcileReplicatedJobs``."""
    blocking = ((js.get("spec") or {}).get("failurePolicy") or {}).get(
        "restartStrategy"
    ) == BLOCKING_RECREATE
    existing = jobs.names()
    ordered = in_order(js) and not suspended(js)
    replicas: dict[str, int] = {}
    for rjob in replicated_jobs(js):
        count = int(rjob.get("replicas") or 0)
        replicas[str(rjob["name"])] = count
        if not dependency_reached(rjob, replicas, statuses):
            continue
        if ordered and all_replicas_started(count, status_of(statuses, str(rjob["name"]))):
            continue
        wanted = (
            []
            if jobs.previous and blocking
            else [
                construct_job(js, rjob, i)
                for i in range(count)
                if job_name(js["metadata"]["name"], str(rjob["name"]), i) not in existing
            ]
        )
        try:
            await _parallel([functools.partial(deps.api.create_job, j) for j in wanted])
        except Exception as exc:
            deps.event(js, "Warning", JOB_CREATION_FAILED_REASON, str(exc))
            raise
        if ordered:
            set_condition(
                js,
                update,
                STARTUP_IN_PROGRESS,
                "True",
                IN_ORDER_IN_PROGRESS_REASON,
                IN_ORDER_IN_PROGRESS_MESSAGE,
            )
            return
    if ordered:
        set_condition(
            js,
            update,
            STARTUP_COMPLETED,
            "True",
            IN_ORDER_COMPLETED_REASON,
            IN_ORDER_COMPLETED_MESSAGE,
        )


async def _suspend(deps: Deps, js: Obj, active: list[Obj], update: StatusUpdate) -> None:
    for job in active:
        if not (job.get("spec") or {}).get("suspend"):
            changed = _copy(job)
            changed["spec"]["suspend"] = True
            await deps.api.update_job(changed)
    set_suspended(js, update)


def _copy(job: Obj) -> Obj:
    return json_copy(job)


def _merge_list(current: list[Any] | None, extra: list[Any] | None) -> list[Any] | None:
    out = list(current or [])
    for item in extra or ():
        if item not in out:
            out.append(item)
    return out or None


async def _resume_job(deps: Deps, job: Obj, template: Mapping[str, Any]) -> None:
    """``resumeJob``: clear ``startTime`` first (kube lets a Job's template change only while
    it never started), merge the template's labels, annotations, nodeSelector, tolerations and
    schedulingGates, unsuspend."""
    job = _copy(job)
    if (job.get("status") or {}).get("startTime"):
        job["status"].pop("startTime")
        job = await deps.api.update_job_status(job)
    pod = job["spec"].setdefault("template", {})
    meta, spec = pod.setdefault("metadata", {}), pod.setdefault("spec", {})
    tmeta, tspec = template.get("metadata") or {}, template.get("spec") or {}
    for key in ("labels", "annotations"):
        if meta.get(key) or tmeta.get(key):
            meta[key] = {**(meta.get(key) or {}), **(tmeta.get(key) or {})}
    if spec.get("nodeSelector") or tspec.get("nodeSelector"):
        spec["nodeSelector"] = {
            **(spec.get("nodeSelector") or {}),
            **(tspec.get("nodeSelector") or {}),
        }
    for key in ("tolerations", "schedulingGates"):
        merged = _merge_list(spec.get(key), tspec.get(key))
        if merged is not None:
            spec[key] = merged
    job["spec"]["suspend"] = False
    await deps.api.update_job(job)


async def _resume(
    deps: Deps, js: Obj, active: list[Obj], statuses: list[Obj], update: StatusUpdate
) -> None:
    """``resumeJobsIfNecessary``."""
    by_rjob: dict[str, list[Obj]] = {}
    for job in active:
        by_rjob.setdefault(
            str((job["metadata"].get("labels") or {}).get(REPLICATED_JOB_NAME_KEY)), []
        ).append(job)
    ordered = in_order(js)
    replicas: dict[str, int] = {}
    for rjob in replicated_jobs(js):
        name, count = str(rjob["name"]), int(rjob.get("replicas") or 0)
        replicas[name] = count
        if not dependency_reached(rjob, replicas, statuses):
            continue
        if ordered and all_replicas_started(count, status_of(statuses, name)):
            continue
        template = ((rjob.get("template") or {}).get("spec") or {}).get("template") or {}
        for job in by_rjob.get(name, ()):
            if (job.get("spec") or {}).get("suspend"):
                await _resume_job(deps, job, template)
        if ordered:
            set_condition(
                js,
                update,
                STARTUP_IN_PROGRESS,
                "True",
                IN_ORDER_IN_PROGRESS_REASON,
                IN_ORDER_IN_PROGRESS_MESSAGE,
            )
            return
    set_resumed(js, update)


async def reconcile(deps: Deps, js: Obj) -> tuple[StatusUpdate, float | None]:
    """Reconcile ``js`` (a private copy, edited in place: its status is what to write).
    Returns what changed and the TTL requeue; the caller writes the status."""
    update = StatusUpdate(now=_now(deps.clock))
    if js["metadata"].get("deletionTimestamp") or managed_by_other(js):
        return update, None
    jobs = classify(js, deps.jobs_of(js))
    statuses = replicated_job_statuses(js, jobs)
    status = js.setdefault("status", {})
    if _sorted(status.get("replicatedJobsStatus")) != _sorted(statuses):
        status["replicatedJobsStatus"] = statuses
        update.should_update = True
    if finished(js):
        await _delete_jobs(deps, jobs.active)
        return update, await _ttl(deps, js)
    await _delete_jobs(deps, jobs.previous)
    if not suspended(js) and all_jobs_ready(js, statuses):
        restarting_false(js, update, RESTARTING_JOBS_READY, RESTARTING_JOBS_READY_MESSAGE)
    if jobs.failed:
        execute_failure_policy(js, jobs, update)
        return update, None
    if jobs.successful and execute_success_policy(js, jobs, update):
        return update, None
    await _headless_service(deps, js)
    await _create_jobs(deps, js, jobs, statuses, update)
    if suspended(js):
        await _suspend(deps, js, jobs.active, update)
    else:
        await _resume(deps, js, jobs.active, statuses, update)
    return update, None
