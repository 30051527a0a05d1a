"""Hundreds of pods through their lifecycle: one status write per transition, no polling."""

from __future__ import annotations

import asyncio

from nodesim_helpers import simulated

from kubetrain.cluster.nodesim import NodeSimOptions

N = 200


async def test_200_pods_run_to_completion_with_minimal_writes() -> None:
    options = NodeSimOptions(nodes=4, default_run_seconds=0.3, default_log_lines=0)
    async with simulated(options) as (cluster, sim, http):
        manifests = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"p-{i}"},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "c", "image": "x:1", "resources": {"requests": {"cpu": "100m"}}}
                    ],
                },
            }
            for i in range(N)
        ]
        await asyncio.gather(*(http.create(m) for m in manifests))
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            status, body = await http.call(
                "GET", "/api/v1/namespaces/default/pods", fieldSelector="status.phase=Succeeded"
            )
            assert status == 200
            if len(body["items"]) == N:
                break
            assert asyncio.get_running_loop().time() < deadline, (
                f"{len(body['items'])}/{N} succeeded"
            )
            await asyncio.sleep(0.1)
        nodes = {p["spec"]["nodeName"] for p in body["items"]}
        assert len(nodes) == 4  # spread over every node
        assert sim.scheduler.bound == N
        # Running and Succeeded: exactly two kubelet writes per pod, whatever the timing.
        assert sim.kubelet.status_writes == 2 * N
        assert sim.kubelet.running == 0
        for node in nodes:
            assert sim.capacity.used(node) == {}
        assert cluster.api is not None
