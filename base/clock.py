"""``Clock``: the one source of time, injectable so tests never wait on the wall clock.

Everything timed (delayed queue adds, rate limiters, backoff, watch timeouts, job conditions, TTL,
active deadlines, status batching) reads time from a ``Clock`` instead of ``time``, ``datetime`` or
``asyncio`` directly. Production uses ``REAL_CLOCK``; tests use ``FakeClock``, whose
``advance(seconds)`` fires due timers in deadline order and moves both time lines together, so one
fake clock drives an operator end to end.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["REAL_CLOCK", "Clock", "FakeClock", "RealClock", "Timer"]


class Timer(Protocol):
    """A scheduled callback; ``cancel()`` is idempotent and safe after it fired."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Two time lines that advance together, and timers and sleeps on the monotonic one.

    ``call_at`` callbacks run on the event loop thread (``RealClock``) or inside
    ``FakeClock.advance``; they must not block and must not raise.
    """

    def monotonic(self) -> float:
        """Seconds on a monotonic line; only differences are meaningful."""
        ...

    def utcnow(self) -> datetime:
        """Wall-clock time, timezone-aware UTC (what is written into objects)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for ``seconds`` of this clock's time; cancellable."""
        ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        """Run ``callback`` once ``monotonic() >= when``; needs a running loop for real time."""
        ...


class RealClock:
    """``time.monotonic``, ``datetime.now(UTC)`` and the running asyncio loop's timers."""

    __slots__ = ()

    # The C function itself, not a method wrapping it: informers read the clock once per watch
    # line and the queues once per item, and a Python frame per call showed in the profile.
    monotonic = staticmethod(time.monotonic)

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        # A relative delay: loop.time() need not share time.monotonic()'s origin (uvloop caches
        # its own time), but both advance at the same rate.
        return asyncio.get_running_loop().call_later(max(0.0, when - time.monotonic()), callback)


REAL_CLOCK: Clock = RealClock()
"""The process's real time; the default wherever a clock is optional."""


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when a test calls ``advance``.

    ``advance(seconds)`` runs every timer due up to ``monotonic() + seconds`` in (deadline,
    creation) order, setting the time to each timer's deadline while it runs, so callbacks observe
    the time they were scheduled for. ``utcnow()`` is ``wall_start`` plus the monotonic time
    elapsed since construction. Sleepers are woken through futures: their tasks resume at the
    loop's next turn, so a test does ``clock.advance(x)`` then yields to the loop before asserting
    on what the woken tasks did.
    """

    def __init__(
        self,
        start: float = 0.0,
        *,
        wall_start: datetime = datetime(2026, 1, 1, tzinfo=UTC),
    ) -> None:
        if wall_start.tzinfo is None:
            raise ValueError("FakeClock: wall_start must be timezone-aware (UTC)")
        self._start = start
        self._now = start
        self._wall_start = wall_start
        # Min-heap of (deadline, creation sequence, timer); cancelled timers are skipped lazily.
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._sequence = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def utcnow(self) -> datetime:
        return self._wall_start + timedelta(seconds=self._now - self._start)

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer(when, callback)
        heapq.heappush(self._timers, (when, next(self._sequence), timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self.call_at(self._now + seconds, wake)
        try:
            await future
        finally:
            timer.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0), firing due timers in order."""
        if seconds < 0:
            raise ValueError(f"FakeClock.advance: seconds must be >= 0, got {seconds}")
        target = self._now + seconds
        timers = self._timers
        while timers and timers[0][0] <= target:
            when, _, timer = heapq.heappop(timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.cancelled = True
            timer.callback()
        self._now = target

    def pending_timers(self) -> int:
        """Timers scheduled and not cancelled (for tests that check nothing leaks)."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)

    def next_deadline(self) -> float | None:
        """The earliest live timer's deadline, or None."""
        for when, _, timer in sorted(self._timers):
            if not timer.cancelled:
                return when
        return None
