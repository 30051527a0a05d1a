"""``backlog``: M finished PyTorchJobs (4 Succeeded pods each) exist before the system starts;
while it syncs, K new jobs arrive (evenly over ``arrival_seconds``, from ``arrival_delay_seconds``
after the system's process started: it is up and listing by then).

``--job-kind trainjob`` (kubetrain only): M finished TrainJobs of 4 nodes instead, each with what
kubetrain's TrainJob controller caches of it: the TrainJob (status ``Complete``, as the
controller leaves it), its runtime snapshot ConfigMap and, unless ``--no-backlog-pods``, its
Completed JobSet (``--no-backlog-pods``: the JobSet is gone, as a JobSet TTL deletes it with its
Jobs and pods). A finished TrainJob's Jobs and pods are not created: the operator caches neither
(JobSet's and the Job controller's are what read them). The JobSet carries ``spec.managedBy``
``BACKLOG_JOBSET_MANAGER``, so that the cluster's JobSet controller leaves it alone (it would
otherwise start its Jobs before the harness wrote its Completed status); the TrainJob
controller does not read that field. The statuses are built with the TrainJob controller's own
rules (``reconcilers/trainer/status.py``) from the Completed JobSet, so that a controller that
writes at start shows a real difference, not one the harness made up. The new jobs are TrainJobs
too.

The backlog is built once, through the API (job POST + status PUT with Succeeded and
completionTime; pod POST bound to a node that does not exist, so nothing runs it, + status PUT
phase Succeeded; owner references set), in one namespace that every system then watches in turn
(kubetrain first). Per system: its RSS in an empty namespace (after a warm-up job), then the
system started on the backlog namespace with the K new jobs created at once. Figures:
- ``seconds_to_ready``: start -> ``/readyz`` 200 (kubetrain only: caches synced);
- ``rss_after_sync_mib`` (at ready, or when the first new job has all its pods for systems without
  /readyz) and ``bytes_per_cached_object`` = (that RSS - empty-namespace RSS) / backlog objects;
- ``writes_to_finished_jobs``: changes to the old jobs, their pods, services and Events (a
  TrainJob's: its JobSet, snapshot ConfigMap, pods and Events) seen by a watch from the moment the system starts until (kubetrain) its work queues are empty
  (``seconds_to_queue_drained``: every old job had its first reconcile) plus the settle time,
  or (other systems) the new jobs have their pods plus the settle time (must be 0: no TTL due);
- ``create_to_pods_created`` p50/p99/max of the new jobs, and start -> all new jobs have their
  pods; for kubetrain also how many new jobs were created before ``/readyz`` (caches synced) and
  their own p99: the latency "while the backlog syncs";
- ``operator_writes``: the system's writes in that time (for TrainJobs less the cluster's JobSet
  and Job controllers' writes for the new jobs, ``kube_controller_writes``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import CONFIGMAPS, EVENTS, PODS, SERVICES, ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer.resources import (
    CLUSTER_TRAINING_RUNTIMES,
    JOBSETS,
    TRAINJOBS,
)

from ..apimetrics import delta, operator_writes, scrape_request_counts
from ..baselines.children import children_of, condition, now_rfc3339
from ..harness import ManagedProcess
from ..jobs import (
    JOB_NAME_LABEL,
    PYTORCHJOB,
    PYTORCHJOBS,
    TRAINER_RUNTIME,
    TRAINJOB,
    BenchJobKind,
    JobShape,
    create_namespace,
    pytorchjob,
)
from ..stats import summarize
from ..systems import system_process
from .context import BenchContext, _warm_up, trainjob_cluster_writes
from .probe import ProbePorts, scrape_gauge_sum, wait_ready, with_probe_ports
from .rawwatch import RawWatch, current_resource_version

__all__ = ["FIGURES", "LATENCIES", "create_backlog", "run"]

LATENCIES = ("create_to_pods_created",)
FIGURES = (
    "backlog_jobs",
    "backlog_objects",
    "seconds_to_ready",
    "seconds_to_first_new_job_pods",
    "seconds_to_all_new_job_pods",
    "seconds_to_queue_drained",
    "rss_empty_mib",
    "rss_after_sync_mib",
    "bytes_per_cached_object",
    "peak_rss_mib",
    "cpu_seconds",
    "writes_to_finished_jobs",
    "create_to_pods_created_p50",
    "create_to_pods_created_p99",
    "create_to_pods_created_max",
    "new_jobs_created_before_ready",
    "create_to_pods_created_before_ready_p99",
    "new_jobs_with_all_pods",
    "operator_writes",
)
GONE_NODE = "backlog-finished-node"
"""Backlog pods are bound here: no simulated node has this name, so no kubelet touches them."""
OPERATOR_NAME = "pytorchjob-controller"
BACKLOG_JOBSET_MANAGER = "example.com/bench-backlog"
"""``spec.managedBy`` of the backlog's finished JobSets: no JobSet controller acts on them."""


async def _bounded(concurrency: int, items: list[Any], fn: Callable[[Any], Any]) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> None:
        async with gate:
            await fn(item)

    await asyncio.gather(*(one(i) for i in items))


async def create_backlog(
    client: ApiClient,
    namespace: str,
    *,
    jobs: int,
    shape: JobShape,
    concurrency: int,
    say: Callable[[str], None],
    with_pods: bool = True,
    kind: BenchJobKind = PYTORCHJOB,
) -> int:
    """Create ``jobs`` finished jobs, with their Succeeded pods unless ``with_pods`` is False
    (then with cleanPodPolicy All, which removed them); the number of objects made. TrainJobs
    (``kind``): with their snapshot ConfigMap, and their Completed JobSet unless ``with_pods``
    is False (see the module docstring)."""
    done = 0
    start = time.monotonic()
    trainjob_one: Callable[[str], Any] | None = None
    if kind is TRAINJOB:
        trainjob_one = await _finished_trainjob_maker(
            client, namespace, shape, with_jobset=with_pods
        )
    elif kind is not PYTORCHJOB:
        raise ValueError(f"backlog: no finished jobs of kind {kind.name}")

    async def one(i: int) -> None:
        nonlocal done
        if trainjob_one is not None:
            await trainjob_one(f"old-{i:06d}")
            done += 1
            if done % 1000 == 0:
                rate = done / (time.monotonic() - start)
                say(f"[backlog] {done}/{jobs} finished TrainJobs created ({rate:.0f} jobs/s)")
            return
        manifest = pytorchjob(f"old-{i:06d}", namespace, shape)
        if not with_pods:
            manifest["spec"].setdefault("runPolicy", {})["cleanPodPolicy"] = "All"
        job = await client.create(PYTORCHJOBS, manifest)
        now = now_rfc3339()
        job["status"] = {
            "conditions": [
                condition("Created", "PyTorchJobCreated", "created"),
                condition("Running", "PyTorchJobRunning", "running", status="False"),
                condition("Succeeded", "PyTorchJobSucceeded", "succeeded"),
            ],
            "replicaStatuses": {
                "Master": {"succeeded": shape.masters},
                **({"Worker": {"succeeded": shape.workers}} if shape.workers else {}),
            },
            "startTime": now,
            "completionTime": now,
            "lastReconcileTime": now,
        }
        await client.update_status(PYTORCHJOBS, job)
        pods, _services = children_of(job, operator_name=OPERATOR_NAME) if with_pods else ([], [])
        for pod in pods:
            pod["spec"]["nodeName"] = GONE_NODE
            made = await client.create(PODS, pod)
            made["status"] = {"phase": "Succeeded", "startTime": now}
            await client.update_status(PODS, made)
        done += 1
        if done % 1000 == 0:
            rate = done / (time.monotonic() - start)
            say(f"[backlog] {done}/{jobs} finished jobs created ({rate:.0f} jobs/s)")

    await _bounded(concurrency, list(range(jobs)), one)
    if kind is TRAINJOB:
        return jobs * (3 if with_pods else 2)
    return jobs * (1 + (shape.pods if with_pods else 0))


async def _finished_trainjob_maker(
    client: ApiClient, namespace: str, shape: JobShape, *, with_jobset: bool
) -> Callable[[str], Any]:
    """``make(name)``: one finished TrainJob of ``shape`` in ``namespace`` with its snapshot
    ConfigMap and (``with_jobset``) its Completed JobSet, as kubetrain's TrainJob controller
    left them after a run: the ConfigMap and JobSet as it builds them (``snapshot_configmap``,
    ``build_objects``; the JobSet with ``BACKLOG_JOBSET_MANAGER``), the TrainJob's status
    derived from the JobSet's by its rules, so that its next reconcile changes nothing."""
    from kubetrain.reconcilers.trainer.objects import build_objects
    from kubetrain.reconcilers.trainer.snapshot import snapshot_configmap
    from kubetrain.reconcilers.trainer.status import (
        copy_jobset_status,
        set_phase,
        trainjob_phase,
    )

    runtime = await client.get(CLUSTER_TRAINING_RUNTIMES, None, TRAINER_RUNTIME)

    async def make(name: str) -> None:
        job = await client.create(TRAINJOBS, TRAINJOB.manifest(name, namespace, shape))
        now = now_rfc3339()
        jobset_status = {
            "replicatedJobsStatus": [
                {"name": "node", "ready": 0, "succeeded": 1, "failed": 0, "active": 0,
                 "suspended": 0}
            ],
            "conditions": [
                {"type": "Completed", "status": "True", "reason": "AllJobsCompleted",
                 "message": "jobset completed successfully", "lastTransitionTime": now}
            ],
            "terminalState": "Completed",
        }  # fmt: skip
        status: dict[str, Any] = {"startTime": job["metadata"].get("creationTimestamp") or now}
        copy_jobset_status(status, {"status": jobset_status})
        set_phase(status, trainjob_phase(status, suspended=False, jobset=None))
        job["status"] = status
        await client.update_status(TRAINJOBS, job)
        await client.create(CONFIGMAPS, snapshot_configmap(job, runtime))
        if with_jobset:
            jobset = build_objects(job, runtime.get("spec") or {}).jobset
            jobset["spec"]["managedBy"] = BACKLOG_JOBSET_MANAGER
            made = await client.create(JOBSETS, jobset)
            made["status"] = jobset_status
            await client.update_status(JOBSETS, made)

    return make


class _Observer:
    """Sorts watch events into writes to backlog objects and pod arrivals of new jobs."""

    def __init__(
        self,
        *,
        pods_per_job: int,
        job_plural: str = PYTORCHJOBS.plural,
        job_label: str = JOB_NAME_LABEL,
    ) -> None:
        self.pods_per_job = pods_per_job
        self.job_plural = job_plural
        self.job_label = job_label
        self.old_writes: dict[str, int] = {}
        self.created: dict[str, float] = {}
        self.pods: dict[str, set[str]] = {}
        self.all_pods: dict[str, float] = {}

    def _old(self, name: str) -> bool:
        return name.startswith("old-")

    def on_event(self, ref: ResourceRef, etype: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        if ref.plural == "events":
            involved = str((obj.get("involvedObject") or {}).get("name", ""))
            if self._old(involved):
                self._count(f"{etype} events")
            return
        job = (
            name
            if ref.plural == self.job_plural
            else (meta.get("labels") or {}).get(self.job_label, name)
        )
        if self._old(str(job)):
            self._count(f"{etype} {ref.plural}")
            return
        if ref.plural == "pods" and etype == "ADDED" and job:
            seen = self.pods.setdefault(str(job), set())
            seen.add(name)
            if len(seen) >= self.pods_per_job and job not in self.all_pods:
                self.all_pods[str(job)] = time.time()

    def _count(self, key: str) -> None:
        self.old_writes[key] = self.old_writes.get(key, 0) + 1


async def _arrive(
    names: list[str], create: Callable[[str], Any], *, start: float, over: float
) -> None:
    """Create ``names`` one by one, evenly spread over ``over`` seconds from monotonic ``start``."""
    step = over / max(len(names), 1)
    for i, name in enumerate(names):
        delay = start + i * step - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await create(name)


async def _wait_queue_drained(
    ctx: BenchContext, ports: ProbePorts, proc: ManagedProcess, *, deadline: float
) -> float | None:
    """Poll kubetrain's ``workqueue_depth`` (all queues) until it is 0 three times in a row;
    the monotonic time of the first of those, None on timeout."""
    zero_since: float | None = None
    zeros = 0
    while time.monotonic() < deadline:
        proc.check_alive()
        depth = await scrape_gauge_sum(ctx.session, ports.metrics_url, "workqueue_depth")
        if depth == 0:
            zeros += 1
            zero_since = zero_since or time.monotonic()
            if zeros >= 3:
                return zero_since
        else:
            zeros, zero_since = 0, None
        await asyncio.sleep(0.1)
    return None


async def _measure(
    ctx: BenchContext,
    system: str,
    *,
    namespace: str,
    backlog_objects: int,
) -> dict[str, Any]:
    opts = ctx.options
    shape = opts.shape
    kind = opts.kind
    sys_options, ports = with_probe_ports(opts.system)
    # 1. The system's RSS in an empty namespace, warm (the delta base for bytes per object).
    empty_ns = f"backlog-empty-{system}-{ctx.run_id}"
    await create_namespace(ctx.client, empty_ns)
    empty = system_process(
        system, kubeconfig=ctx.operator_kubeconfig, harness_kubeconfig=ctx.kubeconfig,
        namespace=empty_ns,
        log_path=ctx.workdir / f"backlog-empty-{system}.log", options=sys_options,
        job_kind=kind.name,
    )  # fmt: skip
    await empty.start()
    try:
        await _warm_up(ctx, empty_ns, empty, kind)
        await asyncio.sleep(opts.settle_seconds)
        rss_empty = empty.rss_bytes()
    finally:
        await empty.stop()
    # 2. The system on the backlog, new jobs created as it starts.
    observer = _Observer(
        pods_per_job=shape.pods, job_plural=kind.watched.plural, job_label=kind.pod_job_label
    )
    rv = await current_resource_version(ctx.client, kind.watched, namespace)
    # What the system may write for a finished job: the job, its pods and services (v1), its
    # JobSet and snapshot ConfigMap (TrainJob), Events.
    watched = (
        [kind.watched, JOBSETS, CONFIGMAPS, PODS, EVENTS]
        if kind is TRAINJOB
        else [kind.watched, PODS, SERVICES, EVENTS]
    )
    watch = RawWatch(
        ctx.client, namespace, watched, resource_version=rv, on_event=observer.on_event
    )
    watch.start()
    before = await scrape_request_counts(ctx.session, ctx.url)
    proc = system_process(
        system, kubeconfig=ctx.operator_kubeconfig, harness_kubeconfig=ctx.kubeconfig,
        namespace=namespace,
        log_path=ctx.workdir / f"backlog-{system}.log", options=sys_options,
        job_kind=kind.name,
    )  # fmt: skip
    await proc.start()
    start = time.monotonic()
    start_wall = time.time()
    rss_after_sync: int | None = None
    cluster_writes: dict[str, int] = {}
    ready_at: float | None = None
    arrivals: asyncio.Task[None] | None = None
    try:
        ready_task: asyncio.Task[float | None] | None = None
        if system == "kubetrain":
            ready_task = asyncio.create_task(
                wait_ready(ctx.session, ports, proc, timeout=opts.timeout_seconds)
            )
        names = [f"new-{system}-{i:05d}" for i in range(opts.new_jobs)]

        async def create(name: str) -> None:
            await ctx.client.create(kind.api, kind.manifest(name, namespace, shape))
            observer.created[name] = time.time()
            if ready_task is not None and not ready_task.done():
                created_before_ready.add(name)

        created_before_ready: set[str] = set()
        arrivals = asyncio.create_task(
            _arrive(
                names, create, start=start + opts.arrival_delay_seconds, over=opts.arrival_seconds
            )
        )
        deadline = start + opts.timeout_seconds
        last_say = time.monotonic()
        own = set(names)  # only this system's jobs count (another's may linger after a timeout)

        def done() -> int:
            return sum(1 for n in observer.all_pods if n in own)

        while done() < len(names) and time.monotonic() < deadline:
            proc.check_alive()
            if ready_task is not None and ready_task.done() and rss_after_sync is None:
                ready_at = ready_task.result()
                rss_after_sync = proc.rss_bytes()
            if ready_task is None and rss_after_sync is None and done():
                rss_after_sync = proc.rss_bytes()
            if time.monotonic() - last_say > 2:
                last_say = time.monotonic()
                ctx.say(
                    f"[backlog/{system}] {time.monotonic() - start:6.1f}s ready "
                    f"{ready_task.done() if ready_task else '-'} new jobs with pods "
                    f"{done()}/{len(names)}"
                )
            await asyncio.sleep(0.05)
        all_new_at = time.monotonic() if done() == len(names) else None
        await arrivals
        if ready_task is not None:
            ready_at = await ready_task
            if rss_after_sync is None:
                rss_after_sync = proc.rss_bytes()
        if rss_after_sync is None:
            rss_after_sync = proc.rss_bytes()
        drained_at = None
        if system == "kubetrain":  # late writes to old jobs would come from the initial queue
            drained_at = await _wait_queue_drained(ctx, ports, proc, deadline=deadline)
        await asyncio.sleep(opts.settle_seconds)
        if kind is TRAINJOB:  # the JobSet and Job controllers' Events for the new jobs
            cluster_writes = await trainjob_cluster_writes(ctx.client, namespace, names)
        after = await scrape_request_counts(ctx.session, ctx.url)
        cpu = proc.cpu_seconds()
        peak = proc.peak_rss_bytes()
    finally:
        if arrivals is not None and not arrivals.done():
            arrivals.cancel()
        await proc.stop()
        await watch.stop()
    lat = [t - observer.created[n] for n, t in observer.all_pods.items() if n in observer.created]
    lat_during_sync = [
        t - observer.created[n] for n, t in observer.all_pods.items() if n in created_before_ready
    ]
    first = min((t for n, t in observer.all_pods.items() if n in own), default=None)
    s = summarize(lat)
    mib = 2**20
    writes = operator_writes(
        delta(before, after), also_not_operator=kind.not_operator, minus=cluster_writes
    )
    figures = {
        "backlog_jobs": opts.jobs,
        "backlog_objects": backlog_objects,
        "seconds_to_ready": None if ready_at is None else ready_at - start,
        "seconds_to_first_new_job_pods": None if first is None else first - start_wall,
        "seconds_to_all_new_job_pods": None if all_new_at is None else all_new_at - start,
        "seconds_to_queue_drained": None if drained_at is None else drained_at - start,
        "rss_empty_mib": None if rss_empty is None else rss_empty / mib,
        "rss_after_sync_mib": None if rss_after_sync is None else rss_after_sync / mib,
        "bytes_per_cached_object": None
        if rss_empty is None or rss_after_sync is None
        else (rss_after_sync - rss_empty) / backlog_objects,
        "peak_rss_mib": None if peak is None else peak / mib,
        "cpu_seconds": cpu,
        "writes_to_finished_jobs": sum(observer.old_writes.values()),
        "create_to_pods_created_p50": s["p50"],
        "create_to_pods_created_p99": s["p99"],
        "create_to_pods_created_max": s["max"],
        "new_jobs_created_before_ready": len(created_before_ready) if ready_task else None,
        "create_to_pods_created_before_ready_p99": summarize(lat_during_sync)["p99"],
        "new_jobs_with_all_pods": done(),
        "operator_writes": sum(writes.values()),
    }
    return {
        "namespace": namespace,
        "figures": figures,
        "latency_samples": {"create_to_pods_created": lat},
        "writes_to_finished_jobs": observer.old_writes,
        "watch_gaps": watch.gaps,
        "api_requests": delta(before, after),
        "operator_writes": writes,
        **({"kube_controller_writes": cluster_writes} if kind is TRAINJOB else {}),
    }


async def _delete_new_jobs(ctx: BenchContext, namespace: str, system: str) -> None:
    """Delete ``system``'s new jobs (their pods and services go by GC, in the background)."""
    names = [f"new-{system}-{i:05d}" for i in range(ctx.options.new_jobs)]

    async def delete(name: str) -> None:
        try:
            await ctx.client.delete(
                ctx.options.kind.api, namespace, name, propagation_policy="Background"
            )
        except ApiStatusError as e:
            if not e.is_not_found:
                raise

    await _bounded(ctx.options.create_concurrency, names, delete)


async def run(ctx: BenchContext) -> dict[str, Any]:
    """Build the backlog once, then measure every system on it in turn."""
    opts = ctx.options
    namespace = f"backlog-{ctx.run_id}"
    await create_namespace(ctx.client, namespace)
    kind = opts.kind
    if kind is TRAINJOB:
        kept = "snapshot ConfigMaps" + (
            ", Completed JobSets" if opts.backlog_pods else ", JobSets gone"
        )
    else:
        kept = (
            f"{opts.shape.pods} pods" if opts.backlog_pods else "pods cleaned (cleanPodPolicy All)"
        )
    ctx.say(f"[backlog] creating {opts.jobs} finished {kind.kind}s, {kept}")
    t0 = time.monotonic()
    objects = await create_backlog(
        ctx.client, namespace, jobs=opts.jobs, shape=opts.shape,
        concurrency=opts.backlog_concurrency, say=ctx.say, with_pods=opts.backlog_pods,
        kind=kind,
    )  # fmt: skip
    build_seconds = time.monotonic() - t0
    ctx.say(f"[backlog] {objects} objects in {build_seconds:.1f} s")
    order = sorted(opts.systems, key=lambda s: s != "kubetrain")
    systems: dict[str, Any] = {}
    for system in order:
        ctx.say(f"[backlog/{system}] starting on {opts.jobs} finished jobs, {opts.new_jobs} new")
        systems[system] = await _measure(ctx, system, namespace=namespace, backlog_objects=objects)
        # A system that timed out leaves new jobs without pods: the next one must not do its work.
        await _delete_new_jobs(ctx, namespace, system)
    return {
        "parameters": {
            "backlog_jobs": opts.jobs,
            "job_kind": kind.name,
            "backlog_pods": opts.backlog_pods,
            "new_jobs": opts.new_jobs,
            "masters": opts.shape.masters,
            "workers": opts.shape.workers,
            "backlog_build_seconds": round(build_seconds, 1),
            "backlog_create_concurrency": opts.backlog_concurrency,
        },
        "figures": list(FIGURES),
        "latencies": list(LATENCIES),
        "systems": systems,
    }
