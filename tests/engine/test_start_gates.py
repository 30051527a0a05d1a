"""``Manager.add_start_gate`` (e.g. until the CRDs exist) and ``engine/discovery.py``: the
caches start only after every gate, /readyz names the gate meanwhile, a stop while waiting ends
``run`` cleanly; discovery names the resources a server does not serve."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient
from kubetrain.engine.discovery import missing_resources, served_resources
from kubetrain.engine.manager import Manager, ManagerOptions
from kubetrain.informers.resource import CONFIGMAPS, PODS, ResourceRef, kubeflow
from kubetrain.reconcilers.api.crds import crd
from kubetrain.reconcilers.api.kinds import PYTORCHJOB

CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)


async def test_discovery_names_what_is_not_served(api: ApiClient) -> None:
    assert "pods" in await served_resources(api, "", "v1")
    assert await served_resources(api, "kubeflow.org", "v1") == set()
    refs = [PODS, kubeflow("PyTorchJob"), kubeflow("TFJob")]
    assert await missing_resources(api, refs) == refs[1:]
    await api.create(CRDS, crd(PYTORCHJOB))
    for _ in range(50):
        if await missing_resources(api, refs) == [kubeflow("TFJob")]:
            break
        await asyncio.sleep(0.1)
    assert await missing_resources(api, refs) == [kubeflow("TFJob")]


async def test_caches_start_after_the_gates_and_readyz_names_the_gate(api: ApiClient) -> None:
    manager = Manager(
        api,
        ManagerOptions(
            metrics_bind_address="0",
            health_probe_bind_address="127.0.0.1:0",
            registry=CollectorRegistry(),
        ),
    )
    informer = manager.informers.informer_for(CONFIGMAPS, namespace="default")
    opened = asyncio.Event()
    order: list[str] = []

    async def gate() -> None:
        order.append("gate waits")
        await opened.wait()
        order.append("gate open")

    manager.add_start_gate("the widgets", gate)
    run = asyncio.create_task(manager.run())
    try:
        for _ in range(100):
            if order == ["gate waits"]:
                break
            await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{manager.health_port}/readyz?verbose"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                assert resp.status == 500
                assert "waiting for the widgets" in await resp.text()
            await asyncio.sleep(0.05)
            assert not informer.has_synced  # not even listed
            opened.set()
            await asyncio.wait_for(informer.wait_for_sync(), 5)
            async with session.get(url) as resp:
                assert resp.status == 200, await resp.text()
        assert order == ["gate waits", "gate open"]
    finally:
        manager.request_stop()
        await asyncio.wait_for(run, 10)


async def test_a_stop_while_waiting_at_a_gate_ends_run(api: ApiClient) -> None:
    manager = Manager(
        api,
        ManagerOptions(
            metrics_bind_address="0", health_probe_bind_address="0", registry=CollectorRegistry()
        ),
    )
    never = asyncio.Event()

    async def gate() -> None:
        await never.wait()

    manager.add_start_gate("nothing", gate)
    run = asyncio.create_task(manager.run())
    await asyncio.sleep(0.05)
    manager.request_stop()
    await asyncio.wait_for(run, 5)
    with pytest.raises(RuntimeError, match="add gates before run"):
        manager.add_start_gate("late", gate)
