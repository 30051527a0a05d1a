"""``RawWatch``: sees only what changes after its resourceVersion, resumes after a dropped
stream without losing events, and after a 410 resumes from now and counts the gap."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from kubetrain.bench.scenarios.rawwatch import RawWatch, current_resource_version
from kubetrain.cluster.apiserver.faults import FaultRule
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.resource import NAMESPACES, PODS, ResourceRef

pytestmark = pytest.mark.embedded_only(reason="drops watches through cluster.api.faults")


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "w"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


async def wait_for(cond: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_rawwatch_sees_changes_after_its_version_and_resumes(cluster: Any) -> None:
    config = await load_kubeconfig(cluster.kubeconfig_path)
    options = ClientOptions(qps=0, registry=CollectorRegistry())
    async with ApiClient(config, options) as client:
        await client.create(NAMESPACES, {"metadata": {"name": "w"}})
        await client.create(PODS, pod("before"))
        seen: list[tuple[str, str]] = []

        def on_event(ref: ResourceRef, etype: str, obj: dict[str, Any]) -> None:
            seen.append((etype, obj["metadata"]["name"]))

        rv = await current_resource_version(client, PODS, "w")
        watch = RawWatch(client, "w", [PODS], resource_version=rv, on_event=on_event)
        watch.start()
        try:
            await client.create(PODS, pod("a"))
            await wait_for(lambda: ("ADDED", "a") in seen)
            # The stream ends; a pod made meanwhile must still be seen (resume from last RV).
            cluster.api.faults.add(FaultRule(action="drop_watch", resource="pods"))
            await client.create(PODS, pod("b"))
            await wait_for(lambda: ("ADDED", "b") in seen)
            assert watch.gaps == 0
            # The stream ends and its resume gets 410 Expired, counts a gap and
            # goes on from now.
            await client.create(PODS, pod("c"))
            await wait_for(lambda: ("ADDED", "c") in seen)
            cluster.api.faults.add(
                FaultRule(action="force_410", verb="watch", resource="pods", count=1)
            )
            cluster.api.faults.add(FaultRule(action="drop_watch", resource="pods"))
            await wait_for(lambda: watch.gaps == 1)
            await client.create(PODS, pod("d"))
            await wait_for(lambda: ("ADDED", "d") in seen)
        finally:
            await watch.stop()
        assert all(name != "before" for _, name in seen)
        assert [name for etype, name in seen if etype == "ADDED"] == ["a", "b", "c", "d"]
