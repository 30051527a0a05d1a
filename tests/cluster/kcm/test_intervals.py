"""Completed/failed indexes as kube prints and parses them (``job/intervals.py``)."""

from __future__ import annotations

from kubetrain.cluster.kcm.job.intervals import (
    format_intervals,
    has,
    merge,
    parse_intervals,
    total,
    with_indexes,
)


def test_format_compresses_runs_and_prints_pairs_apart() -> None:
    assert format_intervals([(1, 1), (3, 5)]) == "1,3-5"
    assert format_intervals([(3, 4)]) == "3,4"
    assert format_intervals([]) == ""


def test_parse_merges_adjacent_and_drops_indexes_past_completions() -> None:
    assert parse_intervals("1,3-5,6", 10) == [(1, 1), (3, 6)]
    assert parse_intervals("0-9", 4) == [(0, 3)]
    assert parse_intervals("5,7", 6) == [(5, 5)]
    assert parse_intervals("x,2", 4) == [(2, 2)]
    assert parse_intervals(None, 4) == []


def test_union_count_and_membership() -> None:
    got = with_indexes([(0, 1)], [2, 5])
    assert got == [(0, 2), (5, 5)]
    assert merge([(0, 0)], [(2, 3)]) == [(0, 0), (2, 3)]
    assert total(got) == 4
    assert has(got, 5) and not has(got, 4)
