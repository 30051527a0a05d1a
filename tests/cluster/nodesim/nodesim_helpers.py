"""Helpers of the node simulator suites: pods to submit and raw HTTP to watch what happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.cluster.nodesim import DirectLogSink, NodeSimOptions, NodeSimulator
from kubetrain.engine.config import load_kubeconfig

SIM = "sim.kubetrain.dev/"
PODS_PATH = "/api/v1/namespaces/default/pods"


def pod(
    name: str,
    *,
    annotations: dict[str, str] | None = None,
    restart_policy: str = "Never",
    containers: list[dict[str, Any]] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    requests: dict[str, str] | None = None,
    scheduler_name: str | None = None,
) -> dict[str, Any]:
    """A pod manifest; ``requests`` go on its single default container."""
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": containers
        or [{"name": "main", "image": "busybox:1.36", "resources": {"requests": requests or {}}}],
    }
    if init_containers:
        spec["initContainers"] = init_containers
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "annotations": {SIM + k: v for k, v in (annotations or {}).items()},
        },
        "spec": spec,
    }


class Http:
    """Raw JSON over aiohttp against the cluster."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base = base
        self.session = session

    async def call(self, method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        async with self.session.request(
            method, self.base + path, data=data, params=query, headers=headers
        ) as resp:
            raw = await resp.read()
            try:
                return resp.status, orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                return resp.status, raw.decode()

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        status, body = await self.call("POST", PODS_PATH, manifest)
        assert status == 201, body
        return dict(body)

    async def create_priority_classes(self, values: dict[str, int]) -> None:
        """PriorityClasses ``name -> value``."""
        for name, value in values.items():
            status, body = await self.call(
                "POST",
                "/apis/scheduling.k8s.io/v1/priorityclasses",
                {
                    "apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass",
                    "metadata": {"name": name},
                    "value": value,
                },
            )
            assert status == 201, body

    async def get_pod(self, name: str) -> dict[str, Any] | None:
        status, body = await self.call("GET", f"{PODS_PATH}/{name}")
        return dict(body) if status == 200 else None

    async def wait_pod(self, name: str, predicate: Any, timeout: float = 20.0) -> dict[str, Any]:
        """The pod once ``predicate(pod)`` holds (short polls: the test's own waiting)."""
        deadline = asyncio.get_running_loop().time() + timeout
        last = None
        while asyncio.get_running_loop().time() < deadline:
            last = await self.get_pod(name)
            if last is not None and predicate(last):
                return last
            await asyncio.sleep(0.02)
        raise AssertionError(f"pod {name} never matched; last seen: {last}")

    async def wait_gone(self, name: str, timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            if await self.get_pod(name) is None:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"pod {name} was never deleted")

    async def watch_pod(
        self, name: str, until: Any, timeout: float = 20.0
    ) -> list[tuple[str, dict[str, Any]]]:
        """Every watch event of pod ``name`` (type, object) until ``until(type, obj)`` holds."""
        events: list[tuple[str, dict[str, Any]]] = []
        query = {
            "watch": "true",
            "fieldSelector": f"metadata.name={name}",
            "timeoutSeconds": str(int(timeout)),
        }
        async with asyncio.timeout(timeout):
            async with self.session.get(self.base + PODS_PATH, params=query) as resp:
                async for line in resp.content:
                    if not line.strip():
                        continue
                    event = orjson.loads(line)
                    events.append((event["type"], event["object"]))
                    if until(event["type"], event["object"]):
                        return events
        raise AssertionError(f"watch of {name} ended early: {[e[0] for e in events]}")


def phase(p: dict[str, Any]) -> str:
    return str((p.get("status") or {}).get("phase", ""))


def finished(p: dict[str, Any]) -> bool:
    return phase(p) in ("Succeeded", "Failed")


@asynccontextmanager
async def simulated(
    options: NodeSimOptions, *, direct_logs: bool = True, clock: Clock = REAL_CLOCK
) -> AsyncIterator[tuple[EmbeddedCluster, NodeSimulator, Http]]:
    """An embedded cluster without built-in nodes plus a simulator with ``options`` on it, on
    ``clock``."""
    async with EmbeddedCluster() as cluster:
        sink = DirectLogSink(cluster.api.pod_logs.append) if direct_logs else None
        sim = NodeSimulator.for_config(
            await load_kubeconfig(cluster.kubeconfig_path), options, log_sink=sink, clock=clock
        )
        await sim.start()
        try:
            async with aiohttp.ClientSession() as session:
                yield cluster, sim, Http(cluster.url, session)
        finally:
            await sim.stop()
