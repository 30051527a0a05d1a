"""What every scenario shares: the bench options, the API server, the harness's client, and
``measure_system``, which runs one system through one workload and measures it from outside.

``measure_system``: fresh namespace, the system started as its own process, a warm-up job
that must succeed (proof that the system works, and its caches are warm), then the workload with
``/metrics`` and ``/proc`` read just before and after; the system is stopped at the end. With a
``TenantProbe`` (``tenant_probe.py``) it also records the probe's latency with the system idle,
just before the workload, and during the workload (while the jobs are being created, then until
every job's pods exist).

Identities: the harness (jobs, namespaces, watches, ``/metrics``) always uses ``kubeconfig``; the
measured systems run with ``operator_kubeconfig`` (``--operator-kubeconfig``, e.g. a service
account's token, so that a real API server's priority and fairness treats them as a workload).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import EVENTS, PODS

from ..apimetrics import RequestCounts, delta, scrape_request_counts
from ..harness import HarnessError
from ..jobs import (
    JOB_KINDS,
    PYTORCHJOB,
    TRAINJOB,
    BenchJobKind,
    JobShape,
    create_jobs,
    create_namespace,
)
from ..measure import JobTimes, JobWatch
from ..systems import SystemOptions, system_process
from .probe import ProbePorts, scrape_sums, with_probe_ports
from .tenant_probe import (
    CREATING,
    IDLE,
    RECONCILING,
    PhaseSamples,
    ProbeOptions,
    TenantProbe,
    without_probe,
)

__all__ = [
    "OPERATOR_NAMESPACE",
    "BenchContext",
    "BenchOptions",
    "Measurement",
    "job_controller_writes",
    "measure_system",
    "trainjob_cluster_writes",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchOptions:
    """Parameters of one ``kubetrain bench`` run (recorded in result.json)."""

    jobs: int = 500
    shape: JobShape = field(default_factory=JobShape)
    systems: tuple[str, ...] = ("kubetrain", "raw", "kopf")
    create_concurrency: int = 32
    """Job creates in flight at once."""
    timeout_seconds: float = 600.0
    """Per system: how long to wait for the workload to finish before reporting what is left."""
    settle_seconds: float = 2.0
    """Wait after the workload before the last ``/metrics`` scrape (trailing writes count)."""
    warmup_timeout_seconds: float = 90.0
    ttl_seconds: int = 3
    """ttl scenario: ``ttlSecondsAfterFinished`` of every job."""
    ttl_spread_seconds: float = 5.0
    """ttl scenario: run times spread over 1 .. 1 + spread, so jobs finish over time."""
    system: SystemOptions = field(default_factory=SystemOptions)
    new_jobs: int = 50
    """backlog scenario: jobs created while the system syncs the backlog (``--new-jobs``)."""
    arrival_delay_seconds: float = 2.0
    """backlog scenario: the new jobs start arriving this long after the system's process
    started (it is up and syncing by then; one that is not meets them in its first LIST)."""
    arrival_seconds: float = 5.0
    """backlog scenario: the new jobs arrive evenly spread over this many seconds."""
    backlog_pods: bool = True
    """backlog scenario: the finished jobs keep their Succeeded pods; False: the pods were cleaned
    (cleanPodPolicy All), so only the jobs are cached (``--no-backlog-pods``)."""
    backlog_concurrency: int = 128
    """backlog scenario: backlog jobs being created at once (each: 2 + 2 x pods requests)."""
    seed: int = 1
    """chaos scenario: seeds the kill schedule and the API server's fault draws (``--seed``)."""
    chaos_kills: int = 3
    """chaos scenario: SIGKILL + restart of the operator during the burst (``--kills``)."""
    churn_rate: float = 5.0
    """churn scenario: job arrivals per second (``--rate``)."""
    churn_seconds: float = 60.0
    """churn scenario: how long jobs arrive (``--duration``)."""
    sample_interval_seconds: float = 1.0
    """churn scenario: queue depth, CPU and RSS are sampled this often."""
    soak_restart_seconds: float = 300.0
    """soak scenario: the operator is stopped with SIGTERM and started again this often
    (``--restart-every``; <= 0: never)."""
    soak_warmup_seconds: float = 30.0
    """soak scenario: samples this long (or 20 % of the epoch, if longer) after each (re)start are
    left out of the slopes."""
    contention_capacity_pods: int = 64
    """contention scenario: pods the simulated cluster holds at once (4 nodes)."""
    contention_sample_seconds: float = 0.2
    """contention scenario: how often the harness lists the pods."""
    contention_variants: int = 3
    """contention scenario: how many of ``contention.GANG_VARIANTS`` to run (without gang
    scheduling, Volcano, scheduler-plugins)."""
    probe: ProbeOptions | None = field(default_factory=ProbeOptions)
    """burst scenario: the tenant probe's pace and idle phase (``tenant_probe.py``); None: no
    probe (``--no-probe``)."""
    job_kind: str = "pytorchjob"
    """burst (and, for kinds that have it, backlog) scenario: what the jobs are
    (``--job-kind``, a key of ``jobs.JOB_KINDS``)."""

    @property
    def kind(self) -> BenchJobKind:
        return JOB_KINDS[self.job_kind]


@dataclass
class BenchContext:
    options: BenchOptions
    client: ApiClient
    session: aiohttp.ClientSession
    url: str
    kubeconfig: str
    workdir: Path
    run_id: str
    say: Callable[[str], None] = print
    operator_kubeconfig: str = ""
    """What the measured systems run with (``--operator-kubeconfig``); "": ``kubeconfig``."""
    probe_kubeconfig: str = ""
    """What the tenant probe runs with (``--probe-kubeconfig``); "": ``kubeconfig``."""

    def __post_init__(self) -> None:
        self.operator_kubeconfig = self.operator_kubeconfig or self.kubeconfig
        self.probe_kubeconfig = self.probe_kubeconfig or self.kubeconfig


@dataclass
class Measurement:
    """One system's run of one workload, as measured from outside."""

    system: str
    namespace: str
    jobs: dict[str, JobTimes]
    wall_seconds: float
    create_seconds: float
    cpu_seconds: float | None
    peak_rss_bytes: int | None
    requests: RequestCounts
    timed_out: bool
    extra: dict[str, Any] = field(default_factory=dict)


#: The namespace of kubetrain's webhook Service and certificate Secret when a run needs its
#: webhook server (``--job-kind mpijob-v2beta1``).
OPERATOR_NAMESPACE = "kubetrain-bench-system"
WARMUP = "warmup"


async def _warm_up(
    ctx: BenchContext, namespace: str, proc: Any, kind: BenchJobKind = PYTORCHJOB
) -> None:
    name = WARMUP
    shape = JobShape(masters=1, workers=1, run_seconds=0.2)
    await ctx.client.create(kind.api, kind.manifest(name, namespace, shape))
    deadline = time.monotonic() + ctx.options.warmup_timeout_seconds
    while time.monotonic() < deadline:
        proc.check_alive()
        job = await ctx.client.get(kind.watched, namespace, name)
        conds = (job.get("status") or {}).get("conditions") or []
        if any(
            c.get("type") == kind.succeeded_condition and c.get("status") == "True" for c in conds
        ):
            return
        await asyncio.sleep(0.2)
    raise HarnessError(
        f"{proc.name}: warm-up job {namespace}/{name} did not succeed within "
        f"{ctx.options.warmup_timeout_seconds} s; last lines of {proc.log_path}:\n{proc.log_tail()}"
    )


async def measure_system(
    ctx: BenchContext,
    system: str,
    *,
    scenario: str,
    manifests: list[dict[str, Any]],
    done: Callable[[JobTimes], bool],
    pods_per_job: int,
    probe: TenantProbe | None = None,
    kind: BenchJobKind = PYTORCHJOB,
) -> Measurement:
    """Run ``manifests`` (all in namespace ``<scenario>-<system>-<run id>``, which they must name)
    through ``system`` until every job is ``done`` or the timeout; measure it. With ``probe``:
    its idle phase after the warm-up, then its creating phase from the first create and its
    reconciling phase from the last create until every job has its pods (or the end), by name
    in ``Measurement.extra["probe"]``; its requests of the last two are left out of
    ``requests``.

    ``kind`` (``--job-kind``): what the manifests are. One with ``webhooks`` (MPIJob v2beta1)
    has the harness install kubetrain's webhooks (Service, configurations, the CRD's conversion)
    before the operator starts and wait until they admit; one with ``kube_controllers`` has
    the writes of the cluster's Job controller for the measured jobs and the kubelets' final
    DELETEs of their deleted pods counted by the harness, in
    ``Measurement.extra["kube_controller_writes"]`` (``job_controller_writes``,
    ``JobTimes.pods_deleted_on_node``; for TrainJobs ``trainjob_cluster_writes``: the JobSet
    and Job controllers' Events), to be told from the system's."""
    namespace = namespace_for(ctx, scenario, system)
    await create_namespace(ctx.client, namespace)
    watch = JobWatch(
        ctx.client,
        namespace,
        pods_per_job=pods_per_job,
        pods_to_succeed=kind.pods_to_succeed(pods_per_job),
        kind=kind.kind,
        ref=kind.watched,
        succeeded_condition=kind.succeeded_condition,
        pod_label=kind.pod_job_label,
    )
    await watch.start()
    # kubetrain's own counters (reconciles, Events it dropped) come from its /metrics
    options, ports = ctx.options.system, None
    if system == "kubetrain":
        options, ports = with_probe_ports(options)
    try:
        webhook_port = await _install_webhooks(ctx) if kind.webhooks else 0
        proc = system_process(
            system,
            kubeconfig=ctx.operator_kubeconfig,
            harness_kubeconfig=ctx.kubeconfig,
            namespace=namespace,
            log_path=ctx.workdir / f"{scenario}-{system}.log",
            options=options,
            job_kind=kind.name,
            webhook_port=webhook_port,
            operator_namespace=OPERATOR_NAMESPACE if kind.webhooks else "",
        )
    except ValueError as exc:
        await watch.stop()
        raise HarnessError(str(exc)) from exc
    except BaseException:
        await watch.stop()
        raise
    await proc.start()
    phases: dict[str, PhaseSamples] = {}
    during: dict[str, PhaseSamples] | None = None
    kube_controller_writes: RequestCounts = {}
    try:
        if kind.webhooks:
            await _wait_until_admitting(ctx, namespace, proc)
        await _warm_up(ctx, namespace, proc, kind)
        await asyncio.sleep(ctx.options.settle_seconds)
        if probe is not None:
            await probe.mark(IDLE)
            await asyncio.sleep(probe.options.idle_seconds)
            phases.update(await probe.end())
        before = await scrape_request_counts(ctx.session, ctx.url)
        own_before = await _own_counters(ctx, ports)
        cpu0 = proc.cpu_seconds()
        if probe is not None:
            await probe.mark(CREATING)
        start = time.monotonic()
        total = len(manifests)
        progress = asyncio.create_task(_progress(ctx, system, scenario, watch, total, start))
        try:
            create_seconds = await create_jobs(
                ctx.client,
                manifests,
                concurrency=ctx.options.create_concurrency,
                ref=kind.api,
                on_created=lambda name, at: _register(watch, name, at),
            )
            if probe is not None:
                await probe.mark(RECONCILING)
            deadline = start + ctx.options.timeout_seconds
            timed_out = False
            while not all(done(t) for t in watch.jobs.values()):
                proc.check_alive()
                if probe is not None and during is None and _all_pods_created(watch):
                    during = await probe.end()
                if time.monotonic() > deadline:
                    timed_out = True
                    break
                await asyncio.sleep(0.05)
            wall = time.monotonic() - start
            if probe is not None and during is None:
                during = await probe.end()
        finally:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
        await asyncio.sleep(ctx.options.settle_seconds)
        if kind is TRAINJOB:
            kube_controller_writes = await trainjob_cluster_writes(
                ctx.client, namespace, list(watch.jobs)
            )
        elif kind.kube_controllers:
            kube_controller_writes = await job_controller_writes(
                ctx.client, namespace, list(watch.jobs)
            )
            kubelet_deletes = sum(len(t.pods_deleted_on_node) for t in watch.jobs.values())
            if kubelet_deletes:
                kube_controller_writes["DELETE pods"] = kubelet_deletes
        after = await scrape_request_counts(ctx.session, ctx.url)
        cpu1 = proc.cpu_seconds()
        own = _counters_delta(own_before, await _own_counters(ctx, ports))
        rss = proc.peak_rss_bytes()
        _say_progress(ctx, system, scenario, watch, total, start, final=True)
    finally:
        await proc.stop()
        await watch.stop()
    return Measurement(
        system=system,
        namespace=namespace,
        jobs=dict(watch.jobs),
        wall_seconds=wall,
        create_seconds=create_seconds,
        cpu_seconds=None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        peak_rss_bytes=rss,
        requests=without_probe(delta(before, after), list((during or {}).values())),
        timed_out=timed_out,
        extra={
            **({} if probe is None else {"probe": {**phases, **(during or {})}}),
            **({} if own is None else {"operator_counters": own}),
            **({"kube_controller_writes": kube_controller_writes} if kind.kube_controllers else {}),
        },
    )


OWN_COUNTERS = {
    "reconciles": "controller_runtime_reconcile",
    "events_dropped": "kubetrain_events_dropped",
    "client_limit_cuts": "kubetrain_client_limit_cuts",
}
"""What ``Measurement.extra["operator_counters"]`` holds for kubetrain (the delta over the
measured window, warm-up left out): its reconciles, over every controller and result, and the
Events its recorder refused (queue full, an object's budget spent, a failed write), which never
reach the API server's counts, and the cuts of its clients' adaptive in-flight limits (429s and
Retry-After from API Priority and Fairness, or answers slow enough to mean queueing). Other
systems have no such endpoint."""


async def _own_counters(ctx: BenchContext, ports: ProbePorts | None) -> dict[str, float] | None:
    if ports is None:
        return None
    sums = await scrape_sums(ctx.session, ports.metrics_url, tuple(OWN_COUNTERS.values()))
    if sums[OWN_COUNTERS["reconciles"]] is None:
        return None  # not answered: the reconcile counter exists from the operator's start
    # a labelled family shows only after its first sample: absent is 0
    return {name: sums[family] or 0.0 for name, family in OWN_COUNTERS.items()}


def _counters_delta(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, float] | None:
    if before is None or after is None:
        return None
    return {name: value - before.get(name, 0.0) for name, value in after.items()}


async def _install_webhooks(ctx: BenchContext) -> int:
    """Install kubetrain's MPIJob webhooks (Service in ``OPERATOR_NAMESPACE`` to a free port of
    this machine, which the embedded API server dials; the configurations; the CRD's conversion
    routed to ``/convert``); the port the operator's webhook server must bind. A real
    kube-apiserver (``--kubeconfig``) dials a Service's endpoints, never this machine's loopback:
    it would need ``install_webhooks``'s ``endpoint_address``, which the harness does not set."""
    from kubetrain.reconcilers.api.kinds import MPIJOB
    from kubetrain.reconcilers.api.webhooks import WebhookService
    from kubetrain.up import free_port
    from kubetrain.webhook_install import install_webhooks

    port = free_port()
    service = WebhookService(namespace=OPERATOR_NAMESPACE)
    await install_webhooks(ctx.client, port=port, service=service, kinds=[MPIJOB])
    return port


async def _wait_until_admitting(ctx: BenchContext, namespace: str, proc: Any) -> None:
    from kubetrain.reconcilers.api.kinds import MPIJOB
    from kubetrain.webhook_install import wait_until_admitting

    waiting = asyncio.create_task(
        wait_until_admitting(ctx.client, namespace=namespace, kind=MPIJOB, timeout=60.0)
    )
    try:
        while not waiting.done():
            proc.check_alive()
            await asyncio.sleep(0.1)
        waiting.result()
    except TimeoutError as exc:
        raise HarnessError(
            f"{proc.name}: {exc}; last lines of {proc.log_path}:\n{proc.log_tail()}"
        ) from exc
    finally:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await waiting


async def job_controller_writes(
    client: ApiClient, namespace: str, job_names: list[str]
) -> RequestCounts:
    """The writes the cluster's Job controller made for the launcher Jobs (``<job>-launcher``)
    of ``job_names``, which the API server's counters cannot tell from the system's: one
    ``POST pods`` per launcher pod, and per Event of the controller (``source.component``
    ``job-controller``) on those Jobs one ``POST events`` and ``count - 1`` ``PATCH events``.
    (Its ``PATCH pods``, the tracking finalizer, and ``jobs/status`` writes are left out by
    resource: ``BenchJobKind.not_operator``.)"""
    launchers = {f"{name}-launcher" for name in job_names}
    pods = (await client.list(PODS, namespace)).get("items") or []
    launcher_pods = 0
    for pod in pods:
        for owner in (pod.get("metadata") or {}).get("ownerReferences") or []:
            if owner.get("controller") and owner.get("kind") == "Job":
                launcher_pods += owner.get("name") in launchers
    posts = patches = 0
    for event in (await client.list(EVENTS, namespace)).get("items") or []:
        involved = event.get("involvedObject") or {}
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent")
        if (
            source == "job-controller"
            and involved.get("kind") == "Job"
            and involved.get("name") in launchers
        ):
            posts += 1
            patches += max(0, int(event.get("count") or 1) - 1)
    counts = {"POST pods": launcher_pods, "POST events": posts, "PATCH events": patches}
    return {k: v for k, v in counts.items() if v}


#: ``source.component`` of the Events of the embedded cluster's JobSet and Job controllers.
CLUSTER_EVENT_COMPONENTS = frozenset({"jobset", "job-controller"})


async def trainjob_cluster_writes(
    client: ApiClient, namespace: str, job_names: list[str]
) -> RequestCounts:
    """The Event writes the cluster's JobSet and Job controllers made for the JobSets (named as
    their TrainJobs) of ``job_names`` and their Jobs (``<jobset>-<replicatedJob>-<index>``): per
    Event one ``POST events`` and ``count - 1`` ``PATCH events``. Events are the one resource
    both they and kubetrain's TrainJob controller write, so they are told apart by source; the
    controllers' other writes (Jobs, pods, Services, the Jobs' and JobSets' status) are left out
    by resource (``BenchJobKind.not_operator``)."""
    names = set(job_names)
    posts = patches = 0
    for event in (await client.list(EVENTS, namespace)).get("items") or []:
        involved = event.get("involvedObject") or {}
        source = (event.get("source") or {}).get("component") or event.get("reportingComponent")
        if source not in CLUSTER_EVENT_COMPONENTS:
            continue
        name = str(involved.get("name") or "")
        jobset = name if involved.get("kind") == "JobSet" else name.rsplit("-", 2)[0]
        if jobset in names:
            posts += 1
            patches += max(0, int(event.get("count") or 1) - 1)
    counts = {"POST events": posts, "PATCH events": patches}
    return {k: v for k, v in counts.items() if v}


def _all_pods_created(watch: JobWatch) -> bool:
    return all(t.all_pods_created is not None for t in watch.jobs.values())


def _register(watch: JobWatch, name: str, at: float) -> None:
    watch.job_created(name, at=at)


def namespace_for(ctx: BenchContext, scenario: str, system: str) -> str:
    return f"{scenario}-{system}-{ctx.run_id}"


def _say_progress(
    ctx: BenchContext,
    system: str,
    scenario: str,
    watch: JobWatch,
    total: int,
    start: float,
    *,
    final: bool = False,
) -> None:
    c = watch.counts()
    ctx.say(
        f"[{scenario}/{system}] {time.monotonic() - start:6.1f}s created {c['created']}/{total} "
        f"pods {c['pods']} running {c['running']} succeeded {c['succeeded']} "
        f"failed {c['failed']} deleted {c['deleted']}" + (" (done)" if final else "")
    )


async def _progress(
    ctx: BenchContext, system: str, scenario: str, watch: JobWatch, total: int, start: float
) -> None:
    while True:
        await asyncio.sleep(2.0)
        _say_progress(ctx, system, scenario, watch, total, start)
