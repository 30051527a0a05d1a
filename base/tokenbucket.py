"""``TokenBucket``: ``rate`` tokens a second, ``burst`` deep, on an injected clock.

The one token bucket of the project: the API client's QPS/burst, the work queue's overall rate
limiter and the event recorder's spam filter all take tokens from one of these, so a fake clock
refills them all.
"""

from __future__ import annotations

from .clock import Clock

__all__ = ["TokenBucket"]


class TokenBucket:
    """A token bucket like ``golang.org/x/time/rate.Limiter``: ``rate`` tokens/s, ``burst`` deep.

    ``reserve()`` takes one token now and returns how long the caller must wait for it; tokens
    may go negative, so concurrent callers queue in arrival order without locks or tasks.
    ``try_take()`` takes a token only if one is available (for dropping instead of waiting).
    Single event loop only.
    """

    __slots__ = ("_clock", "_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, *, clock: Clock) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"TokenBucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)  # invariant: <= burst; negative = reserved ahead
        self._last = clock.monotonic()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._last = now

    def reserve(self) -> float:
        """Take a token; return the seconds until it is really available (0 if now)."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def try_take(self) -> bool:
        """Take a token if one is available now; False (nothing taken) otherwise."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    @property
    def tokens(self) -> float:
        self._refill()
        return self._tokens
