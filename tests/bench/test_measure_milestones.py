"""JobWatch turns job and pod events into per-job milestones (no cluster: handlers called directly)."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrain.bench.measure import JOB_NAME_LABEL, JobTimes, JobWatch, parse_time


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pod(name: str, job: str, phase: str) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "labels": {JOB_NAME_LABEL: job}},
        "status": {"phase": phase},
    }


def job(name: str, *conditions: str, completion: str | None = None, ttl: int | None = None) -> dict:
    status: dict[str, Any] = {"conditions": [{"type": c, "status": "True"} for c in conditions]}
    if completion:
        status["completionTime"] = completion
    spec: dict[str, Any] = {}
    if ttl is not None:
        spec["runPolicy"] = {"ttlSecondsAfterFinished": ttl}
    return {"kind": "PyTorchJob", "metadata": {"name": name}, "spec": spec, "status": status}


def watch(clock: Clock) -> JobWatch:
    return JobWatch(object(), "ns", pods_per_job=2, clock=clock)  # type: ignore[arg-type]


def test_milestones_and_latencies() -> None:
    clock = Clock()
    w = watch(clock)
    w.job_created("a")  # at 100
    clock.now = 100.5
    w.on_pod(pod("a-0", "a", "Pending"))
    assert w.jobs["a"].all_pods_created is None
    clock.now = 101.0
    w.on_pod(pod("a-1", "a", "Pending"))
    w.on_pod(pod("a-1", "a", "Running"))  # not a new pod
    clock.now = 102.0
    w.on_job(job("a", "Created", "Running"))
    clock.now = 104.0
    w.on_pod(pod("a-0", "a", "Succeeded"))
    w.on_pod(pod("a-1", "a", "Succeeded"))
    clock.now = 104.25
    w.on_job(job("a", "Created", "Succeeded"))
    assert w.jobs["a"].latencies() == {
        "create_to_pods_created": pytest.approx(1.0),
        "create_to_running": pytest.approx(2.0),
        "pods_succeeded_to_job_succeeded": pytest.approx(0.25),
    }
    assert w.counts()["succeeded"] == 1


def test_events_before_registration_are_replayed() -> None:
    clock = Clock()
    w = watch(clock)
    w.on_pod(pod("b-0", "b", "Pending"))
    w.on_pod(pod("b-1", "b", "Pending"))
    times = w.job_created("b")
    assert times.pods_seen == {"b-0", "b-1"}
    assert times.all_pods_created == 100.0


def test_deletion_lag_from_completion_time_and_ttl() -> None:
    clock = Clock()
    w = watch(clock)
    w.job_created("c")
    done = job("c", "Succeeded", completion="1970-01-01T00:01:40Z", ttl=3)  # 100 s
    w.on_job(done)
    clock.now = 103.4
    w.on_job_deleted(done)
    assert w.jobs["c"].deletion_lag() == pytest.approx(0.4)
    assert JobTimes().deletion_lag() is None


def test_parse_time() -> None:
    assert parse_time("1970-01-01T00:00:10Z") == 10.0
    assert parse_time("1970-01-01T00:00:10.5Z") == 10.5
    assert parse_time("garbage") is None
    assert parse_time(None) is None
