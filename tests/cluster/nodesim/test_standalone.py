"""``python -m kubetrain.cluster.nodesim`` against a server it does not share a process with."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
from nodesim_helpers import Http, finished, pod

from kubetrain.cluster.embedded import EmbeddedCluster


async def test_module_entry_runs_nodes_and_pods_then_stops_on_sigint() -> None:
    async with EmbeddedCluster() as cluster, aiohttp.ClientSession() as session:
        http = Http(cluster.url, session)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kubetrain.cluster.nodesim",
            "--kubeconfig", cluster.kubeconfig_path, "--nodes", "2", "--node-gpus", "1",
            "--pod-run-seconds", "0.1",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"nodesim: 2 nodes" in line, line
            status, nodes = await http.call("GET", "/api/v1/nodes")
            assert [n["status"]["allocatable"]["nvidia.com/gpu"] for n in nodes["items"]] == [
                "1",
                "1",
            ]
            await http.create(pod("remote", annotations={"log-lines": "1"}))
            done = await http.wait_pod("remote", finished)
            assert done["status"]["phase"] == "Succeeded"
            # Logs travelled over HTTP (the simulator's endpoint on the embedded server).
            status, text = await http.call("GET", "/api/v1/namespaces/default/pods/remote/log")
            assert status == 200 and text == "remote main run 1: line 1/1\n"
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, out
