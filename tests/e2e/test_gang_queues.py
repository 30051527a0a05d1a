"""Volcano queues with the real operator: ``kubetrain operator --gang-scheduler-name volcano``
on an embedded cluster whose simulated scheduler admits PodGroups by their Queue.

Two queues: ``capped`` may hold one job's pods at a time (its capability is one job's cpu), so
its two jobs run one after the other, while the two jobs of the ``roomy`` queue (weight 2, no
cap) run at once alongside; all four succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from jobkit_e2e import Env, has_condition, job_manifest, open_env

from kubetrain.cluster.nodesim.options import NodeSimOptions
from kubetrain.cluster.nodesim.queues import QUEUES
from kubetrain.informers.resource import PODGROUPS_VOLCANO
from kubetrain.informers.transport import ApiStatusError

pytestmark = pytest.mark.asyncio(loop_scope="module")

Obj = dict[str, Any]
JOB_LABEL = "training.kubeflow.org/job-name"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    # 16 cpu in all: room for every job at once, were it not for the capped queue.
    async for e in open_env(nodes=2, nodesim_options=NodeSimOptions(nodes=2, cpu="8")):
        for name, spec in (
            ("capped", {"weight": 1, "capability": {"cpu": "3"}}),
            ("roomy", {"weight": 2}),
        ):
            await e.client.create(
                QUEUES,
                {
                    "apiVersion": "scheduling.volcano.sh/v1beta1",
                    "kind": "Queue",
                    "metadata": {"name": name},
                    "spec": spec,
                },
            )
        yield e


def queued_job(name: str, ns: str, queue: str, *, run_seconds: float) -> Obj:
    """A 3-pod PyTorchJob of 1 cpu per pod in ``queue`` (its PodGroup asks for 3 cpu)."""
    job = job_manifest(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        "pytorch",
        {"Master": 1, "Worker": 2},
        name=name,
        namespace=ns,
        run_seconds=run_seconds,
        restart_policy="OnFailure",
        run_policy={"schedulingPolicy": {"queue": queue}},
    )
    for spec in job["spec"]["pytorchReplicaSpecs"].values():
        spec["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    return job


async def bound_by_job(env: Env, ns: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in await env.pods(ns):
        job = (p["metadata"].get("labels") or {}).get(JOB_LABEL)
        if job and p["spec"].get("nodeName") and p["status"].get("phase") != "Succeeded":
            counts[job] = counts.get(job, 0) + 1
    return counts


async def test_a_capped_queue_runs_one_job_at_a_time_while_another_queue_proceeds(
    env: Env,
) -> None:
    await env.start_operator(gang_scheduler_name="volcano")
    try:
        ns = await env.namespace("gang-queues")
        for name in ("capped-a", "capped-b"):
            await env.create_job(queued_job(name, ns, "capped", run_seconds=3.0))
        await asyncio.sleep(0.5)
        for name in ("roomy-a", "roomy-b"):
            await env.create_job(queued_job(name, ns, "roomy", run_seconds=1.0))
        done: dict[str, float] = {}
        together = False  # both roomy jobs bound while a capped one waits for its queue
        refused = ""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        pending_seen = [0]
        while len(done) < 4 and loop.time() < deadline:
            counts = await bound_by_job(env, ns)
            queue = await env.client.get(QUEUES, None, "capped")
            pending_seen.append(int((queue.get("status") or {}).get("pending") or 0))
            capped = [j for j in ("capped-a", "capped-b") if counts.get(j)]
            assert len(capped) <= 1, f"the capped queue ran two jobs at once: {counts}"
            waiting = [j for j in ("capped-a", "capped-b") if not counts.get(j) and j not in done]
            if counts.get("roomy-a") == 3 and counts.get("roomy-b") == 3 and waiting:
                together = True
            for name in waiting:
                try:
                    group = await env.client.get(PODGROUPS_VOLCANO, ns, name)
                except ApiStatusError:
                    continue  # not made yet
                for cond in (group.get("status") or {}).get("conditions") or []:
                    if "queue resource quota" in str(cond.get("message")):
                        refused = str(cond["message"])
            for name in ("capped-a", "capped-b", "roomy-a", "roomy-b"):
                if name not in done:
                    job = await env.get_job("PyTorchJob", ns, name)
                    if job is not None and has_condition(job, "Succeeded"):
                        done[name] = loop.time()
            await asyncio.sleep(0.1)
        assert len(done) == 4, f"not all succeeded: {sorted(done)}"
        assert together, "the roomy queue's jobs ran at once while a capped job waited"
        assert refused == "queue resource quota insufficient: insufficient cpu", refused
        assert max(pending_seen) >= 1, "the capped queue counted its waiting group"
        # the operator deletes a finished job's PodGroup: nothing left in the queue
        status = (await env.client.get(QUEUES, None, "capped"))["status"]
        assert status["state"] == "Open"
        assert status["allocated"] == {"cpu": "0", "memory": "0"}, status
    finally:
        await env.stop_operator()
