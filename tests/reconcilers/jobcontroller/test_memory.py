"""What a job controller remembers per job (``jobcontroller/memory.py``): one ``JobMemory`` per job
UID, forgotten in one call together with the job's expectations and noted exits, and started
afresh when the job is re-created under the same name."""

from __future__ import annotations

from jobkit import make_job, make_pod

from kubetrain.reconcilers.common.expectations import ExpectationKey, Expectations
from kubetrain.reconcilers.exits import ExitLog
from kubetrain.reconcilers.jobcontroller.memory import JobMemories, JobMemory

PODS = ExpectationKey("worker", "pods")


def memories() -> tuple[JobMemories, Expectations, ExitLog]:
    expectations, exits = Expectations(), ExitLog("pytorch")
    return JobMemories(expectations, exits), expectations, exits


def note_exit(exits: ExitLog, uid: str) -> None:
    job = make_job("PyTorchJob", {"Worker": 1}, uid=uid)
    exits.note(uid, None, make_pod(job, "Worker", 0, "Failed", exit_code=1))


def test_forget_drops_the_memory_the_expectations_and_the_exits_at_once() -> None:
    registry, expectations, exits = memories()
    memory = registry.for_job("ns/j", "u1")
    memory.pods_timed = True
    expectations.expect_creations("u1", PODS, ["j-worker-0"])
    note_exit(exits, "u1")
    registry.forget("ns/j")
    assert len(registry) == 0 and expectations.satisfied("u1") and exits.take("u1") == []
    assert registry.for_job("ns/j", "u1").pods_timed is False
    registry.forget("ns/unknown")  # nothing remembered: nothing to do


def test_a_job_re_created_under_the_same_name_starts_afresh() -> None:
    registry, expectations, exits = memories()
    old = registry.for_job("ns/j", "u1")
    assert registry.for_job("ns/j", "u1") is old
    old.status_written_at = 5.0
    expectations.expect_creations("u1", PODS, ["j-worker-0"])
    note_exit(exits, "u1")
    new = registry.for_job("ns/j", "u2")
    assert new is not old and new.uid == "u2" and new.status_written_at is None
    assert expectations.satisfied("u1") and exits.take("u1") == []
    assert len(registry) == 1


def test_the_cache_caught_up_with_the_written_version_or_a_newer_one() -> None:
    memory = JobMemory("u1")
    assert memory.cache_caught_up("3")  # nothing written
    memory.note_written({"metadata": {"resourceVersion": "10"}})
    assert not memory.cache_caught_up("9")
    assert memory.cache_caught_up("11") and memory.written_rv is None
    memory.note_written({"metadata": {"resourceVersion": "abc"}})  # opaque: only equality
    assert not memory.cache_caught_up("abd")
    assert memory.cache_caught_up("abc")
