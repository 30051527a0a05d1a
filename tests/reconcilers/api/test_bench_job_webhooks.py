"""Micro-benchmarks of the job webhooks' handlers (``make bench``; skipped by the default run):
the CPU an admission costs the operator before HTTP. Compare the rows of one run."""

from __future__ import annotations

from typing import Any

import jsonpatch
from pytest_benchmark.fixture import BenchmarkFixture

from kubetrain.bench.webhook import sample_job
from kubetrain.engine.webhook.admission import json_patch
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.api.kinds import PYTORCHJOB
from kubetrain.reconcilers.api.webhooks import job_defaulter, job_validator


def request(obj: dict[str, Any], operation: str = "CREATE") -> dict[str, Any]:
    return {"uid": "u", "operation": operation, "object": obj, "oldObject": None}


def test_bench_defaulting_review(benchmark: BenchmarkFixture) -> None:
    handler = job_defaulter(PYTORCHJOB)
    req = request(sample_job("bench"))
    response = benchmark(handler, req)
    assert response.allowed and response.patch  # type: ignore[union-attr]


def test_bench_validating_review(benchmark: BenchmarkFixture) -> None:
    handler = job_validator(PYTORCHJOB)
    req = request(default_job(PYTORCHJOB, sample_job("bench")))
    response = benchmark(handler, req)
    assert response.allowed  # type: ignore[union-attr]


def test_bench_defaulting_patch_with_json_patch(benchmark: BenchmarkFixture) -> None:
    job = sample_job("bench")
    defaulted = default_job(PYTORCHJOB, job)
    assert benchmark(json_patch, job, defaulted)


def test_bench_defaulting_patch_with_jsonpatch_make_patch(benchmark: BenchmarkFixture) -> None:
    """The library diff the handler used first: the ratio to the row above is why it went."""
    job = sample_job("bench")
    defaulted = default_job(PYTORCHJOB, job)
    assert benchmark(jsonpatch.make_patch, job, defaulted).patch
