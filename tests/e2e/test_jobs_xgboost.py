"""XGBoostJob end to end: master/worker pods with the rabit env, services, conditions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, condition_types, env_of, job_manifest, open_env

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "XGBoostJob"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator(enable_schemes=("xgboostjob",))
        yield e


async def test_xgboost_master_workers_to_succeeded(env: Env) -> None:
    ns = await env.namespace("xgb")
    await env.create_job(
        job_manifest(
            KIND, "xgbReplicaSpecs", "xgboost", {"Master": 1, "Worker": 2}, name="x", namespace=ns
        )
    )
    job = await env.wait_condition(KIND, ns, "x", "Succeeded")
    assert condition_types(job)[0] == "Created" and condition_types(job)[-1] == "Succeeded"
    pods = await env.pods(ns)
    assert [p["metadata"]["name"] for p in pods] == ["x-master-0", "x-worker-0", "x-worker-1"]
    e = env_of(pods[2], "xgboost")
    assert (e["MASTER_ADDR"], e["MASTER_PORT"], e["WORLD_SIZE"], e["RANK"]) == (
        "x-master-0",
        "9999",
        "3",
        "2",
    )
    assert [s["metadata"]["name"] for s in await env.services(ns)] == [
        "x-master-0",
        "x-worker-0",
        "x-worker-1",
    ]
