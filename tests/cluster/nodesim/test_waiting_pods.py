"""The simulated scheduler's waiting pods: a freed place costs a few fits, not one per waiting pod,
and goes to the oldest waiting pod that fits."""

from __future__ import annotations

import asyncio
from typing import Any

from kubetrain.cluster.nodesim.capacity import FitResult, NodeCapacity
from kubetrain.cluster.nodesim.quantity import Resources
from kubetrain.cluster.nodesim.scheduler import Scheduler


class CountingCapacity(NodeCapacity):
    def __init__(self) -> None:
        super().__init__()
        self.fits = 0

    def fit(self, requests: Resources, node_selector: Any = None) -> FitResult:
        self.fits += 1
        return super().fit(requests, node_selector)


class Pods:
    """A lister over a dict: what the scheduler's pod informer would hold."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, Any]] = {}

    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.by_key.get(f"{namespace}/{name}")


class Client:
    """Answers bindings and Unschedulable status writes; records the bindings."""

    def __init__(self) -> None:
        self.bound: list[str] = []

    async def request_json(self, method: str, path: str, body: Any = None) -> Any:
        self.bound.append(body["metadata"]["name"])
        return {}

    async def update_status_with_retry(self, *args: Any, **kwargs: Any) -> Any:
        return None


def pod(name: str, cpu: str = "1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": "uid-" + name},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
        "status": {"phase": "Pending"},
    }


async def settle() -> None:
    """Let the scheduling loop and its write tasks run until nothing is left to do."""
    for _ in range(5000):
        await asyncio.sleep(0)


async def test_a_freed_place_goes_to_the_oldest_waiting_pod_for_a_few_fits() -> None:
    pods, client, capacity = Pods(), Client(), CountingCapacity()
    capacity.add_node("node-0", {"cpu": 10_000, "pods": 1_000_000}, {})
    scheduler = Scheduler(
        client,  # type: ignore[arg-type]
        pods,  # type: ignore[arg-type]
        capacity,
        scheduler_names=frozenset({"default-scheduler"}),
        bind_concurrency=4,
    )
    loop = asyncio.create_task(scheduler.run())
    try:
        for i in range(1000):
            p = pod(f"p{i:04d}")
            pods.by_key[f"ns/p{i:04d}"] = p
            scheduler.observe(p)
        await settle()
        assert len(client.bound) == 10 and scheduler.waiting == 990
        # Another shape that still fits is not held back by the first one's queue.
        small = pod("small", cpu="0")
        pods.by_key["ns/small"] = small
        scheduler.observe(small)
        await settle()
        assert client.bound[-1] == "small"

        for round_ in range(5):
            capacity.fits = 0
            done = pods.by_key[f"ns/{client.bound[round_]}"]
            finished = {
                **done,
                "spec": {**done["spec"], "nodeName": "node-0"},
                "status": {"phase": "Succeeded"},
            }
            pods.by_key[f"ns/{client.bound[round_]}"] = finished
            scheduler.observe(finished)
            await settle()
            # The oldest waiting pod took the place; the next one was tried and waits on.
            assert client.bound[-1] == f"p{10 + round_:04d}"
            assert capacity.fits == 2
            assert scheduler.waiting == 989 - round_
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
