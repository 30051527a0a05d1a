"""``churn``: jobs arrive at a steady rate (jobs/s) for a fixed time, of mixed sizes; what the
system's queue, latencies, CPU and memory do over time.

Sizes: 1 Master + 0..7 Workers, drawn per job from ``Random(seed)`` (the same sequence for
every system). Every ``sample_interval_seconds`` the harness samples the system's CPU (as a
share of one core), RSS, jobs in flight (created, not finished) and, for kubetrain, the sum of
``workqueue_depth`` from its ``/metrics``. Per job: arrival time and its latencies, plotted
over time by ``report``. Only PyTorchJobs: the baselines implement no other kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kubetrain.engine.client import ApiClient

from ..apimetrics import delta, operator_writes, scrape_request_counts
from ..harness import ManagedProcess
from ..jobs import create_jobs, create_namespace, pytorchjob
from ..measure import JOB_NAME_LABEL, JobTimes, JobWatch, latency_over_time
from ..stats import latency_figures
from ..systems import system_process
from .context import BenchContext, _say_progress, _warm_up, namespace_for
from .probe import ProbePorts, scrape_gauge_sum, with_probe_ports

__all__ = ["FIGURES", "LATENCIES", "SERIES", "run"]

LATENCIES = ("create_to_pods_created", "create_to_running", "pods_succeeded_to_job_succeeded")
SERIES = ("queue_depth", "cpu_share", "rss_mib", "jobs_in_flight")
"""Columns of each system's ``timeseries`` (besides ``t``, seconds since the first arrival)."""
FIGURES = (
    "jobs",
    "arrival_rate",
    "achieved_rate",
    "jobs_succeeded",
    "jobs_not_succeeded",
    *(f"{name}_{q}" for name in LATENCIES for q in ("p50", "p99")),
    "queue_depth_max",
    "cpu_share_mean",
    "rss_mib_max",
    "cpu_seconds",
    "operator_writes",
)
MAX_WORKERS = 7


class _SizedJobWatch(JobWatch):
    """A ``JobWatch`` whose "all pods created" count is per job (``expected_pods``)."""

    def __init__(self, client: ApiClient, namespace: str, expected_pods: dict[str, int]) -> None:
        super().__init__(client, namespace, pods_per_job=1)
        self.expected_pods = expected_pods

    def on_pod(self, pod: dict[str, Any]) -> None:
        job = ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_LABEL, "")
        self.pods_per_job = self.expected_pods.get(job, 2)
        super().on_pod(pod)


async def _sample(
    ctx: BenchContext,
    proc: ManagedProcess,
    ports: ProbePorts | None,
    watch: JobWatch,
    start: float,
    rows: list[dict[str, float | None]],
    progress: Callable[[], None],
) -> None:
    """Append a row to ``rows`` every sample interval; ``progress()`` about every 5 s."""
    interval = ctx.options.sample_interval_seconds
    last_t, last_cpu = time.monotonic(), proc.cpu_seconds()
    last_say = last_t
    while True:
        await asyncio.sleep(interval)
        now, cpu = time.monotonic(), proc.cpu_seconds()
        share = None if cpu is None or last_cpu is None else (cpu - last_cpu) / (now - last_t)
        last_t, last_cpu = now, cpu
        depth = (
            await scrape_gauge_sum(ctx.session, ports.metrics_url, "workqueue_depth")
            if ports is not None
            else None
        )
        rss = proc.rss_bytes()
        in_flight = sum(1 for t in watch.jobs.values() if t.succeeded is None and t.failed is None)
        rows.append(
            {
                "t": now - start,
                "queue_depth": depth,
                "cpu_share": share,
                "rss_mib": None if rss is None else rss / 2**20,
                "jobs_in_flight": float(in_flight),
            }
        )
        if now - last_say >= 5:
            last_say = now
            progress()


def _done(t: JobTimes) -> bool:
    return t.succeeded is not None or t.failed is not None


async def _measure(ctx: BenchContext, system: str, sizes: list[int]) -> dict[str, Any]:
    opts = ctx.options
    ns = namespace_for(ctx, "churn", system)
    await create_namespace(ctx.client, ns)
    names = [f"job-{i:05d}" for i in range(len(sizes))]
    manifests = [
        pytorchjob(name, ns, replace(opts.shape, masters=1, workers=w))
        for name, w in zip(names, sizes, strict=True)
    ]
    watch = _SizedJobWatch(ctx.client, ns, {n: 1 + w for n, w in zip(names, sizes, strict=True)})
    await watch.start()
    sys_options, ports = with_probe_ports(opts.system)
    proc = system_process(
        system, kubeconfig=ctx.operator_kubeconfig, harness_kubeconfig=ctx.kubeconfig,
        namespace=ns,
        log_path=ctx.workdir / f"churn-{system}.log", options=sys_options,
    )  # fmt: skip
    await proc.start()
    rows: list[dict[str, float | None]] = []
    try:
        await _warm_up(ctx, ns, proc)
        await asyncio.sleep(opts.settle_seconds)
        before = await scrape_request_counts(ctx.session, ctx.url)
        cpu0 = proc.cpu_seconds()
        start = time.monotonic()
        sampler = asyncio.create_task(
            _sample(
                ctx, proc, ports if system == "kubetrain" else None, watch, start, rows,
                lambda: _say_progress(ctx, system, "churn", watch, len(manifests), start),
            )
        )  # fmt: skip

        async def arrive(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / opts.churn_rate - time.monotonic()))

        try:
            create_seconds = await create_jobs(
                ctx.client, manifests, concurrency=opts.create_concurrency,
                on_created=lambda name, at: _register(watch, name, at), before_each=arrive,
            )  # fmt: skip
            deadline = start + opts.churn_seconds + opts.timeout_seconds
            while not all(_done(t) for t in watch.jobs.values()):
                proc.check_alive()
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        await asyncio.sleep(opts.settle_seconds)
        after = await scrape_request_counts(ctx.session, ctx.url)
        cpu1 = proc.cpu_seconds()
        _say_progress(ctx, system, "churn", watch, len(manifests), start, final=True)
    finally:
        await proc.stop()
        await watch.stop()
    samples, over_time = latency_over_time(watch.jobs.values(), LATENCIES)
    n = len(watch.jobs)
    succeeded = sum(1 for t in watch.jobs.values() if t.succeeded is not None)
    writes = operator_writes(delta(before, after))

    def col(name: str) -> list[float]:
        return [v for r in rows if (v := r.get(name)) is not None]

    figures: dict[str, Any] = {
        "jobs": n,
        "arrival_rate": opts.churn_rate,
        "achieved_rate": n / create_seconds if create_seconds else None,
        "jobs_succeeded": succeeded,
        "jobs_not_succeeded": n - succeeded,
        "queue_depth_max": max(col("queue_depth"), default=None),
        "cpu_share_mean": (sum(col("cpu_share")) / len(col("cpu_share")))
        if col("cpu_share")
        else None,
        "rss_mib_max": max(col("rss_mib"), default=None),
        "cpu_seconds": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        "operator_writes": sum(writes.values()),
    }
    figures.update(latency_figures(samples, ("p50", "p99")))
    return {
        "namespace": ns,
        "figures": figures,
        "latency_samples": samples,
        "latencies_over_time": over_time,
        "timeseries": rows,
        "api_requests": delta(before, after),
        "operator_writes": writes,
    }


def _register(watch: JobWatch, name: str, at: float) -> None:
    watch.job_created(name, at=at)


async def run(ctx: BenchContext) -> dict[str, Any]:
    opts = ctx.options
    count = max(1, round(opts.churn_rate * opts.churn_seconds))
    rng = random.Random(opts.seed)
    sizes = [rng.randint(0, MAX_WORKERS) for _ in range(count)]
    systems: dict[str, Any] = {}
    for system in opts.systems:
        ctx.say(f"[churn/{system}] {count} jobs at {opts.churn_rate}/s, 1 + 0..7 workers")
        systems[system] = await _measure(ctx, system, sizes)
    return {
        "parameters": {
            "rate": opts.churn_rate,
            "duration_seconds": opts.churn_seconds,
            "jobs": count,
            "workers": f"0..{MAX_WORKERS} (seed {opts.seed})",
            "run_seconds": opts.shape.run_seconds,
        },
        "figures": list(FIGURES),
        "latencies": list(LATENCIES),
        "series": list(SERIES),
        "systems": systems,
    }
