"""TokenBucket: burst first, then the rate, on the injected clock."""

from __future__ import annotations

import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.base.tokenbucket import TokenBucket


def test_burst_then_rate() -> None:
    clock = FakeClock(1000.0)
    bucket = TokenBucket(10.0, 3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)  # queued behind the previous reservation
    clock.advance(10)  # refills to burst, not beyond
    assert bucket.tokens == pytest.approx(3.0)
    assert bucket.try_take() and bucket.try_take() and bucket.try_take()
    assert not bucket.try_take()


def test_rejects_a_rate_or_burst_that_cannot_refill() -> None:
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        TokenBucket(0.0, 1, clock=FakeClock())
    with pytest.raises(ValueError, match="rate > 0 and burst >= 1"):
        TokenBucket(1.0, 0, clock=FakeClock())
