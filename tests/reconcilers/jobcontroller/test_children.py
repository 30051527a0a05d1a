"""Pod and service writes (``jobcontroller/children.py``): ``create_concurrency`` bounds creations
across all concurrent reconciles of the controller, expectations are raised before the first
request, and a name already taken is a conflict (observed, requeued), never a second pod."""

from __future__ import annotations

import asyncio

import pytest
from fakes import RecordingJobWriter, RecordingRecorder
from jobkit import make_job, make_pod, new_reconciler, uid_indexed_store

from kubetrain.engine.reconcile import Request
from kubetrain.informers.store import Store
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.jobcontroller import JobControllerOptions


async def test_create_concurrency_bounds_creations_across_reconciles() -> None:
    jobs = Store()
    for i in range(2):
        jobs.upsert(make_job("PyTorchJob", {"Master": 1, "Worker": 3}, name=f"j{i}", uid=f"u{i}"))
    client = RecordingJobWriter()
    client.hold = asyncio.Event()
    reconciler = new_reconciler(
        "PyTorchJob",
        client=client,
        jobs=jobs,
        options=JobControllerOptions(create_concurrency=3),
    )
    both = asyncio.gather(
        reconciler.reconcile(Request.from_key("ns/j0")),
        reconciler.reconcile(Request.from_key("ns/j1")),
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert client.max_in_flight == 3  # 2 reconciles x 8 objects, yet 3 at once in all
    client.hold.set()
    await both
    assert [verb for verb, _, _ in client.requests].count("create") == 16
    assert client.max_in_flight == 3


async def test_expectations_are_raised_before_the_first_request() -> None:
    jobs = Store()
    jobs.upsert(make_job("PyTorchJob", {"Master": 1, "Worker": 1}, name="j", uid="u1"))
    client = RecordingJobWriter()
    client.hold = asyncio.Event()
    expectations = Expectations()
    reconciler = new_reconciler("PyTorchJob", client=client, jobs=jobs, expectations=expectations)
    task = asyncio.create_task(reconciler.reconcile(Request.from_key("ns/j")))
    for _ in range(5):
        await asyncio.sleep(0)
    assert client.requests == []  # every create still waits
    pending = expectations.pending("u1")
    assert {name for adds, _ in pending.values() for name in adds} == {
        "j-master-0",
        "j-worker-0",
    }
    client.hold.set()
    await task


async def test_a_name_already_taken_is_a_conflict_requeued_not_a_second_pod() -> None:
    job = make_job("PyTorchJob", {"Master": 1, "Worker": 1}, name="j", uid="u1")
    jobs = Store()
    jobs.upsert(job)
    client = RecordingJobWriter()
    client.errors[("create", "j-worker-0")] = ApiStatusError(409, reason="AlreadyExists")
    expectations = Expectations()
    recorder = RecordingRecorder()
    # A deleted job's pod of the same name is still in the cache: not POSTed again.
    old_job = make_job("PyTorchJob", {"Master": 1}, name="j", uid="u0")
    pods = uid_indexed_store(make_pod(old_job, "Master", 0, "Running", deleting=True))
    reconciler = new_reconciler(
        "PyTorchJob",
        client=client,
        jobs=jobs,
        pods=pods,
        expectations=expectations,
        recorder=recorder,
    )
    result = await reconciler.reconcile(Request.from_key("ns/j"))
    assert result.requeue
    assert ("create", "pods", "j-master-0") not in client.requests
    assert ("create", "pods", "j-worker-0") in client.requests
    # Both pod names count as observed; the services wait for their watch events.
    assert {key.resource for key in expectations.pending("u1")} == {"services"}
    assert not any(reason == "FailedCreatePod" for _, reason, _ in recorder.events)


async def test_a_failed_creation_lowers_its_expectation_and_fails_the_reconcile() -> None:
    jobs = Store()
    jobs.upsert(make_job("PyTorchJob", {"Master": 1}, name="j", uid="u1"))
    client = RecordingJobWriter()
    client.errors[("create", "j-master-0")] = ApiStatusError(500, message="boom")
    expectations = Expectations()
    recorder = RecordingRecorder()
    reconciler = new_reconciler(
        "PyTorchJob", client=client, jobs=jobs, expectations=expectations, recorder=recorder
    )
    with pytest.raises(RuntimeError, match="create pod j-master-0"):
        await reconciler.reconcile(Request.from_key("ns/j"))
    assert {key.resource for key in expectations.pending("u1")} == {"services"}
    assert ("Warning", "FailedCreatePod") in [(t, r) for t, r, _ in recorder.events]
