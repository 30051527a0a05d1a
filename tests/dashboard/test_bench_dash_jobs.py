"""Benchmarks: ``/api/jobs`` over 50,000 finished jobs (skipped by default).

Run: .venv/bin/pytest -p no:randomly tests/dashboard/test_bench_dash_jobs.py --benchmark-only -s

Each round is what the handler does for a request: parse the query, ``JobIndex.query``, encode
the answer with orjson. The first page sorted by ``created`` and a page deep in the list are
slices of a sorted list; a search scans the rows once per index version (``_cold``: the index
changed before each request, the worst case under churn) and is a slice again until the next
change (``_warm``: other pages, other clients).
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from dashboard_samples import finished_row

from kubetrain.dashboard.index import JobIndex
from kubetrain.dashboard.server import _job_query

ROWS = 50_000


@pytest.fixture(scope="module")
def index() -> JobIndex:
    index = JobIndex()
    for i in range(ROWS):
        key, row = finished_row(i)
        index.put_row(key, row)
    return index


def request(index: JobIndex, **params: str) -> bytes:
    return orjson.dumps(index.query(_job_query(params)))


def test_bench_first_page_by_created(benchmark: Any, index: JobIndex) -> None:
    answer = orjson.loads(benchmark(request, index, limit="50"))
    assert answer["total"] == ROWS and answer["items"][0]["name"] == f"job-{ROWS - 1:06d}"


def test_bench_page_deep_in_the_list_by_name(benchmark: Any, index: JobIndex) -> None:
    answer = orjson.loads(
        benchmark(request, index, sort="name", order="asc", offset="40000", limit="100")
    )
    assert answer["items"][0]["name"] == "job-040000"


def test_bench_search_warm(benchmark: Any, index: JobIndex) -> None:
    answer = orjson.loads(benchmark(request, index, q="job-0123", limit="50"))
    assert answer["total"] == 100


def test_bench_search_cold(benchmark: Any, index: JobIndex) -> None:
    key, row = finished_row(0)
    flip = [0]

    def changed_then_search() -> bytes:
        flip[0] += 1
        index.put_row(key, {**row, "ready": flip[0]})  # a new version: the cached view is stale
        return request(index, q="job-0123", limit="50")

    answer = orjson.loads(benchmark(changed_then_search))
    assert answer["total"] == 100
