"""``ttl``: K jobs with ``ttlSecondsAfterFinished`` finish over time; how late are they deleted?

Run times are spread over 1 .. 1 + ``ttl_spread_seconds`` so completions are spread too. Figures
per system: deletion lag = deletion seen - (completionTime + ttl), p50/p99/max; jobs never
deleted (within the timeout); how long after its completionTime each job's finished status was
visible (``finished_seen_lag``: a system whose status write is answered late cannot delete on
time, whatever its TTL timer does); CPU, peak RSS and the system's writes (minimal: pods +
services + three condition changes + one delete per job).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..apimetrics import operator_writes, without_events
from ..jobs import pytorchjob
from ..measure import JobTimes
from ..stats import summarize
from .burst import REQUIRED_STATUS_WRITES
from .context import BenchContext, measure_system, namespace_for

__all__ = ["FIGURES", "LATENCIES", "run"]

LATENCIES = ("deletion_lag",)
FIGURES = (
    "deletion_lag_p50",
    "deletion_lag_p99",
    "deletion_lag_max",
    "finished_seen_lag_p99",
    "jobs_deleted",
    "jobs_never_deleted",
    "wall_seconds_to_all_deleted",
    "cpu_seconds",
    "peak_rss_mib",
    "operator_writes",
    "minimal_writes",
    "write_amplification",
    "write_amplification_without_events",
)


def _done(t: JobTimes) -> bool:
    return t.deleted is not None or t.failed is not None


def _finished_seen_lag(t: JobTimes) -> float | None:
    finished = t.succeeded if t.succeeded is not None else t.failed
    if finished is None or t.completion_time is None:
        return None
    return finished - t.completion_time


async def run(ctx: BenchContext) -> dict[str, Any]:
    opts = ctx.options
    shape = replace(opts.shape, ttl_seconds_after_finished=opts.ttl_seconds)
    systems: dict[str, Any] = {}
    for system in opts.systems:
        ns = namespace_for(ctx, "ttl", system)
        manifests = []
        for i in range(opts.jobs):
            run_seconds = 1.0 + opts.ttl_spread_seconds * i / max(1, opts.jobs - 1)
            job_shape = replace(shape, run_seconds=round(run_seconds, 3))
            manifests.append(pytorchjob(f"job-{i:05d}", ns, job_shape))
        ctx.say(f"[ttl/{system}] {opts.jobs} jobs, ttlSecondsAfterFinished={opts.ttl_seconds}")
        m = await measure_system(
            ctx, system, scenario="ttl", manifests=manifests, done=_done, pods_per_job=shape.pods
        )
        lags = [lag for t in m.jobs.values() if (lag := t.deletion_lag()) is not None]
        s = summarize(lags)
        seen = summarize(
            [lag for t in m.jobs.values() if (lag := _finished_seen_lag(t)) is not None]
        )
        n = len(m.jobs)
        deleted = sum(1 for t in m.jobs.values() if t.deleted is not None)
        writes = operator_writes(m.requests)
        minimal = n * (shape.pods + shape.services + REQUIRED_STATUS_WRITES + 1)
        total = sum(writes.values())
        systems[system] = {
            "namespace": m.namespace,
            "figures": {
                "deletion_lag_p50": s["p50"],
                "deletion_lag_p99": s["p99"],
                "deletion_lag_max": s["max"],
                "finished_seen_lag_p99": seen["p99"],
                "jobs_deleted": deleted,
                "jobs_never_deleted": n - deleted,
                "wall_seconds_to_all_deleted": None if m.timed_out else m.wall_seconds,
                "cpu_seconds": m.cpu_seconds,
                "peak_rss_mib": None if m.peak_rss_bytes is None else m.peak_rss_bytes / 2**20,
                "operator_writes": total,
                "minimal_writes": minimal,
                "write_amplification": total / minimal if minimal else None,
                "write_amplification_without_events": (
                    sum(without_events(writes).values()) / minimal if minimal else None
                ),
            },
            "latency_samples": {"deletion_lag": lags},
            "api_requests": m.requests,
            "operator_writes": writes,
        }
    return {
        "parameters": {
            "jobs": opts.jobs,
            "ttl_seconds_after_finished": opts.ttl_seconds,
            "run_seconds": f"1 .. {1 + opts.ttl_spread_seconds}",
            "masters": shape.masters,
            "workers": shape.workers,
        },
        "figures": list(FIGURES),
        "latencies": list(LATENCIES),
        "systems": systems,
    }
