"""Percentiles (linear interpolation, numpy's default) and summaries of latency samples."""

from __future__ import annotations

import pytest

from kubetrain.bench.stats import SUMMARY_KEYS, latency_figures, percentile, summarize


def test_percentile_interpolates_between_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # unsorted on purpose
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 90) == pytest.approx(3.7)


def test_percentile_of_one_value_and_of_none() -> None:
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_percentile_rejects_q_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.100"):
        percentile([1.0], 101)


def test_summarize_has_every_key() -> None:
    s = summarize([float(i) for i in range(1, 101)])
    assert tuple(s) == SUMMARY_KEYS
    assert s["count"] == 100
    assert s["p50"] == pytest.approx(50.5)
    assert s["p99"] == pytest.approx(99.01)
    assert s["max"] == 100.0
    assert s["mean"] == pytest.approx(50.5)
    empty = summarize([])
    assert empty["count"] == 0
    assert all(empty[k] is None for k in SUMMARY_KEYS if k != "count")


def test_latency_figures_names_each_latency_and_key() -> None:
    figures = latency_figures({"a": [1.0, 3.0], "b": []}, ("p50", "max"))
    assert figures == {"a_p50": 2.0, "a_max": 3.0, "b_p50": None, "b_max": None}
