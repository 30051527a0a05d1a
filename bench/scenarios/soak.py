"""``soak``: churn (jobs arriving at ``--rate`` for ``--duration``, default 30 min) with the
operator restarted cleanly every ``--restart-every`` seconds; do its memory, file descriptors,
asyncio tasks and caches stay flat?

Jobs: as ``churn`` (1 Master + 0..7 Workers drawn from ``Random(seed)``), each with
``ttlSecondsAfterFinished`` (``--ttl-seconds``), so that the operator deletes finished jobs and
the load reaches a steady state instead of filling the caches by design. Restarts: the operator
gets SIGTERM (a clean shutdown; ``ManagedProcess.stop`` falls back to SIGKILL after 10 s, counted
in ``unclean_exits``) and is started again at once, only while jobs arrive; each run of the process
is an *epoch*. Every ``sample_interval_seconds`` (2 s; ``--quick`` 1 s) the harness records the
operator's RSS and open file descriptors (``/proc``), and from its ``/metrics``
``kubetrain_asyncio_tasks``, the sum of ``kubetrain_informer_objects`` (cached objects) and of
``workqueue_depth``, plus the live jobs (created, not yet deleted) as the harness's watch sees them.

Slopes (``fit_slope``): per series, the samples of each epoch from its warm-up on (the first
``max(--warm-up, 20 % of the epoch)`` seconds after each (re)start are left out; 30 s, ``--quick``
5 s) while jobs still arrive (the drain after the last arrival is left out: the load falls there)
are fitted by least squares with one intercept per epoch and one common slope (per hour); for
``cached_objects`` and ``asyncio_tasks`` the live jobs are a second regressor, so what the fit
calls growth is growth beyond what the jobs present explain. A restart resets a leak, so a leak
shows as a sawtooth: each epoch rises, and the common slope catches it.

The leak rule: a series is ``leak_suspected`` when all of

1. its slope is clearly above noise: ``slope > 3 x standard error`` (the residuals of a load
   are autocorrelated, so the nominal error is optimistic; hence 3, not 2);
2. it is material: ``slope > max(floor, 10 % of the series' median level)`` per hour (floors:
   1 MiB/h, 1 fd/h, 1 task/h, 1 object/h), i.e. it would grow by a tenth of itself in an hour;
3. it is consistent: where two or more epochs have a slope of their own, at least half are > 0.

The report holds the samples (``timeseries``), the restart moments (``restarts``, seconds since the
first arrival, marked on the over-time plot), per series the fit (``slopes``), and the end state:
jobs finished / not finished / not deleted, duplicate pods (a pod key of ``measure.pod_key``, i.e.
job + replica type + index, that had more than one pod UID over the run), pods left after every
job was deleted (the warm-up job's, which has no TTL, not counted) and orphaned pods (as in
``chaos``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from kubetrain.informers.resource import PODS

from .. import procstat
from ..harness import HarnessError, ManagedProcess
from ..jobs import PYTORCHJOBS, create_jobs, create_namespace, pytorchjob
from ..measure import JobTimes, latency_over_time, orphaned_pods, pod_key
from ..stats import latency_figures
from ..systems import system_process
from .churn import MAX_WORKERS, _SizedJobWatch
from .context import BenchContext, _say_progress, _warm_up, namespace_for
from .probe import ProbePorts, wait_ready, with_probe_ports

__all__ = [
    "COVARIATES",
    "FIGURES",
    "LATENCIES",
    "LEAK_SERIES",
    "SERIES",
    "SlopeFit",
    "fit_slope",
    "leak_slopes",
    "run",
]

LATENCIES = ("create_to_running",)
LEAK_SERIES = ("rss_mib", "open_fds", "asyncio_tasks", "cached_objects")
"""The series checked for leaks."""
SERIES = (*LEAK_SERIES, "queue_depth", "live_jobs")
"""Columns of the ``timeseries`` (besides ``t``, ``epoch``, ``epoch_t`` and ``draining``)."""
COVARIATES: dict[str, str] = {"cached_objects": "live_jobs", "asyncio_tasks": "live_jobs"}
"""Series fitted with a second regressor: their growth is what the live jobs do not explain."""
FLOORS: dict[str, float] = {"rss_mib": 1.0, "open_fds": 1.0, "asyncio_tasks": 1.0,
                            "cached_objects": 1.0}  # fmt: skip
"""Rule 2's absolute floor per series, per hour."""
T_MIN = 3.0
RELATIVE = 0.10
WARMUP_FRACTION = 0.2
MIN_EPOCH_SAMPLES = 3
FIGURES = (
    "jobs",
    "jobs_succeeded",
    "jobs_not_finished",
    "jobs_not_deleted",
    "duplicate_pods",
    "pods_left_at_end",
    "orphaned_pods",
    "restarts",
    "unclean_exits",
    "restart_to_ready_max",
    "rss_mib_max",
    "open_fds_max",
    "asyncio_tasks_max",
    "cached_objects_max",
    *(f"{s}_slope_per_hour" for s in LEAK_SERIES),
    "leaks_suspected",
    "create_to_running_p50",
    "create_to_running_p99",
)
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class SlopeFit:
    """One series' least-squares slope over the post-warm-up samples of every epoch."""

    slope_per_hour: float | None
    stderr_per_hour: float | None
    level: float | None
    """Median of the fitted samples."""
    samples: int
    epochs: int
    epoch_slopes_per_hour: list[float | None] = field(default_factory=list)
    covariate: str | None = None
    leak_suspected: bool = False
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "slope_per_hour": self.slope_per_hour,
            "stderr_per_hour": self.stderr_per_hour,
            "level": self.level,
            "samples": self.samples,
            "epochs": self.epochs,
            "epoch_slopes_per_hour": self.epoch_slopes_per_hour,
            "covariate": self.covariate,
            "leak_suspected": self.leak_suspected,
            "reason": self.reason,
        }


Row = Mapping[str, float | int | None]


def _usable(
    rows: Iterable[Row], column: str, covariate: str | None, warmup_seconds: float
) -> dict[int, list[tuple[float, float, float]]]:
    """Per epoch, (t hours, value, covariate) of the rows past the warm-up, not draining."""
    by_epoch: dict[int, list[Row]] = {}
    for r in rows:
        by_epoch.setdefault(int(r.get("epoch") or 0), []).append(r)
    out: dict[int, list[tuple[float, float, float]]] = {}
    for epoch, epoch_rows in sorted(by_epoch.items()):
        length = max(float(r.get("epoch_t") or 0.0) for r in epoch_rows)
        cut = max(warmup_seconds, WARMUP_FRACTION * length)
        pts = []
        for r in epoch_rows:
            y, t = r.get(column), r.get("t")
            c = r.get(covariate) if covariate else 0.0
            if y is None or t is None or c is None or r.get("draining"):
                continue
            if float(r.get("epoch_t") or 0.0) < cut:
                continue
            pts.append((float(t) / HOUR, float(y), float(c)))
        if len(pts) >= MIN_EPOCH_SAMPLES:
            out[epoch] = pts
    return out


def _within_ols(
    groups: Sequence[list[tuple[float, float, float]]], with_covariate: bool
) -> tuple[float, float] | None:
    """Slope of y on t with one intercept per group (and the covariate): (slope, stderr), or
    None when the data cannot tell (too few points, no spread in t)."""
    n = sum(len(g) for g in groups)
    params = len(groups) + 1 + int(with_covariate)
    if n <= params:
        return None
    stt = stc = scc = sty = scy = 0.0
    resid_parts: list[tuple[float, float, float]] = []
    for g in groups:
        mt = sum(p[0] for p in g) / len(g)
        my = sum(p[1] for p in g) / len(g)
        mc = sum(p[2] for p in g) / len(g)
        for t, y, c in g:
            dt, dy, dc = t - mt, y - my, c - mc
            resid_parts.append((dt, dy, dc))
            stt += dt * dt
            stc += dt * dc
            scc += dc * dc
            sty += dt * dy
            scy += dc * dy
    if with_covariate and scc > 1e-12:
        det = stt * scc - stc * stc
        if det <= 1e-12 * max(stt * scc, 1e-300):
            return None
        b = (sty * scc - scy * stc) / det
        g_ = (scy * stt - sty * stc) / det
        inv_tt = scc / det
    else:  # no covariate, or it never varied: plain within-epoch slope
        if stt <= 0:
            return None
        b, g_, inv_tt = sty / stt, 0.0, 1.0 / stt
        params -= int(with_covariate)
    ssr = sum((dy - b * dt - g_ * dc) ** 2 for dt, dy, dc in resid_parts)
    sigma2 = ssr / (n - params)
    return b, math.sqrt(max(sigma2, 0.0) * inv_tt)


def fit_slope(
    rows: Iterable[Row],
    column: str,
    *,
    warmup_seconds: float,
    covariate: str | None = None,
    floor: float = 1.0,
) -> SlopeFit:
    """The slope of ``column`` per hour and the leak rule of the module docstring. ``rows``
    need ``t`` (seconds), ``epoch``, ``epoch_t`` (seconds since that epoch's start), optionally
    ``draining`` (truthy: left out) and ``covariate``."""
    rows = list(rows)
    epochs = _usable(rows, column, covariate, warmup_seconds)
    groups = list(epochs.values())
    samples = sum(len(g) for g in groups)
    if not groups:
        return SlopeFit(None, None, None, 0, 0, covariate=covariate, reason="no samples")
    level = statistics.median(p[1] for g in groups for p in g)
    per_epoch: list[float | None] = []
    for g in groups:
        one = _within_ols([g], covariate is not None)
        per_epoch.append(None if one is None else one[0])
    fit = _within_ols(groups, covariate is not None)
    if fit is None:
        return SlopeFit(None, None, level, samples, len(groups), per_epoch, covariate,
                        reason="too few samples")  # fmt: skip
    slope, stderr = fit
    material = max(floor, RELATIVE * abs(level))
    own = [s for s in per_epoch if s is not None]
    rising = sum(1 for s in own if s > 0)
    reasons = []
    if not slope > T_MIN * stderr:
        reasons.append(f"slope within {T_MIN:g} standard errors")
    if not slope > material:
        reasons.append(f"slope below {material:.3g}/h")
    if len(own) >= 2 and rising * 2 < len(own):
        reasons.append(f"rising in {rising} of {len(own)} epochs")
    leak = not reasons
    return SlopeFit(
        slope, stderr, level, samples, len(groups), per_epoch, covariate, leak,
        "; ".join(reasons) if reasons else (
            f"slope {slope:.3g}/h > {T_MIN:g} x {stderr:.3g} and > {material:.3g}/h"
        ),
    )  # fmt: skip


def leak_slopes(rows: Sequence[Row], *, warmup_seconds: float) -> dict[str, SlopeFit]:
    """``fit_slope`` of every ``LEAK_SERIES`` column, with its covariate and floor."""
    return {
        s: fit_slope(
            rows, s, warmup_seconds=warmup_seconds, covariate=COVARIATES.get(s), floor=FLOORS[s]
        )
        for s in LEAK_SERIES
    }


# -- the run --------------------------------------------------------------------------------------


class _SoakWatch(_SizedJobWatch):
    """Also the pod UIDs seen per pod key (job, replica type, index): duplicates."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.uids: dict[tuple[str, str, str], set[str]] = {}

    def on_pod(self, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self.uids.setdefault(pod_key(pod), set()).add(uid)
        super().on_pod(pod)


@dataclass
class _State:
    epoch: int = 0
    epoch_start: float = 0.0
    draining: bool = False
    restarts: list[float] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)
    ready_seconds: list[float] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def _scrape_sums(
    session: aiohttp.ClientSession, url: str, names: Sequence[str]
) -> dict[str, float | None]:
    """Per metric name, the sum over its label sets (None: unreachable or absent)."""
    out: dict[str, float | None] = dict.fromkeys(names)
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            if resp.status != 200:
                return out
            text = await resp.text()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return out
    for family in text_string_to_metric_families(text):
        if family.name in out:
            for sample in family.samples:
                if sample.name == family.name:
                    out[family.name] = (out[family.name] or 0.0) + sample.value
    return out


def _register(watch: _SoakWatch, name: str, at: float) -> None:
    watch.job_created(name, at=at)


def _live_jobs(watch: _SoakWatch) -> int:
    return sum(1 for t in watch.jobs.values() if t.created is not None and t.deleted is None)


async def _sample(
    ctx: BenchContext,
    proc: ManagedProcess,
    ports: ProbePorts | None,
    watch: _SoakWatch,
    state: _State,
    start: float,
    rows: list[dict[str, float | int | None]],
    total: int,
) -> None:
    interval = ctx.options.sample_interval_seconds
    last_say = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        async with state.lock:  # never in the middle of a restart
            now = time.monotonic()
            pid = proc.pid
            rss, fds = procstat.rss_bytes(pid), procstat.open_fds(pid)
            names = ("kubetrain_asyncio_tasks", "kubetrain_informer_objects", "workqueue_depth")
            scraped = (
                await _scrape_sums(ctx.session, ports.metrics_url, names)
                if ports is not None
                else dict.fromkeys(names)
            )
            rows.append(
                {
                    "t": now - start,
                    "epoch": state.epoch,
                    "epoch_t": now - state.epoch_start,
                    "draining": int(state.draining),
                    "rss_mib": None if rss is None else rss / 2**20,
                    "open_fds": fds,
                    "asyncio_tasks": scraped["kubetrain_asyncio_tasks"],
                    "cached_objects": scraped["kubetrain_informer_objects"],
                    "queue_depth": scraped["workqueue_depth"],
                    "live_jobs": _live_jobs(watch),
                }
            )
        if now - last_say >= 10:
            last_say = now
            _say_progress(ctx, proc.name, "soak", watch, total, start)


async def _restarter(
    ctx: BenchContext,
    proc: ManagedProcess,
    ports: ProbePorts | None,
    state: _State,
    start: float,
) -> None:
    """SIGTERM + start every ``soak_restart_seconds`` until ``state.draining``; checks the process
    is alive meanwhile. Never cancelled mid-restart: it returns within a second of the drain."""
    every = ctx.options.soak_restart_seconds
    next_at = start + every if every > 0 else math.inf
    while True:
        await asyncio.sleep(max(0.0, min(1.0, next_at - time.monotonic())))
        if state.draining:
            return
        proc.check_alive()
        if time.monotonic() < next_at:
            continue
        next_at += every
        async with state.lock:
            at = time.monotonic()
            code = await proc.stop()
            await proc.start()
            state.exit_codes.append(code)
            state.restarts.append(at - start)
            state.epoch += 1
            state.epoch_start = time.monotonic()
            ready = None  # no samples until /metrics answers again
            if ports is not None:
                ready = await wait_ready(ctx.session, ports, proc, timeout=60.0, interval=0.1)
            if ready is not None:
                state.ready_seconds.append(ready - state.epoch_start)
        ctx.say(
            f"[soak/{proc.name}] restart #{len(state.restarts)} at {at - start:.0f}s "
            f"(SIGTERM, exit {code})"
            + ("" if ready is None else f", ready after {ready - state.epoch_start:.1f}s")
        )


def _raise_failed(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        if task.done() and not task.cancelled():
            exc = task.exception()
            if exc is not None:
                raise exc


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, HarnessError):
            await task


async def _measure(ctx: BenchContext, system: str, sizes: list[int]) -> dict[str, Any]:
    opts = ctx.options
    ns = namespace_for(ctx, "soak", system)
    await create_namespace(ctx.client, ns)
    names = [f"job-{i:05d}" for i in range(len(sizes))]
    shape = replace(opts.shape, ttl_seconds_after_finished=opts.ttl_seconds)
    manifests = [
        pytorchjob(name, ns, replace(shape, masters=1, workers=w))
        for name, w in zip(names, sizes, strict=True)
    ]
    watch = _SoakWatch(ctx.client, ns, {n: 1 + w for n, w in zip(names, sizes, strict=True)})
    await watch.start()
    sys_options, ports = with_probe_ports(opts.system)
    proc = system_process(
        system, kubeconfig=ctx.operator_kubeconfig, harness_kubeconfig=ctx.kubeconfig,
        namespace=ns, log_path=ctx.workdir / f"soak-{system}.log", options=sys_options,
    )  # fmt: skip
    scraped_ports = ports if system == "kubetrain" else None
    state = _State(epoch_start=time.monotonic())
    await proc.start()
    rows: list[dict[str, float | int | None]] = []
    try:
        await _warm_up(ctx, ns, proc)
        await asyncio.sleep(opts.settle_seconds)
        start = time.monotonic()
        sampler = asyncio.create_task(
            _sample(ctx, proc, scraped_ports, watch, state, start, rows, len(manifests))
        )
        restarter = asyncio.create_task(_restarter(ctx, proc, scraped_ports, state, start))

        async def arrive(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / opts.churn_rate - time.monotonic()))

        creating = asyncio.create_task(
            create_jobs(
                ctx.client, manifests, concurrency=opts.create_concurrency,
                on_created=lambda name, at: _register(watch, name, at), before_each=arrive,
            )
        )  # fmt: skip
        try:
            while not creating.done():
                _raise_failed(sampler, restarter)
                await asyncio.wait({creating, sampler, restarter}, timeout=1.0,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            _raise_failed(creating)
            state.draining = True
            await restarter  # raises what it raised
            deadline = time.monotonic() + opts.timeout_seconds
            while not all(t.deleted is not None for t in watch.jobs.values()):
                proc.check_alive()
                _raise_failed(sampler)
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(opts.settle_seconds)
        finally:
            await _cancel(creating, restarter, sampler)
        _say_progress(ctx, system, "soak", watch, len(manifests), start, final=True)
        pods = await ctx.client.list_all(PODS, ns)
        jobs = await ctx.client.list_all(PYTORCHJOBS, ns)
    finally:
        await proc.stop()
        await watch.stop()
    return _section(ctx, ns, watch, state, rows, pods, jobs)


def _section(
    ctx: BenchContext,
    ns: str,
    watch: _SoakWatch,
    state: _State,
    rows: list[dict[str, float | int | None]],
    pods: list[dict[str, Any]],
    jobs: list[dict[str, Any]],
) -> dict[str, Any]:
    measured = [t for name, t in watch.jobs.items() if name != "warmup"]

    def finished(t: JobTimes) -> bool:
        return t.succeeded is not None or t.failed is not None

    pods = [p for p in pods if pod_key(p)[0] != "warmup"]  # the warm-up job has no TTL
    samples, over_time = latency_over_time(measured, LATENCIES)
    slopes = leak_slopes(rows, warmup_seconds=ctx.options.soak_warmup_seconds)

    def col_max(name: str) -> float | None:
        return max((float(v) for r in rows if (v := r.get(name)) is not None), default=None)

    leaks = [s for s, fit in slopes.items() if fit.leak_suspected]
    figures: dict[str, Any] = {
        "jobs": len(measured),
        "jobs_succeeded": sum(1 for t in measured if t.succeeded is not None),
        "jobs_not_finished": sum(1 for t in measured if not finished(t)),
        "jobs_not_deleted": sum(1 for t in measured if t.deleted is None),
        "duplicate_pods": sum(len(u) - 1 for u in watch.uids.values() if len(u) > 1),
        "pods_left_at_end": len(pods),
        "orphaned_pods": orphaned_pods(pods, jobs),
        "restarts": len(state.restarts),
        "unclean_exits": sum(1 for c in state.exit_codes if c != 0),
        "restart_to_ready_max": max(state.ready_seconds, default=None),
        **{f"{s}_max": col_max(s) for s in LEAK_SERIES},
        **{f"{s}_slope_per_hour": slopes[s].slope_per_hour for s in LEAK_SERIES},
        "leaks_suspected": ", ".join(leaks) if leaks else "none",
    }
    figures.update(latency_figures(samples, ("p50", "p99")))
    return {
        "namespace": ns,
        "figures": figures,
        "latency_samples": samples,
        "latencies_over_time": over_time,
        "timeseries": rows,
        "restarts": state.restarts,
        "restart_exit_codes": state.exit_codes,
        "slopes": {s: fit.as_dict() for s, fit in slopes.items()},
    }


async def run(ctx: BenchContext) -> dict[str, Any]:
    opts = ctx.options
    count = max(1, round(opts.churn_rate * opts.churn_seconds))
    rng = random.Random(opts.seed)
    sizes = [rng.randint(0, MAX_WORKERS) for _ in range(count)]
    systems: dict[str, Any] = {}
    for system in opts.systems:
        ctx.say(
            f"[soak/{system}] {count} jobs at {opts.churn_rate}/s for {opts.churn_seconds:.0f}s, "
            f"SIGTERM + restart every {opts.soak_restart_seconds:.0f}s"
        )
        systems[system] = await _measure(ctx, system, sizes)
    return {
        "parameters": {
            "rate": opts.churn_rate,
            "duration_seconds": opts.churn_seconds,
            "jobs": count,
            "workers": f"0..{MAX_WORKERS} (seed {opts.seed})",
            "run_seconds": opts.shape.run_seconds,
            "ttl_seconds_after_finished": opts.ttl_seconds,
            "restart_every_seconds": opts.soak_restart_seconds,
            "restart_signal": "SIGTERM",
            "sample_interval_seconds": opts.sample_interval_seconds,
            "warmup_seconds": f"max({opts.soak_warmup_seconds:g}, "
            f"{WARMUP_FRACTION:.0%} of the epoch)",
        },
        "figures": list(FIGURES),
        "latencies": list(LATENCIES),
        "series": list(SERIES),
        "systems": systems,
    }
