"""compute_status per reconcile (run with --benchmark-only).

The three reconciles a PyTorchJob of 1 Master + 3 Workers sees most in a burst: the first one
(plan every pod and service), one while its pods start (some Pending, some Running: the Running
condition is decided), and the steady one after an own status write's echo (nothing to decide).
The operator's CPU per job is mostly these (``kubetrain bench burst``'s profile).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta

from jobkit import T0, adapter_of, make_job, make_pod

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.status import compute_status

ROLES = (("Master", 0), ("Worker", 0), ("Worker", 1), ("Worker", 2))


def new_job() -> Obj:
    """As the informer caches it: with a resourceVersion and a generation."""
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 3})
    job["metadata"].update(resourceVersion="41", generation=1)
    return job


def created_job() -> tuple[Obj, list[Obj], list[Obj]]:
    """The job after its first reconcile: status written, pods and services as built."""
    job = new_job()
    first = compute_status(adapter_of(job), job, [], [], now=T0)
    job["status"] = first.status
    job["metadata"]["resourceVersion"] = "42"  # the status write's
    return job, first.create_pods, first.create_services


def bench(benchmark: Callable[..., object], job: Obj, pods: list[Obj], services: list[Obj]) -> None:
    adapter = adapter_of(job)
    now = T0 + timedelta(seconds=5)
    before = copy.deepcopy(job)
    benchmark(lambda: compute_status(adapter, job, pods, services, now=now))
    assert job == before


def test_bench_first_reconcile(benchmark: Callable[..., object]) -> None:
    job = new_job()
    decision = compute_status(adapter_of(job), job, [], [], now=T0)
    assert len(decision.create_pods) == 4 and len(decision.create_services) == 4
    bench(benchmark, job, [], [])


def test_bench_pods_starting(benchmark: Callable[..., object]) -> None:
    job, _, services = created_job()
    pods = [
        make_pod(job, rtype, index, "Running" if n % 2 == 0 else "Pending")
        for n, (rtype, index) in enumerate(ROLES)
    ]
    decision = compute_status(adapter_of(job), job, pods, services, now=T0)
    assert decision.status_changed and not decision.create_pods
    bench(benchmark, job, pods, services)


def test_bench_nothing_to_decide(benchmark: Callable[..., object]) -> None:
    job, _, services = created_job()
    pods = [make_pod(job, rtype, index) for rtype, index in ROLES]
    job["status"] = compute_status(adapter_of(job), job, pods, services, now=T0).status
    again = compute_status(adapter_of(job), job, pods, services, now=T0 + timedelta(seconds=5))
    assert not again.status_changed and not again.create_pods and not again.events
    bench(benchmark, job, pods, services)
