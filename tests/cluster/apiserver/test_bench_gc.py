"""Benchmark: garbage collection of 1,000 owners with 8 dependents each (9,000 objects).

Timed: deleting the 1,000 owners (Background) through the write path and waiting until the GC has
deleted all 8,000 dependents. Not timed: building the server and creating the objects.
Run: ``.venv/bin/pytest tests/cluster/apiserver/test_bench_gc.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.apiserver.rest_common import DeleteOptions, WriteOptions
from kubetrain.cluster.apiserver.server import ApiServer

OWNERS = 1000
DEPENDENTS = 8


async def _populate() -> ApiServer:
    server = ApiServer(ApiServerOptions())
    await server.bootstrap()
    server.gc.start()
    cm = server.registry.lookup("", "v1", "configmaps")
    pods = server.registry.lookup("", "v1", "pods")
    assert cm is not None and pods is not None
    for i in range(OWNERS):
        owner = await server.rest.create(
            cm, "default", {"metadata": {"name": f"job-{i}"}}, WriteOptions()
        )
        ref = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        for j in range(DEPENDENTS):
            body: dict[str, Any] = {
                "metadata": {"name": f"job-{i}-{j}", "ownerReferences": [ref]},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }
            await server.rest.create(pods, "default", body, WriteOptions())
    await server.gc.wait_idle()  # the creation-time owner checks are not part of the timing
    return server


async def _collect(server: ApiServer) -> None:
    cm = server.registry.lookup("", "v1", "configmaps")
    assert cm is not None
    for i in range(OWNERS):
        await server.rest.delete(
            cm, "default", f"job-{i}", DeleteOptions(propagation_policy="Background")
        )
    await server.gc.wait_idle()
    assert server.store.count(("", "pods"), "default") == 0
    await server.gc.stop()


def test_gc_1000_owners_8_dependents(benchmark: Any) -> None:
    loop = asyncio.new_event_loop()
    try:
        benchmark.pedantic(
            lambda server: loop.run_until_complete(_collect(server)),
            setup=lambda: ((loop.run_until_complete(_populate()),), {}),
            rounds=3,
            iterations=1,
        )
    finally:
        loop.close()
