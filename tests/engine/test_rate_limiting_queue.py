"""add_rate_limited / forget / num_requeues over the queue's limiter."""

from __future__ import annotations

import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.engine.queue import LOW_PRIORITY, QueueOptions
from kubetrain.engine.rate_limiting_queue import RateLimitingQueue
from kubetrain.engine.ratelimiters import ItemExponentialFailureRateLimiter


def make_queue(base: float = 1.0) -> tuple[RateLimitingQueue[str], FakeClock]:
    clock = FakeClock()
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
        base_delay=base, max_delay=60.0
    )
    return RateLimitingQueue(QueueOptions(clock=clock), rate_limiter=limiter), clock


def test_retry_waits_the_limiters_delay_and_backs_off() -> None:
    queue, clock = make_queue()
    for expected in (1.0, 2.0, 4.0):
        queue.add_rate_limited("ns/a")
        clock.advance(expected - 0.001)
        assert len(queue) == 0
        clock.advance(0.001)
        assert len(queue) == 1
        queue.done(queue.get_nowait())
    assert queue.num_requeues("ns/a") == 3


def test_forget_resets_the_backoff_but_not_the_queue() -> None:
    queue, clock = make_queue()
    queue.add_rate_limited("ns/a")
    queue.add_rate_limited("ns/a")  # merged: ready at the earlier time (1 s)
    assert queue.num_requeues("ns/a") == 2
    queue.forget("ns/a")
    assert queue.num_requeues("ns/a") == 0
    assert queue.queued_count() == 1, "forget only clears limiter history"
    clock.advance(1)
    assert len(queue) == 1
    queue.done(queue.get_nowait())
    queue.add_rate_limited("ns/a")
    clock.advance(1)
    assert len(queue) == 1, "after forget the next retry starts at the base delay again"


def test_failures_are_counted_per_key() -> None:
    queue, clock = make_queue()
    queue.add_rate_limited("ns/a")
    clock.advance(1)
    queue.done(queue.get_nowait())
    queue.add_rate_limited("ns/a")
    queue.add_rate_limited("ns/b")
    clock.advance(1)
    assert queue.get_nowait() == "ns/b"
    assert len(queue) == 0
    clock.advance(1)
    assert queue.get_nowait() == "ns/a"


def test_rate_limited_add_carries_its_priority() -> None:
    queue, clock = make_queue()
    queue.add("ns/backlog", priority=LOW_PRIORITY)
    queue.add_rate_limited("ns/retry")
    clock.advance(1)
    assert queue.get_nowait() == "ns/retry"


def test_default_limiter_is_the_controller_limiter_on_the_queue_clock() -> None:
    clock = FakeClock()
    queue: RateLimitingQueue[str] = RateLimitingQueue(QueueOptions(clock=clock))
    assert queue.rate_limiter.when("probe") == pytest.approx(0.005)
    assert queue.rate_limiter.when("probe") == pytest.approx(0.010)
    # Exhaust the 100-token bucket: the next item waits for a refill on the fake clock.
    for index in range(98):
        queue.rate_limiter.when(f"other-{index}")
    assert queue.rate_limiter.when("fresh") == pytest.approx(0.1)
    clock.advance(10)
    assert queue.rate_limiter.when("fresh-2") == pytest.approx(0.005)


def test_add_rate_limited_after_shutdown_records_nothing() -> None:
    queue, _ = make_queue()
    queue.shutdown()
    queue.add_rate_limited("ns/a")
    assert queue.num_requeues("ns/a") == 0
    assert queue.queued_count() == 0
