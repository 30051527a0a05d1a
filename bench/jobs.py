"""The benchmark's job shape and how the harness submits jobs.

Default shape (BENCHMARKS.md): PyTorchJob, 1 Master + 3 Workers, simulated pods that run a set
time and exit 0. ``create_jobs`` submits them as fast as the API server accepts them, with a
bounded number of requests in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import NAMESPACES, kubeflow

__all__ = ["JobShape", "create_jobs", "create_namespace", "pytorchjob"]

SIM = "sim.kubetrain.dev/"
PYTORCHJOBS = kubeflow("PyTorchJob")


@dataclass(frozen=True, slots=True, kw_only=True)
class JobShape:
    """One benchmark job. Invariant: ``masters`` >= 1, ``workers`` >= 0, ``run_seconds`` >= 0."""

    masters: int = 1
    workers: int = 3
    run_seconds: float = 1.0
    """How long each simulated container runs (``sim.kubetrain.dev/run-seconds``)."""
    ttl_seconds_after_finished: int | None = None

    @property
    def pods(self) -> int:
        return self.masters + self.workers

    @property
    def services(self) -> int:
        """One headless service per pod (the reference operator's rule)."""
        return self.masters + self.workers


def pytorchjob(name: str, namespace: str, shape: JobShape) -> dict[str, Any]:
    """A PyTorchJob manifest of ``shape``."""

    def replica(n: int) -> dict[str, Any]:
        return {
            "replicas": n,
            "restartPolicy": "OnFailure",
            "template": {
                "metadata": {"annotations": {SIM + "run-seconds": str(shape.run_seconds)}},
                "spec": {"containers": [{"name": "pytorch", "image": "busybox:1"}]},
            },
        }

    specs = {"Master": replica(shape.masters)}
    if shape.workers:
        specs["Worker"] = replica(shape.workers)
    spec: dict[str, Any] = {"pytorchReplicaSpecs": specs}
    if shape.ttl_seconds_after_finished is not None:
        spec["runPolicy"] = {"ttlSecondsAfterFinished": shape.ttl_seconds_after_finished}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


async def create_namespace(client: ApiClient, name: str) -> None:
    await client.create(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


async def create_jobs(
    client: ApiClient,
    manifests: list[dict[str, Any]],
    *,
    concurrency: int = 32,
    on_created: Callable[[str, float], None] | None = None,
    before_each: Callable[[int], Awaitable[None]] | None = None,
) -> float:
    """Create every manifest with at most ``concurrency`` requests in flight; returns the seconds
    it took. ``on_created(name, when)`` is called as each create returns; ``before_each(i)``, when
    given, is awaited before the i-th create is sent (arrival schedules)."""
    gate = asyncio.Semaphore(concurrency)
    start = time.monotonic()

    async def one(i: int, manifest: dict[str, Any]) -> None:
        if before_each is not None:
            await before_each(i)
        async with gate:
            await client.create(PYTORCHJOBS, manifest)
        if on_created is not None:
            on_created(manifest["metadata"]["name"], time.time())

    await asyncio.gather(*(one(i, m) for i, m in enumerate(manifests)))
    return time.monotonic() - start
