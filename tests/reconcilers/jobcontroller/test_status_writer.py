"""Status writes (``jobcontroller/status_writer.py``).

``status_batch_seconds``: a status change that only moves replica counts, within the window after
the job's last status write, is written once at the window's end; a condition change is written
at once; 0 turns batching off (driven through ``JobReconciler.reconcile`` on a fake clock). A
finished job's status is merge-patched, guarded by its cached resourceVersion, never PUT.
"""

from __future__ import annotations

import copy

import pytest
from fakes import RecordingJobWriter
from jobkit import make_job, make_pod, new_reconciler, uid_indexed_store

from kubetrain.base.clock import FakeClock
from kubetrain.base.objects import Obj
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.resource import kubeflow
from kubetrain.informers.store import Store
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.common.services import build_service
from kubetrain.reconcilers.jobcontroller import JobControllerOptions
from kubetrain.reconcilers.jobcontroller.memory import JobMemory
from kubetrain.reconcilers.jobcontroller.status_writer import StatusWriter
from kubetrain.reconcilers.kinds import ADAPTERS

CREATED = {
    "type": "Created",
    "status": "True",
    "reason": "PyTorchJobCreated",
    "message": "created",
    "lastUpdateTime": "2026-01-01T00:00:00Z",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}


class Harness:
    def __init__(self, batch: float) -> None:
        self.clock = FakeClock()
        self.jobs = Store()
        self.pods = uid_indexed_store()
        self.job = make_job(
            "PyTorchJob",
            {"Master": 1, "Worker": 3},
            name="j",
            status={"conditions": [CREATED], "startTime": "2026-01-01T00:00:00Z"},
        )
        self.job["metadata"]["resourceVersion"] = "1"
        self.jobs.upsert(self.job)
        adapter = ADAPTERS["PyTorchJob"]
        services = uid_indexed_store(
            *(
                build_service(adapter, default_job(adapter.kind, self.job), rtype, i)
                for rtype, n in (("Master", 1), ("Worker", 3))
                for i in range(n)
            )
        )
        self.client = RecordingJobWriter(jobs=self.jobs)  # the watch event comes at once
        self.reconciler = new_reconciler(
            "PyTorchJob",
            client=self.client,
            jobs=self.jobs,
            pods=self.pods,
            services=services,
            options=JobControllerOptions(status_batch_seconds=batch, clock=self.clock),
        )

    async def at(self, t: float, running: set[str]) -> Result:
        """At time ``t``, with the pods named in ``running`` Running and the rest Pending."""
        self.clock.advance(t - self.clock.monotonic())
        for rtype, n in (("Master", 1), ("Worker", 3)):
            for i in range(n):
                phase = "Running" if f"{rtype}-{i}" in running else "Pending"
                self.pods.upsert(make_pod(self.job, rtype, i, phase))
        return await self.reconciler.reconcile(Request.from_key("ns/j"))

    def active(self, write: int) -> dict[str, int]:
        statuses = self.client.status_writes[write]["replicaStatuses"]
        return {rtype: s.get("active", 0) for rtype, s in statuses.items()}

    def conditions(self, write: int) -> list[str]:
        return [c["type"] for c in self.client.status_writes[write]["conditions"]]


async def test_replica_counts_wait_for_the_window_conditions_do_not() -> None:
    h = Harness(batch=1.0)
    await h.at(0.0, {"Worker-0"})
    assert len(h.client.status_writes) == 1  # the first write is never held back
    result = await h.at(0.3, {"Worker-0", "Worker-1"})
    assert len(h.client.status_writes) == 1
    assert result.requeue_after == pytest.approx(0.7)
    await h.at(0.6, {"Worker-0", "Worker-1"})
    assert len(h.client.status_writes) == 1
    await h.at(1.0, {"Worker-0", "Worker-1"})  # the window ended: the latest counts, once
    assert len(h.client.status_writes) == 2
    assert h.active(1) == {"Master": 0, "Worker": 2}
    await h.at(1.1, {"Master-0", "Worker-0", "Worker-1", "Worker-2"})
    assert len(h.client.status_writes) == 3  # Running: a condition, written inside the window
    assert "Running" in h.conditions(2)


async def test_zero_writes_every_change_at_once() -> None:
    h = Harness(batch=0.0)
    await h.at(0.0, {"Worker-0"})
    result = await h.at(0.3, {"Worker-0", "Worker-1"})
    assert len(h.client.status_writes) == 2
    assert result.requeue_after is None
    assert h.active(1) == {"Master": 0, "Worker": 2}


FINISHED: Obj = {
    "conditions": [{"type": "Succeeded", "status": "True", "reason": "PyTorchJobSucceeded"}],
    "completionTime": "2026-01-01T00:01:00Z",
    "replicaStatuses": {"Master": {"active": 1}},
}


def finished_writer() -> tuple[StatusWriter, RecordingJobWriter, Obj, JobMemory]:
    client = RecordingJobWriter()
    writer = StatusWriter(
        kubeflow("PyTorchJob"),
        client=client,
        clock=FakeClock(),
        batch_seconds=1.0,
        field_manager="kubetrain",
    )
    job = make_job("PyTorchJob", {"Master": 1}, name="j", status=copy.deepcopy(FINISHED))
    job["metadata"]["resourceVersion"] = "7"
    return writer, client, job, JobMemory("uid-1")


async def test_a_finished_jobs_status_is_merge_patched_guarded_by_its_version() -> None:
    writer, client, job, memory = finished_writer()
    status = {**FINISHED, "replicaStatuses": {"Master": {"succeeded": 1}}}
    assert await writer.write(job, memory, status)
    assert client.requests == [("patch/status", "pytorchjobs", "j")]
    assert client.patches == [
        {
            "status": {"replicaStatuses": {"Master": {"active": None, "succeeded": 1}}},
            "metadata": {"resourceVersion": "7"},
        }
    ]
    assert memory.written_rv is not None  # the next reconcile waits for the cache to show it

    # A conflict (the job changed meanwhile) is not an error: its watch event brings it back.
    client.errors[("patch/status", "j")] = ApiStatusError(409, reason="Conflict")
    assert not await writer.write(job, memory, status)


async def test_a_finished_jobs_conditions_are_never_written_from_its_compacted_cache() -> None:
    writer, client, job, memory = finished_writer()
    status = {**FINISHED, "conditions": [*FINISHED["conditions"], {"type": "Running"}]}
    with pytest.raises(RuntimeError, match="conditions cannot be written"):
        await writer.write(job, memory, status)
    assert client.requests == []
