"""What ``--data`` (SQLite persistence) costs in write throughput (run with ``--benchmark-only``).

The server runs in its own process (uvloop when installed), in memory or with a data directory;
``extra_info`` reports creates/s (20 in flight, and one at a time) and merge-patch status
updates/s for each, so the two rows compare directly. With a data directory every write is
answered only once committed: the sequential rows show what that costs each request, the
concurrent one what group commit keeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiserver_load import creates, server_process, status_updates

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


@pytest.fixture(params=["memory", "sqlite"])
def server_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    data = str(tmp_path / "data") if request.param == "sqlite" else ""
    with server_process(SERVER, data) as url:
        yield url


def test_bench_concurrent_creates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(
        lambda: rates.append(asyncio.run(_load_creates(server_url, 2000, 20))), rounds=3
    )
    benchmark.extra_info["creates_per_s_20_concurrent"] = round(max(rates))


def test_bench_sequential_creates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(
        lambda: rates.append(asyncio.run(_load_creates(server_url, 1000, 1))), rounds=3
    )
    benchmark.extra_info["creates_per_s_sequential"] = round(max(rates))


def test_bench_sequential_status_updates(benchmark: Any, server_url: str) -> None:
    rates: list[float] = []
    benchmark.pedantic(
        lambda: rates.append(asyncio.run(status_updates(server_url, 1000))), rounds=3
    )
    benchmark.extra_info["status_updates_per_s"] = round(max(rates))


async def _load_creates(url: str, count: int, concurrency: int) -> float:
    # 200-byte values: what persistence costs grows with the object, so write something real.
    return await creates(url, count, concurrency, value="v" * 200)
