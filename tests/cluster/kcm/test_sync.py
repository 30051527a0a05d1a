"""One Job sync against a fake API and a fake clock (``job/sync.py`` with ``manage.py`` and
``tracking.py``): pods created up to parallelism, failures counted once through the finalizer,
the 10 s re-creation backoff, suspension, and the interim condition before the terminal one."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.cluster.kcm.job.backoff import BackoffStore
from kubetrain.cluster.kcm.job.context import Deps
from kubetrain.cluster.kcm.job.expectations import FinalizerExpectations, PodExpectations
from kubetrain.cluster.kcm.job.sync import sync_job

Obj = dict[str, Any]
FIN = "batch.kubernetes.io/job-tracking"
KEY = "ns/j"


class FakeApi:
    def __init__(self) -> None:
        self.created: list[Obj] = []
        self.deleted: list[str] = []
        self.unfinalized: list[str] = []
        self.statuses: list[Obj] = []

    async def create_pod(self, namespace: str, pod: Obj) -> Obj:
        pod = copy.deepcopy(pod)
        pod["metadata"]["name"] = pod["metadata"]["generateName"] + f"{len(self.created):05d}"
        self.created.append(pod)
        return pod

    async def delete_pod(self, namespace: str, name: str) -> bool:
        self.deleted.append(name)
        return True

    async def remove_tracking_finalizer(self, namespace: str, name: str) -> None:
        self.unfinalized.append(name)

    async def update_job_status(self, job: Obj) -> Obj:
        stored = copy.deepcopy(job)
        self.statuses.append(copy.deepcopy(stored["status"]))
        return stored


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.api = FakeApi()
        self.pods: list[Obj] = []
        self.events: list[tuple[str, str, str]] = []
        self.requeues: list[tuple[str, float]] = []
        self.deps = Deps(
            api=self.api,
            pods_of=lambda job: list(self.pods),
            event=lambda obj, type, reason, message: self.events.append((type, reason, message)),
            clock=self.clock,
            expectations=PodExpectations(self.clock),
            finalizers=FinalizerExpectations(),
            backoff=BackoffStore(),
            enqueue_after=lambda key, delay: self.requeues.append((key, delay)),
        )

    def now(self) -> str:
        return self.clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")


def job(**spec: Any) -> Obj:
    base: Obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ns", "uid": "job-uid", "resourceVersion": "1"},
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 6,
            "completionMode": "NonIndexed",
            "suspend": False,
            "podReplacementPolicy": "TerminatingOrFailed",
            "template": {
                "metadata": {"labels": {"job-name": "j"}},
                "spec": {"containers": [{"name": "c"}]},
            },
        },
    }
    base["spec"].update(spec)
    return base


def pod(
    name: str,
    phase: str,
    *,
    finished: datetime | None = None,
    finalizer: bool = True,
    ready: bool = False,
) -> Obj:
    status: Obj = {"phase": phase}
    if finished is not None:
        stamp = finished.strftime("%Y-%m-%dT%H:%M:%SZ")
        status["containerStatuses"] = [
            {"name": "c", "state": {"terminated": {"exitCode": 1, "finishedAt": stamp}}}
        ]
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": f"uid-{name}",
            "finalizers": [FIN] if finalizer else [],
            "ownerReferences": [
                {
                    "kind": "Job",
                    "apiVersion": "batch/v1",
                    "name": "j",
                    "uid": "job-uid",
                    "controller": True,
                }
            ],
        },
        "status": status,
    }


def types(status: Obj) -> list[tuple[str, str]]:
    return [(c["type"], c.get("reason", "")) for c in status.get("conditions") or []]


async def test_creates_up_to_parallelism_and_waits_for_the_cache() -> None:
    w = World()
    await sync_job(w.deps, KEY, job(parallelism=2, completions=3))
    assert [p["metadata"]["generateName"] for p in w.api.created] == ["j-", "j-"]
    assert all(p["metadata"]["finalizers"] == [FIN] for p in w.api.created)
    assert w.api.statuses[-1]["active"] == 2 and w.api.statuses[-1]["startTime"] == w.now()
    assert [e[1] for e in w.events] == ["SuccessfulCreate", "SuccessfulCreate"]
    # the creations are not in the cache yet: another sync creates nothing
    await sync_job(w.deps, KEY, job(parallelism=2, completions=3))
    assert len(w.api.created) == 2
    w.deps.expectations.creation_observed(KEY)
    w.deps.expectations.creation_observed(KEY)
    assert w.deps.expectations.satisfied(KEY)


async def test_failure_is_counted_once_and_recreation_waits_ten_seconds() -> None:
    w = World()
    w.pods = [pod("p0", "Failed", finished=w.clock.utcnow())]
    current = job()
    await sync_job(w.deps, KEY, current)
    # step 1: the UID goes into uncountedTerminatedPods; step 3: into failed
    assert w.api.statuses[0]["uncountedTerminatedPods"] == {"failed": ["uid-p0"]}
    assert w.api.statuses[-1]["failed"] == 1 and w.api.statuses[-1]["uncountedTerminatedPods"] == {}
    assert w.api.unfinalized == ["p0"]
    assert w.api.created == []  # backoff: 10 s after the failure
    assert w.requeues == [(KEY, 10.0)]
    # the cache now shows the counted pod without finalizer and the written status
    w.pods = [pod("p0", "Failed", finished=w.clock.utcnow(), finalizer=False)]
    w.deps.finalizers.removal_observed(KEY, "uid-p0")
    current["status"] = w.api.statuses[-1]
    w.clock.advance(4)
    await sync_job(w.deps, KEY, current)
    assert w.api.created == [] and w.requeues[-1] == (KEY, 6.0)
    w.clock.advance(6)
    await sync_job(w.deps, KEY, current)
    assert len(w.api.created) == 1
    assert w.api.statuses[-1]["failed"] == 1  # not counted twice


async def test_backoff_limit_interim_condition_then_failed_once_pods_are_gone() -> None:
    w = World()
    w.pods = [pod("bad", "Failed", finished=w.clock.utcnow()), pod("run", "Running", ready=True)]
    current = job(parallelism=2, completions=2, backoffLimit=0)
    await sync_job(w.deps, KEY, current)
    assert w.api.deleted == ["run"]  # the active pod is deleted, its finalizer kept for counting
    last = w.api.statuses[-1]
    assert types(last) == [("FailureTarget", "BackoffLimitExceeded")]
    assert last["terminating"] == 1 and last["ready"] == 0
    # the deleted pod is gone from the cache (its finalizer was removed by tracking)
    current["status"] = last
    w.pods = [pod("bad", "Failed", finished=w.clock.utcnow(), finalizer=False)]
    w.deps.finalizers.removal_observed(KEY, "uid-bad")
    w.deps.finalizers.removal_observed(KEY, "uid-run")
    await sync_job(w.deps, KEY, current)
    final = w.api.statuses[-1]
    assert types(final) == [
        ("FailureTarget", "BackoffLimitExceeded"),
        ("Failed", "BackoffLimitExceeded"),
    ]
    assert final["failed"] == 2 and "completionTime" not in final
    assert (
        "Warning",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    ) in w.events


async def test_suspended_job_loses_its_pods_without_failures() -> None:
    w = World()
    w.pods = [pod("a", "Running", ready=True)]
    await sync_job(w.deps, KEY, job(suspend=True))
    assert w.api.unfinalized == ["a"] and w.api.deleted == ["a"]
    last = w.api.statuses[-1]
    assert types(last) == [("Suspended", "JobSuspended")]
    assert "active" not in last and "failed" not in last and last["terminating"] == 1
    assert ("Normal", "Suspended", "Job suspended") in w.events
    assert "startTime" not in last


@pytest.mark.parametrize("mode", ["NonIndexed", "Indexed"])
async def test_success_writes_success_criteria_met_then_complete(mode: str) -> None:
    w = World()
    done = pod("ok", "Succeeded")
    if mode == "Indexed":
        done["metadata"]["annotations"] = {"batch.kubernetes.io/job-completion-index": "0"}
    w.pods = [done]
    await sync_job(w.deps, KEY, job(completionMode=mode))
    final = w.api.statuses[-1]
    assert types(final) == [
        ("SuccessCriteriaMet", "CompletionsReached"),
        ("Complete", "CompletionsReached"),
    ]
    assert final["succeeded"] == 1 and final["completionTime"] == w.now()
    assert (mode == "Indexed") == (final.get("completedIndexes") == "0")
    assert ("Normal", "Completed", "Job completed") in w.events


async def test_finished_or_foreign_jobs_are_not_touched() -> None:
    w = World()
    finished = job()
    finished["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    await sync_job(w.deps, KEY, finished)
    await sync_job(w.deps, KEY, job(managedBy="example.com/other"))
    assert w.api.created == [] and w.api.statuses == []
