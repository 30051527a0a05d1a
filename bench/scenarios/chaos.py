"""``chaos``: the burst while the system is SIGKILLed and restarted at seeded random moments and
the API server injects 429/500s, dropped watches and 410s (``POST /kubetrain/faults``).

Kills are placed by progress, not by clock, so they always land inside the burst: ``kills``
thresholds are drawn from ``Random(seed)`` in 5 % .. 85 % of (jobs with all pods + jobs
Succeeded) / 2N; at each the process gets SIGKILL and is restarted after a drawn 0.2 .. 1.5 s.
A burst that finishes before the last threshold gets fewer kills (``operator_kills`` says how
many happened). The fault rules are seeded with the same seed. Faults stay on until every job Succeeded or
60 % of the timeout passed, then they are cleared and the run waits for the rest.

Figures: duplicate pods (POST pods answered 201 beyond the (job, replica, index) keys of the
pods at the end plus the pods deleted; and indices holding two pods at the end; must be 0),
jobs that finished without all their pods ever existing (a PyTorchJob succeeds with its Master:
workers whose create failed under faults may never be made), orphaned pods (pods whose controller owner is
not a live job; 0), jobs not finished (0), API requests per second during the fault window (all
clients; and the injected errors per second), kills, faults fired, create -> Running.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from typing import Any

from kubetrain.informers.resource import PODS

from ..apimetrics import delta, scrape_request_counts
from ..harness import ManagedProcess
from ..jobs import PYTORCHJOBS, create_jobs, create_namespace, pytorchjob
from ..measure import JobTimes, JobWatch, latency_samples, orphaned_pods, pods_by_index
from ..stats import latency_figures
from ..systems import system_process
from .context import BenchContext, _say_progress, _warm_up, namespace_for

__all__ = ["FAULT_RULES", "FIGURES", "LATENCIES", "fault_rules", "run"]

LATENCIES = ("create_to_pods_created", "create_to_running")
FIGURES = (
    "jobs",
    "jobs_succeeded",
    "jobs_not_finished",
    "duplicate_pods",
    "indices_with_two_pods",
    "jobs_finished_without_all_pods",
    "orphaned_pods",
    "pod_creates_201",
    "pod_creates_409",
    "operator_kills",
    "faults_fired",
    "fault_seconds",
    "api_requests_per_second_during_faults",
    "api_errors_per_second_during_faults",
    "create_to_pods_created_p50",
    "create_to_pods_created_p99",
    "create_to_running_p50",
    "create_to_running_p99",
    "wall_seconds_to_all_succeeded",
    "cpu_seconds",
)
FAULT_RULES: tuple[dict[str, Any], ...] = (
    {"action": "error", "verb": "create", "resource": "pods", "code": 429, "rate": 0.05},
    {"action": "error", "verb": "create", "resource": "services", "code": 500, "rate": 0.05},
    {"action": "error", "verb": "update", "resource": "pytorchjobs/status", "code": 500,
     "rate": 0.05},
    {"action": "error", "verb": "patch", "resource": "pytorchjobs", "code": 500, "rate": 0.05},
    {"action": "error", "verb": "list", "resource": "*", "code": 429, "rate": 0.1},
    {"action": "drop_watch", "resource": "pods", "after_events": 400},
    {"action": "drop_watch", "resource": "pytorchjobs", "after_events": 150},
    {"action": "force_410", "verb": "watch", "resource": "*", "rate": 0.3},
)  # fmt: skip
"""The injected faults (``FaultRule`` JSON); errors hit the system's writes and everyone's
lists, watches end every few hundred events and re-watches from a version get 410 at times."""


def fault_rules(namespace: str) -> list[dict[str, Any]]:
    """``FAULT_RULES`` with request errors limited to ``namespace`` (the harness's creates of
    PyTorchJobs are never faulted: they are not in the rules' verbs)."""
    out = []
    for rule in FAULT_RULES:
        rule = dict(rule)
        if rule["action"] == "error":
            rule["namespace"] = namespace
        out.append(rule)
    return out


async def _faults(ctx: BenchContext, method: str, body: Any = None) -> dict[str, Any]:
    async with ctx.session.request(method, ctx.url + "/kubetrain/faults", json=body) as resp:
        resp.raise_for_status()
        data: dict[str, Any] = await resp.json()
        return data


class _Killer:
    """SIGKILLs and restarts ``proc`` when progress crosses each drawn threshold."""

    def __init__(self, proc: ManagedProcess, rng: random.Random, kills: int) -> None:
        self.proc = proc
        self.rng = rng
        self.thresholds = sorted(rng.uniform(0.05, 0.85) for _ in range(kills))
        self.kills = 0
        self.cpu_seconds = 0.0

    async def step(self, progress: float) -> bool:
        """Kill + restart once if ``progress`` passed the next threshold; whether it did."""
        if not self.thresholds or progress < self.thresholds[0]:
            return False
        self.thresholds.pop(0)
        self.cpu_seconds += self.proc.cpu_seconds() or 0.0
        self.proc.kill()
        await self.proc.stop()
        self.kills += 1
        await asyncio.sleep(self.rng.uniform(0.2, 1.5))
        await self.proc.start()
        return True


def _register(watch: JobWatch, name: str, at: float) -> None:
    watch.job_created(name, at=at)


async def _measure(ctx: BenchContext, system: str) -> dict[str, Any]:
    opts = ctx.options
    shape = opts.shape
    ns = namespace_for(ctx, "chaos", system)
    await create_namespace(ctx.client, ns)
    watch = JobWatch(ctx.client, ns, pods_per_job=shape.pods)
    await watch.start()
    proc = system_process(
        system, kubeconfig=ctx.operator_kubeconfig, harness_kubeconfig=ctx.kubeconfig,
        namespace=ns,
        log_path=ctx.workdir / f"chaos-{system}.log", options=opts.system,
    )  # fmt: skip
    rng = random.Random(opts.seed)
    killer = _Killer(proc, rng, opts.chaos_kills)
    await proc.start()
    fired: list[dict[str, Any]] = []
    try:
        await _warm_up(ctx, ns, proc)
        await asyncio.sleep(opts.settle_seconds)
        before = await scrape_request_counts(ctx.session, ctx.url, by_code=True)
        await _faults(ctx, "PUT", {"seed": opts.seed, "rules": fault_rules(ns)})
        fault_start = time.monotonic()
        fault_end: float | None = None
        during: dict[str, int] = {}
        start = time.monotonic()
        manifests = [pytorchjob(f"job-{i:05d}", ns, shape) for i in range(opts.jobs)]
        creating = asyncio.create_task(
            create_jobs(
                ctx.client, manifests, concurrency=opts.create_concurrency,
                on_created=lambda name, at: _register(watch, name, at),
            )
        )  # fmt: skip
        deadline = start + opts.timeout_seconds
        fault_deadline = start + 0.6 * opts.timeout_seconds
        last_say = start
        timed_out = False
        n = len(manifests)

        def finished(t: JobTimes) -> bool:
            return t.succeeded is not None or t.failed is not None

        while True:
            c = watch.counts()
            all_done = (
                creating.done()
                and c["created"] == n
                and all(finished(t) for t in watch.jobs.values())
            )
            if fault_end is None and (all_done or time.monotonic() > fault_deadline):
                fired = (await _faults(ctx, "GET"))["rules"]
                during = delta(
                    before, await scrape_request_counts(ctx.session, ctx.url, by_code=True)
                )
                await _faults(ctx, "DELETE")
                fault_end = time.monotonic()
            if all_done:
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            if fault_end is None and await killer.step((c["pods"] + c["succeeded"]) / (2 * n)):
                ctx.say(f"[chaos/{system}] SIGKILL #{killer.kills}, restarted")
            proc.check_alive()
            if time.monotonic() - last_say > 2:
                last_say = time.monotonic()
                _say_progress(ctx, system, "chaos", watch, n, start)
            await asyncio.sleep(0.05)
        wall = time.monotonic() - start
        if not creating.done():
            creating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await creating
        await asyncio.sleep(opts.settle_seconds)
        after = delta(before, await scrape_request_counts(ctx.session, ctx.url, by_code=True))
        cpu = killer.cpu_seconds + (proc.cpu_seconds() or 0.0)
        pods = await ctx.client.list_all(PODS, ns)
        jobs = await ctx.client.list_all(PYTORCHJOBS, ns)
        _say_progress(ctx, system, "chaos", watch, n, start, final=True)
    finally:
        with contextlib.suppress(Exception):
            await _faults(ctx, "DELETE")
        await proc.stop()
        await watch.stop()
    # the warm-up job's pods were created before the request counts' baseline
    by_index = pods_by_index(pods, skip_jobs=("warmup",))
    measured = [t for name, t in watch.jobs.items() if name != "warmup"]
    created_201 = after.get("POST pods 201", 0)
    pod_deletes = sum(v for k, v in after.items() if k.startswith(("DELETE pods 2",)))
    fault_seconds = (fault_end or time.monotonic()) - fault_start
    total_during = sum(during.values())
    errors_during = sum(v for k, v in during.items() if k.endswith((" 429", " 500", " 410")))
    samples = latency_samples(measured, LATENCIES)
    figures: dict[str, Any] = {
        "jobs": n,
        "jobs_succeeded": sum(1 for t in measured if t.succeeded is not None),
        "jobs_not_finished": n - sum(1 for t in measured if finished(t)),
        "duplicate_pods": max(0, created_201 - len(by_index) - pod_deletes),
        "indices_with_two_pods": sum(1 for v in by_index.values() if v > 1),
        "jobs_finished_without_all_pods": sum(
            1 for t in measured if finished(t) and t.all_pods_created is None
        ),
        "orphaned_pods": orphaned_pods(pods, jobs),
        "pod_creates_201": created_201,
        "pod_creates_409": after.get("POST pods 409", 0),
        "operator_kills": killer.kills,
        "faults_fired": sum(int(r.get("fired", 0)) for r in fired),
        "fault_seconds": fault_seconds,
        "api_requests_per_second_during_faults": total_during / fault_seconds
        if fault_seconds
        else None,
        "api_errors_per_second_during_faults": errors_during / fault_seconds
        if fault_seconds
        else None,
        "wall_seconds_to_all_succeeded": None if timed_out else wall,
        "cpu_seconds": cpu,
    }
    figures.update(latency_figures(samples, ("p50", "p99")))
    return {
        "namespace": ns,
        "figures": figures,
        "latency_samples": samples,
        "faults": fired,
        "api_requests_by_code_during_faults": during,
        "api_requests_by_code": after,
    }


async def run(ctx: BenchContext) -> dict[str, Any]:
    opts = ctx.options
    systems: dict[str, Any] = {}
    for system in opts.systems:
        ctx.say(f"[chaos/{system}] {opts.jobs} jobs, {opts.chaos_kills} kills, seed {opts.seed}")
        systems[system] = await _measure(ctx, system)
    return {
        "parameters": {
            "jobs": opts.jobs,
            "kills": opts.chaos_kills,
            "seed": opts.seed,
            "masters": opts.shape.masters,
            "workers": opts.shape.workers,
            "run_seconds": opts.shape.run_seconds,
            "fault_rules": len(FAULT_RULES),
        },
        "figures": list(FIGURES),
        "latencies": list(LATENCIES),
        "systems": systems,
    }
