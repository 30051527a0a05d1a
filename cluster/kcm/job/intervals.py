"""Sets of completion indexes as ordered, non-adjacent intervals, printed "1,3-5" as kube does
(``indexed_job_utils.go`` ``orderedIntervals``): ``status.completedIndexes``,
``status.failedIndexes`` and ``successPolicy.rules[].succeededIndexes``.

Invariant of an ``Intervals`` value: sorted, each ``first <= last``, and any two consecutive
intervals separated by at least one missing index (adjacent ones are merged).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "Intervals",
    "format_intervals",
    "has",
    "merge",
    "parse_intervals",
    "total",
    "with_indexes",
]

Intervals = list[tuple[int, int]]


def parse_intervals(text: str | None, completions: int) -> Intervals:
    """kube's ``parseIndexesFromString``: bad fragments are skipped, indexes at or above
    ``completions`` dropped, adjacent intervals merged."""
    out: Intervals = []
    if not text:
        return out
    for fragment in text.split(","):
        bounds = fragment.split("-")
        try:
            first = int(bounds[0])
        except ValueError:
            continue
        if first >= completions:
            break
        if len(bounds) > 1:
            try:
                last = int(bounds[1])
            except ValueError:
                continue
            last = min(last, completions - 1)
        else:
            last = first
        if out and out[-1][1] == first - 1:
            out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def merge(a: Intervals, b: Intervals) -> Intervals:
    """The union of two interval lists."""
    out: Intervals = []
    for first, last in sorted(a + b):
        if out and first <= out[-1][1] + 1:
            if last > out[-1][1]:
                out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def with_indexes(intervals: Intervals, indexes: Iterable[int]) -> Intervals:
    """``intervals`` plus single ``indexes``."""
    return merge(intervals, [(i, i) for i in indexes])


def total(intervals: Intervals) -> int:
    return sum(last - first + 1 for first, last in intervals)


def has(intervals: Intervals, index: int) -> bool:
    return any(first <= index <= last for first, last in intervals)


def format_intervals(intervals: Intervals) -> str:
    """ "1,3-5"; two consecutive indexes print as "3,4" (kube's ``String``)."""
    parts: list[str] = []
    for first, last in intervals:
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
    return ",".join(parts)
