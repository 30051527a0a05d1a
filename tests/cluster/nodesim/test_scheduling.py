"""Nodes and scheduling through the embedded cluster over HTTP."""

from __future__ import annotations

import aiohttp
from nodesim_helpers import Http, pod, simulated

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.cluster.nodesim import NodeSimOptions


async def test_embedded_cluster_registers_ready_nodes_with_leases() -> None:
    async with EmbeddedCluster(nodes=3) as cluster, aiohttp.ClientSession() as session:
        http = Http(cluster.url, session)
        status, nodes = await http.call("GET", "/api/v1/nodes")
        assert status == 200
        names = sorted(n["metadata"]["name"] for n in nodes["items"])
        assert names == ["kubetrain-node-0", "kubetrain-node-1", "kubetrain-node-2"]
        node = nodes["items"][0]
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True"
        status, lease = await http.call(
            "GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/kubetrain-node-1"
        )
        assert status == 200 and lease["spec"]["holderIdentity"] == "kubetrain-node-1"
        # The embedded cluster's simulator runs pods too.
        await http.create(pod("hello", annotations={"run-seconds": "0"}))
        done = await http.wait_pod("hello", lambda p: p["status"]["phase"] == "Succeeded")
        assert done["spec"]["nodeName"] in names


async def test_gpu_capacity_unschedulable_message_and_retry_when_freed() -> None:
    options = NodeSimOptions(nodes=2, gpus=2, default_run_seconds=60)
    async with simulated(options) as (_cluster, _sim, http):
        for name in ("a", "b"):
            await http.create(pod(name, requests={"nvidia.com/gpu": "2"}))
        a = await http.wait_pod("a", lambda p: p["spec"].get("nodeName"))
        b = await http.wait_pod("b", lambda p: p["spec"].get("nodeName"))
        assert a["spec"]["nodeName"] != b["spec"]["nodeName"]  # each fills one node
        await http.create(pod("c", requests={"nvidia.com/gpu": "1"}))

        def unschedulable(p: dict) -> bool:  # type: ignore[type-arg]
            conds = (p.get("status") or {}).get("conditions") or []
            return any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conds)

        c = await http.wait_pod("c", unschedulable)
        cond = next(x for x in c["status"]["conditions"] if x["type"] == "PodScheduled")
        assert cond["reason"] == "Unschedulable"
        assert cond["message"] == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
        assert c["status"]["phase"] == "Pending" and not c["spec"].get("nodeName")
        # Deleting a running pod frees its GPUs: the waiting pod is bound there.
        status, _ = await http.call("DELETE", "/api/v1/namespaces/default/pods/a")
        assert status == 200
        c = await http.wait_pod("c", lambda p: p["spec"].get("nodeName"))
        assert c["spec"]["nodeName"] == a["spec"]["nodeName"]


async def test_cpu_and_pod_count_capacity_and_foreign_scheduler() -> None:
    options = NodeSimOptions(nodes=1, cpu="2", pods=3, default_run_seconds=60)
    async with simulated(options) as (_cluster, _sim, http):
        await http.create(pod("big", requests={"cpu": "3"}))
        await http.create(pod("other", scheduler_name="other-scheduler"))
        for i in range(3):
            await http.create(pod(f"small-{i}", requests={"cpu": "500m"}))
        for i in range(3):
            await http.wait_pod(f"small-{i}", lambda p: p["status"]["phase"] == "Running")
        await http.create(pod("fourth", requests={"cpu": "100m"}))

        def message(p: dict) -> str:  # type: ignore[type-arg]
            for c in (p.get("status") or {}).get("conditions") or []:
                if c["type"] == "PodScheduled" and c["status"] == "False":
                    return str(c["message"])
            return ""

        big = await http.wait_pod("big", message)
        assert message(big) == "0/1 nodes are available: 1 Insufficient cpu."
        fourth = await http.wait_pod("fourth", message)
        assert message(fourth) == "0/1 nodes are available: 1 Too many pods."
        other = await http.get_pod("other")
        assert other is not None and not other["spec"].get("nodeName")
        assert not message(other)  # another scheduler's pod is left alone


async def test_waiting_pods_of_higher_priority_class_go_first() -> None:
    options = NodeSimOptions(nodes=1, gpus=1, default_run_seconds=60)
    async with simulated(options) as (_cluster, _sim, http):
        await http.create_priority_classes({"low": 10, "high": 1000})
        await http.create(pod("blocker", requests={"nvidia.com/gpu": "1"}))
        await http.wait_pod("blocker", lambda p: p["spec"].get("nodeName"))
        for name in ("low", "high"):  # the low one waits longer
            manifest = pod(name, requests={"nvidia.com/gpu": "1"})
            manifest["spec"]["priorityClassName"] = name
            await http.create(manifest)
            await http.wait_pod(name, lambda p: (p.get("status") or {}).get("conditions"))
        status, _ = await http.call("DELETE", "/api/v1/namespaces/default/pods/blocker")
        assert status == 200
        await http.wait_pod("high", lambda p: p["spec"].get("nodeName"))
        low = await http.get_pod("low")
        assert low is not None and not low["spec"].get("nodeName")
