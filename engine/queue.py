"""The work queue: dedup, one worker per key, priorities (client-go's workqueue contract in asyncio).

Contract (client-go ``doc.go`` plus controller-runtime's priority queue):

- **Stingy**: a key is queued at most once; N adds before it is handed out collapse into one.
- **One worker per key**: a key handed out by ``get`` is *processing* until ``done``; adding it
  meanwhile marks it dirty, and ``done`` queues it again, once, however many adds came.
- **Priorities**: higher first, FIFO (by the time the item became ready) within one priority.
  Re-adding a queued key keeps the HIGHER priority and the EARLIER ready time; a raised
  priority moves it to the tail of its new class.
- **Shutdown**: adds are ignored, ``get`` still returns the ready items, then raises
  ``QueueShutDown``.

The queue is for one event loop: ``get`` is the only coroutine, all else is synchronous, no
locks. The hot path is deques and dicts; a waiter future exists only when a getter must wait.

This module knows the *waiting* state (an item with a future ready time) because the merge rules
span both states; scheduling it is ``delaying_queue.DelayingQueue``'s job.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.engine.waiters import WaitingGetters
from kubetrain.engine.workqueue_metrics import (
    MetricsProvider,
    QueueMetrics,
    global_metrics_provider,
)

K = TypeVar("K", bound=Hashable)

#: Normal events (create/update/delete, retries, requeue_after).
NORMAL_PRIORITY = 0
#: Initial-list and resync events (controller-runtime's ``handler.LowPriority``): a new job is
#: never stuck behind a backlog of unchanged ones.
LOW_PRIORITY = -100


class QueueShutDown(Exception):
    """Raised by ``get`` once the queue is shut down and no ready item is left: stop the worker."""


class QueueEmpty(Exception):
    """Raised by ``get_nowait`` when no item is ready."""


class Interface(Protocol[K]):
    """The base queue contract (client-go ``TypedInterface`` with priorities).

    Worker loop::

        while True:
            try:
                key = await queue.get()
            except QueueShutDown:
                return
            try:
                ...  # process key
            finally:
                queue.done(key)
    """

    def add(self, key: K, *, priority: int = NORMAL_PRIORITY) -> None:
        """Queue ``key`` now (ignored after shutdown); see the module rules for merging."""
        ...

    async def get(self) -> K:
        """Wait for the next ready key and mark it processing; the caller MUST call ``done``.

        Raises ``QueueShutDown`` when shut down and nothing ready is left.
        """
        ...

    def done(self, key: K) -> None:
        """End processing of ``key``; if it was re-added meanwhile it is queued again."""
        ...

    def __len__(self) -> int:
        """Ready items not yet handed out (excludes waiting and processing ones)."""
        ...

    def shutdown(self) -> None:
        """Ignore further adds; wake all getters (they drain ready items, then raise)."""
        ...

    async def shutdown_with_drain(self) -> None:
        """``shutdown``, then wait until no item is ready or processing (workers must run)."""
        ...

    @property
    def shutting_down(self) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueOptions:
    """How to build a queue; every field has a usable default."""

    #: Metrics ``name`` label. Empty (the default) means no metrics at all.
    name: str = ""
    #: Metrics ``controller`` label; defaults to ``name`` (as controller-runtime sets both).
    controller: str = ""
    #: Time source for delays, rate limiters and metrics; tests pass a ``FakeClock``.
    clock: Clock = REAL_CLOCK
    #: Where a named queue gets its metrics; default the global Prometheus registry's provider.
    metrics_provider: MetricsProvider | None = None


class _Item(Generic[K]):
    """One queued key. The queue holds at most one live _Item per key (in ``_items``)."""

    __slots__ = ("key", "priority", "ready", "ready_at")

    def __init__(self, key: K, priority: int, ready: bool, ready_at: float) -> None:
        self.key = key
        self.priority = priority
        # ready: eligible for get (or parked until done if the key is processing).
        # not ready: waiting until ready_at (scheduled by the delaying layer).
        self.ready = ready
        # When it became (or will become) ready; queue-duration metrics start here.
        self.ready_at = ready_at


class WorkQueue(Generic[K]):
    """The priority work queue (see the module docstring for every rule).

    Subclasses add delays (``delaying_queue.DelayingQueue``) and retries
    (``rate_limiting_queue.RateLimitingQueue``); most callers want the latter.
    """

    def __init__(
        self, options: QueueOptions | None = None, *, metrics: QueueMetrics | None = None
    ) -> None:
        """``metrics`` overrides the provider (a sharded queue shares one among its shards)."""
        options = options if options is not None else QueueOptions()
        self._clock = options.clock
        # Invariant: at most one _Item per key; a key is here iff it is queued (ready, parked
        # behind its own processing, or waiting). This is client-go's ``dirty`` set.
        self._items: dict[K, _Item[K]] = {}
        # Per-priority FIFOs of items handed to get. Lazy: an entry is live iff
        # ``_items.get(item.key) is item and item.priority == its deque's priority``; stale
        # entries are skipped on pop. Live entries are ready and not processing.
        self._ready: dict[int, deque[_Item[K]]] = {}
        # Priorities present in _ready, highest first (as negated values, for bisect).
        self._negated_priorities: list[int] = []
        # Invariant: number of live entries in _ready (what get can hand out now).
        self._ready_count = 0
        # Keys handed out and not yet done -> the clock time get handed them out.
        self._processing: dict[K, float] = {}
        # Getters waiting for a ready item (only while _ready_count == 0).
        self._getters = WaitingGetters()
        # shutdown_with_drain callers waiting for ready and processing to empty.
        self._drainers: list[asyncio.Future[None]] = []
        self._shutting_down = False
        # Called when an item becomes ready and no own getter waits (a sharded queue's wakeup).
        self._on_ready: _ReadyListener | None = None
        self._metrics: QueueMetrics | None = metrics
        if metrics is None and options.name:
            provider = options.metrics_provider or global_metrics_provider()
            self._metrics = provider.queue_metrics(
                name=options.name, controller=options.controller or options.name
            )
            self._metrics.track_in_flight(
                unfinished_seconds=self.unfinished_seconds,
                longest_seconds=self.longest_running_seconds,
            )

    # -- public contract -------------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        return self._ready_count

    def processing_count(self) -> int:
        """Keys handed out and not yet ``done``."""
        return len(self._processing)

    def queued_count(self) -> int:
        """Keys queued in any state: ready, waiting, or re-added while processing."""
        return len(self._items)

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    def add(self, key: K, *, priority: int = NORMAL_PRIORITY) -> None:
        if self._shutting_down:
            return
        item = self._items.get(key)
        if item is None:
            item = _Item(key, priority, True, 0.0)
            self._items[key] = item
            self._became_ready(item)
        elif item.ready:
            if priority > item.priority:
                self._raise_priority(item, priority)
        else:
            # Waiting: now is earlier than its ready time (earlier wins); its heap entry goes stale.
            if priority > item.priority:
                item.priority = priority
            item.ready = True
            self._became_ready(item)

    async def get(self) -> K:
        while not self._ready_count:
            if self._shutting_down:
                raise QueueShutDown
            await self._getters.wait()
        return self._pop()

    def get_nowait(self) -> K:
        """Like ``get`` without waiting: raises ``QueueEmpty`` (or ``QueueShutDown``)."""
        if not self._ready_count:
            if self._shutting_down:
                raise QueueShutDown
            raise QueueEmpty
        return self._pop()

    def done(self, key: K) -> None:
        started = self._processing.pop(key, None)
        if started is None:
            raise ValueError(f"WorkQueue.done({key!r}): key is not processing (done twice?)")
        if self._metrics is not None:
            self._metrics.finished(self._clock.monotonic() - started)
        item = self._items.get(key)
        if item is not None and item.ready:
            self._push(item)
        elif self._drainers and not self._processing and not self._ready_count:
            self._release_drainers()

    def shutdown(self) -> None:
        self._shutting_down = True
        self._getters.wake_all()
        if self._on_ready is not None:
            self._on_ready()

    async def shutdown_with_drain(self) -> None:
        self.shutdown()
        if not self._processing and not self._ready_count:
            return
        drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._drainers.append(drained)
        await drained

    # -- in-flight ages (metrics) -----------------------------------------------------------

    def unfinished_seconds(self) -> float:
        """Sum of the ages of in-flight items (``workqueue_unfinished_work_seconds``)."""
        now = self._clock.monotonic()
        return sum(now - started for started in list(self._processing.values()))

    def longest_running_seconds(self) -> float:
        """Age of the oldest in-flight item (``workqueue_longest_running_processor_seconds``)."""
        starts = list(self._processing.values())
        return self._clock.monotonic() - min(starts) if starts else 0.0

    # -- internals shared with the delaying layer --------------------------------------------

    def _became_ready(self, item: _Item[K]) -> None:
        """``item`` (live in _items) just turned ready: hand it out, or park it behind done."""
        metrics = self._metrics
        if metrics is not None:
            item.ready_at = self._clock.monotonic()
            metrics.added(item.priority)
        if item.key not in self._processing:
            self._push(item)

    def _push(self, item: _Item[K]) -> None:
        priority = item.priority
        fifo = self._ready.get(priority)
        if fifo is None:
            fifo = self._ready[priority] = deque()
            bisect.insort(self._negated_priorities, -priority)
        fifo.append(item)
        self._ready_count += 1
        if self._getters.parked:
            self._getters.wake_one()
        elif self._on_ready is not None:
            self._on_ready()

    def _raise_priority(self, item: _Item[K], priority: int) -> None:
        old = item.priority
        item.priority = priority
        if self._metrics is not None:
            self._metrics.reprioritized(old, priority)
        if item.key not in self._processing:
            # The old deque entry is now stale; the item joins the tail of its new class.
            self._ready_count -= 1
            self._push(item)

    def _pop(self) -> K:
        items = self._items
        negated = self._negated_priorities
        while True:
            priority = -negated[0]
            fifo = self._ready[priority]
            while fifo:
                item = fifo.popleft()
                key = item.key
                if item.priority == priority and items.get(key) is item:
                    del items[key]
                    self._ready_count -= 1
                    metrics = self._metrics
                    if metrics is not None:
                        now = self._clock.monotonic()
                        metrics.taken(priority, now - item.ready_at)
                        self._processing[key] = now
                    else:
                        self._processing[key] = 0.0
                    return key
            # Only stale entries were left in this class.
            del self._ready[priority]
            del negated[0]

    def _release_drainers(self) -> None:
        drainers, self._drainers = self._drainers, []
        for drained in drainers:
            if not drained.done():
                drained.set_result(None)


class _ReadyListener(Protocol):
    def __call__(self) -> None: ...
