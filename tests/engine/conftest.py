"""Fixtures of the engine's tests: ``api``, kubetrain's own API client to the ``cluster``
fixture's server (embedded, or real under --apiserver=real), metrics in a private registry;
``fake_server``, an aiohttp app answering every path with a handler the test gives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig


@pytest.fixture
async def api(cluster: EmbeddedCluster) -> AsyncIterator[ApiClient]:
    async with ApiClient(
        await load_kubeconfig(cluster.kubeconfig_path), ClientOptions(registry=CollectorRegistry())
    ) as client:
        yield client


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start an aiohttp app answering every path with the handler given; yields its URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()
