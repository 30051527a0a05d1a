"""``Backoff``: jittered exponential delays between failed attempts (reflectors, leader election).

client-go's reflector backoff (controller-machinery.md 2.1): 800 ms doubling to a 30 s cap, full
jitter applied after the cap (each delay in [d, 2d) for the capped base d, as client-go's
``wait.Backoff.Step``: at the cap, delays spread over 30-60 s, so informers that failed together do
not retry in lockstep), reset once 2 minutes pass without a backoff. Against an unhealthy API
server that is at most about 0.2 requests per second per informer instead of a hot loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .clock import REAL_CLOCK, Clock

__all__ = ["Backoff", "BackoffOptions"]


@dataclass(frozen=True, slots=True)
class BackoffOptions:
    """Backoff parameters; the defaults are client-go's reflector values."""

    initial: float = 0.8
    """First delay, seconds."""
    factor: float = 2.0
    """Each consecutive failure multiplies the base delay by this."""
    jitter: float = 1.0
    """A delay is ``base * (1 + jitter * U[0, 1))``, the base capped first."""
    cap: float = 30.0
    """No base delay is longer than this, seconds (a jittered delay: up to ``cap * (1 +
    jitter)``)."""
    reset_after: float = 120.0
    """When this long has passed since the previous backoff, start again from ``initial``."""

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap:
            raise ValueError(
                f"BackoffOptions.initial must be in (0, cap={self.cap}], got {self.initial}"
            )
        if self.factor < 1:
            raise ValueError(f"BackoffOptions.factor must be >= 1, got {self.factor}")
        if self.jitter < 0:
            raise ValueError(f"BackoffOptions.jitter must be >= 0, got {self.jitter}")


class Backoff:
    """Consecutive-failure delays; one instance per reflector. Not shared between tasks."""

    def __init__(
        self,
        options: BackoffOptions | None = None,
        *,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.options = options or BackoffOptions()
        self._clock = clock
        self._rng = rng or random.Random()
        self._base = self.options.initial  # the next delay before jitter; initial <= _base <= cap
        self._last_backoff_at: float | None = None  # clock time of the previous next_delay()

    def next_delay(self) -> float:
        """The delay to wait now, in seconds; advances the sequence."""
        opts = self.options
        now = self._clock.monotonic()
        if self._last_backoff_at is not None and now - self._last_backoff_at >= opts.reset_after:
            self._base = opts.initial
        self._last_backoff_at = now
        delay = self._base * (1.0 + opts.jitter * self._rng.random())
        self._base = min(opts.cap, self._base * opts.factor)
        return delay

    def reset(self) -> None:
        """Start again from ``initial`` at the next failure."""
        self._base = self.options.initial
        self._last_backoff_at = None
