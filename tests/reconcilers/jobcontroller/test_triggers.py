"""Which informer events enqueue which job, at which priority (``jobcontroller/triggers.py``): a
job whose pod changed phase overtakes queued new jobs, the update that shows a job finished with
a TTL goes first of all, and an update that leaves the cached pod as it was enqueues nothing."""

from __future__ import annotations

import copy

from fakes import RecordingQueue
from jobkit import RUNNING, finished_status, job_with, make_job, make_pod

from kubetrain.base.objects import Obj
from kubetrain.engine.enqueue import KeyQueue
from kubetrain.engine.queue import LOW_PRIORITY, NORMAL_PRIORITY
from kubetrain.engine.sharding import ShardedQueue
from kubetrain.informers.resource import kubeflow
from kubetrain.reconcilers.common.compact import slim_pod
from kubetrain.reconcilers.common.expectations import ExpectationKey, Expectations
from kubetrain.reconcilers.jobcontroller import (
    POD_PHASE_PRIORITY,
    TTL_PRIORITY,
    JobHandler,
    OwnedObjectHandler,
)
from kubetrain.reconcilers.jobcontroller.triggers import AtLeast
from kubetrain.reconcilers.kinds import ADAPTERS

PYTORCH = ADAPTERS["PyTorchJob"].kind


def handler(expectations: Expectations | None = None) -> OwnedObjectHandler:
    return OwnedObjectHandler(kubeflow("PyTorchJob"), expectations or Expectations(), "pods")


def with_rv(obj: Obj, rv: str) -> Obj:
    obj = copy.deepcopy(obj)
    obj["metadata"]["resourceVersion"] = rv
    return obj


def test_pod_phase_change_enqueues_job_at_pod_phase_priority() -> None:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 1}, name="j")
    pending = with_rv(make_pod(job, "Master", 0, "Pending"), "1")
    running = with_rv(make_pod(job, "Master", 0, "Running"), "2")
    queue = RecordingQueue()
    handler().on_update(pending, running, queue)
    assert queue.added == [("ns/j", POD_PHASE_PRIORITY)]
    assert POD_PHASE_PRIORITY > NORMAL_PRIORITY

    queue = RecordingQueue()
    relabelled = with_rv(running, "3")
    relabelled["metadata"]["labels"]["extra"] = "x"
    handler().on_update(running, relabelled, queue)
    assert queue.added == [("ns/j", NORMAL_PRIORITY)]


async def test_finished_pod_overtakes_queued_new_jobs() -> None:
    queue: ShardedQueue[str] = ShardedQueue()
    for i in range(3):
        queue.add(f"ns/new-{i}")
    job = make_job("PyTorchJob", {"Master": 1}, name="done")
    running = with_rv(make_pod(job, "Master", 0, "Running"), "5")
    succeeded = with_rv(make_pod(job, "Master", 0, "Succeeded", exit_code=0), "6")
    bound: KeyQueue = queue
    handler().on_update(running, succeeded, bound)
    order = [queue.get_nowait() for _ in range(4)]
    assert order == ["ns/done", "ns/new-0", "ns/new-1", "ns/new-2"]


def test_update_that_leaves_the_slimmed_pod_as_it_was_enqueues_nothing() -> None:
    job = make_job("PyTorchJob", {"Master": 1}, name="j")
    pending = slim_pod(with_rv(make_pod(job, "Master", 0, "Pending"), "1"))
    bound = copy.deepcopy(pending)  # a binding: spec.nodeName is not cached, only the version moves
    bound["metadata"]["resourceVersion"] = "2"
    queue = RecordingQueue()
    handler().on_update(pending, bound, queue)
    assert queue.added == []

    started = copy.deepcopy(bound)
    started["metadata"]["resourceVersion"] = "3"
    started["status"]["containerStatuses"][0]["state"] = {"running": {}}
    handler().on_update(bound, started, queue)
    assert queue.added == [("ns/j", NORMAL_PRIORITY)]  # a container state the reconcile reads

    relabelled = copy.deepcopy(started)
    relabelled["metadata"]["resourceVersion"] = "4"
    relabelled["metadata"]["labels"]["extra"] = "x"
    handler().on_update(started, relabelled, queue)
    assert len(queue.added) == 2  # metadata other than the version counts


def test_the_update_that_shows_a_job_finished_with_a_ttl_is_enqueued_at_ttl_priority() -> None:
    running = job_with(status=RUNNING, rv="5")
    succeeded = job_with(status=finished_status(), rv="9")
    queue = RecordingQueue()
    JobHandler(PYTORCH).on_update(running, succeeded, queue)
    assert queue.added == [("ns/done", TTL_PRIORITY)]
    assert TTL_PRIORITY > POD_PHASE_PRIORITY > NORMAL_PRIORITY

    # Only the transition: a later update of the finished job, a job without a TTL, and the
    # initial list are the engine handler's priorities.
    later = job_with(status=finished_status(), rv="10")
    no_ttl = (
        job_with(status=RUNNING, rv="5", ttl=None),
        job_with(status=finished_status(), rv="9", ttl=None),
    )
    queue = RecordingQueue()
    JobHandler(PYTORCH).on_update(succeeded, later, queue)
    JobHandler(PYTORCH).on_update(*no_ttl, queue)
    JobHandler(PYTORCH).on_add(succeeded, True, queue)
    assert queue.added == [("ns/done", NORMAL_PRIORITY)] * 2 + [("ns/done", LOW_PRIORITY)]


def test_a_dependent_observes_its_jobs_expectations_and_other_kinds_are_ignored() -> None:
    job = make_job("PyTorchJob", {"Master": 1}, name="j", uid="u1")
    pod = make_pod(job, "Master", 0, "Pending")
    expectations = Expectations()
    expectations.expect_creations("u1", ExpectationKey("master", "pods"), ["j-master-0"])
    queue = RecordingQueue()
    handler(expectations).on_add(pod, False, queue)
    assert expectations.satisfied("u1") and queue.keys == ["ns/j"]

    expectations.expect_deletions("u1", ExpectationKey("master", "pods"), ["j-master-0"])
    handler(expectations).on_delete(pod, queue)
    assert expectations.satisfied("u1") and queue.keys == ["ns/j", "ns/j"]

    tf_pod = copy.deepcopy(pod)
    tf_pod["metadata"]["ownerReferences"][0]["kind"] = "TFJob"
    expectations.expect_creations("u1", ExpectationKey("master", "pods"), ["j-master-0"])
    handler(expectations).on_add(tf_pod, False, queue)
    assert not expectations.satisfied("u1") and len(queue.keys) == 2


def test_at_least_raises_a_priority_and_never_lowers_one() -> None:
    queue = RecordingQueue()
    floor = AtLeast(queue, POD_PHASE_PRIORITY)
    floor.add("ns/a")
    floor.add("ns/b", priority=TTL_PRIORITY)
    floor.add("ns/c", priority=LOW_PRIORITY)
    assert queue.added == [
        ("ns/a", POD_PHASE_PRIORITY),
        ("ns/b", TTL_PRIORITY),
        ("ns/c", POD_PHASE_PRIORITY),
    ]
