"""New jobs get their pods while the operator's caches still sync (``presync_jobs``), on the
embedded cluster over HTTP: the pods LIST is held back by an injected latency so the sync window
is long and known; a job created meanwhile gets its pods and services inside it (once), while its
status and the jobs that existed before the start wait for the sync; nothing happens early with
leader election or with the option off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from kubetrain.cluster.apiserver.faults import FaultRule
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import EVENTS, NAMESPACES, PODS, SERVICES, ResourceRef, kubeflow
from kubetrain.operator import Operator, OperatorOptions
from kubetrain.reconcilers.api.crds import all_crds
from kubetrain.reconcilers.presync_jobs import is_fresh

CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
PYTORCHJOBS = kubeflow("PyTorchJob")
NS = "presync"
#: How long the operator's first pods LIST is held: the sync window of every test.
SYNC_HOLD_SECONDS = 6.0


def pytorchjob(name: str) -> dict[str, Any]:
    def replica(n: int) -> dict[str, Any]:
        return {
            "replicas": n,
            "template": {"spec": {"containers": [{"name": "pytorch", "image": "busybox:1"}]}},
        }

    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(2)}},
    }


@dataclass
class Env:
    cluster: EmbeddedCluster
    client: ApiClient

    async def children(self, ref: ResourceRef, job: str) -> list[str]:
        page = await self.client.list(
            ref, NS, label_selector=f"training.kubeflow.org/job-name={job}"
        )
        return sorted(o["metadata"]["name"] for o in page["items"])

    async def conditions(self, job: str) -> list[str]:
        obj = await self.client.get(PYTORCHJOBS, NS, job)
        return [c["type"] for c in (obj.get("status") or {}).get("conditions") or []]

    async def create_events(self, job: str) -> int:
        page = await self.client.list(EVENTS, NS, field_selector=f"involvedObject.name={job}")
        return sum(e.get("count", 1) for e in page["items"] if e["reason"] == "SuccessfulCreatePod")


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with EmbeddedCluster(nodes=1) as cluster:
        config = await load_kubeconfig(cluster.kubeconfig_path)
        async with ApiClient(
            config, ClientOptions(qps=0, registry=new_registry(process_metrics=False))
        ) as client:
            for crd in all_crds():
                await client.create(CRDS, crd)
            await client.create(
                NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}
            )
            yield Env(cluster, client)


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def start_operator(env: Env, **options: Any) -> tuple[Operator, asyncio.Task[None]]:
    """The operator with its first pods LIST held ``SYNC_HOLD_SECONDS``; returns once its
    ``/healthz`` answers (from then on, pre-sync work is live by the manager's contract)."""
    env.cluster.api.faults.add(
        FaultRule(
            action="latency",
            verb="list",
            resource="pods",
            latency_seconds=SYNC_HOLD_SECONDS,
            count=1,
        )
    )
    opts = OperatorOptions(
        metrics_bind_address="0",
        health_probe_bind_address="127.0.0.1:0",
        webhook_server_port=0,
        component_host="test",
        graceful_shutdown_timeout=2.0,
        **options,
    )
    operator = Operator(env.client, opts, registry=new_registry(process_metrics=False))
    task = asyncio.create_task(operator.run())

    async def healthy() -> bool:
        try:
            url = f"http://127.0.0.1:{operator.manager.health_port}/healthz"
        except RuntimeError:
            return False
        async with aiohttp.ClientSession() as s, s.get(url) as resp:
            return resp.status == 200

    await until(healthy, "operator /healthz")
    return operator, task


async def stop_operator(operator: Operator, task: asyncio.Task[None]) -> None:
    operator.request_stop()
    await asyncio.wait_for(task, 10)
    await operator.close()


def syncing(operator: Operator) -> bool:
    return bool(operator.manager.informers.unsynced())


async def test_job_created_during_sync_gets_its_children_before_the_sync_ends(env: Env) -> None:
    await env.client.create(PYTORCHJOBS, pytorchjob("before-start"))
    operator, task = await start_operator(env)
    try:
        assert syncing(operator)
        await env.client.create(PYTORCHJOBS, pytorchjob("arrival"))
        pods = ["arrival-master-0", "arrival-worker-0", "arrival-worker-1"]

        async def all_children() -> bool:
            return await env.children(PODS, "arrival") == pods and (
                await env.children(SERVICES, "arrival") == pods
            )

        await until(all_children, "the arrival's pods and services", timeout=SYNC_HOLD_SECONDS)
        assert syncing(operator), "the children came only after the sync: nothing was early"
        # Only creations happen early: no status yet, and the job that existed before the
        # start (in the LIST, not in the pre-sync watch) waits for the sync.
        assert await env.conditions("arrival") == []
        assert await env.children(PODS, "before-start") == []

        await until(lambda: _not(syncing(operator)), "cache sync", timeout=SYNC_HOLD_SECONDS + 10)

        async def created(job: str) -> bool:
            return "Created" in await env.conditions(job)

        await until(lambda: created("arrival"), "arrival Created")
        await until(lambda: created("before-start"), "before-start Created")
        assert len(await env.children(PODS, "before-start")) == 3
        # The full reconcile found the early pods: nothing created twice.
        assert await env.children(PODS, "arrival") == pods
        await until(lambda: _equals(env.create_events("arrival"), 3), "3 SuccessfulCreatePod")
        await asyncio.sleep(0.3)
        assert await env.create_events("arrival") == 3
    finally:
        await stop_operator(operator, task)


@pytest.mark.parametrize(
    "options",
    [{"leader_elect": True, "leader_election_id": "presync-test"}, {"create_before_sync": False}],
    ids=["leader-elect", "option-off"],
)
async def test_nothing_is_created_before_the_sync_when_not_allowed(
    env: Env, options: dict[str, Any]
) -> None:
    operator, task = await start_operator(env, **options)
    try:
        await env.client.create(PYTORCHJOBS, pytorchjob("arrival"))
        await asyncio.sleep(1.0)
        assert syncing(operator)
        assert await env.children(PODS, "arrival") == []
        await until(
            lambda: _equals(env.children(PODS, "arrival"), 3, len),
            "pods after the sync",
            timeout=SYNC_HOLD_SECONDS + 20,
        )
        assert not syncing(operator)
    finally:
        await stop_operator(operator, task)


def test_only_jobs_no_controller_has_seen_are_fresh() -> None:
    job = pytorchjob("j")
    assert is_fresh(job)
    assert is_fresh({**job, "status": {}})
    assert not is_fresh({**job, "status": {"conditions": [{"type": "Created", "status": "True"}]}})
    deleting = {**job, "metadata": {**job["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert not is_fresh(deleting)


async def _not(value: bool) -> bool:
    return not value


async def _equals(
    value: Awaitable[Any], expected: Any, key: Callable[[Any], Any] = lambda v: v
) -> bool:
    return bool(key(await value) == expected)


async def test_a_stop_while_the_caches_sync_ends_the_pre_sync_work(env: Env) -> None:
    operator, task = await start_operator(env)
    assert syncing(operator)
    operator.request_stop()
    await asyncio.wait_for(task, 5)  # before the held LIST returns: the watch must not hang it
    await operator.close()
