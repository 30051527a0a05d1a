"""Percentiles and summaries of latency samples (pure functions, no numpy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["SUMMARY_KEYS", "latency_figures", "percentile", "summarize"]

SUMMARY_KEYS = ("count", "p50", "p90", "p99", "max", "mean")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks
    (numpy's default); None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p90, p99, max, mean of ``values`` (None where there are no values)."""
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def latency_figures(
    samples: Mapping[str, Sequence[float]], keys: Sequence[str]
) -> dict[str, float | int | None]:
    """``{"<name>_<key>": summarize(values)[key]}`` for every latency ``name`` of ``samples``
    and every summary ``key`` (e.g. ``("p50", "p99")``): a scenario's latency rows."""
    figures: dict[str, float | int | None] = {}
    for name, values in samples.items():
        summary = summarize(values)
        for key in keys:
            figures[f"{name}_{key}"] = summary[key]
    return figures
