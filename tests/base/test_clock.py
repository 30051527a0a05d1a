"""FakeClock fires timers deterministically; RealClock follows the loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from kubetrain.base.clock import FakeClock, RealClock


def test_advance_fires_due_timers_in_deadline_order_at_their_time() -> None:
    clock = FakeClock(start=10.0)
    fired: list[tuple[str, float]] = []
    clock.call_at(12.0, lambda: fired.append(("b", clock.monotonic())))
    clock.call_at(11.0, lambda: fired.append(("a", clock.monotonic())))
    clock.call_at(12.0, lambda: fired.append(("c", clock.monotonic())))
    clock.call_at(20.0, lambda: fired.append(("late", clock.monotonic())))
    clock.advance(2.0)
    assert fired == [("a", 11.0), ("b", 12.0), ("c", 12.0)]
    assert clock.monotonic() == 12.0
    assert clock.pending_timers() == 1
    assert clock.next_deadline() == 20.0


def test_cancelled_timer_never_fires() -> None:
    clock = FakeClock()
    fired: list[int] = []
    timer = clock.call_at(1.0, lambda: fired.append(1))
    timer.cancel()
    clock.advance(5)
    assert fired == []
    assert clock.pending_timers() == 0


def test_timer_scheduled_by_a_callback_fires_in_the_same_advance() -> None:
    clock = FakeClock()
    fired: list[float] = []

    def first() -> None:
        fired.append(clock.monotonic())
        clock.call_at(clock.monotonic() + 1, lambda: fired.append(clock.monotonic()))

    clock.call_at(1.0, first)
    clock.advance(3)
    assert fired == [1.0, 2.0]


def test_negative_advance_is_rejected() -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        FakeClock().advance(-1)


async def test_sleepers_wake_only_when_time_reaches_them() -> None:
    clock = FakeClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("two", 2)), asyncio.create_task(sleeper("one", 1))]
    await asyncio.sleep(0)
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert woke == ["one"]
    clock.advance(0.5)
    await asyncio.gather(*tasks)
    assert woke == ["one", "two"]


async def test_cancelled_sleeper_leaves_no_timer() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending_timers() == 0


async def test_real_clock_timer_runs_on_the_loop() -> None:
    clock = RealClock()
    fired = asyncio.Event()
    start = clock.monotonic()
    clock.call_at(start + 0.01, fired.set)
    await asyncio.wait_for(fired.wait(), timeout=5)
    assert clock.monotonic() >= start + 0.01 - 1e-3


def test_fake_wall_time_moves_with_monotonic_time() -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    clock = FakeClock(50.0, wall_start=start)
    assert clock.utcnow() == start
    clock.advance(90.5)
    assert clock.monotonic() == 140.5
    assert clock.utcnow() == start + timedelta(seconds=90.5)


def test_fake_clock_refuses_a_naive_wall_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(wall_start=datetime(2026, 1, 1))


def test_real_clock_wall_time_is_utc() -> None:
    assert RealClock().utcnow().tzinfo is UTC
