"""ApiClient throughput: client overhead against a trivial server, and creates against the
embedded API server. Run with ``pytest tests/engine/test_bench_client.py --benchmark-only``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig, load_kubeconfig
from kubetrain.informers.resource import CONFIGMAPS

BATCH = 500
BODY = b'{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x","namespace":"d"},"data":{}}'


def run_batches(benchmark: Any, setup: Any, batch: Any) -> None:
    loop = asyncio.new_event_loop()
    try:
        state = loop.run_until_complete(setup())
        benchmark.pedantic(lambda: loop.run_until_complete(batch(state)), rounds=5, warmup_rounds=1)
        loop.run_until_complete(state["close"]())
    finally:
        loop.close()


@pytest.mark.parametrize("transport", ["http1", "aiohttp"])
@pytest.mark.parametrize("adaptive", [False, True], ids=["no-limit", "adaptive"])
def test_bench_sequential_get_trivial_server(
    benchmark: Any, transport: str, adaptive: bool
) -> None:
    """BATCH sequential GETs through the full client path (metrics on), per transport, with and
    without the adaptive in-flight limit: the client's own cost per request."""

    async def setup() -> dict[str, Any]:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=BODY, content_type="application/json")

        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        limit = {} if adaptive else {"adaptive": None}
        client = ApiClient(
            ClientConfig(server=url),
            ClientOptions(registry=CollectorRegistry(), transport=transport, **limit),  # type: ignore[arg-type]
        )

        async def close() -> None:
            await client.close()
            await runner.cleanup()

        return {"client": client, "close": close}

    async def batch(state: dict[str, Any]) -> None:
        client: ApiClient = state["client"]
        for _ in range(BATCH):
            await client.request_json("GET", "/api/v1/namespaces/d/configmaps/x")

    run_batches(benchmark, setup, batch)


def test_bench_sequential_create_embedded(benchmark: Any) -> None:
    """BATCH sequential ConfigMap creates against the embedded API server (one process)."""

    async def setup() -> dict[str, Any]:
        cluster = EmbeddedCluster()
        await cluster.start()
        client = ApiClient(
            await load_kubeconfig(cluster.kubeconfig_path),
            ClientOptions(qps=0, registry=CollectorRegistry()),
        )

        async def close() -> None:
            await client.close()
            await cluster.stop()

        return {"client": client, "close": close, "n": 0}

    async def batch(state: dict[str, Any]) -> None:
        client: ApiClient = state["client"]
        for _ in range(BATCH):
            state["n"] += 1
            await client.create(
                CONFIGMAPS,
                {"metadata": {"name": f"cm-{state['n']}", "namespace": "default"}, "data": {}},
            )

    run_batches(benchmark, setup, batch)
