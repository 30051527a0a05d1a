"""Elastic PyTorchJob end to end (embedded or real API server; operator in-process, simulated
nodes): the autoscaling/v2 HPA that ``elasticPolicy.metrics`` asks for (named after the job,
targeting it, min/max from the policy, controller owner reference), kept in step with
``maxReplicas`` and deleted on suspend; the ``PET_*`` rendezvous env of the workers; and the job's
scale subresource (GET/PUT ``.../pytorchjobs/<name>/scale``) reading and writing Worker replicas,
after which the operator creates the new worker pod."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, env_of, job_manifest, open_env, poll

from kubetrain.informers.resource import kubeflow
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.jobcontroller import HORIZONTAL_POD_AUTOSCALERS

# http_api: also runs under --apiserver=real (a real control plane + simulated nodes).
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

KIND = "PyTorchJob"
JOBS = kubeflow(KIND)
METRICS = [
    {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
    }
]


def elastic_job(name: str, ns: str, *, workers: int = 2, **policy: Any) -> dict[str, Any]:
    """Workers only, long-running (the job stays Running while the test scales it)."""
    return job_manifest(
        KIND,
        "pytorchReplicaSpecs",
        "pytorch",
        {"Worker": workers},
        name=name,
        namespace=ns,
        run_seconds=120,
        ports=[{"name": "pytorchjob-port", "containerPort": 23456}],
        elasticPolicy={
            "minReplicas": 1,
            "maxReplicas": 4,
            "rdzvBackend": "c10d",
            "maxRestarts": 3,
            "metrics": METRICS,
            **policy,
        },
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    async for e in open_env(apiserver=selected_apiserver(request.config)):
        await e.start_operator(enable_schemes=("pytorchjob",))
        yield e


async def _hpa(env: Env, ns: str, name: str) -> dict[str, Any] | None:
    try:
        return await env.client.get(HORIZONTAL_POD_AUTOSCALERS, ns, name)
    except ApiStatusError as e:
        if e.is_not_found:
            return None
        raise


async def _worker_pods(env: Env, ns: str) -> list[dict[str, Any]]:
    return [
        p
        for p in await env.pods(ns)
        if p["metadata"]["labels"].get("training.kubeflow.org/replica-type") == "worker"
        and not p["metadata"].get("deletionTimestamp")
    ]


async def test_hpa_created_updated_and_deleted_on_suspend(env: Env) -> None:
    ns = await env.namespace("elastic-hpa")
    created = await env.create_job(elastic_job("ej", ns))

    hpa = await poll(lambda: _hpa(env, ns, "ej"), what="HPA ej")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "kubeflow.org/v1",
        "kind": KIND,
        "name": "ej",
    }
    assert hpa["spec"]["minReplicas"] == 1
    assert hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["metrics"] == METRICS
    (owner,) = hpa["metadata"]["ownerReferences"]
    assert owner["kind"] == KIND
    assert owner["name"] == "ej"
    assert owner["uid"] == created["metadata"]["uid"]
    assert owner["controller"] is True

    job = await env.wait_condition(KIND, ns, "ej", "Running")
    job["spec"]["elasticPolicy"]["maxReplicas"] = 6
    await env.client.update(JOBS, job)

    async def max_six() -> dict[str, Any] | None:
        current = await _hpa(env, ns, "ej")
        return current if current and current["spec"]["maxReplicas"] == 6 else None

    updated = await poll(max_six, what="HPA ej maxReplicas 6")
    assert updated["metadata"]["uid"] == hpa["metadata"]["uid"]  # updated, not re-created
    assert updated["spec"]["minReplicas"] == 1

    job = await env.get_job(KIND, ns, "ej")
    assert job is not None
    job["spec"].setdefault("runPolicy", {})["suspend"] = True
    await env.client.update(JOBS, job)
    await env.wait_condition(KIND, ns, "ej", "Suspended")

    async def hpa_gone() -> bool:
        return await _hpa(env, ns, "ej") is None

    await poll(hpa_gone, what="HPA ej deleted on suspend")


async def test_workers_get_elastic_env(env: Env) -> None:
    ns = await env.namespace("elastic-env")
    await env.create_job(elastic_job("ee", ns, workers=2, rdzvId="run-7"))

    async def two_workers() -> list[dict[str, Any]] | None:
        pods = await _worker_pods(env, ns)
        return pods if len(pods) == 2 else None

    pods = await poll(two_workers, what="2 worker pods")
    for pod in pods:
        env_vars = env_of(pod, "pytorch")
        assert env_vars["PET_RDZV_ENDPOINT"] == "ee-worker-0:23456"
        assert env_vars["PET_RDZV_BACKEND"] == "c10d"
        assert env_vars["PET_NNODES"] == "1:4"
        assert env_vars["PET_MAX_RESTARTS"] == "3"
        assert env_vars["PET_RDZV_ID"] == "run-7"


async def test_scale_subresource_reads_and_writes_worker_replicas(env: Env) -> None:
    ns = await env.namespace("elastic-scale")
    await env.create_job(elastic_job("es", ns, workers=2))
    scale_path = JOBS.item_path(ns, "es") + "/scale"

    async def two_active() -> dict[str, Any] | None:
        scale = await env.client.request_json("GET", scale_path)
        return scale if scale["status"]["replicas"] == 2 else None

    scale = await poll(two_active, what="scale status.replicas 2")
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 2

    scale["spec"]["replicas"] = 3
    written = await env.client.request_json("PUT", scale_path, body=scale)
    assert written["spec"]["replicas"] == 3
    job = await env.get_job(KIND, ns, "es")
    assert job is not None
    assert job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] == 3

    async def three_workers() -> list[str] | None:
        names = sorted(p["metadata"]["name"] for p in await _worker_pods(env, ns))
        return names if len(names) == 3 else None

    names = await poll(three_workers, what="the operator creates es-worker-2")
    assert names == ["es-worker-0", "es-worker-1", "es-worker-2"]

    async def three_active() -> dict[str, Any] | None:
        current = await env.client.request_json("GET", scale_path)
        return current if current["status"]["replicas"] == 3 else None

    await poll(three_active, what="scale status.replicas 3")
