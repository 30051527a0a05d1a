"""Optional bearer-token authentication of the embedded API server, through real HTTP: raw
requests, kubernetes-asyncio with the kubeconfig the cluster writes, and the node simulator, which
must authenticate like any client. (kubectl is not among them: client-go sends no bearer token
over plain http, which is all the embedded server serves.)

Embedded only (unmarked, so skipped under --apiserver=real): it starts its own servers with
``ApiServerOptions(tokens=...)``. The 401 body asserted below is byte for byte what kube-apiserver
v1.36 answers a refused token (checked against the conformance tier's control plane).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.rest import ApiException

from kubetrain.cluster.apiserver.authn import PUBLIC_PATHS
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
UNAUTHORIZED = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "Unauthorized",
    "reason": "Unauthorized",
    "code": 401,
}


@pytest.fixture
async def tokens() -> dict[str, str]:
    return {"admin-token": "admin", "ci-token": "ci"}


@pytest.fixture
async def secured(tokens: dict[str, str]) -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(options=ApiServerOptions(tokens=tokens)) as cluster:
        yield cluster


async def get(url: str, authorization: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        body = await resp.json(content_type=None) if resp.status != 200 else await resp.read()
        return resp.status, body


async def test_off_by_default_every_request_is_served() -> None:
    async with EmbeddedCluster() as cluster:
        assert cluster.api.authn is None
        status, _ = await get(cluster.url + CONFIGMAPS)
        assert status == 200
        status, _ = await get(cluster.url + CONFIGMAPS, "Bearer anything")
        assert status == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", "Basic YWRtaW46cHc=", "admin-token", "Token admin-token"],
)
async def test_a_request_without_a_valid_bearer_token_is_401_unauthorized(
    secured: EmbeddedCluster, authorization: str | None
) -> None:
    status, body = await get(secured.url + CONFIGMAPS, authorization)
    assert (status, body) == (401, UNAUTHORIZED)
    assert secured.api.authn is not None and secured.api.authn.authenticated == {}


async def test_a_valid_token_is_served_and_counted_per_user(secured: EmbeddedCluster) -> None:
    assert (await get(secured.url + CONFIGMAPS, "Bearer admin-token"))[0] == 200
    assert (await get(secured.url + CONFIGMAPS, "bearer ci-token"))[0] == 200  # scheme: any case
    assert (await get(secured.url + CONFIGMAPS, "Bearer ci-token"))[0] == 200
    assert secured.api.authn is not None
    assert secured.api.authn.authenticated == {"admin": 1, "ci": 2}


async def test_health_and_version_are_public_but_a_refused_token_is_not(
    secured: EmbeddedCluster,
) -> None:
    for path in sorted(PUBLIC_PATHS - {"/version/"}):
        assert (await get(secured.url + path))[0] == 200, path
        # kube-apiserver fails a presented, unknown credential before the anonymous user applies
        assert await get(secured.url + path, "Bearer wrong") == (401, UNAUTHORIZED), path
    for path in ("/api", "/apis", "/openapi/v3", "/metrics", "/healthz/ping"):
        assert (await get(secured.url + path))[0] == 401, path


async def test_a_removed_token_is_revoked_at_once(
    secured: EmbeddedCluster, tokens: dict[str, str]
) -> None:
    assert (await get(secured.url + CONFIGMAPS, "Bearer ci-token"))[0] == 200
    del tokens["ci-token"]
    assert await get(secured.url + CONFIGMAPS, "Bearer ci-token") == (401, UNAUTHORIZED)
    tokens["rotated"] = "ci"
    assert (await get(secured.url + CONFIGMAPS, "Bearer rotated"))[0] == 200


async def test_kubernetes_asyncio_with_the_written_kubeconfig(secured: EmbeddedCluster) -> None:
    # The kubeconfig EmbeddedCluster writes carries the first token of the table.
    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=secured.kubeconfig_path, client_configuration=configuration
    )
    async with client.ApiClient(configuration) as api:
        namespaces = await client.CoreV1Api(api).list_namespace()
    assert "default" in {ns.metadata.name for ns in namespaces.items}
    assert secured.api.authn is not None and secured.api.authn.authenticated["admin"] >= 1

    configuration.api_key["BearerToken"] = "Bearer wrong"
    async with client.ApiClient(configuration) as api:
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).list_namespace()
    assert err.value.status == 401 and '"reason":"Unauthorized"' in err.value.body


async def test_the_node_simulator_authenticates_with_the_kubeconfig_token() -> None:
    options = ApiServerOptions(tokens={"sim-token": "kubelet"})
    async with EmbeddedCluster(nodes=2, options=options) as cluster:
        status, body = await get(cluster.url + "/api/v1/nodes", "Bearer sim-token")
    assert status == 200
    assert len(orjson.loads(body)["items"]) == 2
    assert cluster.api.authn is not None and cluster.api.authn.authenticated["kubelet"] > 1
