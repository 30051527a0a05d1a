"""``status_batch_seconds``: a status change that only moves replica counts, within the window
after the job's last status write, is written once at the window's end; a condition change is
written at once; 0 turns batching off. Driven through ``JobReconciler.reconcile`` with a fake
clock and a client that records status writes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fakes import RecordingRecorder
from jobkit import make_job, make_pod

from kubetrain.base.clock import FakeClock
from kubetrain.engine.metrics import new_registry
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.lister import Lister
from kubetrain.informers.store import Store
from kubetrain.reconcilers.api.defaults import default_job
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.common.services import build_service
from kubetrain.reconcilers.jobcontroller import JobControllerOptions, JobReconciler
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.metrics import JobMetrics

Obj = dict[str, Any]
CREATED = {
    "type": "Created",
    "status": "True",
    "reason": "PyTorchJobCreated",
    "message": "created",
    "lastUpdateTime": "2026-01-01T00:00:00Z",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}


class StatusClient:
    """Records status writes; each stored job gets the next resourceVersion."""

    def __init__(self, jobs: Store) -> None:
        self.jobs = jobs
        self.writes: list[Obj] = []

    async def update_status_with_retry(
        self, ref: Any, ns: str, name: str, mutate: Any, *, current: Obj
    ) -> Obj:
        stored = mutate(copy.deepcopy(current))
        stored["metadata"]["resourceVersion"] = str(100 + len(self.writes))
        self.writes.append(copy.deepcopy(stored["status"]))
        self.jobs.upsert(stored)  # the watch event, at once
        return stored


class Harness:
    def __init__(self, batch: float) -> None:
        self.clock = FakeClock()
        self.jobs = Store()
        self.pods = Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})
        services = Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})
        self.job = make_job(
            "PyTorchJob",
            {"Master": 1, "Worker": 3},
            name="j",
            status={"conditions": [CREATED], "startTime": "2026-01-01T00:00:00Z"},
        )
        self.job["metadata"]["resourceVersion"] = "1"
        self.jobs.upsert(self.job)
        adapter = ADAPTERS["PyTorchJob"]
        for rtype, n in (("Master", 1), ("Worker", 3)):
            for i in range(n):
                services.upsert(
                    build_service(adapter, default_job(adapter.kind, self.job), rtype, i)
                )
        self.client = StatusClient(self.jobs)
        self.reconciler = JobReconciler(
            adapter,
            client=self.client,  # type: ignore[arg-type]
            jobs=Lister(self.jobs),
            pods=Lister(self.pods),
            services=Lister(services),
            recorder=RecordingRecorder(),  # type: ignore[arg-type]
            metrics=JobMetrics(new_registry(process_metrics=False)),
            expectations=Expectations(),
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
        statuses = self.client.writes[write]["replicaStatuses"]
        return {rtype: s.get("active", 0) for rtype, s in statuses.items()}

    def conditions(self, write: int) -> list[str]:
        return [c["type"] for c in self.client.writes[write]["conditions"]]


async def test_replica_counts_wait_for_the_window_conditions_do_not() -> None:
    h = Harness(batch=1.0)
    await h.at(0.0, {"Worker-0"})
    assert len(h.client.writes) == 1  # the first write is never held back
    result = await h.at(0.3, {"Worker-0", "Worker-1"})
    assert len(h.client.writes) == 1
    assert result.requeue_after == pytest.approx(0.7)
    await h.at(0.6, {"Worker-0", "Worker-1"})
    assert len(h.client.writes) == 1
    await h.at(1.0, {"Worker-0", "Worker-1"})  # the window ended: the latest counts, once
    assert len(h.client.writes) == 2
    assert h.active(1) == {"Master": 0, "Worker": 2}
    await h.at(1.1, {"Master-0", "Worker-0", "Worker-1", "Worker-2"})
    assert len(h.client.writes) == 3  # Running: a condition, written inside the window
    assert "Running" in h.conditions(2)


async def test_zero_writes_every_change_at_once() -> None:
    h = Harness(batch=0.0)
    await h.at(0.0, {"Worker-0"})
    result = await h.at(0.3, {"Worker-0", "Worker-1"})
    assert len(h.client.writes) == 2
    assert result.requeue_after is None
    assert h.active(1) == {"Master": 0, "Worker": 2}


def test_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="status_batch_seconds"):
        JobControllerOptions(status_batch_seconds=-1)
