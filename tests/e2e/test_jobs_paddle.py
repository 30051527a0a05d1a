"""PaddleJob end to end: collective env, services, conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, env_of, job_manifest, open_env

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "PaddleJob"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator(enable_schemes=("paddlejob",))
        yield e


async def test_paddle_workers_to_succeeded(env: Env) -> None:
    ns = await env.namespace("pd")
    await env.create_job(
        job_manifest(KIND, "paddleReplicaSpecs", "paddle", {"Worker": 2}, name="p", namespace=ns)
    )
    job = await env.wait_condition(KIND, ns, "p", "Succeeded")
    assert job["status"]["replicaStatuses"]["Worker"]["succeeded"] == 2
    pods = await env.pods(ns)
    assert [p["metadata"]["name"] for p in pods] == ["p-worker-0", "p-worker-1"]
    e = env_of(pods[1], "paddle")
    assert e["PADDLE_JOB_ID"] == "p" and e["PADDLE_NNODES"] == "2"
    assert e["PADDLE_MASTER"].endswith(":36543")
    assert [s["metadata"]["name"] for s in await env.services(ns)] == ["p-worker-0", "p-worker-1"]
