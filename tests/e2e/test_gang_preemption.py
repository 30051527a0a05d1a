"""Preemption with the real operator: ``kubetrain operator --gang-scheduler-name volcano`` on an
embedded cluster whose simulated scheduler preempts (``NodeSimOptions(preemption=True)``).

A low-priority PyTorchJob holds the cluster; a high-priority one arrives: the whole low gang is
evicted (``DisruptionTarget``, then deleted; an Event ``Preempted`` names the preemptor), the
high job's pods are nominated, run and succeed, and the operator's replacements of the low pods
wait until there is room again, then the low job succeeds too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from jobkit_e2e import Env, has_condition, job_manifest, open_env, poll

from kubetrain.cluster.nodesim.options import NodeSimOptions

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.embedded_only]

Obj = dict[str, Any]
JOB_LABEL = "training.kubeflow.org/job-name"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    # Room for 4 pods in all: a 3-pod job holding it leaves no room for another.
    options = NodeSimOptions(nodes=2, pods=2, preemption=True)
    async for e in open_env(nodes=2, nodesim_options=options):
        await e.priority_classes({"preempt-high": 1000, "preempt-low": 10})
        yield e


def prioritized_job(name: str, ns: str, priority_class: str, *, run_seconds: float) -> Obj:
    job = job_manifest(
        "PyTorchJob",
        "pytorchReplicaSpecs",
        "pytorch",
        {"Master": 1, "Worker": 2},
        name=name,
        namespace=ns,
        run_seconds=run_seconds,
        restart_policy="ExitCode",  # an evicted pod exits 143: retryable, the pod is remade
        run_policy={"schedulingPolicy": {"priorityClass": priority_class}},
    )
    for spec in job["spec"]["pytorchReplicaSpecs"].values():
        spec["template"]["spec"]["priorityClassName"] = priority_class
    return job


async def job_pods(env: Env, ns: str, job: str) -> list[Obj]:
    return [
        p for p in await env.pods(ns) if (p["metadata"].get("labels") or {}).get(JOB_LABEL) == job
    ]


async def test_a_high_priority_job_preempts_the_low_one_which_succeeds_later(env: Env) -> None:
    await env.start_operator(gang_scheduler_name="volcano")
    try:
        ns = await env.namespace("gang-preempt")
        await env.create_job(prioritized_job("low", ns, "preempt-low", run_seconds=6.0))

        async def low_running() -> bool:
            pods = await job_pods(env, ns, "low")
            return len(pods) == 3 and all(p["status"].get("phase") == "Running" for p in pods)

        await poll(low_running, timeout=30, what="the low job's 3 pods running")
        first_uids = {p["metadata"]["uid"] for p in await job_pods(env, ns, "low")}
        await env.create_job(prioritized_job("high", ns, "preempt-high", run_seconds=1.0))
        high = await env.wait_condition("PyTorchJob", ns, "high", "Succeeded", timeout=60)
        assert high is not None
        low = await env.get_job("PyTorchJob", ns, "low")
        assert low is not None and not has_condition(low, "Succeeded"), "high went first"
        low = await env.wait_condition("PyTorchJob", ns, "low", "Succeeded", timeout=90)
        # every low pod was preempted and made again by the operator
        now_uids = {p["metadata"]["uid"] for p in await job_pods(env, ns, "low")}
        assert not first_uids & now_uids, "the low pods were replaced"
        events = [e for e in await env.events(ns) if e.get("reason") == "Preempted"]
        assert len(events) == 3, [e.get("message") for e in events]
        assert all(f"Preempted by {ns}/high-" in e["message"] for e in events)
    finally:
        await env.stop_operator()
