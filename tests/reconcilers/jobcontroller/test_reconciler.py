"""One reconcile (``jobcontroller/reconciler.py``): the requeue of a finished job with a TTL goes in
at ``TTL_PRIORITY`` (also after a requeue lost to a stale cache), how late its deletion came is
measured (``kubetrain_job_ttl_deletion_delay_seconds``), status writes and the TTL deletion queue
for the client's slots ahead of pod creations, and an invalid job is failed once and never
retried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes import RecordingJobWriter, RecordingRecorder
from jobkit import (
    RUNNING,
    finished_status,
    job_with,
    make_job,
    make_pod,
    new_reconciler,
    uid_indexed_store,
)
from prometheus_client import Counter

from kubetrain.base.clock import REAL_CLOCK, FakeClock
from kubetrain.base.objects import Obj
from kubetrain.engine.queue import NORMAL_PRIORITY
from kubetrain.engine.reconcile import Request, TerminalError
from kubetrain.engine.sharding import ShardedQueue
from kubetrain.informers.store import Store
from kubetrain.reconcilers.common import conditions as cond
from kubetrain.reconcilers.common.priorities import (
    DELETE_JOB_REQUEST_PRIORITY,
    STATUS_REQUEST_PRIORITY,
)
from kubetrain.reconcilers.common.services import build_service
from kubetrain.reconcilers.jobcontroller import (
    TTL_PRIORITY,
    JobControllerOptions,
    JobHandler,
    JobReconciler,
)
from kubetrain.reconcilers.kinds import ADAPTERS

PYTORCH = ADAPTERS["PyTorchJob"].kind


def total(counter: Counter) -> float:
    """The value of ``counter``'s series for namespace ``ns`` and framework ``pytorch``."""
    labels = {"job_namespace": "ns", "framework": "pytorch"}
    (family,) = counter.collect()
    return sum(s.value for s in family.samples if s.name.endswith("_total") and s.labels == labels)


def reconciler_for(
    job: Obj, *, now: datetime | None = None
) -> tuple[JobReconciler, Store, RecordingJobWriter]:
    """A reconciler over stores holding ``job``, its Master pod (Succeeded) and its service."""
    jobs = Store()
    jobs.upsert(job)
    adapter = ADAPTERS["PyTorchJob"]
    client = RecordingJobWriter()
    reconciler = new_reconciler(
        "PyTorchJob",
        client=client,
        jobs=jobs,
        pods=uid_indexed_store(make_pod(job, "Master", 0, "Succeeded", exit_code=0)),
        services=uid_indexed_store(build_service(adapter, job, "Master", 0)),
        options=JobControllerOptions(
            clock=REAL_CLOCK if now is None else FakeClock(wall_start=now)
        ),
    )
    return reconciler, jobs, client


async def test_a_finished_job_whose_first_requeue_was_lost_to_a_stale_cache_overtakes_new_jobs() -> (
    None
):
    running = job_with(status=RUNNING, rv="5")
    reconciler, jobs, client = reconciler_for(running)
    request = Request.from_key("ns/done")

    # 1. The pod's success: the job is written Succeeded; the TTL requeue is at TTL_PRIORITY.
    first = await reconciler.reconcile(request)
    assert client.verbs("pytorchjobs") == ["update/status"]
    stored = client.objects[("pytorchjobs", "ns", "done")]
    assert cond.is_finished(stored["status"])
    assert first.requeue_after is not None and 3500 < first.requeue_after <= 3600
    assert first.priority == TTL_PRIORITY

    # 2. Another event runs the job before the cache shows the write (the queue merged the
    # waiting TTL requeue into it): the stale cache is not decided on; a normal requeue.
    second = await reconciler.reconcile(request)
    assert second.priority in (None, NORMAL_PRIORITY) and len(client.status_writes) == 1

    # 3. The cache catches up: its update is what schedules the TTL again, ahead of new jobs.
    queue: ShardedQueue[str] = ShardedQueue()
    for i in range(3):
        queue.add(f"ns/new-{i}")
    jobs.upsert(stored)
    JobHandler(PYTORCH).on_update(running, stored, queue)
    assert queue.get_nowait() == "ns/done"
    third = await reconciler.reconcile(request)
    assert third.priority == TTL_PRIORITY and len(client.status_writes) == 1


async def test_how_late_a_ttl_deletion_came_is_observed() -> None:
    finished = job_with(status=finished_status(), rv="9", ttl=30)
    completion = datetime(2025, 1, 1, 12, 1, 0, tzinfo=UTC)  # finished_status()'s
    reconciler, _, client = reconciler_for(finished, now=completion + timedelta(seconds=32.5))
    result = await reconciler.reconcile(Request.from_key("ns/done"))
    assert ("delete", "pytorchjobs", "done") in client.requests and not result.requeue_after
    registry = reconciler.metrics.ttl_deletion_delay_seconds
    (family,) = registry.collect()
    samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert samples[("kubetrain_job_ttl_deletion_delay_seconds_sum", None)] == 2.5
    assert samples[("kubetrain_job_ttl_deletion_delay_seconds_bucket", "2.0")] == 0
    assert samples[("kubetrain_job_ttl_deletion_delay_seconds_bucket", "5.0")] == 1


async def test_status_writes_and_ttl_deletions_ask_for_a_higher_request_priority() -> None:
    """Creations queue for the client's in-flight slots at 0; the job's status write at
    ``STATUS_REQUEST_PRIORITY`` and its TTL deletion at ``DELETE_JOB_REQUEST_PRIORITY`` (the
    limiter's order itself: tests/engine/test_adaptive_limit.py)."""
    assert 0 < STATUS_REQUEST_PRIORITY < DELETE_JOB_REQUEST_PRIORITY
    new = make_job("PyTorchJob", {"Master": 1, "Worker": 1}, name="fresh")
    jobs = Store()
    jobs.upsert(new)
    client = RecordingJobWriter()
    reconciler = new_reconciler(
        "PyTorchJob",
        client=client,
        jobs=jobs,
        pods=uid_indexed_store(),
        services=uid_indexed_store(),
    )
    await reconciler.reconcile(Request.from_key("ns/fresh"))
    creates = {k: p for k, p in client.priorities.items() if k[0] == "create"}
    assert len(creates) == 4 and set(creates.values()) == {0}
    assert client.priorities[("update/status", "pytorchjobs", "fresh")] == STATUS_REQUEST_PRIORITY

    finished = job_with(status=finished_status(), rv="9", ttl=30)
    completion = datetime(2025, 1, 1, 12, 1, 0, tzinfo=UTC)  # finished_status()'s
    reconciler, _, client = reconciler_for(finished, now=completion + timedelta(seconds=31))
    await reconciler.reconcile(Request.from_key("ns/done"))
    assert client.priorities[("delete", "pytorchjobs", "done")] == DELETE_JOB_REQUEST_PRIORITY


async def test_an_invalid_job_is_failed_once_and_never_retried() -> None:
    job = make_job("PyTorchJob", {"Master": 2, "Worker": 1}, name="bad")  # one Master at most
    job["metadata"]["resourceVersion"] = "3"
    jobs = Store()
    jobs.upsert(job)
    client = RecordingJobWriter(jobs=jobs)
    recorder = RecordingRecorder()
    reconciler = new_reconciler("PyTorchJob", client=client, jobs=jobs, recorder=recorder)

    with pytest.raises(TerminalError, match="failed validation"):
        await reconciler.reconcile(Request.from_key("ns/bad"))
    (status,) = client.status_writes
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("Created", "True"),
        ("Failed", "True"),
    ]
    assert status["conditions"][1]["reason"] == "PyTorchJobFailedValidation"
    assert "completionTime" in status
    assert [(t, r) for t, r, _ in recorder.events] == [("Warning", "PyTorchJobFailedValidation")]
    metrics = reconciler.metrics
    assert (total(metrics.created), total(metrics.failed)) == (1, 1)

    # Already reported: nothing written, recorded or counted again, and no error to retry.
    result = await reconciler.reconcile(Request.from_key("ns/bad"))
    assert not result.requeue and result.requeue_after is None
    assert len(client.requests) == 1 and len(recorder.events) == 1
    assert (total(metrics.created), total(metrics.failed)) == (1, 1)
