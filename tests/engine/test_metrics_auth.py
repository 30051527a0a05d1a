"""``--metrics-secure``'s filter (``engine/metrics_auth.py``) against a fake API server's review
answers: 401 without or with a refused token, 403 when the SubjectAccessReview says no, 200 when
it says yes, 500 (uncached) when a review fails, and controller-runtime's cache lifetimes. Then the
manager serving it over HTTPS (TLS 1.2+ only) with the probes still on plain HTTP."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from fakes import eventually
from prometheus_client import CollectorRegistry
from tlsprobe import negotiated_version, old_tls_client

from kubetrain.base.clock import FakeClock
from kubetrain.engine.client import ApiClient, ApiConnectionError
from kubetrain.engine.manager import Manager, ManagerOptions
from kubetrain.engine.metrics_auth import (
    SUBJECT_ACCESS_REVIEWS_PATH,
    TOKEN_REVIEWS_PATH,
    MetricsAuthorizer,
    bearer_token,
)
from kubetrain.engine.webhook.certs import make_ca, server_ssl_context

GOOD, DENIED = "good-token", "denied-token"


class FakeReviews:
    """Answers TokenReviews from ``users`` and SubjectAccessReviews from ``allowed``."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {
            GOOD: {
                "username": "system:serviceaccount:monitoring:prometheus",
                "uid": "u-1",
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]},
            },
            DENIED: {"username": "mallory", "groups": ["system:authenticated"]},
        }
        self.allowed = {"system:serviceaccount:monitoring:prometheus"}
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail = False

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        assert method == "POST"
        self.sent.append((path, body))
        if self.fail:
            raise ApiConnectionError("connection refused")
        if path == TOKEN_REVIEWS_PATH:
            user = self.users.get(body["spec"]["token"])
            status: dict[str, Any] = (
                {"authenticated": True, "user": user} if user else {"user": {}, "error": "no"}
            )
        else:
            assert path == SUBJECT_ACCESS_REVIEWS_PATH
            allowed = body["spec"].get("user") in self.allowed
            status = {"allowed": allowed, "reason": "rbac" if allowed else ""}
        return {**body, "status": status}


async def ok(request: web.Request) -> web.StreamResponse:
    return web.Response(text="metrics")


async def scrape(
    authz: MetricsAuthorizer, token: str | None = None, header: str | None = None
) -> tuple[int, str]:
    headers = {}
    if header is not None:
        headers["Authorization"] = header
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = make_mocked_request("GET", "/metrics", headers=headers)
    response = await authz.wrap(ok)(request)
    assert isinstance(response, web.Response)
    return response.status, response.text or ""


@pytest.fixture
def reviews() -> FakeReviews:
    return FakeReviews()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def authz(reviews: FakeReviews, clock: FakeClock) -> MetricsAuthorizer:
    return MetricsAuthorizer(reviews, clock=clock)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Basic Zm9vOmJhcg==", None),
        ("Token good-token", None),
        ("Bearer good-token", "good-token"),
        ("bearer good-token", "good-token"),
    ],
)
def test_bearer_token(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


async def test_no_token_is_401_without_asking_the_api_server(
    authz: MetricsAuthorizer, reviews: FakeReviews
) -> None:
    assert await scrape(authz) == (401, "Unauthorized\n")
    assert await scrape(authz, header="Basic Zm9vOmJhcg==") == (401, "Unauthorized\n")
    assert reviews.sent == []


async def test_a_token_the_api_server_refuses_is_401(
    authz: MetricsAuthorizer, reviews: FakeReviews
) -> None:
    assert await scrape(authz, "stolen") == (401, "Unauthorized\n")
    assert [path for path, _ in reviews.sent] == [TOKEN_REVIEWS_PATH]
    assert reviews.sent[0][1] == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": "stolen"},
    }


async def test_a_user_the_review_does_not_allow_is_403(authz: MetricsAuthorizer) -> None:
    assert await scrape(authz, DENIED) == (403, "Authorization denied for user mallory\n")


async def test_an_allowed_user_is_served_and_reviewed_with_its_whole_identity(
    authz: MetricsAuthorizer, reviews: FakeReviews
) -> None:
    assert await scrape(authz, GOOD) == (200, "metrics")
    path, sar = reviews.sent[1]
    assert path == SUBJECT_ACCESS_REVIEWS_PATH
    assert sar == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
            "user": "system:serviceaccount:monitoring:prometheus",
            "uid": "u-1",
            "groups": ["system:serviceaccounts", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]},
        },
    }


async def test_decisions_are_cached_for_controller_runtimes_lifetimes(
    authz: MetricsAuthorizer, reviews: FakeReviews, clock: FakeClock
) -> None:
    for _ in range(3):
        assert (await scrape(authz, GOOD))[0] == 200
        assert (await scrape(authz, DENIED))[0] == 403
        assert (await scrape(authz, "stolen"))[0] == 401
    assert authz.reviews == {"tokenreviews": 3, "subjectaccessreviews": 2}

    # a revoked permission: still allowed from the cache, for at most 5 minutes
    reviews.allowed.clear()
    clock.advance(59)
    assert (await scrape(authz, GOOD))[0] == 200
    assert authz.reviews == {"tokenreviews": 3, "subjectaccessreviews": 2}
    clock.advance(2)  # 61 s: tokens reviewed again (1 minute); decisions: denied ones (30 s)
    assert (await scrape(authz, GOOD))[0] == 200
    assert (await scrape(authz, DENIED))[0] == 403
    assert authz.reviews == {"tokenreviews": 5, "subjectaccessreviews": 3}
    clock.advance(240)  # 301 s: the allowed decision expired too
    assert (await scrape(authz, GOOD))[0] == 403


async def test_tokens_are_cached_by_hash_only(authz: MetricsAuthorizer) -> None:
    await scrape(authz, GOOD)
    assert GOOD not in repr(authz._users._entries)


async def test_a_failed_review_is_500_and_not_cached(
    authz: MetricsAuthorizer, reviews: FakeReviews
) -> None:
    reviews.fail = True
    status, text = await scrape(authz, GOOD)
    assert status == 500 and "failed" in text
    reviews.fail = False
    assert (await scrape(authz, GOOD))[0] == 200


# -- served by the manager --------------------------------------------------------------------


async def test_the_manager_serves_secure_metrics_over_tls12_and_plain_probes(
    api: ApiClient, reviews: FakeReviews
) -> None:
    ca = make_ca()
    cert = ca.issue_server_cert()
    server_ctx = server_ssl_context()
    cert.load_into(server_ctx)
    manager = Manager(
        api,
        ManagerOptions(
            metrics_bind_address="127.0.0.1:0",
            health_probe_bind_address="127.0.0.1:0",
            metrics_ssl_context=server_ctx,
            metrics_filter=MetricsAuthorizer(reviews).wrap,
            registry=CollectorRegistry(),
        ),
    )
    run = asyncio.create_task(manager.run())
    try:

        def started() -> bool:
            try:
                return manager.metrics_port > 0 and manager.health_port > 0
            except RuntimeError:
                return False

        await eventually(started)
        url = f"https://127.0.0.1:{manager.metrics_port}/metrics"
        client_ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx)) as s:
            async with s.get(url, headers={"Authorization": f"Bearer {GOOD}"}) as resp:
                assert resp.status == 200
                assert "kubetrain_health_check" in await resp.text()
            async with s.get(url) as resp:
                assert resp.status == 401
            async with s.get(url, headers={"Authorization": f"Bearer {DENIED}"}) as resp:
                assert resp.status == 403
            async with s.get(f"http://127.0.0.1:{manager.health_port}/healthz") as resp:
                assert resp.status == 200  # probes: plain HTTP, no token
        version = await negotiated_version(manager.metrics_port, client_ctx)
        assert version in ("TLSv1.2", "TLSv1.3")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await negotiated_version(manager.metrics_port, old_tls_client())
    finally:
        manager.request_stop()
        await asyncio.wait_for(run, 10)


def test_secure_metrics_cannot_share_the_plain_probe_address() -> None:
    with pytest.raises(ValueError, match="must differ"):
        ManagerOptions(
            metrics_bind_address=":8080",
            health_probe_bind_address=":8080",
            metrics_ssl_context=server_ssl_context(),
        )
