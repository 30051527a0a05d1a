"""Retries: ``add_rate_limited`` / ``forget`` / ``num_requeues`` over a rate limiter.

client-go's ``TypedRateLimitingInterface``: a failed item goes back with the delay its limiter
decides (per-item exponential backoff under a global bucket by default). The limiter keeps
per-item history until ``forget``; a worker MUST call ``forget`` when an item succeeds (or is
given up on), or its failures are remembered forever and its next retry starts slow. ``forget``
does not replace ``done``: call both.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol, TypeVar

from kubetrain.engine.delaying_queue import DelayingInterface, DelayingQueue
from kubetrain.engine.queue import NORMAL_PRIORITY, QueueOptions
from kubetrain.engine.ratelimiters import RateLimiter, default_controller_rate_limiter
from kubetrain.engine.workqueue_metrics import QueueMetrics

K = TypeVar("K", bound=Hashable)


class RateLimitingInterface(DelayingInterface[K], Protocol):
    """A delaying queue with limiter-decided retries."""

    def add_rate_limited(self, key: K, *, priority: int = NORMAL_PRIORITY) -> None:
        """``add_after(key, limiter.when(key))``: records one more failure of ``key``."""
        ...

    def forget(self, key: K) -> None:
        """Clear the limiter's history of ``key`` (not the queue: still call ``done``)."""
        ...

    def num_requeues(self, key: K) -> int:
        """Failures recorded for ``key`` since the last ``forget``."""
        ...


class RateLimitingQueue(DelayingQueue[K]):
    """The queue controllers use: priorities, delays, dedup and retries.

    ``rate_limiter`` defaults to ``default_controller_rate_limiter(clock=options.clock)``. One
    limiter may be shared by several queues on one loop (sharded queues share one bucket).
    """

    def __init__(
        self,
        options: QueueOptions | None = None,
        *,
        rate_limiter: RateLimiter[K] | None = None,
        metrics: QueueMetrics | None = None,
    ) -> None:
        super().__init__(options, metrics=metrics)
        self._rate_limiter: RateLimiter[K] = (
            rate_limiter
            if rate_limiter is not None
            else default_controller_rate_limiter(clock=self._clock)
        )

    @property
    def rate_limiter(self) -> RateLimiter[K]:
        return self._rate_limiter

    def add_rate_limited(self, key: K, *, priority: int = NORMAL_PRIORITY) -> None:
        if self._shutting_down:
            return
        self.add_after(key, self._rate_limiter.when(key), priority=priority)

    def forget(self, key: K) -> None:
        self._rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._rate_limiter.num_requeues(key)
