"""The real control plane itself (runs only under --apiserver=real, i.e. `make conformance`):
it serves with the kubeconfig it wrote, collects garbage, deletes namespaces, and the test
cleanup leaves nothing behind."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client

pytestmark = pytest.mark.conformance

CM = "/api/v1/namespaces/default/configmaps"


async def _call(cluster: Any, method: str, path: str, body: Any = None, **params: str) -> Any:
    connector = aiohttp.TCPConnector(ssl=cluster.ssl_context)
    headers = {"Authorization": f"Bearer {cluster.token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession(connector=connector, headers=headers) as session,
        session.request(
            method,
            cluster.url + path,
            data=orjson.dumps(body) if body is not None else None,
            params=params or None,
        ) as resp,
    ):
        return resp.status, orjson.loads(await resp.read())


async def _eventually_gone(cluster: Any, path: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if (await _call(cluster, "GET", path))[0] == 404:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{path} still present after {timeout} s")


async def test_kubeconfig_reaches_a_real_kube_apiserver(api_client: client.ApiClient) -> None:
    version = await client.VersionApi(api_client).get_code()
    assert version.git_version.startswith("v1.")
    names = {ns.metadata.name for ns in (await client.CoreV1Api(api_client).list_namespace()).items}
    assert {"default", "kube-system"} <= names


async def test_garbage_collector_removes_dependents(cluster: Any) -> None:
    status, owner = await _call(cluster, "POST", CM, {"metadata": {"name": "owner"}})
    assert status == 201
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    status, _ = await _call(
        cluster, "POST", CM, {"metadata": {"name": "dep", "ownerReferences": [ref]}}
    )
    assert status == 201
    assert (await _call(cluster, "DELETE", f"{CM}/owner", propagationPolicy="Background"))[0] == 200
    await cluster.api.gc.wait_idle()
    await _eventually_gone(cluster, f"{CM}/dep")


async def test_namespace_deletion_removes_content_then_namespace(cluster: Any) -> None:
    assert (await _call(cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": "gone"}}))[
        0
    ] == 201
    path = "/api/v1/namespaces/gone/configmaps"
    assert (await _call(cluster, "POST", path, {"metadata": {"name": "c"}}))[0] == 201
    assert (await _call(cluster, "DELETE", "/api/v1/namespaces/gone"))[0] == 200
    await _eventually_gone(cluster, "/api/v1/namespaces/gone", timeout=60)


@pytest.mark.parametrize("round_", [1, 2])
async def test_each_test_starts_without_the_previous_tests_objects(
    cluster: Any, round_: int
) -> None:
    # Runs twice with the same names: the second run fails with 409 unless cleanup worked.
    assert (
        await _call(cluster, "POST", CM, {"metadata": {"name": "same", "finalizers": ["x/y"]}})
    )[0] == 201
    assert (await _call(cluster, "POST", "/api/v1/namespaces", {"metadata": {"name": "same"}}))[
        0
    ] == 201
