"""Gang scheduling with the node simulator: the operator's PodGroups (``--gang-scheduler-name``)
and the simulated scheduler's all-or-nothing binding together, for both PodGroup flavours.

The reference's acceptance: a job with ``minAvailable`` above what it can ever gather stays
Created (not Running) over 15 s; lowered to 2, it succeeds. And on a cluster with room for only
one of two jobs, neither is ever half-bound, and the higher PriorityClass goes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from jobkit_e2e import Env, condition_types, job_manifest, open_env, poll

from kubetrain.cluster.nodesim.options import NodeSimOptions
from kubetrain.informers.resource import kubeflow

pytestmark = pytest.mark.asyncio(loop_scope="module")

Obj = dict[str, Any]
PYTORCHJOBS = kubeflow("PyTorchJob")
FLAVOURS = {"volcano": "volcano", "scheduler-plugins": "scheduler-plugins-scheduler"}
WAIT_SHOWN = {  # flavour -> (the Warning event's reason, what the Created message says)
    "volcano": ("WaitingForPodGroup", "Pods are created once volcano admits PodGroup big"),
    "scheduler-plugins": (
        "PodsUnschedulable",
        "2 of 2 pods wait for scheduler-plugins-scheduler to place them: 0/2 nodes are "
        "available: pre-filter pod big-master-0 cannot find enough sibling pods, current pods "
        "number: 2, minMember of group: 10.",
    ),
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    # Room for 4 pods in all: two 3-pod jobs cannot both run.
    async for e in open_env(nodes=2, nodesim_options=NodeSimOptions(nodes=2, pods=2)):
        await e.priority_classes({"gang-high": 1000, "gang-low": 10})
        yield e


def pytorchjob(name: str, ns: str, workers: int, *, run_seconds: float, **policy: Any) -> Obj:
    job = job_manifest(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        "pytorch",
        {"Master": 1, "Worker": workers},
        name=name,
        namespace=ns,
        run_seconds=run_seconds,
        restart_policy="OnFailure",
    )
    if policy:
        job["spec"].setdefault("runPolicy", {})["schedulingPolicy"] = policy
        if "priorityClass" in policy:
            for spec in job["spec"]["pytorchReplicaSpecs"].values():
                spec["template"]["spec"]["priorityClassName"] = policy["priorityClass"]
    return job


async def bound_pods(env: Env, ns: str, job: str) -> int:
    return sum(
        1
        for p in await env.pods(ns)
        if p["metadata"].get("labels", {}).get("training.kubeflow.org/job-name") == job
        and p["spec"].get("nodeName")
    )


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
async def test_min_available_above_the_job_stays_created_then_lowered_succeeds(
    env: Env, flavour: str
) -> None:
    await env.start_operator(gang_scheduler_name=FLAVOURS[flavour])
    try:
        ns = await env.namespace(f"gang-min-{flavour}")
        await env.create_job(pytorchjob("big", ns, 1, run_seconds=0.5, minAvailable=10))
        for _ in range(3):  # the reference checks 3 times, 5 s apart
            await asyncio.sleep(5)
            job = await env.get_job("PyTorchJob", ns, "big")
            assert job is not None and condition_types(job) == ["Created"], job.get("status")
            assert await bound_pods(env, ns, "big") == 0
        # ... and says why: Volcano holds the pods back, scheduler-plugins cannot place them
        created = next(c for c in job["status"]["conditions"] if c["type"] == "Created")
        reason, says = WAIT_SHOWN[flavour]
        assert says in created["message"], created["message"]
        events = [e for e in await env.events(ns) if e.get("reason") == reason]
        assert len(events) == 1 and events[0]["type"] == "Warning", events
        await env.client.patch(
            PYTORCHJOBS,
            ns,
            "big",
            {"spec": {"runPolicy": {"schedulingPolicy": {"minAvailable": 2}}}},
        )
        await env.wait_condition("PyTorchJob", ns, "big", "Succeeded", timeout=60)
    finally:
        await env.stop_operator()


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
async def test_two_jobs_for_room_of_one_never_half_bound_and_priority_first(
    env: Env, flavour: str
) -> None:
    await env.start_operator(gang_scheduler_name=FLAVOURS[flavour])
    try:
        ns = await env.namespace(f"gang-two-{flavour}")
        # A 3-pod job fills 3 of the 4 places while it runs; then both waiters want 3.
        await env.create_job(pytorchjob("first", ns, 2, run_seconds=3.0))
        await poll(lambda: _bound_is(env, ns, "first", 3), timeout=30, what="first bound")
        await env.create_job(pytorchjob("low", ns, 2, run_seconds=1.0, priorityClass="gang-low"))
        await asyncio.sleep(0.5)
        await env.create_job(pytorchjob("high", ns, 2, run_seconds=1.0, priorityClass="gang-high"))
        high_done = low_done = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while (high_done is None or low_done is None) and loop.time() < deadline:
            counts = {j: await bound_pods(env, ns, j) for j in ("low", "high")}
            assert set(counts.values()) <= {0, 3}, f"half-bound: {counts}"
            for name in ("low", "high"):
                job = await env.get_job("PyTorchJob", ns, name)
                if job is not None and "Succeeded" in condition_types(job):
                    if name == "high" and high_done is None:
                        high_done = loop.time()
                    if name == "low" and low_done is None:
                        low_done = loop.time()
            await asyncio.sleep(0.1)
        assert high_done is not None and low_done is not None, "both jobs finish"
        assert high_done < low_done, "the higher PriorityClass goes first"
    finally:
        await env.stop_operator()


async def _bound_is(env: Env, ns: str, job: str, n: int) -> bool:
    return await bound_pods(env, ns, job) == n
