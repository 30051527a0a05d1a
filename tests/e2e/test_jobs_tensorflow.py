"""TFJob end to end: pods with TF_CONFIG (parsed JSON), headless services, conditions, statuses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, condition_types, env_of, job_manifest, open_env

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "TFJob"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator(enable_schemes=("tfjob",))
        yield e


async def test_tfjob_ps_workers_to_succeeded(env: Env) -> None:
    ns = await env.namespace("tf")
    await env.create_job(
        job_manifest(
            KIND, "tfReplicaSpecs", "tensorflow", {"PS": 1, "Worker": 2}, name="mnist", namespace=ns
        )
    )
    job = await env.wait_condition(KIND, ns, "mnist", "Succeeded")
    assert condition_types(job) == ["Created", "Running", "Succeeded"]
    assert job["status"]["replicaStatuses"]["Worker"]["succeeded"] == 2
    pods = await env.pods(ns)
    assert [p["metadata"]["name"] for p in pods] == [
        "mnist-ps-0",
        "mnist-worker-0",
        "mnist-worker-1",
    ]
    tf_config = json.loads(env_of(pods[2], "tensorflow")["TF_CONFIG"])
    assert tf_config["cluster"] == {
        "ps": [f"mnist-ps-0.{ns}.svc:2222"],
        "worker": [f"mnist-worker-0.{ns}.svc:2222", f"mnist-worker-1.{ns}.svc:2222"],
    }
    assert tf_config["task"] == {"type": "worker", "index": 1}
    assert pods[0]["metadata"]["labels"]["training.kubeflow.org/replica-type"] == "ps"
    services = await env.services(ns)
    assert [s["metadata"]["name"] for s in services] == [p["metadata"]["name"] for p in pods]
    assert all(s["spec"]["clusterIP"] == "None" for s in services)
    assert {s["spec"]["ports"][0]["port"] for s in services} == {2222}
