"""ShardedQueue: stable key -> shard, one worker per key, fairness across shards."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import zlib

import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.engine.queue import QueueEmpty, QueueOptions, QueueShutDown
from kubetrain.engine.sharding import ShardedQueue, ShardingOptions


def make_sharded(shards: int, workers_per_shard: int = 1) -> ShardedQueue[str]:
    return ShardedQueue(
        ShardingOptions(
            shards=shards,
            workers_per_shard=workers_per_shard,
            queue=QueueOptions(clock=FakeClock()),
        )
    )


def keys_of_shard(queue: ShardedQueue[str], shard: int, count: int) -> list[str]:
    keys: list[str] = []
    index = 0
    while len(keys) < count:
        key = f"ns/job-{index}"
        if queue.shard_index(key) == shard:
            keys.append(key)
        index += 1
    return keys


def test_shard_is_crc32_of_the_key_modulo_shards() -> None:
    queue = make_sharded(7)
    for key in ["ns/a", "default/pytorchjob-1", "kube-system/x"]:
        assert queue.shard_index(key) == zlib.crc32(key.encode()) % 7
        queue.add(key)
        assert len(queue.shards[queue.shard_index(key)]) >= 1


def test_shard_choice_does_not_depend_on_the_hash_seed() -> None:
    keys = [f"ns/job-{index}" for index in range(50)]
    script = (
        "from kubetrain.engine.sharding import ShardedQueue, ShardingOptions\n"
        "q = ShardedQueue(ShardingOptions(shards=16))\n"
        f"print([q.shard_index(k) for k in {keys!r}])\n"
    )
    results = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        results.add(out.stdout)
    assert len(results) == 1
    assert results.pop().strip() == str([make_sharded(16).shard_index(k) for k in keys])


def test_keys_spread_evenly_over_shards() -> None:
    queue = make_sharded(16)
    counts = [0] * 16
    for namespace in range(20):
        for name in range(500):
            counts[queue.shard_index(f"ns-{namespace}/job-{name}")] += 1
    mean = sum(counts) / 16
    assert min(counts) > mean * 0.9
    assert max(counts) < mean * 1.1


def test_dedup_and_retries_hold_through_the_sharded_interface() -> None:
    queue = make_sharded(4)
    queue.add("ns/a")
    queue.add("ns/a")
    queue.add("ns/b")
    assert len(queue) == 2
    key = queue.get_nowait()
    queue.add(key)
    queue.done(key)
    assert len(queue) == 2
    queue.add_rate_limited("ns/c")
    assert queue.num_requeues("ns/c") == 1
    queue.forget("ns/c")
    assert queue.num_requeues("ns/c") == 0


async def test_sharded_get_takes_round_robin_so_a_hot_shard_does_not_starve_others() -> None:
    queue = make_sharded(2)
    hot = keys_of_shard(queue, 0, 50)
    (cold,) = keys_of_shard(queue, 1, 1)
    for key in hot:
        queue.add(key)
    queue.add(cold)
    first_two = [await queue.get(), await queue.get()]
    assert cold in first_two


async def test_shard_workers_keep_a_cold_shard_flowing_behind_a_hot_one() -> None:
    queue = make_sharded(2, workers_per_shard=1)
    hot = keys_of_shard(queue, 0, 20)
    (cold,) = keys_of_shard(queue, 1, 1)
    order: list[str] = []

    async def process(key: str) -> None:
        order.append(key)
        for _ in range(3):  # work that yields to the loop
            await asyncio.sleep(0)

    for key in hot:
        queue.add(key)
    queue.add(cold)
    workers = asyncio.create_task(queue.run_workers(process))
    await asyncio.wait_for(queue.shutdown_with_drain(), timeout=5)
    await asyncio.wait_for(workers, timeout=5)
    assert order.index(cold) <= 1
    assert sorted(order) == sorted([*hot, cold])


async def test_a_key_is_never_processed_by_two_workers_at_once() -> None:
    queue = make_sharded(4, workers_per_shard=3)
    keys = [f"ns/job-{index}" for index in range(8)]
    in_flight: set[str] = set()
    overlaps: list[str] = []
    processed: dict[str, int] = dict.fromkeys(keys, 0)
    enough = asyncio.Event()

    async def process(key: str) -> None:
        if key in in_flight:
            overlaps.append(key)
        in_flight.add(key)
        processed[key] += 1
        if min(processed.values()) >= 20:
            enough.set()
        queue.add(key)  # an event for the same key arrives mid-reconcile
        await asyncio.sleep(0)
        in_flight.discard(key)

    for key in keys:
        queue.add(key)
    workers = asyncio.create_task(queue.run_workers(process))
    await asyncio.wait_for(enough.wait(), timeout=10)
    queue.shutdown()
    await asyncio.wait_for(workers, timeout=5)
    assert overlaps == []
    assert min(processed.values()) >= 20


async def test_sharded_get_waits_for_any_shard_and_raises_after_shutdown() -> None:
    queue = make_sharded(3)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.add("ns/a")
    assert await asyncio.wait_for(getter, timeout=5) == "ns/a"
    queue.done("ns/a")
    with pytest.raises(QueueEmpty):
        queue.get_nowait()
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.shutdown()
    with pytest.raises(QueueShutDown):
        await asyncio.wait_for(waiting, timeout=5)


async def test_delayed_add_wakes_a_sharded_getter() -> None:
    clock = FakeClock()
    queue: ShardedQueue[str] = ShardedQueue(
        ShardingOptions(shards=4, queue=QueueOptions(clock=clock))
    )
    getter = asyncio.create_task(queue.get())
    queue.add_after("ns/a", 2)
    await asyncio.sleep(0)
    assert not getter.done()
    clock.advance(2)
    assert await asyncio.wait_for(getter, timeout=5) == "ns/a"


def test_shards_share_one_retry_bucket() -> None:
    queue = make_sharded(4)
    limiters = {id(shard.rate_limiter) for shard in queue.shards}
    assert len(limiters) == 1


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [("shards", {"shards": 0}), ("workers_per_shard", {"workers_per_shard": 0})],
)
def test_invalid_options_name_the_field(field: str, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=f"ShardingOptions.{field}"):
        ShardingOptions(**kwargs)
