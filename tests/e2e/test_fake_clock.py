"""The whole operator on one fake clock: TTL deletion, the active deadline and the retry backoff
happen at the right fake instants, with no real sleep for any of them.

The operator runs in-process against the embedded API server (real HTTP) with a ``FakeClock``
(``Operator(clock=)``): conditions and completion times are stamped with the fake wall time, and
every delayed requeue waits on fake timers. There are no simulated nodes: the test plays the
kubelet by writing pod status. Between steps it waits only for the operator to go idle (its queues
empty, no reconcile running), never for time to pass.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from jobkit_e2e import Env, condition_types, job_manifest, open_env

from kubetrain.base.clock import FakeClock
from kubetrain.cluster.apiserver.faults import FaultRule
from kubetrain.informers.resource import PODS
from kubetrain.reconcilers.common.jobs import parse_time

# The fake clock cannot drive a real control plane's own timestamps: embedded only.
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.embedded_only]

KIND = "PyTorchJob"
KEY_FIELD = "pytorchReplicaSpecs"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def clock() -> FakeClock:
    return FakeClock(1000.0, wall_start=datetime.now(UTC))


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(clock: FakeClock) -> AsyncIterator[Env]:
    async for e in open_env(nodes=0):
        await e.start_operator(clock=clock, enable_schemes=("pytorchjob",))
        yield e


async def settle(env: Env) -> None:
    """Until the operator is idle: no key ready or being reconciled in any shard, for a few
    loop turns in a row (HTTP answers and watch events land in between)."""
    assert env.running is not None
    quiet = 0
    for _ in range(2000):
        busy = any(
            len(shard) or shard.processing_count()
            for controller in env.running.operator.controllers
            for shard in controller.queue.shards
        )
        quiet = 0 if busy else quiet + 1
        if quiet >= 20:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the operator did not go idle")


async def advance(env: Env, clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)
    await settle(env)


async def set_pod_phase(env: Env, ns: str, name: str, phase: str) -> None:
    state = {"terminated": {"exitCode": 0}} if phase == "Succeeded" else {"running": {}}
    status = {
        "phase": phase,
        "containerStatuses": [{"name": "pytorch", "restartCount": 0, "state": state}],
    }
    await env.client.patch(PODS, ns, name, {"status": status}, subresource="status")


def manifest(ns: str, name: str, run_policy: dict[str, int]) -> dict[str, object]:
    return job_manifest(
        KIND, KEY_FIELD, "pytorch", {"Master": 1}, name=name, namespace=ns, run_policy=run_policy
    )


async def test_ttl_deletes_the_finished_job_when_due_on_the_fake_clock(
    env: Env, clock: FakeClock
) -> None:
    ns = await env.namespace("ttl")
    await env.create_job(manifest(ns, "j", {"ttlSecondsAfterFinished": 60}))
    await settle(env)
    await set_pod_phase(env, ns, "j-master-0", "Succeeded")
    await settle(env)
    job = await env.get_job(KIND, ns, "j")
    assert job is not None and "Succeeded" in condition_types(job)
    completed = parse_time(job["status"]["completionTime"])
    assert completed is not None
    # completionTime is the fake wall time (seconds only), so the deadline is on the fake clock.
    due_in = (completed - clock.utcnow()).total_seconds() + 60
    assert 59.0 < due_in <= 60.0

    await advance(env, clock, due_in - 0.5)
    assert await env.get_job(KIND, ns, "j") is not None  # not yet due: kept
    await advance(env, clock, 0.6)
    assert await env.get_job(KIND, ns, "j") is None  # due: deleted


async def test_active_deadline_fails_a_running_job_when_due_on_the_fake_clock(
    env: Env, clock: FakeClock
) -> None:
    ns = await env.namespace("deadline")
    await env.create_job(manifest(ns, "j", {"activeDeadlineSeconds": 30}))
    await settle(env)
    await set_pod_phase(env, ns, "j-master-0", "Running")
    await settle(env)
    job = await env.get_job(KIND, ns, "j")
    assert job is not None and condition_types(job)[-1] == "Running"
    started = parse_time(job["status"]["startTime"])
    assert started is not None
    due_in = (started - clock.utcnow()).total_seconds() + 30
    assert 29.0 < due_in <= 30.0

    await advance(env, clock, due_in - 0.5)
    job = await env.get_job(KIND, ns, "j")
    assert job is not None and "Failed" not in condition_types(job)
    await advance(env, clock, 0.6)
    job = await env.get_job(KIND, ns, "j")
    assert job is not None and "Failed" in condition_types(job)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert "active longer than specified deadline" in failed["message"]


async def test_failed_writes_are_retried_with_exponential_backoff_on_the_fake_clock(
    env: Env, clock: FakeClock
) -> None:
    ns = await env.namespace("backoff")
    faults = env.cluster.api.faults
    rule = FaultRule(action="error", verb="create", resource="pods", namespace=ns, code=500)
    fault = faults.add(rule)
    assert env.running is not None
    (controller,) = env.running.operator.controllers
    key = f"{ns}/j"
    try:
        await env.create_job(manifest(ns, "j", {}))
        await settle(env)

        for _ in range(4):
            failures = controller.queue.num_requeues(key)
            assert failures >= 1
            delay = 0.005 * 2 ** (failures - 1)  # 5 ms doubling per failure
            before = fault.fired
            await advance(env, clock, delay - 0.001)
            assert fault.fired == before, "retried before its backoff elapsed"
            await advance(env, clock, 0.0015)
            assert fault.fired == before + 1, "not retried once its backoff elapsed"
            assert controller.queue.num_requeues(key) == failures + 1
    finally:
        faults.clear()
    await advance(env, clock, 1.0)
    assert [p["metadata"]["name"] for p in await env.pods(ns)] == ["j-master-0"]
    assert controller.queue.num_requeues(key) == 0  # forgotten after the success
