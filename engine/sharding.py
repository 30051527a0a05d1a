"""Sharded work queues: N independent queues chosen by a stable hash of the key.

One big queue is fair in add order, so a burst of keys (a resync of 10,000 jobs, one hot
namespace) delays everything behind it. Sharding splits the keys over N queues, each with its own
workers: a hot shard keeps only its own workers busy while the others keep flowing. A key always
hashes to the same shard (crc32 of its bytes: stable across processes, unlike Python's salted
``hash()``), so the per-queue guarantees still hold for it: deduplicated, never processed by two
workers at once, retried with its own backoff history.

``ShardedQueue`` has the interface of one ``RateLimitingQueue``. Workers either serve one shard
each (``shard(i).get()``, what ``run_workers`` does: ``workers_per_shard`` per shard) or call the
sharded ``get()``, which takes round-robin from the shards that have ready items.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kubetrain.engine.queue import (
    NORMAL_PRIORITY,
    QueueEmpty,
    QueueOptions,
    QueueShutDown,
)
from kubetrain.engine.rate_limiting_queue import RateLimitingQueue
from kubetrain.engine.ratelimiters import RateLimiter, default_controller_rate_limiter
from kubetrain.engine.waiters import WaitingGetters
from kubetrain.engine.workqueue_metrics import QueueMetrics, global_metrics_provider

K = TypeVar("K", bound=Hashable)


def key_bytes(key: Hashable) -> bytes:
    """Default bytes of a key for hashing: UTF-8 of ``str(key)`` (keys are "ns/name" strings)."""
    return key.encode() if isinstance(key, str) else str(key).encode()


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardingOptions:
    """Shape of a sharded queue."""

    #: Number of shards (>= 1). One shard behaves like a plain queue.
    shards: int = 1
    #: Workers ``run_workers`` starts per shard (>= 1); total concurrency is shards * this.
    workers_per_shard: int = 1
    #: Options of every shard. Metrics (when ``name`` is set) are shared: the shards report
    #: together under one ``name``/``controller``, as one queue would.
    queue: QueueOptions = field(default_factory=QueueOptions)
    #: Bytes hashed to choose a key's shard; must be stable for a key across processes.
    key_bytes: Callable[[Hashable], bytes] = key_bytes

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise ValueError(f"ShardingOptions.shards must be >= 1, got {self.shards}")
        if self.workers_per_shard < 1:
            raise ValueError(
                f"ShardingOptions.workers_per_shard must be >= 1, got {self.workers_per_shard}"
            )


class ShardedQueue(Generic[K]):
    """``shards`` rate-limiting queues behind one interface; a key always maps to one shard.

    ``rate_limiter`` (default ``default_controller_rate_limiter``) is shared by all shards, so
    the retry bucket stays global; per-item history is unaffected since a key has one shard.
    """

    def __init__(
        self,
        options: ShardingOptions | None = None,
        *,
        rate_limiter: RateLimiter[K] | None = None,
    ) -> None:
        options = options if options is not None else ShardingOptions()
        self._options = options
        queue_options = options.queue
        limiter: RateLimiter[K] = (
            rate_limiter
            if rate_limiter is not None
            else default_controller_rate_limiter(clock=queue_options.clock)
        )
        metrics: QueueMetrics | None = None
        if queue_options.name:
            provider = queue_options.metrics_provider or global_metrics_provider()
            metrics = provider.queue_metrics(
                name=queue_options.name,
                controller=queue_options.controller or queue_options.name,
            )
        self._shards: tuple[RateLimitingQueue[K], ...] = tuple(
            RateLimitingQueue(queue_options, rate_limiter=limiter, metrics=metrics)
            for _ in range(options.shards)
        )
        if metrics is not None:
            metrics.track_in_flight(
                unfinished_seconds=lambda: sum(s.unfinished_seconds() for s in self._shards),
                longest_seconds=lambda: max(s.longest_running_seconds() for s in self._shards),
            )
        # Callers of the sharded get() waiting for any shard to have a ready item.
        self._getters = WaitingGetters()
        for shard in self._shards:
            shard._on_ready = self._getters.wake_one
        self._key_bytes = options.key_bytes
        # Next shard the sharded get() looks at first (round-robin fairness).
        self._next_shard = 0
        self._shutting_down = False

    # -- shards -----------------------------------------------------------------------------

    @property
    def shards(self) -> tuple[RateLimitingQueue[K], ...]:
        return self._shards

    @property
    def workers_per_shard(self) -> int:
        return self._options.workers_per_shard

    def shard_index(self, key: K) -> int:
        """The shard of ``key``: crc32 of its bytes modulo the shard count."""
        return zlib.crc32(self._key_bytes(key)) % len(self._shards)

    def shard_for(self, key: K) -> RateLimitingQueue[K]:
        return self._shards[zlib.crc32(self._key_bytes(key)) % len(self._shards)]

    # -- the one-queue interface, routed by key ---------------------------------------------

    def add(self, key: K, *, priority: int = NORMAL_PRIORITY) -> None:
        self.shard_for(key).add(key, priority=priority)

    def add_after(self, key: K, delay: float, *, priority: int = NORMAL_PRIORITY) -> None:
        self.shard_for(key).add_after(key, delay, priority=priority)

    def add_rate_limited(self, key: K, *, priority: int = NORMAL_PRIORITY) -> None:
        self.shard_for(key).add_rate_limited(key, priority=priority)

    def forget(self, key: K) -> None:
        self.shard_for(key).forget(key)

    def num_requeues(self, key: K) -> int:
        return self.shard_for(key).num_requeues(key)

    def done(self, key: K) -> None:
        self.shard_for(key).done(key)

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def get_nowait(self) -> K:
        """A ready key from the next shard in round-robin order; ``QueueEmpty`` if none."""
        shards = self._shards
        count = len(shards)
        start = self._next_shard
        for offset in range(count):
            index = (start + offset) % count
            shard = shards[index]
            if len(shard):
                self._next_shard = (index + 1) % count
                return shard.get_nowait()
        if self._shutting_down:
            raise QueueShutDown
        raise QueueEmpty

    async def get(self) -> K:
        """Round-robin over shards with ready items; the caller MUST call ``done(key)``."""
        while True:
            try:
                return self.get_nowait()
            except QueueEmpty:
                pass
            await self._getters.wait()

    def shutdown(self) -> None:
        self._shutting_down = True
        for shard in self._shards:
            shard.shutdown()
        self._getters.wake_all()

    async def shutdown_with_drain(self) -> None:
        self.shutdown()
        await asyncio.gather(*(shard.shutdown_with_drain() for shard in self._shards))

    # -- workers ----------------------------------------------------------------------------

    async def run_workers(self, process: Callable[[K], Awaitable[None]]) -> None:
        """Serve every shard with ``workers_per_shard`` workers until shutdown drains it.

        Each worker loops ``key = await shard.get(); try: await process(key) finally:
        shard.done(key)``. ``process`` owns retries (``add_rate_limited``/``forget``); an
        exception escaping it is a bug: it cancels all workers and propagates from here.
        """

        async def work(shard: RateLimitingQueue[K]) -> None:
            while True:
                try:
                    key = await shard.get()
                except QueueShutDown:
                    return
                try:
                    await process(key)
                finally:
                    shard.done(key)

        async with asyncio.TaskGroup() as group:
            for shard in self._shards:
                for _ in range(self._options.workers_per_shard):
                    group.create_task(work(shard))
