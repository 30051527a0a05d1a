"""TokenReview and SubjectAccessReview on the embedded API server (``reviews.py``): what the
operator's ``--metrics-secure`` delegates its scrapers' authentication and authorization to.

Embedded only (unmarked): the policies under test (the tokens table, ``ApiServerOptions.authorizer``)
are the embedded server's; the conformance tier checks the operator against kube-apiserver's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import pytest

from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.embedded import EmbeddedCluster

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SARS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
ADMIN = {"Authorization": "Bearer admin-token"}


def deny_mallory(spec: Mapping[str, Any]) -> tuple[bool, str]:
    if spec.get("user") == "mallory":
        return False, "mallory may not"
    return True, "anyone else may"


@pytest.fixture
async def secured() -> AsyncIterator[EmbeddedCluster]:
    options = ApiServerOptions(
        tokens={"admin-token": "admin", "scraper-token": "prometheus"}, authorizer=deny_mallory
    )
    async with EmbeddedCluster(options=options) as cluster:
        yield cluster


async def call(
    url: str,
    method: str = "POST",
    body: Any = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    data = orjson.dumps(body) if body is not None else None
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, data=data, headers=hdrs) as resp,
    ):
        raw = await resp.read()
        return resp.status, orjson.loads(raw) if raw.startswith(b"{") else raw


def token_review(token: str) -> dict[str, Any]:
    return {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token},
    }


def metrics_sar(user: str, groups: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "user": user,
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }
    if groups is not None:
        spec["groups"] = groups
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


async def test_a_known_token_is_authenticated_as_its_user(secured: EmbeddedCluster) -> None:
    status, body = await call(
        secured.url + TOKEN_REVIEWS, body=token_review("scraper-token"), headers=ADMIN
    )
    assert status == 201
    assert body["kind"] == "TokenReview" and body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["status"] == {
        "authenticated": True,
        "user": {"username": "prometheus", "groups": ["system:authenticated"]},
    }


async def test_an_unknown_token_is_not_authenticated(secured: EmbeddedCluster) -> None:
    status, body = await call(secured.url + TOKEN_REVIEWS, body=token_review("nope"), headers=ADMIN)
    assert status == 201
    assert "authenticated" not in body["status"]
    assert body["status"]["user"] == {} and body["status"]["error"]


async def test_without_a_tokens_table_no_token_is_authenticated() -> None:
    async with EmbeddedCluster() as cluster:
        status, body = await call(cluster.url + TOKEN_REVIEWS, body=token_review("anything"))
    assert status == 201
    assert not body["status"].get("authenticated")


async def test_an_empty_token_is_400(secured: EmbeddedCluster) -> None:
    status, body = await call(secured.url + TOKEN_REVIEWS, body=token_review(""), headers=ADMIN)
    assert status == 400
    assert body["message"] == "token is required for TokenReview in authentication"


async def test_a_review_needs_an_authenticated_caller(secured: EmbeddedCluster) -> None:
    status, _ = await call(secured.url + TOKEN_REVIEWS, body=token_review("scraper-token"))
    assert status == 401


async def test_the_authorizer_decides_subject_access_reviews(secured: EmbeddedCluster) -> None:
    status, body = await call(secured.url + SARS, body=metrics_sar("prometheus"), headers=ADMIN)
    assert status == 201 and body["kind"] == "SubjectAccessReview"
    assert body["status"] == {"allowed": True, "reason": "anyone else may"}
    status, body = await call(secured.url + SARS, body=metrics_sar("mallory"), headers=ADMIN)
    assert status == 201
    assert body["status"] == {"allowed": False, "reason": "mallory may not"}


async def test_by_default_authenticated_subjects_are_allowed_and_others_not() -> None:
    async with EmbeddedCluster() as cluster:
        url = cluster.url + SARS
        _, body = await call(url, body=metrics_sar("someone", ["system:authenticated"]))
        assert body["status"]["allowed"] is True
        _, body = await call(url, body=metrics_sar("system:anonymous", ["system:unauthenticated"]))
        assert body["status"] == {"allowed": False}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"user": "u"}, "spec.resourceAttributes"),
        (
            {
                "user": "u",
                "resourceAttributes": {"verb": "get", "resource": "pods"},
                "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
            },
            "spec.nonResourceAttributes",
        ),
        ({"nonResourceAttributes": {"path": "/metrics", "verb": "get"}}, "spec.user"),
    ],
)
async def test_an_invalid_subject_access_review_is_422(
    secured: EmbeddedCluster, spec: dict[str, Any], field: str
) -> None:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
    status, answer = await call(secured.url + SARS, body=body, headers=ADMIN)
    assert status == 422 and answer["reason"] == "Invalid"
    assert [c["field"] for c in answer["details"]["causes"]] == [field]


async def test_reviews_are_create_only_and_discovered_so(secured: EmbeddedCluster) -> None:
    status, _ = await call(secured.url + TOKEN_REVIEWS, "GET", headers=ADMIN)
    assert status == 405
    status, _ = await call(secured.url + SARS + "/x", "GET", headers=ADMIN)
    assert status == 404
    status, body = await call(secured.url + "/apis/authorization.k8s.io/v1", "GET", headers=ADMIN)
    assert status == 200
    assert [(r["name"], r["verbs"]) for r in body["resources"]] == [
        ("subjectaccessreviews", ["create"])
    ]


async def test_a_body_of_another_kind_is_400(secured: EmbeddedCluster) -> None:
    body = {**token_review("admin-token"), "kind": "SubjectAccessReview"}
    status, _ = await call(secured.url + TOKEN_REVIEWS, body=body, headers=ADMIN)
    assert status == 400
