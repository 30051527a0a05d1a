"""Retry delays for failed work items: client-go's rate limiters, same formulas and defaults.

A limiter answers "how long should this item wait before its next attempt?" (``when``), keeps
per-item failure history until ``forget``, and reports ``num_requeues``. ``when`` is a *decision
that consumes*: each call counts one more failure (exponential) or takes one token (bucket), so
call it exactly once per retry. The default controller limiter is the max of per-item exponential
backoff (5 ms .. 1000 s) and a global token bucket (10 qps, burst 100), as in client-go.

All limiters are single-event-loop objects (no locks) and generic over the hashable key type.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.tokenbucket import TokenBucket

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)

#: client-go DefaultTypedControllerRateLimiter: per-item exponential base and cap (seconds).
DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
#: client-go DefaultTypedControllerRateLimiter: overall retry bucket ("only for retry speed").
DEFAULT_BUCKET_QPS = 10.0
DEFAULT_BUCKET_BURST = 100


class RateLimiter(Protocol[K_contra]):
    """client-go's ``TypedRateLimiter``: When / Forget / NumRequeues."""

    def when(self, item: K_contra) -> float:
        """Seconds the item should wait now; records one more attempt. Never negative."""
        ...

    def forget(self, item: K_contra) -> None:
        """Drop the item's history (call when it succeeded or was given up on)."""
        ...

    def num_requeues(self, item: K_contra) -> int:
        """How many times ``when`` was called for the item since the last ``forget``."""
        ...


class ItemExponentialFailureRateLimiter(Generic[K]):
    """``base_delay * 2**failures(item)``, capped at ``max_delay``.

    The first ``when`` returns ``base_delay``; with the defaults the cap is reached on the 19th
    consecutive failure (0.005 * 2**18 > 1000). Large exponents never overflow: they return the cap.
    """

    __slots__ = ("_base_delay", "_failures", "_max_delay")

    def __init__(
        self, *, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY
    ) -> None:
        if base_delay < 0 or max_delay < 0:
            raise ValueError(
                "ItemExponentialFailureRateLimiter: base_delay and max_delay must be >= 0 "
                f"(got base_delay={base_delay}, max_delay={max_delay})"
            )
        self._base_delay = base_delay
        self._max_delay = max_delay
        # Invariant: only items with at least one recorded failure are present.
        self._failures: dict[K, int] = {}

    def when(self, item: K) -> float:
        exponent = self._failures.get(item, 0)
        self._failures[item] = exponent + 1
        # Overflow guard: 2.0**1024 raises; anything past 2**62 is beyond any sane cap anyway.
        if exponent > 62:
            return self._max_delay
        backoff = math.ldexp(self._base_delay, exponent)
        return min(backoff, self._max_delay)

    def forget(self, item: K) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: K) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[K]):
    """A token bucket over all items (golang.org/x/time/rate ``Reserve().Delay()``).

    The bucket starts full (``burst`` tokens) and refills at ``qps`` tokens per second of the
    injected clock. Every ``when`` takes a token, possibly in the future: the returned delay is
    how long until that token exists. ``forget`` is a no-op and ``num_requeues`` is always 0.
    """

    __slots__ = ("_bucket",)

    def __init__(
        self,
        *,
        qps: float = DEFAULT_BUCKET_QPS,
        burst: int = DEFAULT_BUCKET_BURST,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(
                f"BucketRateLimiter: qps must be > 0 and burst >= 1 (got qps={qps}, burst={burst})"
            )
        self._bucket = TokenBucket(qps, burst, clock=clock)

    def when(self, item: K) -> float:
        return self._bucket.reserve()

    def forget(self, item: K) -> None:
        return None

    def num_requeues(self, item: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest delay of several limiters; ``num_requeues`` is their max; ``forget`` forgets all.

    As client-go warns, a bucket's burst may appear exceeded when particular items were
    separately delayed longer by another limiter.
    """

    __slots__ = ("_limiters",)

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter: pass at least one limiter")
        self._limiters = limiters

    def when(self, item: K) -> float:
        # Every limiter must see the call (each records it), so no short-circuit.
        return max([limiter.when(item) for limiter in self._limiters])

    def forget(self, item: K) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: K) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(*, clock: Clock = REAL_CLOCK) -> MaxOfRateLimiter[K]:
    """client-go's default: max(exponential 5 ms .. 1000 s per item, bucket 10 qps burst 100)."""
    exponential: ItemExponentialFailureRateLimiter[K] = ItemExponentialFailureRateLimiter()
    bucket: BucketRateLimiter[K] = BucketRateLimiter(clock=clock)
    return MaxOfRateLimiter(exponential, bucket)
