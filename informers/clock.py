"""``Clock``: the time source of reflectors and informers, injectable so tests run in fake time.

Reflectors wait a lot (backoff up to 30 s, Retry-After, 5-10 min watches, inactivity timeouts,
resync periods). Every such wait goes through a ``Clock``; tests pass a fake whose ``sleep`` returns
when the test advances time, so a scenario with minutes of backoff runs in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """Monotonic seconds and an awaitable sleep on the same time line."""

    def monotonic(self) -> float:
        """Seconds on a monotonic time line (only differences are meaningful)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return after ``seconds`` on this clock's time line; cancellable."""
        ...


class SystemClock:
    """Real time: ``time.monotonic`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
