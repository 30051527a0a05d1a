"""``JobControllerOptions`` refuses values it cannot run with, naming the field."""

from __future__ import annotations

import pytest

from kubetrain.base.clock import REAL_CLOCK
from kubetrain.reconcilers.jobcontroller import JobControllerOptions


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="status_batch_seconds"):
        JobControllerOptions(status_batch_seconds=-1)


def test_no_creation_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="create_concurrency"):
        JobControllerOptions(create_concurrency=0)


def test_the_default_clock_is_the_real_one() -> None:
    assert JobControllerOptions().clock is REAL_CLOCK
