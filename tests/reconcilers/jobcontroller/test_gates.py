"""The reconcile gates (``jobcontroller/gates.py``): a job is decided on only once the cache shows
our last write and the previous decision's creations and deletions were observed."""

from __future__ import annotations

from kubetrain.base.clock import FakeClock
from kubetrain.engine.reconcile import Result
from kubetrain.reconcilers.common.expectations import ExpectationKey, Expectations
from kubetrain.reconcilers.jobcontroller.gates import closed_gate
from kubetrain.reconcilers.jobcontroller.memory import JobMemory


def test_open_when_nothing_is_awaited() -> None:
    assert closed_gate(JobMemory("u1"), "5", Expectations(), stale_requeue=5.0) is None


def test_a_stale_cache_requeues_after_stale_requeue() -> None:
    memory = JobMemory("u1", written_rv="7")
    gate = closed_gate(memory, "6", Expectations(), stale_requeue=5.0)
    assert gate == Result(requeue_after=5.0)
    assert closed_gate(memory, "7", Expectations(), stale_requeue=5.0) is None


def test_pending_expectations_requeue_when_they_would_time_out() -> None:
    clock = FakeClock()
    expectations = Expectations(timeout=300.0, clock=clock)
    expectations.expect_creations("u1", ExpectationKey("worker", "pods"), ["j-worker-0"])
    clock.advance(100.0)
    gate = closed_gate(JobMemory("u1"), "5", expectations, stale_requeue=5.0)
    assert gate == Result(requeue_after=200.0)
    expectations.observe_created("u1", "pods", "j-worker-0")
    assert closed_gate(JobMemory("u1"), "5", expectations, stale_requeue=5.0) is None
