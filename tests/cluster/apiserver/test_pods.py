"""Pod subresources: log (plain, tail, follow, container choice) and binding."""

from __future__ import annotations

import asyncio

import pytest
from apiserver_helpers import Raw
from kubernetes_asyncio import client

from kubetrain.cluster.embedded import EmbeddedCluster

PODS = "/api/v1/namespaces/default/pods"
SIM_LOG = "/apis/sim.kubetrain.dev/v1/namespaces/default/pods/{pod}/log"


async def _pod(raw: Raw, name: str, *containers: str) -> dict:
    spec = {"containers": [{"name": c, "image": "img"} for c in containers], "nodeName": "n1"}
    status, body, _ = await raw.post(PODS, {"metadata": {"name": name}, "spec": spec})
    assert status == 201
    return body


async def _log(raw: Raw, pod: str, container: str, text: str) -> None:
    status, _, _ = await raw.call(
        "POST",
        SIM_LOG.format(pod=pod),
        raw=text.encode(),
        content_type="text/plain",
        params={"container": container},
    )
    assert status == 201


@pytest.mark.embedded_only(reason="log lines come from the simulator's channel; no kubelet on real")
async def test_log_lines_posted_by_the_simulator_are_served(
    raw: Raw, api_client: client.ApiClient
) -> None:
    await _pod(raw, "one", "main")
    await _log(raw, "one", "main", "line 1\nline 2\n")
    await _log(raw, "one", "main", "line 3")
    core = client.CoreV1Api(api_client)
    assert await core.read_namespaced_pod_log("one", "default") == "line 1\nline 2\nline 3\n"
    text = await core.read_namespaced_pod_log("one", "default", container="main", tail_lines=1)
    assert text == "line 3\n"
    status, body, _ = await raw.get(f"{PODS}/one/log", params={"timestamps": "true"})
    assert status == 200 and body.splitlines()[0].endswith("Z line 1")


@pytest.mark.http_api  # refused by the API server before any kubelet is asked
async def test_log_container_must_be_named_when_several(raw: Raw) -> None:
    await _pod(raw, "two", "a", "b")
    status, body, _ = await raw.get(f"{PODS}/two/log")
    assert status == 400
    assert body["message"] == "a container name must be specified for pod two, choose one of: [a b]"
    status, body, _ = await raw.get(f"{PODS}/two/log", params={"container": "zzz"})
    assert status == 400 and body["message"] == "container zzz is not valid for pod two"
    status, _, _ = await raw.get(f"{PODS}/missing/log")
    assert status == 404


@pytest.mark.embedded_only(reason="log lines come from the simulator's channel; no kubelet on real")
async def test_follow_streams_until_the_pod_finishes(raw: Raw, cluster: EmbeddedCluster) -> None:
    await _pod(raw, "f", "main")
    await _log(raw, "f", "main", "early")

    async def run() -> None:
        await asyncio.sleep(0.1)
        await _log(raw, "f", "main", "late")
        await asyncio.sleep(0.1)
        await raw.patch(f"{PODS}/f/status", {"status": {"phase": "Succeeded"}})

    task = asyncio.create_task(run())
    async with raw.session.get(
        f"{cluster.url}{PODS}/f/log", params={"follow": "True", "container": "main"}
    ) as resp:
        text = await asyncio.wait_for(resp.text(), 5)
    await task
    assert text == "early\nlate\n"


@pytest.mark.http_api
async def test_binding_sets_node_name_once(raw: Raw) -> None:
    status, _, _ = await raw.post(
        PODS, {"metadata": {"name": "b"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    )
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "b"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
    }
    status, body, _ = await raw.post(f"{PODS}/b/binding", binding)
    assert status == 201, body
    _, pod, _ = await raw.get(f"{PODS}/b")
    assert pod["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" for c in pod["status"]["conditions"])
    status, body, _ = await raw.post(f"{PODS}/b/binding", binding)
    assert (status, body["reason"]) == (409, "Conflict")
    assert "is already assigned to node" in body["message"]
