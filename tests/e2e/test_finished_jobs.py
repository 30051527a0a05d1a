"""Finished jobs cost nothing (DESIGN.md), end to end on the embedded cluster and, under
``--apiserver=real``, on a real control plane: after an operator restart every finished job is
reconciled once at low priority with no API write and requeued at its TTL deadline (at the TTL's
priority, above all), while new jobs jump that backlog; an invalid job failed for it is still deleted at its TTL; a finished job's
status is merge-patched (never PUT from the compacted cache). API writes are counted from the
server's own ``apiserver_request_total`` over HTTP (both servers count the same labels)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, has_condition, job_manifest, open_env, poll

from kubetrain.bench.apimetrics import WRITE_VERBS
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.resource import PODS, kubeflow
from kubetrain.reconcilers.common.jobs import parse_time
from kubetrain.reconcilers.jobcontroller import TTL_PRIORITY, JobReconciler

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "PyTorchJob"
JOBS = kubeflow(KIND)
JOB_RESOURCES = ("pytorchjobs", "pods", "services", "events")


def pytorch(name: str, ns: str, replicas: dict[str, int] | None = None, **kw: Any) -> dict:
    return job_manifest(
        KIND,
        "pytorchReplicaSpecs",
        "pytorch",
        replicas or {"Master": 1, "Worker": 3},
        name=name,
        namespace=ns,
        run_seconds=0.1,
        **kw,
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        yield e


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def operator_stopped(env: Env) -> AsyncIterator[None]:
    """Each test starts its own operator; a failed test's is stopped here, so the next test
    does not run with two operators writing (their server-wide request counts would mix)."""
    yield
    await env.stop_operator()


async def job_writes(env: Env) -> int:
    """Writes so far to the jobs, their pods (any subresource), services and events."""
    total = 0
    for key, count in (await env.request_counts()).items():
        verb, resource = key.split(" ", 1)
        if verb in WRITE_VERBS and resource.split("/")[0] in JOB_RESOURCES:
            total += count
    return total


@dataclass
class Reconciles:
    """Every reconcile of the PyTorchJob controller: (key, monotonic time, result)."""

    calls: list[tuple[str, float, Result | None]] = field(default_factory=list)
    slow_keys: set[str] = field(default_factory=set)
    """Keys whose reconcile takes 20 ms more (makes a backlog last long enough to overtake)."""

    def of(self, key: str) -> list[tuple[str, float, Result | None]]:
        return [c for c in self.calls if c[0] == key]


@pytest.fixture
def reconciles(monkeypatch: pytest.MonkeyPatch) -> Reconciles:
    record = Reconciles()
    original = JobReconciler.reconcile

    async def counted(self: JobReconciler, request: Request) -> Result:
        if request.key in record.slow_keys:
            await asyncio.sleep(0.02)
        result: Result | None = None
        try:
            result = await original(self, request)
            return result
        finally:
            record.calls.append((request.key, time.monotonic(), result))

    monkeypatch.setattr(JobReconciler, "reconcile", counted)
    return record


async def all_finished(env: Env, ns: str, n: int) -> list[dict]:
    async def check() -> list[dict] | None:
        jobs = await env.client.list_all(JOBS, ns)
        done = [j for j in jobs if has_condition(j, "Succeeded")]
        return done if len(done) == n else None

    result: list[dict] = await poll(check, timeout=30, what=f"{n} jobs Succeeded in {ns}")
    return result


async def quiet_pods(env: Env, ns: str) -> None:
    """Wait until no pod of ``ns`` is terminating (cleanPodPolicy deletions done)."""

    async def check() -> bool:
        return not any(p["metadata"].get("deletionTimestamp") for p in await env.pods(ns))

    # Bounded generously: on a loaded 2-core machine 120 pod deletions can take a while.
    await poll(check, timeout=60, what="pod deletions done")


@pytest.mark.embedded_only(
    reason="timing on the real tier: the short jobs' 6 s TTL can fall due before the restarted "
    "operator's reconciles, adding their deletions to the writes counted (1404 vs 1398 in one CI "
    "run); the test needs a TTL clock it controls before it can run on real"
)
async def test_restart_with_finished_backlog_reconciles_each_once_without_writes(
    env: Env, reconciles: Reconciles
) -> None:
    ns = await env.namespace("backlog")
    await env.start_operator(enable_schemes=("pytorchjob",))
    n, short = 30, 3
    policies = ("None", "Running", "All")
    for i in range(n):
        ttl = 6 if i < short else 3600
        policy = {"ttlSecondsAfterFinished": ttl, "cleanPodPolicy": policies[i % 3]}
        await env.create_job(pytorch(f"done-{i}", ns, run_policy=policy))
    finished = await all_finished(env, ns, n)
    await quiet_pods(env, ns)
    await env.stop_operator()
    reconciles.calls.clear()
    before = await job_writes(env)

    running = await env.start_operator(enable_schemes=("pytorchjob",))
    keys = {f"{ns}/{j['metadata']['name']}" for j in finished}

    async def all_reconciled() -> bool:
        return all(reconciles.of(k) for k in keys)

    await poll(all_reconciled, timeout=15, what="every finished job reconciled")
    await asyncio.sleep(0.5)  # anything more it would do, it does now
    assert await job_writes(env) == before, "a finished job whose TTL is not due cost API writes"
    ttl_of = {f"{ns}/{j['metadata']['name']}": j["spec"]["runPolicy"] for j in finished}
    for job in finished:
        key = f"{ns}/{job['metadata']['name']}"
        (call,) = reconciles.of(key)  # once, though its pods also enqueued it
        result = call[2]
        assert result is not None and result.priority == TTL_PRIORITY  # its TTL's requeue
        deadline = parse_time(job["status"]["completionTime"]) + timedelta(
            seconds=ttl_of[key]["ttlSecondsAfterFinished"]
        )
        expected = (deadline - datetime.now(UTC)).total_seconds() + (time.monotonic() - call[1])
        assert result.requeue_after == pytest.approx(expected, abs=1.5)

    # The cache holds them compacted: no replica templates, no pod specs.
    informers = running.operator.manager.informers.informers
    job_cache = next(i for i in informers if i.resource == JOBS).lister.list(ns)
    assert len(job_cache) == n and all(set(j["spec"]) == {"runPolicy"} for j in job_cache)
    pod_cache = next(i for i in informers if i.resource == PODS).lister.list(ns)
    assert pod_cache and all("spec" not in p for p in pod_cache)

    # The short-TTL jobs are deleted at their deadline, by the requeue (one more reconcile).
    async def short_deleted() -> bool:
        found = await asyncio.gather(*(env.get_job(KIND, ns, f"done-{i}") for i in range(short)))
        return not any(found)

    await poll(short_deleted, timeout=15, what="short-TTL jobs deleted")
    for i in range(short):
        calls = reconciles.of(f"{ns}/done-{i}")
        assert len(calls) >= 2 and calls[1][2] is not None and not calls[1][2].requeue_after
    assert all(len(reconciles.of(f"{ns}/done-{i}")) == 1 for i in range(short, n))
    await env.stop_operator()


async def test_new_jobs_overtake_the_finished_backlog_after_a_restart(
    env: Env, reconciles: Reconciles
) -> None:
    ns = await env.namespace("overtake")
    await env.start_operator(enable_schemes=("pytorchjob",))
    n = 30
    for i in range(n):
        await env.create_job(pytorch(f"old-{i}", ns, {"Master": 1}))
    await all_finished(env, ns, n)
    await env.stop_operator()
    backlog = {f"{ns}/old-{i}" for i in range(n)}
    reconciles.calls.clear()
    reconciles.slow_keys = backlog  # 30 x 20 ms: the backlog lasts ~0.6 s on one worker

    # One worker: with the default 128 the whole backlog is in flight at once and there is no
    # queue to overtake (the test then measured only how slow the server made the backlog).
    await env.start_operator(enable_schemes=("pytorchjob",), controller_threads=1)
    await env.create_job(pytorch("new-0", ns))
    await env.wait_condition(KIND, ns, "new-0", "Succeeded", timeout=15)
    first_new = reconciles.of(f"{ns}/new-0")[0][1]
    backlog_times = sorted(t for k, t, _ in reconciles.calls if k in backlog)
    assert backlog_times[-1] > first_new, "the new job waited behind the finished backlog"
    pods = [p for p in await env.pods(ns) if p["metadata"]["name"].startswith("new-0-")]
    assert len(pods) == 4
    await env.stop_operator()


async def test_an_invalid_failed_job_is_deleted_at_its_ttl(env: Env) -> None:
    ns = await env.namespace("invalid-ttl")
    await env.start_operator(enable_schemes=("pytorchjob",))
    bad = pytorch("bad", ns, {"Master": 2}, run_policy={"ttlSecondsAfterFinished": 2})
    await env.create_job(bad)  # Master replicas must be 1: Failed by validation
    job = await env.wait_condition(KIND, ns, "bad", "Failed")
    completed = parse_time(job["status"]["completionTime"])
    assert completed is not None

    async def gone() -> bool:
        return await env.get_job(KIND, ns, "bad") is None

    await poll(gone, timeout=15, what="invalid job deleted at its TTL")
    assert datetime.now(UTC) >= completed + timedelta(seconds=2)
    await env.stop_operator()


async def test_a_finished_jobs_status_is_merge_patched_keeping_its_conditions(env: Env) -> None:
    ns = await env.namespace("patch")
    await env.start_operator(enable_schemes=("pytorchjob",))
    await env.create_job(pytorch("p", ns, {"Master": 1, "Worker": 1}))
    await env.wait_condition(KIND, ns, "p", "Succeeded")

    async def settled() -> dict | None:
        # The operator's own first pass over the finished job may fold leftover active counts
        # (one PATCH of its own); take the baseline only after that.
        current = await env.get_job(KIND, ns, "p")
        statuses = (current or {}).get("status", {}).get("replicaStatuses", {})
        return current if all(not s.get("active") for s in statuses.values()) else None

    job = await poll(settled, timeout=10, what="the operator's fold of the finished job")
    await asyncio.sleep(0.5)  # let a fold PATCH already in flight land before counting
    job = await env.get_job(KIND, ns, "p")
    conditions = job["status"]["conditions"]
    counts = await env.request_counts()
    puts = counts.get("PUT pytorchjobs/status", 0)
    patches = counts.get("PATCH pytorchjobs/status", 0)
    # Another writer leaves an active worker on the Succeeded job: the operator folds it.
    job["status"]["replicaStatuses"]["Worker"] = {"active": 1, "selector": "kept"}
    await env.client.update_status(JOBS, job)

    async def folded() -> dict | None:
        current = await env.get_job(KIND, ns, "p")
        worker = (current or {}).get("status", {}).get("replicaStatuses", {}).get("Worker", {})
        return current if worker.get("succeeded") == 1 and "active" not in worker else None

    current = await poll(folded, timeout=10, what="active folded into succeeded")
    assert current["status"]["replicaStatuses"]["Worker"]["selector"] == "kept"
    assert current["status"]["conditions"] == conditions  # untouched by the patch
    counts = await env.request_counts()
    assert counts.get("PATCH pytorchjobs/status", 0) == patches + 1
    assert counts.get("PUT pytorchjobs/status", 0) == puts + 1
    await env.stop_operator()
