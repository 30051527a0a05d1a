"""JAXJob end to end: coordinator env, services, conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, condition_types, env_of, job_manifest, open_env

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "JAXJob"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator(enable_schemes=("jaxjob",))
        yield e


async def test_jax_workers_to_succeeded(env: Env) -> None:
    ns = await env.namespace("jax")
    await env.create_job(
        job_manifest(KIND, "jaxReplicaSpecs", "jax", {"Worker": 2}, name="j", namespace=ns)
    )
    job = await env.wait_condition(KIND, ns, "j", "Succeeded")
    assert condition_types(job) == ["Created", "Running", "Succeeded"]
    pods = await env.pods(ns)
    assert [p["metadata"]["name"] for p in pods] == ["j-worker-0", "j-worker-1"]
    assert pods[0]["metadata"]["labels"]["training.kubeflow.org/job-role"] == "master"
    e = env_of(pods[1], "jax")
    assert (e["COORDINATOR_ADDRESS"], e["COORDINATOR_PORT"]) == ("j-worker-0", "6666")
    assert (e["NUM_PROCESSES"], e["PROCESS_ID"]) == ("2", "1")
    assert [s["metadata"]["name"] for s in await env.services(ns)] == ["j-worker-0", "j-worker-1"]
