"""The soak scenario's slope fit and leak rule (``bench/scenarios/soak.py``) on synthetic series:
flat with noise is no leak, steady growth is, a sawtooth reset by restarts is, growth that the
live jobs explain is not, and the warm-up and the drain are left out."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping

import pytest

from kubetrain.bench.scenarios.soak import fit_slope, leak_slopes

Rows = list[dict[str, float | int | None]]


def series(
    value: Callable[[float, float], float],
    *,
    seconds: float = 1800,
    every: float = 2.0,
    restart_every: float = 300,
    extra: Callable[[float], Mapping[str, float | int]] | None = None,
) -> Rows:
    """Rows every ``every`` s; ``value(t, epoch_t)`` and ``extra(t) -> dict`` give the columns."""
    rows: Rows = []
    t = 0.0
    while t < seconds:
        epoch = int(t // restart_every)
        epoch_t = t - epoch * restart_every
        row: dict[str, float | int | None] = {"t": t, "epoch": epoch, "epoch_t": epoch_t}
        row["y"] = value(t, epoch_t)
        if extra is not None:
            row.update(extra(t))
        rows.append(row)
        t += every
    return rows


def test_flat_with_noise_is_no_leak() -> None:
    rng = random.Random(7)
    rows = series(lambda t, e: 100 + rng.gauss(0, 3))
    fit = fit_slope(rows, "y", warmup_seconds=30)
    assert fit.epochs == 6
    assert fit.slope_per_hour is not None and fit.stderr_per_hour is not None
    assert abs(fit.slope_per_hour) < 3 * fit.stderr_per_hour + 1
    assert not fit.leak_suspected, fit.reason


def test_linear_growth_is_a_leak() -> None:
    rng = random.Random(7)
    rows = series(lambda t, e: 100 + 50 * t / 3600 + rng.gauss(0, 1), restart_every=1e9)
    fit = fit_slope(rows, "y", warmup_seconds=30)
    assert fit.epochs == 1
    assert fit.slope_per_hour == pytest.approx(50, rel=0.1)
    assert fit.leak_suspected, fit.reason


def test_sawtooth_reset_by_restarts_is_a_leak() -> None:
    rng = random.Random(3)
    rows = series(lambda t, e: 80 + 40 * e / 3600 + rng.gauss(0, 0.3))
    fit = fit_slope(rows, "y", warmup_seconds=30)
    assert fit.slope_per_hour == pytest.approx(40, rel=0.15)
    assert all(s is not None and s > 0 for s in fit.epoch_slopes_per_hour)
    assert fit.leak_suspected, fit.reason


def test_small_growth_is_not_material() -> None:
    # Clearly above noise, but 2/h on a level of 1000 is below 10 % of the level per hour.
    rows = series(lambda t, e: 1000 + 2 * t / 3600, restart_every=1e9)
    fit = fit_slope(rows, "y", warmup_seconds=30)
    assert fit.slope_per_hour == pytest.approx(2, rel=0.01)
    assert not fit.leak_suspected
    assert "below" in fit.reason


def test_growth_explained_by_live_jobs_is_no_leak() -> None:
    rng = random.Random(5)

    def extra(t: float) -> dict[str, float]:
        return {"jobs": 10 + 40 * t / 1800}  # the load grows; the cache follows it

    rows = series(
        lambda t, e: 5 * (10 + 40 * t / 1800) + rng.gauss(0, 2), extra=extra, restart_every=1e9
    )
    assert fit_slope(rows, "y", warmup_seconds=30).leak_suspected  # without the covariate
    fit = fit_slope(rows, "y", warmup_seconds=30, covariate="jobs")
    assert not fit.leak_suspected, fit.reason
    assert abs(fit.slope_per_hour or 0) < 20


def test_warm_up_and_drain_are_left_out() -> None:
    # Steep rise in each epoch's first 60 s (20 % of 300 s), a fall while draining: flat else.
    def value(t: float, e: float) -> float:
        if t >= 1500:
            return 100 - (t - 1500)
        return 100 - max(0.0, 60 - e)

    rows = series(value, extra=lambda t: {"draining": int(t >= 1500)})
    fit = fit_slope(rows, "y", warmup_seconds=30)
    assert fit.slope_per_hour == pytest.approx(0, abs=1e-6)
    assert fit.epochs == 5
    assert not fit.leak_suspected


def test_too_few_samples() -> None:
    fit = fit_slope(series(lambda t, e: 1.0, seconds=4), "y", warmup_seconds=30)
    assert fit.slope_per_hour is None and not fit.leak_suspected


def test_leak_slopes_covers_every_series() -> None:
    rows = series(
        lambda t, e: 1.0,
        extra=lambda t: {
            "rss_mib": 60.0, "open_fds": 40, "asyncio_tasks": 150,
            "cached_objects": 90 + t / 10, "live_jobs": 7,
        },
    )  # fmt: skip
    fits = leak_slopes(rows, warmup_seconds=30)
    assert set(fits) == {"rss_mib", "open_fds", "asyncio_tasks", "cached_objects"}
    assert fits["cached_objects"].covariate == "live_jobs"
    assert fits["cached_objects"].leak_suspected
    assert not fits["rss_mib"].leak_suspected
