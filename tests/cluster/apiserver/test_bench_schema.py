"""Cost of the custom-resource write path's schema steps for a realistic PyTorchJob.

Run with ``pytest tests/cluster/apiserver/test_bench_schema.py --benchmark-only``.
"""

from __future__ import annotations

from typing import Any

from pytorchjob_schema import PYTORCHJOB_SCHEMA, pytorchjob

from kubetrain.cluster.apiserver.schema import StructuralSchema

SCHEMA = StructuralSchema(PYTORCHJOB_SCHEMA)


def test_bench_validate(benchmark: Any) -> None:
    job = pytorchjob()
    assert benchmark(SCHEMA.validate, job) == []


def test_bench_prune(benchmark: Any) -> None:
    job = pytorchjob()
    assert benchmark(SCHEMA.prune, job) == []


def test_bench_apply_defaults(benchmark: Any) -> None:
    job = pytorchjob()
    benchmark(SCHEMA.apply_defaults, job)
    assert job["spec"]["runPolicy"]["cleanPodPolicy"] == "None"


def test_bench_write_path(benchmark: Any) -> None:
    """prune + defaults + validate on a fresh copy, as one CR create does (copy included)."""

    def write() -> int:
        job = pytorchjob()
        SCHEMA.prune(job)
        SCHEMA.apply_defaults(job)
        return len(SCHEMA.validate(job))

    assert benchmark(write) == 0
