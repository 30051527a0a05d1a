"""Delayed adds: ``add_after`` over a heap of waiting items and the one timer that drives it.

client-go runs a goroutine per delaying queue; asyncio needs no task at all. ``WaitingHeap`` keeps
waiting entries in a min-heap by ready time and arms a single clock timer for the earliest. When it
fires, ``DelayingQueue`` makes every due item ready (in ready-time order, so FIFO within a
priority follows readiness) and the heap re-arms for the next. No per-item tasks, no heartbeat:
the clock's timer is exact, and tests drive it with ``FakeClock.advance``.

As in controller-runtime's priority queue, one entry per key covers both states: re-adding a
waiting item keeps the EARLIER ready time and the HIGHER priority, and a delayed add for a key
that is already ready is absorbed (no extra pass later). The heap is lazy: entries whose item
became ready earlier, got an earlier time, or left the queue are skipped when they pop.
Items still waiting at shutdown are dropped.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

from kubetrain.base.clock import Clock, Timer
from kubetrain.engine.queue import NORMAL_PRIORITY, Interface, QueueOptions, WorkQueue, _Item
from kubetrain.engine.workqueue_metrics import QueueMetrics

K = TypeVar("K", bound=Hashable)
E = TypeVar("E")


class DelayingInterface(Interface[K], Protocol):
    """A queue whose items may become ready later (client-go ``TypedDelayingInterface``)."""

    def add_after(self, key: K, delay: float, *, priority: int = NORMAL_PRIORITY) -> None:
        """Add ``key`` once ``delay`` seconds have passed; ``delay <= 0`` is a plain ``add``.

        If the key is already queued it keeps the earlier ready time and the higher priority.
        """
        ...


class WaitingHeap(Generic[E]):
    """Entries ordered by ready time, with one timer armed for the earliest.

    ``on_due`` is called (from the clock's timer, with no arguments) when the earliest entry's
    time has come; it must call ``pop_due(now)`` and then ``rearm()``.
    """

    __slots__ = ("_armed_at", "_clock", "_heap", "_on_due", "_sequence", "_timer")

    def __init__(self, *, clock: Clock, on_due: Callable[[], None]) -> None:
        self._clock = clock
        self._on_due = on_due
        # Min-heap of (ready_at, sequence, entry); sequence keeps equal times in push order.
        self._heap: list[tuple[float, int, E]] = []
        self._sequence = itertools.count()
        # Invariant: _timer is None iff nothing is armed; _armed_at is its deadline.
        self._timer: Timer | None = None
        self._armed_at = 0.0

    def __len__(self) -> int:
        """Entries in the heap, stale ones included."""
        return len(self._heap)

    def push(self, ready_at: float, entry: E) -> None:
        """Schedule ``entry``; re-arms the timer if it is now the earliest."""
        heapq.heappush(self._heap, (ready_at, next(self._sequence), entry))
        if self._timer is None or ready_at < self._armed_at:
            self._arm(ready_at)

    def pop_due(self, now: float) -> list[tuple[float, E]]:
        """Remove and return every (ready_at, entry) with ``ready_at <= now``, earliest first."""
        heap = self._heap
        due: list[tuple[float, E]] = []
        while heap and heap[0][0] <= now:
            ready_at, _, entry = heapq.heappop(heap)
            due.append((ready_at, entry))
        return due

    def rearm(self) -> None:
        """Arm the timer for the earliest remaining entry (or disarm when empty)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap:
            self._arm(self._heap[0][0])

    def clear(self) -> None:
        """Drop every entry and disarm (queue shutdown)."""
        self._heap.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, ready_at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._armed_at = ready_at
        self._timer = self._clock.call_at(ready_at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._on_due()


class DelayingQueue(WorkQueue[K]):
    """``WorkQueue`` plus ``add_after`` (client-go ``TypedDelayingInterface``)."""

    def __init__(
        self, options: QueueOptions | None = None, *, metrics: QueueMetrics | None = None
    ) -> None:
        super().__init__(options, metrics=metrics)
        self._waiting: WaitingHeap[_Item[K]] = WaitingHeap(
            clock=self._clock, on_due=self._promote_due
        )

    def add_after(self, key: K, delay: float, *, priority: int = NORMAL_PRIORITY) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key, priority=priority)
            return
        if self._metrics is not None:
            self._metrics.retried()
        ready_at = self._clock.monotonic() + delay
        item = self._items.get(key)
        if item is None:
            item = _Item(key, priority, False, ready_at)
            self._items[key] = item
            self._waiting.push(ready_at, item)
            return
        if priority > item.priority:
            if item.ready:
                self._raise_priority(item, priority)
            else:
                item.priority = priority
        if not item.ready and ready_at < item.ready_at:
            item.ready_at = ready_at
            self._waiting.push(ready_at, item)

    def waiting_count(self) -> int:
        """Keys waiting for their ready time."""
        return sum(1 for item in self._items.values() if not item.ready)

    def shutdown(self) -> None:
        self._waiting.clear()
        for key in [key for key, item in self._items.items() if not item.ready]:
            del self._items[key]
        super().shutdown()

    def _promote_due(self) -> None:
        items = self._items
        for ready_at, item in self._waiting.pop_due(self._clock.monotonic()):
            if not item.ready and item.ready_at == ready_at and items.get(item.key) is item:
                item.ready = True
                self._became_ready(item)
        self._waiting.rearm()
