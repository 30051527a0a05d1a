"""Queue throughput: add + duplicate add + get + done cycles (run with --benchmark-only).

One round moves ITEMS keys through a full cycle; items/s = ITEMS / mean round time, and each
item is 4 queue operations (add, deduplicated add, get, done).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from kubetrain.engine.queue import QueueOptions
from kubetrain.engine.rate_limiting_queue import RateLimitingQueue
from kubetrain.engine.sharding import ShardedQueue, ShardingOptions

ITEMS = 20_000
KEYS = [f"namespace-{index % 50}/job-{index}" for index in range(ITEMS)]


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


def run(
    benchmark: Callable[..., object],
    loop: asyncio.AbstractEventLoop,
    make: Callable[[], RateLimitingQueue[str] | ShardedQueue[str]],
) -> None:
    async def cycle() -> int:
        queue = make()
        add, done, get = queue.add, queue.done, queue.get
        for key in KEYS:
            add(key)
            add(key)
        handled = 0
        for _ in range(ITEMS):
            key = await get()
            done(key)
            handled += 1
        return handled

    result = benchmark(lambda: loop.run_until_complete(cycle()))
    assert result == ITEMS


def test_bench_one_queue(benchmark: Callable[..., object], loop: asyncio.AbstractEventLoop) -> None:
    run(benchmark, loop, lambda: RateLimitingQueue(QueueOptions()))


def test_bench_16_shards(benchmark: Callable[..., object], loop: asyncio.AbstractEventLoop) -> None:
    run(benchmark, loop, lambda: ShardedQueue(ShardingOptions(shards=16)))


def test_bench_workers_waiting_on_get(
    benchmark: Callable[..., object], loop: asyncio.AbstractEventLoop
) -> None:
    """16 shards x 1 worker blocked in get while a producer adds: the wake-up path."""

    async def pipeline() -> int:
        queue: ShardedQueue[str] = ShardedQueue(ShardingOptions(shards=16))
        handled = 0

        async def process(key: str) -> None:
            nonlocal handled
            handled += 1

        workers = asyncio.create_task(queue.run_workers(process))
        for start in range(0, ITEMS, 1000):
            for key in KEYS[start : start + 1000]:
                queue.add(key)
            await asyncio.sleep(0)
        await queue.shutdown_with_drain()
        await workers
        return handled

    result = benchmark(lambda: loop.run_until_complete(pipeline()))
    assert result == ITEMS
