"""``failover``: two kubetrain replicas with ``--leader-elect``; the leader is SIGKILLed in the
middle of a burst (issue 15).

Both replicas run ``kubetrain operator --leader-elect`` against one Lease (``LEASE_NAME`` in the
run's namespace) at the operator's leader-election timings (controller-runtime's defaults, 15 s
lease / 10 s renew deadline / 2 s retry; ``parameters`` reports them). Each gets its own
``/metrics`` port, from which the harness reads ``leader_election_master_status`` (who leads),
``controller_runtime_reconcile_total`` and ``rest_client_requests_total`` (what it did).

The run: both replicas start, one takes the Lease, the warm-up job succeeds, then N jobs are
created as in ``burst``. When ``KILL_AT`` of the jobs have all their pods, the leader gets
SIGKILL (no release: the follower must wait for the Lease to expire). The harness polls the
Lease and the follower's ``/metrics`` every ``POLL_SECONDS`` to time the takeover. Once the
Lease names the follower, the killed replica is restarted (a fresh process and identity); it
must stay a follower and never write, to the end of the run.

Figures: the takeover gap (kill -> the Lease names the other replica; kill -> the new leader's
first create/patch/delete), next to the lease duration and ``takeover_bound_seconds`` (lease
duration + the longest jittered retry: the follower may have seen the last renewal up to one
retry before the kill and notices the expiry up to one retry after it); duplicate pods (as in
``chaos``: POST pods answered 201 beyond the pods' distinct (job, replica, index) keys plus the
pods deleted; and indices holding two pods); jobs not finished; jobs whose status was lost (not
Succeeded in the final LIST, or without completionTime / replicaStatuses); orphaned pods;
the follower's reconciles before it led (0); the restarted replica's writes, reconciles and
scrapes of its ``/metrics`` in which it led (all 0, over ``restarted_leader_scrapes``); create -> all pods created and create -> Running.

Only ``kubetrain`` has leader election: other ``--systems`` are skipped (named under
``skipped_systems`` in the section and said on the console); without kubetrain the run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from kubetrain.engine.leaderelection import JITTER_FACTOR
from kubetrain.engine.manager import ManagerOptions
from kubetrain.informers.resource import LEASES, PODS
from kubetrain.informers.transport import ApiStatusError

from ..apimetrics import delta, scrape_request_counts
from ..harness import HarnessError, ManagedProcess
from ..jobs import PYTORCHJOBS, create_jobs, create_namespace, pytorchjob
from ..measure import (
    JobTimes,
    JobWatch,
    condition_true,
    latency_samples,
    orphaned_pods,
    pods_by_index,
)
from ..stats import latency_figures
from ..systems import system_process
from .context import BenchContext, _say_progress, _warm_up, namespace_for
from .probe import free_port

__all__ = ["FIGURES", "KILL_AT", "LATENCIES", "LEASE_NAME", "ReplicaMetrics", "run"]

LATENCIES = ("create_to_pods_created", "create_to_running")
KILL_AT = 0.4
"""The leader is killed once this share of the jobs have all their pods."""
POLL_SECONDS = 0.05
LEASE_NAME = "kubetrain-failover"
LEADER_TIMEOUT_SECONDS = 60.0
"""How long the first replica may take to sync its caches and take the Lease."""
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FIGURES = (
    "jobs",
    "jobs_succeeded",
    "jobs_not_finished",
    "jobs_status_lost",
    "duplicate_pods",
    "indices_with_two_pods",
    "orphaned_pods",
    "pod_creates_201",
    "pod_creates_409",
    "lease_duration_seconds",
    "takeover_bound_seconds",
    "takeover_gap_seconds",
    "first_write_gap_seconds",
    "jobs_with_all_pods_at_kill",
    "follower_reconciles_before_takeover",
    "restarted_leader_writes",
    "restarted_leader_reconciles",
    "restarted_leader_scrapes_leading",
    "restarted_leader_scrapes",
    "restarted_leader_seconds_observed",
    "create_to_pods_created_p50",
    "create_to_pods_created_p99",
    "create_to_running_p50",
    "create_to_running_p99",
    "wall_seconds_to_all_succeeded",
    "cpu_seconds",
)


@dataclass
class ReplicaMetrics:
    """What one replica's ``/metrics`` said (None: unreachable)."""

    master: float | None = None
    """``leader_election_master_status`` (1: leading); None before its elector exists."""
    reconciles: float = 0.0
    """``controller_runtime_reconcile_total``, every controller and result."""
    requests: dict[str, float] = field(default_factory=dict)
    """``rest_client_requests_total`` by method (every code: a refused write was still tried)."""

    @property
    def writes(self) -> float:
        return sum(v for k, v in self.requests.items() if k in WRITE_METHODS)

    @property
    def creates_patches_deletes(self) -> float:
        """Writes other than PUT: a leader's renewals are PUTs of the Lease, these never are."""
        return sum(v for k, v in self.requests.items() if k in WRITE_METHODS and k != "PUT")

    @classmethod
    def parse(cls, text: str) -> ReplicaMetrics:
        out = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "leader_election_master_status":
                    out.master = max(out.master or 0.0, sample.value)
                elif sample.name == "controller_runtime_reconcile_total":
                    out.reconciles += sample.value
                elif sample.name == "rest_client_requests_total":
                    method = sample.labels.get("method", "")
                    out.requests[method] = out.requests.get(method, 0.0) + sample.value
        return out


@dataclass
class _Replica:
    index: int
    proc: ManagedProcess
    metrics_port: int
    cpu_before: float = 0.0
    """CPU seconds of its earlier (killed) processes."""

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    async def scrape(self, session: aiohttp.ClientSession) -> ReplicaMetrics | None:
        try:
            async with session.get(
                self.metrics_url, timeout=aiohttp.ClientTimeout(total=2)
            ) as resp:
                if resp.status != 200:
                    return None
                return ReplicaMetrics.parse(await resp.text())
        except (aiohttp.ClientError, OSError, TimeoutError):
            return None

    def cpu_seconds(self) -> float:
        return self.cpu_before + (self.proc.cpu_seconds() or 0.0)


def status_lost(job: dict[str, Any]) -> bool:
    """A finished job's final status is incomplete: not Succeeded, or no completionTime or
    replicaStatuses (a status write dropped with the killed leader and never redone)."""
    status = job.get("status") or {}
    return (
        not condition_true(job, "Succeeded")
        or not status.get("completionTime")
        or not status.get("replicaStatuses")
    )


def _register(watch: JobWatch, name: str, at: float) -> None:
    watch.job_created(name, at=at)


async def _lease_holder(ctx: BenchContext, namespace: str) -> str:
    try:
        lease = await ctx.client.get(LEASES, namespace, LEASE_NAME)
    except ApiStatusError as e:
        if e.is_not_found:
            return ""
        raise
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def _wait_for_leader(ctx: BenchContext, replicas: list[_Replica]) -> _Replica:
    deadline = time.monotonic() + LEADER_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for r in replicas:
            r.proc.check_alive()
            m = await r.scrape(ctx.session)
            if m is not None and m.master == 1:
                return r
        await asyncio.sleep(0.2)
    tails = "\n".join(f"{r.proc.log_path}:\n{r.proc.log_tail()}" for r in replicas)
    raise HarnessError(f"failover: no replica led within {LEADER_TIMEOUT_SECONDS} s\n{tails}")


async def _measure(ctx: BenchContext) -> dict[str, Any]:
    opts = ctx.options
    shape = opts.shape
    timings = ManagerOptions()
    lease_duration = timings.lease_duration
    longest_retry = timings.retry_period * (1 + JITTER_FACTOR)
    ns = namespace_for(ctx, "failover", "kubetrain")
    await create_namespace(ctx.client, ns)
    watch = JobWatch(ctx.client, ns, pods_per_job=shape.pods)
    await watch.start()
    replicas: list[_Replica] = []
    for i in range(2):
        port = free_port()
        extra = (
            "--leader-elect",
            "--leader-election-id", LEASE_NAME,
            "--operator-namespace", ns,
            "--metrics-bind-address", f"127.0.0.1:{port}",
        )  # fmt: skip
        proc = system_process(
            "kubetrain", kubeconfig=ctx.operator_kubeconfig, harness_kubeconfig=ctx.kubeconfig,
            namespace=ns, log_path=ctx.workdir / f"failover-kubetrain-{i}.log",
            options=replace(opts.system, operator_args=(*opts.system.operator_args, *extra)),
        )  # fmt: skip
        proc.name = f"kubetrain replica {i}"
        replicas.append(_Replica(i, proc, port))
    for r in replicas:
        await r.proc.start()
    kill_at: float | None = None
    lease_changed_at: float | None = None
    first_write_at: float | None = None
    restarted_at: float | None = None
    restarted_leading_samples = 0
    restarted_samples = 0
    restarted_last: ReplicaMetrics | None = None
    follower_reconciles_at_takeover: float | None = None
    with_pods_at_kill = 0
    try:
        leader = await _wait_for_leader(ctx, replicas)
        follower = replicas[1 - leader.index]
        ctx.say(f"[failover/kubetrain] replica {leader.index} leads")
        await _warm_up(ctx, ns, leader.proc)
        await asyncio.sleep(opts.settle_seconds)
        old_holder = await _lease_holder(ctx, ns)
        before = await scrape_request_counts(ctx.session, ctx.url, by_code=True)
        start = time.monotonic()
        manifests = [pytorchjob(f"job-{i:05d}", ns, shape) for i in range(opts.jobs)]
        n = len(manifests)
        creating = asyncio.create_task(
            create_jobs(
                ctx.client, manifests, concurrency=opts.create_concurrency,
                on_created=lambda name, at: _register(watch, name, at),
            )
        )  # fmt: skip
        deadline = start + opts.timeout_seconds
        last_say = start
        timed_out = False
        follower_base: ReplicaMetrics | None = None

        def finished(t: JobTimes) -> bool:
            return t.succeeded is not None or t.failed is not None

        while True:
            c = watch.counts()
            now = time.monotonic()
            if kill_at is None and c["pods"] >= KILL_AT * n:
                follower_base = await follower.scrape(ctx.session)
                old_holder = await _lease_holder(ctx, ns) or old_holder
                leader.cpu_before += leader.proc.cpu_seconds() or 0.0
                with_pods_at_kill = c["pods"]
                kill_at = time.monotonic()
                leader.proc.kill()
                await leader.proc.stop()
                ctx.say(
                    f"[failover/kubetrain] SIGKILL leader (replica {leader.index}) with "
                    f"{c['pods']}/{n} jobs' pods created"
                )
            elif kill_at is not None and (lease_changed_at is None or first_write_at is None):
                if lease_changed_at is None:
                    holder = await _lease_holder(ctx, ns)
                    if holder and holder != old_holder:
                        lease_changed_at = time.monotonic()
                        ctx.say(
                            f"[failover/kubetrain] replica {follower.index} took the Lease "
                            f"{lease_changed_at - kill_at:.2f} s after the kill; restarting "
                            f"replica {leader.index}"
                        )
                        await leader.proc.start()
                        restarted_at = time.monotonic()
                m = await follower.scrape(ctx.session)
                if m is not None:
                    if m.master != 1:
                        follower_reconciles_at_takeover = m.reconciles
                    base = follower_base.creates_patches_deletes if follower_base else 0.0
                    if first_write_at is None and m.creates_patches_deletes > base:
                        first_write_at = time.monotonic()
            if restarted_at is not None:
                m = await leader.scrape(ctx.session)
                if m is not None and m.master is not None:
                    restarted_samples += 1
                    restarted_last = m
                    if m.master == 1:
                        restarted_leading_samples += 1
            all_done = (
                creating.done()
                and c["created"] == n
                and all(finished(t) for t in watch.jobs.values())
            )
            # The restarted replica must have run as a candidate for a couple of acquire
            # attempts before the run may end (else "it never wrote" says little).
            candidate_long_enough = (
                restarted_at is not None
                and restarted_last is not None
                and now - restarted_at >= 2 * longest_retry
            )
            if all_done and (kill_at is None or candidate_long_enough):
                break
            if now > deadline:
                timed_out = True
                break
            follower.proc.check_alive()
            if restarted_at is not None:
                leader.proc.check_alive()
            if now - last_say > 2:
                last_say = now
                _say_progress(ctx, "kubetrain", "failover", watch, n, start)
            await asyncio.sleep(POLL_SECONDS)
        wall = time.monotonic() - start
        if not creating.done():
            creating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await creating
        await asyncio.sleep(opts.settle_seconds)
        after = delta(before, await scrape_request_counts(ctx.session, ctx.url, by_code=True))
        if restarted_at is not None:
            final = await leader.scrape(ctx.session)
            if final is not None and final.master is not None:
                restarted_last = final
                restarted_samples += 1
                restarted_leading_samples += int(final.master == 1)
        cpu = sum(r.cpu_seconds() for r in replicas)
        pods = await ctx.client.list_all(PODS, ns)
        jobs = await ctx.client.list_all(PYTORCHJOBS, ns)
        _say_progress(ctx, "kubetrain", "failover", watch, n, start, final=True)
    finally:
        for r in replicas:
            await r.proc.stop()
        await watch.stop()
    # the warm-up job's pods were created before the request counts' baseline
    by_index = pods_by_index(pods, skip_jobs=("warmup",))
    measured = [t for name, t in watch.jobs.items() if name != "warmup"]
    measured_jobs = [j for j in jobs if j["metadata"]["name"] != "warmup"]
    created_201 = after.get("POST pods 201", 0)
    pod_deletes = sum(v for k, v in after.items() if k.startswith("DELETE pods 2"))
    samples = latency_samples(measured, LATENCIES)

    def since_kill(at: float | None) -> float | None:
        return None if at is None or kill_at is None else at - kill_at

    figures: dict[str, Any] = {
        "jobs": n,
        "jobs_succeeded": sum(1 for t in measured if t.succeeded is not None),
        "jobs_not_finished": n - sum(1 for t in measured if finished(t)),
        "jobs_status_lost": sum(1 for j in measured_jobs if status_lost(j))
        + (n - len(measured_jobs)),
        "duplicate_pods": max(0, created_201 - len(by_index) - pod_deletes),
        "indices_with_two_pods": sum(1 for v in by_index.values() if v > 1),
        "orphaned_pods": orphaned_pods(pods, jobs),
        "pod_creates_201": created_201,
        "pod_creates_409": after.get("POST pods 409", 0),
        "lease_duration_seconds": lease_duration,
        "takeover_bound_seconds": lease_duration + longest_retry,
        "takeover_gap_seconds": since_kill(lease_changed_at),
        "first_write_gap_seconds": since_kill(first_write_at),
        "jobs_with_all_pods_at_kill": with_pods_at_kill,
        "follower_reconciles_before_takeover": follower_reconciles_at_takeover,
        "restarted_leader_writes": None if restarted_last is None else restarted_last.writes,
        "restarted_leader_reconciles": None
        if restarted_last is None
        else restarted_last.reconciles,
        "restarted_leader_scrapes_leading": restarted_leading_samples
        if restarted_samples
        else None,
        "restarted_leader_scrapes": restarted_samples,
        "restarted_leader_seconds_observed": None
        if restarted_at is None
        else time.monotonic() - restarted_at,
        "wall_seconds_to_all_succeeded": None if timed_out else wall,
        "cpu_seconds": cpu,
    }
    figures.update(latency_figures(samples, ("p50", "p99")))
    return {
        "namespace": ns,
        "figures": figures,
        "latency_samples": samples,
        "restarted_leader_requests": None if restarted_last is None else restarted_last.requests,
        "api_requests_by_code": after,
    }


async def run(ctx: BenchContext) -> dict[str, Any]:
    opts = ctx.options
    skipped = {
        s: "no leader election (only kubetrain runs --leader-elect replicas)"
        for s in opts.systems
        if s != "kubetrain"
    }
    if "kubetrain" not in opts.systems:
        raise HarnessError(
            "failover: only kubetrain has leader election; pass --systems kubetrain "
            f"(got {', '.join(opts.systems)})"
        )
    for s in skipped:
        ctx.say(f"[failover/{s}] skipped: {skipped[s]}")
    timings = ManagerOptions()
    ctx.say(
        f"[failover/kubetrain] {opts.jobs} jobs, 2 replicas, leader SIGKILLed at "
        f"{KILL_AT:.0%} of jobs with pods; lease {timings.lease_duration:g} s"
    )
    systems = {"kubetrain": await _measure(ctx)}
    return {
        "parameters": {
            "jobs": opts.jobs,
            "replicas": 2,
            "kill_at_jobs_with_pods": KILL_AT,
            "lease_name": LEASE_NAME,
            "lease_duration_seconds": timings.lease_duration,
            "renew_deadline_seconds": timings.renew_deadline,
            "retry_period_seconds": timings.retry_period,
            "retry_jitter_factor": JITTER_FACTOR,
            "poll_seconds": POLL_SECONDS,
            "masters": opts.shape.masters,
            "workers": opts.shape.workers,
            "run_seconds": opts.shape.run_seconds,
        },
        "skipped_systems": skipped,
        "figures": list(FIGURES),
        "latencies": list(LATENCIES),
        "systems": systems,
    }
