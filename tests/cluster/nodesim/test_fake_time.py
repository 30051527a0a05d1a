"""The simulator on a FakeClock: pods run for fake seconds, and what it writes carries fake time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from nodesim_helpers import finished, phase, pod, simulated
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.cluster.nodesim import NodeSimOptions
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.informers.resource import LEASES, NODES


async def test_a_pod_runs_for_fake_seconds_and_is_stamped_with_fake_wall_time() -> None:
    clock = FakeClock(wall_start=datetime(2030, 1, 1, tzinfo=UTC))
    async with simulated(NodeSimOptions(nodes=1), clock=clock) as (_cluster, sim, http):
        await http.create(
            pod("timed", annotations={"start-delay-seconds": "0", "run-seconds": "30"})
        )
        running = await http.wait_pod("timed", lambda p: phase(p) == "Running")
        assert running["status"]["startTime"] == "2030-01-01T00:00:00Z"
        await asyncio.sleep(0.3)  # real time passes; the fake clock does not
        still = await http.get_pod("timed")
        assert still is not None and phase(still) == "Running"

        clock.advance(30)
        done = await http.wait_pod("timed", finished)
        assert phase(done) == "Succeeded"
        term = done["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (term["startedAt"], term["finishedAt"]) == (
            "2030-01-01T00:00:00Z",
            "2030-01-01T00:00:30Z",
        )
        node = await sim.client.get(NODES, None, "kubetrain-node-0")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["lastTransitionTime"] == "2030-01-01T00:00:00Z"
        lease = await sim.client.get(LEASES, "kube-node-lease", "kubetrain-node-0")
        assert lease["spec"]["renewTime"].startswith("2030-01-01T00:00:")


async def test_an_embedded_cluster_on_a_fake_clock_runs_its_nodes_on_it() -> None:
    clock = FakeClock(wall_start=datetime(2030, 1, 1, tzinfo=UTC))
    async with (
        EmbeddedCluster(nodes=1, options=ApiServerOptions(clock=clock)) as cluster,
        ApiClient(
            await load_kubeconfig(cluster.kubeconfig_path),
            ClientOptions(registry=CollectorRegistry()),
        ) as client,
    ):
        node = await client.get(NODES, None, "kubetrain-node-0")
        assert node["metadata"]["creationTimestamp"] == "2030-01-01T00:00:00Z"
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["lastTransitionTime"] == "2030-01-01T00:00:00Z"
