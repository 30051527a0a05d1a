"""A finished job's TTL deletion is not queued behind other jobs' work (``TTL_PRIORITY``), and
how late it came is measured (``kubetrain_job_ttl_deletion_delay_seconds``).

The path that ``kubetrain bench ttl`` found 40 s late with 5,000 jobs: the reconcile that writes
the finished status requeues the TTL; a pod event that arrives before the cache shows that write
runs the job early, finds the cache stale and requeues at normal priority; the TTL is then
scheduled by the job's own update, which must not wait behind a burst of new jobs.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from fakes import RecordingQueue, RecordingRecorder
from jobkit import make_job, make_pod

from kubetrain.base.clock import FakeClock
from kubetrain.engine.metrics import new_registry
from kubetrain.engine.queue import LOW_PRIORITY, NORMAL_PRIORITY
from kubetrain.engine.reconcile import Request
from kubetrain.engine.sharding import ShardedQueue
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.lister import Lister
from kubetrain.informers.store import Store
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.common.services import build_service
from kubetrain.reconcilers.jobcontroller import (
    POD_PHASE_PRIORITY,
    TTL_PRIORITY,
    JobControllerOptions,
    JobHandler,
    JobReconciler,
)
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.metrics import JobMetrics

Obj = dict[str, Any]

PYTORCH = ADAPTERS["PyTorchJob"].kind

RUNNING = {
    "conditions": [
        {"type": "Created", "status": "True", "reason": "PyTorchJobCreated"},
        {"type": "Running", "status": "True", "reason": "PyTorchJobRunning"},
    ],
    "replicaStatuses": {"Master": {"active": 1}},
    "startTime": "2025-01-01T12:00:00Z",
}


class StatusClient:
    """Status writes succeed at resourceVersion 9; deletes are recorded."""

    def __init__(self) -> None:
        self.written: list[Obj] = []
        self.deleted: list[tuple[str, str]] = []

    async def delete(self, ref: Any, ns: str, name: str, **_: Any) -> Obj:
        self.deleted.append((ns, name))
        return {}

    async def update_status_with_retry(
        self, ref: Any, ns: str, name: str, mutate: Any, *, current: Obj
    ) -> Obj:
        stored: Obj = mutate(copy.deepcopy(current))
        stored["metadata"]["resourceVersion"] = "9"
        self.written.append(stored)
        return stored


def job_with(*, status: Obj, rv: str, ttl: int | None = 3600) -> Obj:
    policy = {} if ttl is None else {"ttlSecondsAfterFinished": ttl}
    job = make_job("PyTorchJob", {"Master": 1}, name="done", run_policy=policy, status=status)
    job["metadata"]["resourceVersion"] = rv
    return job


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


def finished_status() -> Obj:
    status = copy.deepcopy(RUNNING)
    status["conditions"].append({"type": "Succeeded", "status": "True", "reason": "Done"})
    status["completionTime"] = "2025-01-01T12:01:00Z"
    status["replicaStatuses"] = {"Master": {"succeeded": 1}}
    return status


def reconciler_for(job: Obj, *, now: datetime | None = None) -> tuple[JobReconciler, Store]:
    """A reconciler over stores holding ``job``, its Master pod (Succeeded) and its service."""
    jobs = Store()
    jobs.upsert(job)
    pods = Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})
    pods.upsert(make_pod(job, "Master", 0, "Succeeded", exit_code=0))
    services = Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})
    adapter = ADAPTERS["PyTorchJob"]
    services.upsert(build_service(adapter, job, "Master", 0))
    reconciler = JobReconciler(
        adapter,
        client=StatusClient(),  # type: ignore[arg-type]
        jobs=Lister(jobs),
        pods=Lister(pods),
        services=Lister(services),
        recorder=RecordingRecorder(),  # type: ignore[arg-type]
        metrics=JobMetrics(new_registry(process_metrics=False)),
        expectations=Expectations(),
        options=JobControllerOptions(
            **({} if now is None else {"clock": FakeClock(wall_start=now)})
        ),
    )
    return reconciler, jobs


async def test_a_finished_job_whose_first_requeue_was_lost_to_a_stale_cache_overtakes_new_jobs() -> (
    None
):
    running = job_with(status=RUNNING, rv="5")
    reconciler, jobs = reconciler_for(running)
    client: StatusClient = reconciler.client  # type: ignore[assignment]
    request = Request.from_key("ns/done")

    # 1. The pod's success: the job is written Succeeded; the TTL requeue is at TTL_PRIORITY.
    first = await reconciler.reconcile(request)
    (stored,) = client.written
    assert cond.is_finished(stored["status"])
    assert first.requeue_after is not None and 3500 < first.requeue_after <= 3600
    assert first.priority == TTL_PRIORITY

    # 2. Another event runs the job before the cache shows the write (the queue merged the
    # waiting TTL requeue into it): the stale cache is not decided on; a normal requeue.
    second = await reconciler.reconcile(request)
    assert second.priority in (None, NORMAL_PRIORITY) and len(client.written) == 1

    # 3. The cache catches up: its update is what schedules the TTL again, ahead of new jobs.
    queue: ShardedQueue[str] = ShardedQueue()
    for i in range(3):
        queue.add(f"ns/new-{i}")
    jobs.upsert(stored)
    JobHandler(PYTORCH).on_update(running, stored, queue)
    assert queue.get_nowait() == "ns/done"
    third = await reconciler.reconcile(request)
    assert third.priority == TTL_PRIORITY and len(client.written) == 1


async def test_how_late_a_ttl_deletion_came_is_observed() -> None:
    finished = job_with(status=finished_status(), rv="9", ttl=30)
    completion = datetime(2025, 1, 1, 12, 1, 0, tzinfo=UTC)  # finished_status()'s
    reconciler, _ = reconciler_for(finished, now=completion + timedelta(seconds=32.5))
    client: StatusClient = reconciler.client  # type: ignore[assignment]
    result = await reconciler.reconcile(Request.from_key("ns/done"))
    assert client.deleted == [("ns", "done")] and not result.requeue_after
    registry = reconciler.metrics.ttl_deletion_delay_seconds
    (family,) = registry.collect()
    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert samples[("kubetrain_job_ttl_deletion_delay_seconds_sum", None)] == 2.5
    assert samples[("kubetrain_job_ttl_deletion_delay_seconds_bucket", "2.0")] == 0
    assert samples[("kubetrain_job_ttl_deletion_delay_seconds_bucket", "5.0")] == 1
