"""How the job controller behaves under a burst: a job whose pod changed phase overtakes queued
new jobs (``POD_PHASE_PRIORITY``), and ``create_concurrency`` bounds creations across all
concurrent reconciles of the controller, not per reconcile."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from fakes import RecordingQueue, RecordingRecorder
from jobkit import make_job, make_pod

from kubetrain.engine.enqueue import KeyQueue
from kubetrain.engine.metrics import new_registry
from kubetrain.engine.queue import NORMAL_PRIORITY
from kubetrain.engine.reconcile import Request
from kubetrain.engine.sharding import ShardedQueue
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import kubeflow
from kubetrain.informers.store import Store
from kubetrain.reconcilers.common.compact import slim_pod
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.jobcontroller import (
    POD_PHASE_PRIORITY,
    JobControllerOptions,
    JobReconciler,
    OwnedObjectHandler,
)
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.metrics import JobMetrics

Obj = dict[str, Any]


def handler() -> OwnedObjectHandler:
    return OwnedObjectHandler(kubeflow("PyTorchJob"), Expectations(), "pods")


def with_rv(pod: Obj, rv: str) -> Obj:
    pod = copy.deepcopy(pod)
    pod["metadata"]["resourceVersion"] = rv
    return pod


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


class BlockingClient:
    """Creations wait until released; records the most in flight at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.created = 0
        self.release = asyncio.Event()

    async def create(self, ref: Any, body: Obj, **_: Any) -> Obj:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await self.release.wait()
        finally:
            self.in_flight -= 1
        self.created += 1
        return body

    async def update_status_with_retry(
        self, ref: Any, ns: str, name: str, mutate: Any, *, current: Obj
    ) -> Obj:
        stored = mutate(copy.deepcopy(current))
        stored["metadata"]["resourceVersion"] = "9"
        return dict(stored)


async def test_create_concurrency_bounds_creations_across_reconciles() -> None:
    jobs = Store()
    for i in range(2):
        jobs.upsert(make_job("PyTorchJob", {"Master": 1, "Worker": 3}, name=f"j{i}", uid=f"u{i}"))
    client = BlockingClient()
    reconciler = JobReconciler(
        ADAPTERS["PyTorchJob"],
        client=client,  # type: ignore[arg-type]
        jobs=Lister(jobs),
        pods=Lister(Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})),
        services=Lister(Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})),
        recorder=RecordingRecorder(),  # type: ignore[arg-type]
        metrics=JobMetrics(new_registry(process_metrics=False)),
        expectations=Expectations(),
        options=JobControllerOptions(create_concurrency=3),
    )
    both = asyncio.gather(
        reconciler.reconcile(Request.from_key("ns/j0")),
        reconciler.reconcile(Request.from_key("ns/j1")),
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.max_in_flight == 3  # 2 reconciles x 8 objects, yet 3 at once in all
    client.release.set()
    await both
    assert client.created == 16
    assert client.max_in_flight == 3


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
