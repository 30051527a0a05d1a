"""Service-account tokens on the embedded API server (``tokenrequest.py``): TokenRequest with
audiences, and the TokenReview that honours them, as the trainer status server relies on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import pytest

from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.apiserver.tokenrequest import API_AUDIENCE
from kubetrain.cluster.embedded import EmbeddedCluster

pytestmark = pytest.mark.asyncio

ADMIN = {"Authorization": "Bearer admin-token"}
REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
AUDIENCE = "trainer.kubeflow.org/v1alpha1/namespaces/team/trainjobs/tj/status"


@pytest.fixture
async def cluster() -> AsyncIterator[EmbeddedCluster]:
    async with EmbeddedCluster(options=ApiServerOptions(tokens={"admin-token": "admin"})) as c:
        for path, body in (
            ("/api/v1/namespaces", {"metadata": {"name": "team"}}),
            ("/api/v1/namespaces/team/serviceaccounts", {"metadata": {"name": "trainer"}}),
        ):
            status, _ = await call(c.url + path, body={"apiVersion": "v1", **body})
            assert status == 201
        yield c


async def call(url: str, body: Any = None, headers: Mapping[str, str] = ADMIN) -> tuple[int, Any]:
    hdrs = {"Content-Type": "application/json", **headers}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=orjson.dumps(body), headers=hdrs) as resp,
    ):
        return resp.status, orjson.loads(await resp.read())


async def token(cluster: EmbeddedCluster, **spec: Any) -> tuple[int, Any]:
    return await call(
        cluster.url + "/api/v1/namespaces/team/serviceaccounts/trainer/token",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
    )


async def review(cluster: EmbeddedCluster, value: str, audiences: list[str] | None) -> Any:
    spec: dict[str, Any] = {"token": value}
    if audiences is not None:
        spec["audiences"] = audiences
    status, body = await call(
        cluster.url + REVIEWS,
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
    )
    assert status == 201
    return body["status"]


async def test_a_token_for_an_audience_is_valid_for_that_audience_only(
    cluster: EmbeddedCluster,
) -> None:
    status, body = await token(cluster, audiences=[AUDIENCE], expirationSeconds=3600)
    assert status == 201, body
    assert body["kind"] == "TokenRequest" and body["spec"]["audiences"] == [AUDIENCE]
    assert body["status"]["expirationTimestamp"].endswith("Z")
    value = body["status"]["token"]
    assert value.count(".") == 2  # a JWT

    found = await review(cluster, value, [AUDIENCE])
    assert found["authenticated"] is True and found["audiences"] == [AUDIENCE]
    assert found["user"]["username"] == "system:serviceaccount:team:trainer"
    assert "system:serviceaccounts:team" in found["user"]["groups"]
    assert found["user"]["uid"]

    for other in ([AUDIENCE.replace("/tj/", "/other/")], None):
        refused = await review(cluster, value, other)
        assert not refused.get("authenticated") and "audiences" in refused["error"]


async def test_without_audiences_the_token_is_for_the_api_server(cluster: EmbeddedCluster) -> None:
    _, body = await token(cluster)
    assert body["spec"]["audiences"] == [API_AUDIENCE]
    assert (await review(cluster, body["status"]["token"], None))["authenticated"] is True
    assert not (await review(cluster, body["status"]["token"], [AUDIENCE])).get("authenticated")


async def test_a_static_token_is_not_valid_for_a_custom_audience(cluster: EmbeddedCluster) -> None:
    assert not (await review(cluster, "admin-token", [AUDIENCE])).get("authenticated")
    assert (await review(cluster, "admin-token", [API_AUDIENCE]))["authenticated"] is True
    # and no audiences asked: the answer is as it always was
    assert await review(cluster, "admin-token", None) == {
        "authenticated": True,
        "user": {"username": "admin", "groups": ["system:authenticated"]},
    }


async def test_a_forged_or_deleted_accounts_token_is_refused(cluster: EmbeddedCluster) -> None:
    _, body = await token(cluster, audiences=[AUDIENCE])
    value = body["status"]["token"]
    head, claims, signature = value.split(".")
    forged = f"{head}.{claims}.{signature[:-2]}AA"
    assert not (await review(cluster, forged, [AUDIENCE])).get("authenticated")
    async with (
        aiohttp.ClientSession() as session,
        session.delete(
            cluster.url + "/api/v1/namespaces/team/serviceaccounts/trainer", headers=ADMIN
        ) as resp,
    ):
        assert resp.status == 200
    assert not (await review(cluster, value, [AUDIENCE])).get("authenticated")


async def test_requests_kube_refuses(cluster: EmbeddedCluster) -> None:
    status, body = await token(cluster, expirationSeconds=60)
    assert status == 422 and "10 minutes" in body["message"]
    status, body = await call(
        cluster.url + "/api/v1/namespaces/team/serviceaccounts/nobody/token",
        body={"kind": "TokenRequest", "spec": {}},
    )
    assert status == 404 and body["reason"] == "NotFound"


async def test_the_embedded_server_takes_them_as_reviewable_not_as_credentials(
    cluster: EmbeddedCluster,
) -> None:
    _, body = await token(cluster)
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            cluster.url + "/api/v1/namespaces",
            headers={"Authorization": "Bearer " + body["status"]["token"]},
        ) as resp,
    ):
        assert resp.status == 401
