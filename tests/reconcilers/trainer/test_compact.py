"""What the TrainJob controller caches (``reconcilers/trainer/compact.py``): finished TrainJobs and
JobSets compacted to what their reconcile reads, the plugins' ConfigMaps without data; and the
reconciles over compacted caches deciding what they decide over whole objects."""

from __future__ import annotations

import copy

import orjson

from kubetrain.base.objects import Obj
from kubetrain.engine.reconcile import Result
from kubetrain.reconcilers.trainer.compact import compact_jobset, compact_trainjob, slim_configmap
from kubetrain.reconcilers.trainer.jobset_build import should_apply_jobset

from .test_reconciler import (
    NAME,
    NS,
    Harness,
    conditions,
    stored_jobset,
    trainjob,
)

COMPLETED = {
    "type": "Completed",
    "status": "True",
    "reason": "AllJobsCompleted",
    "message": "jobset completed successfully",
    "lastTransitionTime": "2026-01-01T00:05:00Z",
}
JOBS_STATUS = [
    {"name": "node", "ready": 0, "succeeded": 1, "failed": 0, "active": 0, "suspended": 0}
]
MANAGED = [{"manager": "kubectl", "operation": "Update", "fieldsV1": {"f:spec": {}}}]


def finished_trainjob() -> Obj:
    """A TrainJob as kubetrain leaves it Complete, with a trainer's last progress report."""
    job = trainjob(
        rv="9",
        trainer={"numNodes": 2, "command": ["torchrun", "train.py"], "env": [{"name": "A"}]},
        runtimePatches=[{"manager": "example.com/x", "time": "2026-01-01T00:00:00Z"}],
        status={
            "conditions": [{**COMPLETED, "type": "Complete"}],
            "jobsStatus": JOBS_STATUS,
            "phase": "Complete",
            "startTime": "2026-01-01T00:00:00Z",
            "trainerStatus": {
                "progressPercentage": 100,
                "metrics": [{"name": "loss", "value": "0.1"}],
            },
        },
    )
    job["metadata"]["managedFields"] = MANAGED
    return job


def completed_jobset(job: Obj) -> Obj:
    jobset = stored_jobset(
        job, suspend=False, status={"conditions": [COMPLETED], "replicatedJobsStatus": JOBS_STATUS}
    )
    jobset["metadata"]["managedFields"] = MANAGED
    return jobset


def fresh(obj: Obj) -> Obj:
    """As the informer parses it: a new object each time."""
    parsed: Obj = orjson.loads(orjson.dumps(obj))
    return parsed


# -- the transforms -------------------------------------------------------------------------------


def test_a_finished_trainjob_keeps_what_its_reconcile_reads() -> None:
    job = finished_trainjob()
    out = compact_trainjob(fresh(job))
    assert out["spec"] == {"runtimeRef": {"name": "torch-distributed"}}
    assert "trainerStatus" not in out["status"]
    assert out["status"] == {k: v for k, v in job["status"].items() if k != "trainerStatus"}
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["uid"] == job["metadata"]["uid"]
    assert compact_trainjob(fresh(out)) == out  # idempotent


def test_a_running_trainjob_and_jobset_are_only_stripped() -> None:
    job = trainjob(trainer={"numNodes": 2}, status={"jobsStatus": JOBS_STATUS, "phase": "Running"})
    job["metadata"]["managedFields"] = MANAGED
    out = compact_trainjob(fresh(job))
    assert out["spec"] == job["spec"] and out["status"] == job["status"]
    assert "managedFields" not in out["metadata"]
    jobset = stored_jobset(job, suspend=False, status={"replicatedJobsStatus": JOBS_STATUS})
    assert compact_jobset(fresh(jobset))["spec"] == jobset["spec"]


def test_a_finished_jobset_keeps_its_status_and_suspend_not_its_templates() -> None:
    jobset = completed_jobset(finished_trainjob())
    out = compact_jobset(fresh(jobset))
    assert out["spec"] == {"suspend": False}
    assert out["status"] == jobset["status"]
    assert out["metadata"]["ownerReferences"] == jobset["metadata"]["ownerReferences"]
    assert compact_jobset(fresh(out)) == out


def test_only_a_snapshot_configmap_keeps_its_data() -> None:
    def configmap(name: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NS, "managedFields": MANAGED},
            "data": {"x": "y" * 100},
        }

    snapshot = slim_configmap(fresh(configmap(f"{NAME}-runtime-snapshot")))
    assert snapshot["data"] == {"x": "y" * 100} and "managedFields" not in snapshot["metadata"]
    for name in (f"{NAME}-tls-config", f"{NAME}-mpi-hostfile"):
        slim = slim_configmap(fresh(configmap(name)))
        assert "data" not in slim and slim["metadata"]["name"] == name


def test_compaction_saves_most_of_a_finished_trainjobs_cache() -> None:
    job = finished_trainjob()
    jobset = completed_jobset(job)
    whole = len(orjson.dumps(job)) + len(orjson.dumps(jobset))
    kept = len(orjson.dumps(compact_trainjob(fresh(job)))) + len(
        orjson.dumps(compact_jobset(fresh(jobset)))
    )
    assert kept < whole / 2, (kept, whole)


# -- reconciles over compacted caches ----------------------------------------------------------------


def compacted_harness(job: Obj, jobset: Obj | None) -> Harness:
    h = Harness.of(compact_trainjob(fresh(job)))
    if jobset is not None:
        h.jobsets.upsert(compact_jobset(fresh(jobset)))
    return h


async def test_a_finished_trainjob_over_compacted_caches_writes_nothing() -> None:
    job = finished_trainjob()
    h = compacted_harness(job, completed_jobset(job))
    assert await h.reconcile() == Result()
    assert h.client.requests == []


async def test_a_completed_jobset_compacted_completes_the_trainjob_as_a_whole_one_does() -> None:
    """The TrainJob not yet finished, its JobSet just Completed (so compacted): the same status
    write as with the whole JobSet."""
    job = trainjob(rv="9", status={"phase": "Running", "startTime": "2026-01-01T00:00:00Z"})
    jobset = completed_jobset(job)
    whole = Harness.of(job, jobset=jobset)
    compacted = compacted_harness(job, jobset)
    assert await whole.reconcile() == await compacted.reconcile() == Result()
    assert (
        whole.client.requests == compacted.client.requests == [("patch/status", "trainjobs", NAME)]
    )
    (a,), (b,) = whole.client.status_patches(), compacted.client.status_patches()
    assert a.body == b.body
    assert conditions(b.body["status"]) == [("Complete", "True", "AllJobsCompleted")]


async def test_a_finished_jobset_is_never_written_even_for_a_suspended_trainjob() -> None:
    """A TrainJob suspended after its JobSet finished: the compacted JobSet is not re-applied
    (nor PUT without its pod templates)."""
    job = trainjob(rv="9", suspend=True)
    jobset = completed_jobset(job)
    assert not should_apply_jobset(job, jobset)
    h = compacted_harness(job, jobset)
    await h.reconcile()
    assert h.since(0, "jobsets") == [] and h.client.update_bodies == []
    assert [r for r in h.client.requests if r[0] == "apply"] == []
    assert copy.deepcopy(h.jobsets.get(f"{NS}/{NAME}")) == compact_jobset(fresh(jobset))
