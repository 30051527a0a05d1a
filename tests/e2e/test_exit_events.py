"""ExitedWithCode events, on the embedded cluster and under ``--apiserver=real``: one per pod
termination, however many times the job is reconciled while it keeps running (the reference
repeats it on every reconcile)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import SIM, Env, job_manifest, open_env, poll

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "PyTorchJob"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator(enable_schemes=("pytorchjob",))
        yield e


async def test_exited_with_code_once_per_pod(env: Env) -> None:
    ns = await env.namespace("exits")
    job = job_manifest(
        KIND,
        "pytorchReplicaSpecs",
        "pytorch",
        {"Master": 1, "Worker": 3},
        name="exits",
        namespace=ns,
        run_seconds=0.2,
        # The master runs on after the workers exit: the job is reconciled again meanwhile.
        annotations={"Master": {SIM + "run-seconds": "1.5"}},
    )
    await env.create_job(job)
    await env.wait_condition(KIND, ns, "exits", "Succeeded")

    async def all_reported() -> list[dict] | None:
        # The event writer is asynchronous: wait until every pod's termination is reported.
        events = [e for e in await env.events(ns) if e["reason"] == "ExitedWithCode"]
        return events if len({e["message"] for e in events}) == 4 else None

    events = await poll(all_reported, timeout=10, what="4 ExitedWithCode events")
    await asyncio.sleep(0.3)  # a repeat would be a PATCH of the count: give it time to land
    events = [e for e in await env.events(ns) if e["reason"] == "ExitedWithCode"]
    counts = {e["message"]: e.get("count", 1) for e in events}
    assert counts == {
        f"Pod: {ns}.exits-{name} exited with code 0": 1
        for name in ("master-0", "worker-0", "worker-1", "worker-2")
    }
