"""Throughput of the embedded API server over real HTTP (run with ``--benchmark-only``).

The server runs in its own process (as ``kubetrain cluster`` would, with uvloop when installed);
the client is aiohttp in this process, or, for the server-bound rows, bare asyncio streams sending
prebuilt requests (``lean_creates``). Each round reports operations per second in
``extra_info``: sequential creates, concurrent creates (ConfigMaps, and pods of realistic size),
status updates (merge patch on ``/status``), watch fan-out (events delivered per second to 1,
10 and 50 watchers) and the time to LIST 5,000 or 20,000 pods. The client shares the machine's
cores with the server (two, on the development machine), so the rates are partly the client's;
``server_cpu_us_per_*`` (the server process's CPU time per request or write) is the server's
own cost, and the steadier figure to compare before and after a change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest
from apiserver_load import (
    CM,
    PODS,
    creates,
    lean_creates,
    pod,
    pod_creates,
    server_cpu_seconds,
    server_process,
    status_updates,
    unique_name,
)

SERVER = """
import asyncio, sys
try:
    import uvloop
    uvloop.install()
except ImportError:
    pass
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.apiserver.server import ApiServer

async def main():
    server = ApiServer(ApiServerOptions(watch_history_size=100_000, watch_buffer_size=100_000))
    print(await server.start("127.0.0.1", 0), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with server_process(SERVER) as url:
        yield url


def test_bench_sequential_creates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(lambda: rates.append(asyncio.run(creates(server_url, 500, 1))), rounds=3)
    benchmark.extra_info["creates_per_s"] = round(max(rates))


def test_bench_concurrent_creates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    cpu = server_cpu_seconds(server_url)
    benchmark.pedantic(lambda: rates.append(asyncio.run(creates(server_url, 1000, 20))), rounds=3)
    benchmark.extra_info["creates_per_s_20_concurrent"] = round(max(rates))
    benchmark.extra_info["server_cpu_us_per_create"] = round(
        (server_cpu_seconds(server_url) - cpu) / 3000 * 1e6
    )


def test_bench_concurrent_pod_creates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    path = "/api/v1/namespaces/default/pods"
    cpu = server_cpu_seconds(server_url)
    benchmark.pedantic(
        lambda: rates.append(asyncio.run(pod_creates(server_url, path, 1000, 20))), rounds=3
    )
    benchmark.extra_info["pod_creates_per_s_20_concurrent"] = round(max(rates))
    benchmark.extra_info["server_cpu_us_per_create"] = round(
        (server_cpu_seconds(server_url) - cpu) / 3000 * 1e6
    )


def _lean_rounds(benchmark: Any, url: str, path: str, body: Any, rounds: int = 3) -> None:
    """``rounds`` of 2,000 creates from ``lean_creates`` over 20 connections: the server's rate."""
    count = 2000
    rates: list[float] = []

    def one_round() -> None:
        bodies = [orjson.dumps(body(unique_name("lean"))) for _ in range(count)]
        rates.append(asyncio.run(lean_creates(url, path, bodies, 20)))

    cpu = server_cpu_seconds(url)
    benchmark.pedantic(one_round, rounds=rounds)
    benchmark.extra_info["creates_per_s_lean_client"] = round(max(rates))
    benchmark.extra_info["server_cpu_us_per_create"] = round(
        (server_cpu_seconds(url) - cpu) / (rounds * count) * 1e6
    )


def test_bench_server_bound_pod_creates(benchmark: Any, server_url: str) -> None:
    """Pod creates/s with a client too cheap to be the bottleneck (``lean_creates``)."""
    _lean_rounds(benchmark, server_url, PODS, lambda name: pod(name + "-0"))


def test_bench_server_bound_configmap_creates(benchmark: Any, server_url: str) -> None:
    """ConfigMap creates/s with a client too cheap to be the bottleneck (``lean_creates``)."""
    _lean_rounds(
        benchmark, server_url, CM, lambda name: {"metadata": {"name": name}, "data": {"k": "v"}}
    )


def test_bench_status_updates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(lambda: rates.append(asyncio.run(status_updates(server_url, 500))), rounds=3)
    benchmark.extra_info["status_updates_per_s"] = round(max(rates))


async def _fanout(url: str, watchers: int, events: int, cpu_per_write: list[float]) -> float:
    """Events delivered per second to ``watchers`` watches while 20 clients create ``events``
    ConfigMaps; appends the server's CPU seconds per create (and its deliveries)."""
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
        cpu = server_cpu_seconds(url)
        start = time.perf_counter()
        await creates(url, events, 20)
        counts = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        cpu_per_write.append((server_cpu_seconds(url) - cpu) / events)
        assert counts == [events] * watchers
        return watchers * events / elapsed


@pytest.mark.parametrize("watchers", [1, 10, 50])
def test_bench_watch_fanout(benchmark: Any, server_url: str, watchers: int) -> None:
    rates: list[float] = []
    cpu_per_write: list[float] = []
    benchmark.pedantic(
        lambda: rates.append(asyncio.run(_fanout(server_url, watchers, 500, cpu_per_write))),
        rounds=2,
    )
    benchmark.extra_info["events_delivered_per_s"] = round(max(rates))
    # one create plus its delivery to every watcher
    benchmark.extra_info["server_cpu_us_per_write"] = round(min(cpu_per_write) * 1e6)


@pytest.mark.parametrize("count", [5_000, 20_000])
def test_bench_list_over_http(benchmark: Any, server_url: str, count: int) -> None:
    """One LIST of ``count`` pods (about 1.4 KiB each once defaulted), timed to the last byte."""
    path = f"/api/v1/namespaces/list-{count}/pods"

    async def fill() -> None:
        async with aiohttp.ClientSession() as session:
            body = {"metadata": {"name": f"list-{count}"}}
            async with session.post(url_ns, json=body) as resp:
                assert resp.status == 201, await resp.text()
        await pod_creates(server_url, path, count, 20)

    async def list_all() -> int:
        async with aiohttp.ClientSession() as session, session.get(server_url + path) as resp:
            assert resp.status == 200
            return len(await resp.read())

    url_ns = server_url + "/api/v1/namespaces"
    asyncio.run(fill())
    cpu = server_cpu_seconds(server_url)
    size = benchmark.pedantic(lambda: asyncio.run(list_all()), rounds=5, warmup_rounds=1)
    benchmark.extra_info["items"] = count
    benchmark.extra_info["body_mib"] = round(size / 2**20, 1)
    benchmark.extra_info["server_cpu_ms_per_list"] = round(
        (server_cpu_seconds(server_url) - cpu) / 6 * 1e3, 1
    )


def _filled_store(count: int) -> tuple[Any, Any]:
    from kubetrain.cluster.apiserver.builtins import builtin_resources
    from kubetrain.cluster.apiserver.store import ObjectStore
    from kubetrain.cluster.apiserver.watch import WatchHub

    store = ObjectStore(hub=WatchHub(history_size=10))
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
        items, _, _ = store.list_records(info.storage_key, "big", limit=25, after=middle)
        return len(items)

    assert benchmark(page) == min(25, count - count // 2 - 1)
