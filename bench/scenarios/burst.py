"""``burst``: N jobs created as fast as the API server accepts them, per system.

Figures per system (``FIGURES``): per-job latencies create -> all pods created, create -> Running,
last pod Succeeded -> job Succeeded (p50/p90/p99/max); wall time to all Succeeded; operator CPU
seconds (total and per job) and peak RSS; write amplification = the system's writes / the
minimal writes (pods + services + the three condition changes of each job); and, unless
``--no-probe``, the tenant probe's latency with the system idle and during the burst until every
job's pods exist, and in the part of it after the harness's last create (``tenant_probe.py``: is
the system fair to the API server's other clients?); for kubetrain also its reconciles per job,
the Events it dropped and the cuts of its adaptive request limit (``KUBETRAIN_ONLY``).

``--job-kind mpijob-v2beta1`` (kubetrain only): the same shape as MPIJobs ``kubeflow.org/v2beta1``
(1 Launcher + the workers; ``jobs.mpijob_v2beta1``), on a cluster with its Job controller. A job's
pods are its workers and its launcher Job's pod; "last pod Succeeded" is the launcher pod's (the
workers run until ``cleanPodPolicy: Running`` deletes them), so that latency includes the Job
controller's status update of the launcher Job. The minimal writes are mpi-operator's
(``BenchJobKind.minimal_writes``): Service, ConfigMap, Secret, worker pods, launcher Job, one
ConfigMap update (the running workers in ``discover_hosts.sh``), the worker deletes and the three
status changes; the Job controller's writes (launcher pod, its finalizer, the Job's status, its
Events) and the kubelets' final DELETEs of the deleted workers are not the system's and are left
out (``kube_controller_writes`` in result.json says how many).

``--job-kind trainjob`` (kubetrain only): TrainJobs of as many nodes as the shape has pods (4) on
the built-in ``torch-distributed`` runtime (``jobs.trainjob``), on a cluster with its JobSet and
Job controllers; the operator runs its TrainJob controller. A job's pods are its JobSet's Job's
(by label ``jobset.sigs.k8s.io/jobset-name``); Running is ``status.phase`` Running (every node
ready), Succeeded the ``Complete`` condition, so "last pod Succeeded -> job Succeeded" includes
the Job controller's and the JobSet controller's status updates before the TrainJob's. The
minimal writes are Trainer's (``BenchJobKind.minimal_writes``): the snapshot ConfigMap apply,
the JobSet apply and the three status changes (Pending, Running, Complete); the JobSet and Job
controllers' writes (Job, headless Service, pods, their finalizers, the Job's and JobSet's status,
their Events) are not the system's and are left out (``kube_controller_writes``: the Events).
"""

from __future__ import annotations

from typing import Any

from ..apimetrics import operator_writes, without_events
from ..jobs import PYTORCHJOB, BenchJobKind
from ..measure import JobTimes, latency_samples
from ..stats import latency_figures
from . import tenant_probe
from .context import BenchContext, Measurement, measure_system, namespace_for
from .tenant_probe import TenantProbe, ensure_probe_objects, probe_figures, probe_section

__all__ = [
    "FIGURES",
    "KUBETRAIN_ONLY",
    "LATENCIES",
    "REQUIRED_STATUS_WRITES",
    "figures_of",
    "run",
]

LATENCIES = ("create_to_pods_created", "create_to_running", "pods_succeeded_to_job_succeeded")
REQUIRED_STATUS_WRITES = 3
"""Created, Running, Succeeded: the status changes every job must go through (a TrainJob's:
Pending, Running, Complete)."""
FIGURES = (
    *(f"{name}_{q}" for name in LATENCIES for q in ("p50", "p90", "p99", "max")),
    "wall_seconds_to_all_succeeded",
    "jobs_succeeded",
    "jobs_not_succeeded",
    "cpu_seconds",
    "cpu_seconds_per_job",
    "peak_rss_mib",
    "operator_writes",
    "minimal_writes",
    "write_amplification",
    "write_amplification_without_events",
    *tenant_probe.FIGURES,
    "reconciles_per_job",
    "events_dropped",
    "client_limit_cuts",
)
"""Every figure each system reports in result.json and summary.md (the probe's are None with
``--no-probe``; ``KUBETRAIN_ONLY`` are None for the other systems)."""
KUBETRAIN_ONLY = ("reconciles_per_job", "events_dropped", "client_limit_cuts")
"""From kubetrain's own ``/metrics`` (``context.OWN_COUNTERS``): reconciles per job, the Events its
recorder dropped, which the API server's request counts cannot show, and how often its adaptive
limit of requests in flight was cut (0: the server never pushed back, the limit only grew)."""


def _done(t: JobTimes) -> bool:
    return t.succeeded is not None or t.failed is not None


def figures_of(
    m: Measurement,
    *,
    pods: int,
    services: int,
    kind: BenchJobKind = PYTORCHJOB,
    minimal_per_job: int | None = None,
) -> dict[str, Any]:
    """The scenario's figures, latency samples and request tables of one measurement of jobs of
    ``kind``; ``minimal_per_job`` (default: ``pods + services + REQUIRED_STATUS_WRITES``) is
    what write amplification divides by."""
    samples = latency_samples(m.jobs.values(), LATENCIES)
    figures: dict[str, Any] = dict(latency_figures(samples, ("p50", "p90", "p99", "max")))
    n = len(m.jobs)
    succeeded = sum(1 for t in m.jobs.values() if t.succeeded is not None)
    writes = operator_writes(
        m.requests,
        also_not_operator=kind.not_operator,
        minus=m.extra.get("kube_controller_writes"),
    )
    per_job = (
        pods + services + REQUIRED_STATUS_WRITES if minimal_per_job is None else minimal_per_job
    )
    minimal = n * per_job
    total_writes = sum(writes.values())
    figures.update(
        wall_seconds_to_all_succeeded=None if m.timed_out else m.wall_seconds,
        jobs_succeeded=succeeded,
        jobs_not_succeeded=n - succeeded,
        cpu_seconds=m.cpu_seconds,
        cpu_seconds_per_job=None if m.cpu_seconds is None or not n else m.cpu_seconds / n,
        peak_rss_mib=None if m.peak_rss_bytes is None else m.peak_rss_bytes / 2**20,
        operator_writes=total_writes,
        minimal_writes=minimal,
        write_amplification=total_writes / minimal if minimal else None,
        write_amplification_without_events=(
            sum(without_events(writes).values()) / minimal if minimal else None
        ),
    )
    probe = m.extra.get("probe") or {}
    figures.update(probe_figures(probe))
    own = m.extra.get("operator_counters")
    figures.update(
        reconciles_per_job=own["reconciles"] / n if own and n else None,
        events_dropped=int(own["events_dropped"]) if own else None,
        client_limit_cuts=int(own["client_limit_cuts"]) if own else None,
    )
    return {
        "namespace": m.namespace,
        "figures": figures,
        "probe": probe_section(probe),
        "create_seconds": m.create_seconds,
        "latency_samples": samples,
        "api_requests": m.requests,
        "operator_writes": writes,
        **(
            {"kube_controller_writes": m.extra["kube_controller_writes"]}
            if "kube_controller_writes" in m.extra
            else {}
        ),
    }


async def run(ctx: BenchContext) -> dict[str, Any]:
    """Every system of ``ctx.options.systems`` in turn; the scenario's section of result.json."""
    opts = ctx.options
    shape = opts.shape
    kind = opts.kind
    systems: dict[str, Any] = {}
    probe: TenantProbe | None = None
    if opts.probe is not None:
        await ensure_probe_objects(ctx.client)
        probe = TenantProbe(
            kubeconfig=ctx.probe_kubeconfig,
            log_path=ctx.workdir / "burst-tenant-probe.log",
            options=opts.probe,
        )
        await probe.start()
    try:
        for system in opts.systems:
            ns = namespace_for(ctx, "burst", system)
            manifests = [kind.manifest(f"job-{i:05d}", ns, shape) for i in range(opts.jobs)]
            ctx.say(f"[burst/{system}] {opts.jobs} {kind.kind} jobs of {shape.pods} pods")
            m = await measure_system(
                ctx,
                system,
                scenario="burst",
                manifests=manifests,
                done=_done,
                pods_per_job=shape.pods,
                probe=probe,
                kind=kind,
            )
            systems[system] = figures_of(
                m,
                pods=shape.pods,
                services=kind.services(shape),
                kind=kind,
                minimal_per_job=kind.minimal_writes(shape, status_writes=REQUIRED_STATUS_WRITES),
            )
    finally:
        if probe is not None:
            await probe.stop()
    parameters: dict[str, Any] = {
        "jobs": opts.jobs,
        "job_kind": kind.name,
        "masters": shape.masters,
        "workers": shape.workers,
        "run_seconds": shape.run_seconds,
        "minimal_writes_per_job": kind.minimal_writes(shape, status_writes=REQUIRED_STATUS_WRITES),
    }
    if opts.probe is not None:
        parameters.update(
            probe_interval_ms=opts.probe.interval_seconds * 1000,
            probe_idle_seconds=opts.probe.idle_seconds,
        )
    return {
        "parameters": parameters,
        "figures": list(FIGURES),
        "latencies": list(LATENCIES),
        "systems": systems,
    }
