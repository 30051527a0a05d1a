"""What ``--data`` (SQLite persistence) costs in write throughput (run with ``--benchmark-only``).

The server runs in its own process (uvloop when installed), in memory or with a data directory;
``extra_info`` reports creates/s and merge-patch status updates/s for each, so the two rows
compare directly.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
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
from kubetrain.cluster.embedded import EmbeddedCluster

async def main():
    data = sys.argv[1] or None
    async with EmbeddedCluster(data_dir=data) as cluster:
        print(cluster.url, flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
_counter = iter(range(10**9))


@pytest.fixture(params=["memory", "sqlite"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    data = str(tmp_path / "data") if request.param == "sqlite" else ""
    proc = subprocess.Popen([sys.executable, "-c", SERVER, data], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def _creates(url: str, count: int, concurrency: int) -> float:
    async with aiohttp.ClientSession() as session:
        sem = asyncio.Semaphore(concurrency)

        async def one() -> None:
            body = orjson.dumps(
                {"metadata": {"name": f"cm-{next(_counter)}"}, "data": {"k": "v" * 200}}
            )
            headers = {"Content-Type": "application/json"}
            async with sem, session.post(url + CM, data=body, headers=headers) as resp:
                assert resp.status == 201
                await resp.read()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - start)


async def _status_updates(url: str, count: int) -> float:
    async with aiohttp.ClientSession() as session:
        name = f"pod-{next(_counter)}"
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


def test_bench_concurrent_creates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(lambda: rates.append(asyncio.run(_creates(server_url, 2000, 20))), rounds=3)
    benchmark.extra_info["creates_per_s_20_concurrent"] = round(max(rates))


def test_bench_sequential_status_updates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(
        lambda: rates.append(asyncio.run(_status_updates(server_url, 1000))), rounds=3
    )
    benchmark.extra_info["status_updates_per_s"] = round(max(rates))
