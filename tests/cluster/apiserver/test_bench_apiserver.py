"""Throughput of the embedded API server over real HTTP (run with ``--benchmark-only``).

The server runs in its own process (as ``kubetrain cluster`` would, with uvloop when installed);
the client is aiohttp in this process. Each round reports operations per second in
``extra_info``: sequential creates, concurrent creates, status updates (merge patch on
``/status``), and watch fan-out (events delivered per second to 1, 10 and 50 watchers).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

SERVER = """
import asyncio, sys
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
from kubetrain.cluster.apiserver.server import ApiServer, ApiServerOptions

async def main():
    server = ApiServer(ApiServerOptions(watch_history_size=100_000, watch_buffer_size=100_000))
    print(await server.start("127.0.0.1", 0), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
_counter = iter(range(10**9))


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _name(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}"


async def _creates(url: str, count: int, concurrency: int) -> float:
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            body = orjson.dumps({"metadata": {"name": _name("cm")}, "data": {"k": "v"}})
            async with (
                sem,
                session.post(
                    url + CM, data=body, headers={"Content-Type": "application/json"}
                ) as resp,
            ):
                assert resp.status == 201
                await resp.read()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - start)


def test_bench_sequential_creates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(lambda: rates.append(asyncio.run(_creates(server_url, 500, 1))), rounds=3)
    benchmark.extra_info["creates_per_s"] = round(max(rates))


def test_bench_concurrent_creates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(lambda: rates.append(asyncio.run(_creates(server_url, 1000, 20))), rounds=3)
    benchmark.extra_info["creates_per_s_20_concurrent"] = round(max(rates))


async def _status_updates(url: str, count: int) -> float:
    async with aiohttp.ClientSession() as session:
        name = _name("pod")
        pod = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
        async with session.post(url + PODS, json=pod) as resp:
            assert resp.status == 201
        headers = {"Content-Type": "application/merge-patch+json"}
        start = time.perf_counter()
        for i in range(count):
            body = orjson.dumps({"status": {"phase": "Running", "message": str(i)}})
            async with session.patch(
                f"{url}{PODS}/{name}/status", data=body, headers=headers
            ) as resp:
                assert resp.status == 200
                await resp.read()
        return count / (time.perf_counter() - start)


def test_bench_status_updates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(
        lambda: rates.append(asyncio.run(_status_updates(server_url, 500))), rounds=3
    )
    benchmark.extra_info["status_updates_per_s"] = round(max(rates))


async def _fanout(url: str, watchers: int, events: int) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async with session.get(url + CM, params={"limit": "1"}) as resp:
            rv = (await resp.json())["metadata"]["resourceVersion"]
        ready = asyncio.Event()
        opened = 0

        async def watch() -> int:
            nonlocal opened
            seen = 0
            params = {"watch": "true", "resourceVersion": rv}
            async with session.get(url + CM, params=params) as resp:
                opened += 1
                if opened == watchers:
                    ready.set()
                async for line in resp.content:
                    if line.strip():
                        seen += 1
                        if seen == events:
                            return seen
            return seen

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        await ready.wait()
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        await _creates(url, events, 20)
        counts = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        assert counts == [events] * watchers
        return watchers * events / elapsed


@pytest.mark.parametrize("watchers", [1, 10, 50])
def test_bench_watch_fanout(benchmark: Any, server_url: str, watchers: int) -> None:
    rates: list[float] = []
    benchmark.pedantic(
        lambda: rates.append(asyncio.run(_fanout(server_url, watchers, 500))), rounds=2
    )
    benchmark.extra_info["events_delivered_per_s"] = round(max(rates))


def _filled_store(count: int) -> tuple[Any, Any]:
    from kubetrain.cluster.apiserver.builtins import builtin_resources
    from kubetrain.cluster.apiserver.store import Store
    from kubetrain.cluster.apiserver.watch import WatchHub

    store = Store(hub=WatchHub(history_size=10))
    info = next(i for i in builtin_resources() if i.plural == "configmaps")
    for i in range(count):
        store.create(
            info,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"cm-{i:06d}", "namespace": "big"},
            },
        )
    return store, info


@pytest.mark.parametrize("count", [50, 50_000])
def test_bench_list_page_cost_is_independent_of_namespace_size(benchmark: Any, count: int) -> None:
    store, info = _filled_store(count)
    middle = ("big", f"cm-{count // 2:06d}")

    def page() -> int:
        items, _, _ = store.list(info.storage_key, "big", limit=25, after=middle)
        return len(items)

    assert benchmark(page) == min(25, count - count // 2 - 1)
