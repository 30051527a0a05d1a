"""Limiter formulas and defaults (client-go default_rate_limiters.go)."""

from __future__ import annotations

import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.engine.ratelimiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    default_controller_rate_limiter,
)


def test_exponential_doubles_from_the_base_per_item() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
        base_delay=0.001, max_delay=1.0
    )
    assert [limiter.when("a") for _ in range(5)] == pytest.approx(
        [0.001, 0.002, 0.004, 0.008, 0.016]
    )
    assert limiter.when("b") == pytest.approx(0.001)
    assert limiter.num_requeues("a") == 5
    assert limiter.num_requeues("b") == 1
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.001)


def test_exponential_defaults_cap_at_1000_s_on_the_19th_failure() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("a") for _ in range(25)]
    assert delays[0] == pytest.approx(0.005)
    assert delays[17] == pytest.approx(0.005 * 2**17)  # 655.36 s, under the cap
    assert delays[18] == 1000.0
    assert all(delay == 1000.0 for delay in delays[18:])


def test_exponential_never_overflows() -> None:
    limiter: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
        base_delay=1.0, max_delay=1e300
    )
    delays = [limiter.when("a") for _ in range(3000)]
    assert delays[-1] == 1e300
    assert limiter.num_requeues("a") == 3000


def test_bucket_allows_the_burst_then_spaces_by_qps() -> None:
    clock = FakeClock()
    limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=100, clock=clock)
    assert [limiter.when(f"k{i}") for i in range(100)] == [0.0] * 100
    assert [limiter.when("x") for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert limiter.num_requeues("x") == 0


def test_bucket_refills_at_qps_up_to_burst_only() -> None:
    clock = FakeClock()
    limiter: BucketRateLimiter[str] = BucketRateLimiter(qps=10, burst=5, clock=clock)
    for _ in range(5):
        limiter.when("x")
    clock.advance(0.3)  # three tokens back
    assert [limiter.when("x") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.when("x") == pytest.approx(0.1)
    clock.advance(3600)  # an hour idle: still only `burst` tokens
    assert [limiter.when("x") for _ in range(5)] == [0.0] * 5
    assert limiter.when("x") == pytest.approx(0.1)


def test_max_of_takes_the_longest_and_forgets_all() -> None:
    clock = FakeClock()
    exponential: ItemExponentialFailureRateLimiter[str] = ItemExponentialFailureRateLimiter(
        base_delay=0.01, max_delay=100
    )
    bucket: BucketRateLimiter[str] = BucketRateLimiter(qps=1, burst=2, clock=clock)
    limiter = MaxOfRateLimiter(exponential, bucket)
    assert limiter.when("a") == pytest.approx(0.01)  # exponential wins, bucket 0
    assert limiter.when("a") == pytest.approx(0.02)
    assert limiter.when("a") == pytest.approx(1.0)  # bucket empty: 1 s > 0.04 s
    assert limiter.num_requeues("a") == 3
    limiter.forget("a")
    assert exponential.num_requeues("a") == 0


def test_default_controller_limiter_is_exponential_under_a_global_bucket() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    first = [limiter.when(f"ns/{i}") for i in range(100)]
    assert first == pytest.approx([0.005] * 100)
    assert limiter.when("ns/101") == pytest.approx(0.1)  # burst 100 spent, 10 qps
    assert limiter.when("ns/0") == pytest.approx(0.2)  # bucket (0.2) beats 0.01
    for _ in range(30):
        limiter.when("ns/hot")
    assert limiter.when("ns/hot") == 1000.0


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ItemExponentialFailureRateLimiter(base_delay=-1), "base_delay"),
        (lambda: BucketRateLimiter(qps=0), "qps must be > 0"),
        (lambda: BucketRateLimiter(burst=0), "burst >= 1"),
        (lambda: MaxOfRateLimiter(), "at least one limiter"),
    ],
)
def test_invalid_options_name_the_field(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]
