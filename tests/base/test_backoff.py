"""Backoff: client-go's reflector delays, 0.8 s doubling to 30 s, jittered, reset after 2 min."""

from __future__ import annotations

import random

import pytest

from kubetrain.base.backoff import Backoff, BackoffOptions
from kubetrain.base.clock import FakeClock


def test_without_jitter_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(BackoffOptions(jitter=0.0), clock=FakeClock())
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays == pytest.approx([0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0])


def test_full_jitter_stays_within_base_and_twice_base_capped() -> None:
    backoff = Backoff(clock=FakeClock(), rng=random.Random(7))
    for base in [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]:
        assert base <= backoff.next_delay() < 2 * base


def test_jitter_applies_after_the_cap_so_capped_delays_still_spread() -> None:
    """client-go's wait.Backoff: at the cap, delays are in [30, 60) s, not all exactly 30 s."""
    backoff = Backoff(clock=FakeClock(), rng=random.Random(3))
    for _ in range(8):
        backoff.next_delay()
    capped = [backoff.next_delay() for _ in range(20)]
    assert all(30.0 <= d < 60.0 for d in capped)
    assert len({round(d, 3) for d in capped}) == 20


def test_two_quiet_minutes_on_the_clock_start_the_sequence_again() -> None:
    clock = FakeClock()
    backoff = Backoff(BackoffOptions(jitter=0.0), clock=clock)
    assert [backoff.next_delay(), backoff.next_delay()] == pytest.approx([0.8, 1.6])
    clock.advance(119.9)
    assert backoff.next_delay() == pytest.approx(3.2)  # not quiet long enough
    clock.advance(120.0)
    assert backoff.next_delay() == pytest.approx(0.8)


def test_reset_starts_from_initial() -> None:
    backoff = Backoff(BackoffOptions(jitter=0.0, initial=1.0, factor=3.0), clock=FakeClock())
    assert [backoff.next_delay(), backoff.next_delay()] == pytest.approx([1.0, 3.0])
    backoff.reset()
    assert backoff.next_delay() == pytest.approx(1.0)


def test_options_are_validated_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="initial"):
        BackoffOptions(initial=0)
    with pytest.raises(ValueError, match="initial"):
        BackoffOptions(initial=31, cap=30)
    with pytest.raises(ValueError, match="factor"):
        BackoffOptions(factor=0.5)
    with pytest.raises(ValueError, match="jitter"):
        BackoffOptions(jitter=-1)
