"""One reconcile of a TrainJob (``reconcilers/trainer/reconciler.py``), over in-memory caches
(``informers.store.Store`` behind ``Lister``s) holding the release's built-in runtimes, and a
recording writer that also takes server-side applies.

``Harness.sync`` plays the watch: what the writer applied, updated or patched since the last sync
reaches the caches (a new JobSet gets a UID, as the API server would give it), and what it
deleted leaves them."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest
from fakes import RecordingJobWriter, RecordingRecorder

from kubetrain.base.clock import FakeClock
from kubetrain.base.objects import Obj
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.store import Store
from kubetrain.reconcilers.trainer.jobset_build import build_jobset
from kubetrain.reconcilers.trainer.reconciler import TrainJobOptions, TrainJobReconciler
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

NAME, NS, UID = "tj", "team-a", "tj-uid"
KEY = f"{NS}/{NAME}"
CREATED = "2026-01-01T00:00:00Z"  # FakeClock's wall_start
STALE_REQUEUE = 7.0


def trainjob(
    runtime: str = "torch-distributed",
    *,
    rv: str = "1",
    status: Obj | None = None,
    **spec: Any,
) -> Obj:
    """A TrainJob in ``NS`` at resourceVersion ``rv``, created at the fake clock's start."""
    job: Obj = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {
            "name": NAME,
            "namespace": NS,
            "uid": UID,
            "resourceVersion": rv,
            "creationTimestamp": CREATED,
        },
        "spec": {"runtimeRef": {"name": runtime}, **spec},
    }
    if status is not None:
        job["status"] = status
    return job


def runtime_spec(name: str) -> Obj:
    (found,) = [r for r in builtin_runtimes() if r["metadata"]["name"] == name]
    spec: Obj = found["spec"]
    return spec


def stored_jobset(job: Obj, *, suspend: bool, status: Obj | None = None) -> Obj:
    """The JobSet built for ``job`` as the API server stores it: the webhook's defaults
    (``completionMode: Indexed``, pod ``restartPolicy: OnFailure``), a UID and a
    resourceVersion."""
    jobset = build_jobset(job, runtime_spec(job["spec"]["runtimeRef"]["name"]))
    jobset["metadata"].update(uid="jobset-uid", resourceVersion="50")
    jobset["spec"]["suspend"] = suspend
    for rjob in jobset["spec"]["replicatedJobs"]:
        job_spec = rjob["template"]["spec"]
        job_spec["completionMode"] = "Indexed"
        job_spec["backoffLimit"] = 0
        job_spec["template"]["spec"]["restartPolicy"] = "OnFailure"
    if status is not None:
        jobset["status"] = status
    return jobset


def conditions(status: Obj) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", "")) for c in status.get("conditions") or []]


@dataclass
class PatchCall:
    plural: str
    name: str
    body: Obj
    patch_type: str
    subresource: str | None
    field_manager: str | None
    force: bool | None


class TrainerWriter(RecordingJobWriter):
    """A ``TrainJobWriter``: ``patch`` also takes ``patch_type``/``force``; a server-side apply
    is recorded as ``("apply", plural, name)`` and stored as sent. Every patch is kept in
    ``patch_calls`` and every update body in ``update_bodies``."""

    def __init__(self, *, jobs: Store | None = None) -> None:
        super().__init__(jobs=jobs)
        self.patch_calls: list[PatchCall] = []
        self.update_bodies: list[Obj] = []

    async def patch(  # type: ignore[override]
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        patch_type: Literal["merge", "json", "strategic", "apply"] = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool | None = None,
    ) -> Obj:
        self.patch_calls.append(
            PatchCall(
                ref.plural,
                name,
                copy.deepcopy(patch),
                patch_type,
                subresource,
                field_manager,
                force,
            )
        )
        if patch_type == "apply":
            self._request("apply", ref, name)
            stored = self._store(ref, patch)
            stored["metadata"].setdefault("uid", f"{name}-{ref.plural}-uid")  # as sync gives it
            return copy.deepcopy(stored)
        return await super().patch(
            ref, namespace, name, patch, subresource=subresource, field_manager=field_manager
        )

    async def update(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> Obj:
        self.update_bodies.append(copy.deepcopy(dict(obj)))
        return await super().update(ref, obj, field_manager=field_manager)

    def status_patches(self) -> list[PatchCall]:
        return [p for p in self.patch_calls if p.subresource == "status"]


@dataclass
class Harness:
    trainjobs: Store = field(default_factory=Store)
    jobsets: Store = field(default_factory=Store)
    training_runtimes: Store = field(default_factory=Store)
    cluster_runtimes: Store = field(default_factory=Store)
    configmaps: Store = field(default_factory=Store)
    recorder: RecordingRecorder = field(default_factory=RecordingRecorder)
    clock: FakeClock = field(default_factory=FakeClock)
    client: TrainerWriter = field(init=False)
    reconciler: TrainJobReconciler = field(init=False)
    _synced: int = 0

    def __post_init__(self) -> None:
        self.client = TrainerWriter(jobs=self.trainjobs)
        self.reconciler = TrainJobReconciler(
            client=self.client,
            trainjobs=Lister(self.trainjobs),
            jobsets=Lister(self.jobsets),
            training_runtimes=Lister(self.training_runtimes),
            cluster_training_runtimes=Lister(self.cluster_runtimes),
            configmaps=Lister(self.configmaps),
            recorder=self.recorder,
            options=TrainJobOptions(clock=self.clock, stale_job_requeue=STALE_REQUEUE),
        )

    @classmethod
    def of(cls, job: Obj, *, jobset: Obj | None = None, runtimes: bool = True) -> Harness:
        h = cls()
        h.trainjobs.upsert(copy.deepcopy(job))
        if jobset is not None:
            h.jobsets.upsert(copy.deepcopy(jobset))
        if runtimes:
            for runtime in builtin_runtimes():
                h.cluster_runtimes.upsert(runtime)
        return h

    def stores(self) -> dict[str, Store]:
        return {"trainjobs": self.trainjobs, "jobsets": self.jobsets, "configmaps": self.configmaps}

    def sync(self) -> None:
        """The watch events of every write since the last sync reach the caches."""
        for verb, plural, name in self.client.requests[self._synced :]:
            store = self.stores()[plural]
            if verb == "delete":
                gone = store.get(f"{NS}/{name}")
                if gone is not None:
                    store.delete(gone)
                continue
            written = self.client.objects.get((plural, NS, name))
            if written is None:
                continue
            obj = copy.deepcopy(written)
            obj["metadata"].setdefault("uid", f"{name}-{plural}-uid")
            store.upsert(obj)
        self._synced = len(self.client.requests)

    def job(self) -> Obj:
        cached = self.trainjobs.get(KEY)
        assert cached is not None
        return copy.deepcopy(cached)

    def set_job(self, job: Obj) -> None:
        self.trainjobs.upsert(copy.deepcopy(job))

    async def reconcile(self) -> Result:
        return await self.reconciler.reconcile(Request.from_key(KEY))

    def mark(self) -> int:
        return len(self.client.requests)

    def since(self, mark: int, *plurals: str) -> list[tuple[str, str, str]]:
        return [r for r in self.client.requests[mark:] if not plurals or r[1] in plurals]


# -- 1. what this controller leaves alone ---------------------------------------------------------


async def test_a_multikueue_trainjob_is_left_alone() -> None:
    h = Harness.of(trainjob(managedBy="kueue.x-k8s.io/multikueue"))
    assert await h.reconcile() == Result()
    assert h.client.requests == [] and h.recorder.events == []


async def test_a_trainjob_managed_by_trainer_by_name_is_reconciled() -> None:
    """The control for the case above: ``managedBy`` naming this controller is no reason to skip."""
    h = Harness.of(trainjob(managedBy="trainer.kubeflow.org/trainjob-controller"))
    await h.reconcile()
    assert h.since(0, "jobsets") == [("apply", "jobsets", NAME)]


# -- 2. a new TrainJob ----------------------------------------------------------------------------


async def test_a_new_trainjob_server_side_applies_its_jobset() -> None:
    h = Harness.of(trainjob())
    assert await h.reconcile() == Result()

    assert h.client.requests == [
        ("apply", "configmaps", f"{NAME}-runtime-snapshot"),
        ("apply", "jobsets", NAME),
        ("patch/status", "trainjobs", NAME),
    ]
    _, call, _ = h.client.patch_calls
    assert (call.plural, call.name) == ("jobsets", NAME)
    assert (call.patch_type, call.field_manager, call.force) == ("apply", "trainer", True)
    assert call.subresource is None
    body = call.body
    assert (body["apiVersion"], body["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    assert (body["metadata"]["name"], body["metadata"]["namespace"]) == (NAME, NS)
    (owner,) = body["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "TrainJob",
        NAME,
        UID,
        True,
    )
    assert body == build_jobset(trainjob(), runtime_spec("torch-distributed"))
    (write,) = h.client.status_patches()
    # kubetrain's phase, and the start the deadline counts from: no condition while it runs
    assert write.body["status"] == {"phase": "Pending", "startTime": CREATED}


# -- 3. suspend and resume ------------------------------------------------------------------------


async def test_a_suspended_trainjob_is_written_suspended() -> None:
    h = Harness.of(trainjob(rv="7", suspend=True))
    assert await h.reconcile() == Result()

    assert h.client.requests == [
        ("apply", "configmaps", f"{NAME}-runtime-snapshot"),
        ("apply", "jobsets", NAME),
        ("patch/status", "trainjobs", NAME),
    ]
    assert h.client.patch_calls[1].body["spec"]["suspend"] is True
    (write,) = h.client.status_patches()
    assert write.patch_type == "merge"
    assert write.body["metadata"] == {"resourceVersion": "7"}
    (cond,) = write.body["status"]["conditions"]
    assert cond == {
        "type": "Suspended",
        "status": "True",
        "reason": "Suspended",
        "message": "TrainJob is suspended",
        "lastTransitionTime": CREATED,
    }


async def test_a_resumed_trainjob_updates_its_suspended_jobset_keeping_stored_fields() -> None:
    suspended = trainjob(rv="7", suspend=True, trainer={"image": "example.com/train:1"})
    h = Harness.of(suspended, jobset=stored_jobset(suspended, suspend=True))
    await h.reconcile()
    h.sync()
    assert conditions(h.job()["status"]) == [("Suspended", "True", "Suspended")]

    resumed = h.job()
    resumed["spec"]["suspend"] = False
    resumed["spec"]["trainer"]["image"] = "example.com/train:2"  # edited while suspended
    resumed["metadata"]["resourceVersion"] = "200"
    h.set_job(resumed)
    h.clock.advance(30)
    mark = h.mark()
    assert await h.reconcile() == Result()

    assert h.since(mark) == [
        ("update", "jobsets", NAME),
        ("patch/status", "trainjobs", NAME),
    ]
    (body,) = h.client.update_bodies
    assert body["spec"]["suspend"] is False
    assert body["metadata"]["resourceVersion"] == "50"  # a PUT of what is stored
    (rjob,) = body["spec"]["replicatedJobs"]
    assert rjob["template"]["spec"]["completionMode"] == "Indexed"
    assert rjob["template"]["spec"]["backoffLimit"] == 0
    pod_spec = rjob["template"]["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "OnFailure"
    (node,) = pod_spec["containers"]
    assert node["image"] == "example.com/train:2"
    assert "PET_NNODES" in [e["name"] for e in node["env"]]

    write = h.client.status_patches()[-1]
    assert write.body["metadata"] == {"resourceVersion": "200"}
    # No Suspended=False condition (the SDK would show Created for the whole run, sdk#803):
    # the condition goes, and the resume is the start activeDeadlineSeconds counts from.
    assert write.body["status"] == {
        "conditions": None,
        "phase": "Pending",
        "startTime": "2026-01-01T00:00:30Z",
    }
    # the cache is never mutated
    cached = h.jobsets.get(KEY)
    assert cached is not None and cached["spec"]["suspend"] is True


# -- 4. a running JobSet ------------------------------------------------------------------------


async def test_a_running_jobset_is_never_changed() -> None:
    """A JobSet running for an earlier image: the TrainJob's new image does not reach it."""
    started = trainjob(trainer={"image": "example.com/train:1"})
    changed = trainjob(trainer={"image": "example.com/train:2"})
    h = Harness.of(changed, jobset=stored_jobset(started, suspend=False))
    assert await h.reconcile() == Result()
    assert h.client.requests == [("patch/status", "trainjobs", NAME)]  # phase and startTime
    h.sync()
    mark = h.mark()
    assert await h.reconcile() == Result()
    assert h.since(mark) == []


async def test_a_running_jobset_of_someone_else_is_reported_not_overwritten() -> None:
    foreign = stored_jobset(trainjob(), suspend=True)
    foreign["metadata"]["ownerReferences"][0]["uid"] = "another-uid"
    h = Harness.of(trainjob(), jobset=foreign)
    with pytest.raises(RuntimeError, match="not this TrainJob's"):
        await h.reconcile()
    assert h.since(0, "jobsets") == []
    assert [r for _, r, _ in h.recorder.events] == ["TrainJobResourcesCreationFailed"]


# -- 5. the JobSet's status -----------------------------------------------------------------------


async def test_a_completed_jobset_completes_the_trainjob_with_its_jobs_status() -> None:
    job = trainjob(rv="9")
    completed = {
        "type": "Completed",
        "status": "True",
        "reason": "AllJobsCompleted",
        "message": "jobset completed successfully",
        "lastTransitionTime": "2026-01-01T00:05:00Z",
    }
    js_status = {
        "conditions": [completed],
        "replicatedJobsStatus": [
            {"name": "node", "ready": 0, "succeeded": 1, "failed": 0, "active": 0, "suspended": 0}
        ],
    }
    h = Harness.of(job, jobset=stored_jobset(job, suspend=False, status=js_status))
    assert await h.reconcile() == Result()

    assert h.client.requests == [("patch/status", "trainjobs", NAME)]
    (write,) = h.client.status_patches()
    assert write.body["metadata"] == {"resourceVersion": "9"}
    status = write.body["status"]
    assert status["conditions"] == [
        {
            "type": "Complete",
            "status": "True",
            "reason": "AllJobsCompleted",
            "message": "jobset completed successfully",
            "lastTransitionTime": "2026-01-01T00:05:00Z",
        }
    ]
    assert status["jobsStatus"] == [
        {"name": "node", "ready": 0, "succeeded": 1, "failed": 0, "active": 0, "suspended": 0}
    ]

    # written once: the next reconcile over the synced cache writes nothing
    h.sync()
    mark = h.mark()
    assert await h.reconcile() == Result()
    assert h.since(mark) == []


async def test_a_running_jobset_copies_its_job_counts() -> None:
    job = trainjob()
    js_status = {
        "replicatedJobsStatus": [{"name": "node", "ready": 1, "active": 1}],
    }
    h = Harness.of(job, jobset=stored_jobset(job, suspend=False, status=js_status))
    await h.reconcile()
    (write,) = h.client.status_patches()
    assert "conditions" not in write.body["status"]
    assert write.body["status"]["jobsStatus"] == [
        {"name": "node", "ready": 1, "succeeded": 0, "failed": 0, "active": 1, "suspended": 0}
    ]


# -- 6. a finished TrainJob -----------------------------------------------------------------------


async def test_a_failed_trainjob_whose_jobset_is_gone_is_not_recreated() -> None:
    """trainer#3737: the JobSet's TTL deleted it; a fresh one would restart the training."""
    failed = {
        "type": "Failed",
        "status": "True",
        "reason": "FailedJobs",
        "message": "jobset failed",
        "lastTransitionTime": "2026-01-01T00:05:00Z",
    }
    h = Harness.of(trainjob(status={"conditions": [failed], "phase": "Failed"}))
    assert await h.reconcile() == Result()
    assert h.client.requests == []


# -- 7. activeDeadlineSeconds ----------------------------------------------------------------------


async def test_a_passed_active_deadline_fails_the_trainjob_and_deletes_its_jobset() -> None:
    job = trainjob(rv="3", activeDeadlineSeconds=60)
    h = Harness.of(job, jobset=stored_jobset(job, suspend=False))
    h.clock.advance(61)
    assert await h.reconcile() == Result()

    assert h.client.requests == [
        ("delete", "jobsets", NAME),
        ("patch/status", "trainjobs", NAME),
    ]
    (write,) = h.client.status_patches()
    (cond,) = write.body["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Failed", "True", "DeadlineExceeded")
    assert cond["lastTransitionTime"] == "2026-01-01T00:01:01Z"


async def test_an_active_deadline_not_passed_requeues_for_the_seconds_left() -> None:
    job = trainjob(activeDeadlineSeconds=60)
    h = Harness.of(job, jobset=stored_jobset(job, suspend=False))
    h.clock.advance(20)
    result = await h.reconcile()
    assert result.requeue_after == pytest.approx(40.0)
    assert h.client.requests == [("patch/status", "trainjobs", NAME)]
    assert h.client.status_patches()[0].body["status"]["startTime"] == CREATED


# -- 8. runtimes that cannot be built ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        pytest.param("ClusterTrainingRuntime", "", id="cluster"),
        pytest.param("TrainingRuntime", f" in namespace {NS}", id="namespaced"),
    ],
)
async def test_a_missing_runtime_is_a_warning_and_a_retry(kind: str, where: str) -> None:
    h = Harness.of(trainjob("my-runtime", runtimeRef={"name": "my-runtime", "kind": kind}))
    with pytest.raises(RuntimeError, match="my-runtime"):
        await h.reconcile()

    # no JobSet; the error is on the TrainJob too, not only in an Event (trainer#3671)
    assert h.client.requests == [("patch/status", "trainjobs", NAME)]
    ((type_, reason, message),) = h.recorder.events
    assert (type_, reason) == ("Warning", "TrainJobResourcesCreationFailed")
    assert f"{kind} my-runtime{where} not found" in message
    (write,) = h.client.status_patches()
    (cond,) = write.body["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "ResourcesCreationFailed",
        "True",
        "TrainJobResourcesCreationFailed",
    )
    assert cond["message"] == message
    assert write.body["status"]["phase"] == "Pending"

    # the runtime appears: the next reconcile builds, and the condition goes
    h.sync()
    runtime = copy.deepcopy(builtin_runtimes()[0])
    runtime["kind"] = kind
    runtime["metadata"] = {"name": "my-runtime"}
    if kind == "TrainingRuntime":
        runtime["metadata"]["namespace"] = NS
    (h.cluster_runtimes if kind == "ClusterTrainingRuntime" else h.training_runtimes).upsert(
        runtime
    )
    mark = h.mark()
    assert await h.reconcile() == Result()
    assert ("apply", "jobsets", NAME) in h.since(mark)
    assert h.client.status_patches()[-1].body["status"]["conditions"] is None


async def test_an_unsupported_runtime_kind_fails_the_trainjob() -> None:
    job = trainjob(runtimeRef={"name": "torch-distributed", "apiGroup": "other.io"})
    h = Harness.of(job)
    assert await h.reconcile() == Result()

    assert h.client.requests == [("patch/status", "trainjobs", NAME)]
    (write,) = h.client.status_patches()
    (cond,) = write.body["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "Failed",
        "True",
        "TrainingRuntimeNotSupported",
    )
    assert "ClusterTrainingRuntime.other.io" in cond["message"]


# -- 9. an unsupported ML policy ------------------------------------------------------------------


async def test_a_flux_runtime_fails_the_trainjob_as_not_supported() -> None:
    h = Harness.of(trainjob("flux-runtime"))
    flux = copy.deepcopy(builtin_runtimes()[0])
    flux["metadata"] = {"name": "flux-runtime"}
    flux["spec"]["mlPolicy"] = {"numNodes": 1, "flux": {"numProcPerNode": 1}}
    h.cluster_runtimes.upsert(flux)
    assert await h.reconcile() == Result()

    assert h.since(0, "jobsets", "trainjobs") == [("patch/status", "trainjobs", NAME)]
    (write,) = h.client.status_patches()
    (cond,) = write.body["status"]["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "Failed",
        "True",
        "TrainingRuntimeNotSupported",
    )
    assert "flux" in cond["message"]
    assert h.recorder.events == []

    # Failed for good: the next reconcile over the synced cache builds nothing
    h.sync()
    mark = h.mark()
    assert await h.reconcile() == Result()
    assert h.since(mark) == []


# -- 10. a cache behind our last status write -------------------------------------------------


async def test_a_stale_cache_is_waited_for_after_a_status_write() -> None:
    h = Harness.of(trainjob(rv="7", suspend=True))
    await h.reconcile()
    assert h.client.requests[-1] == ("patch/status", "trainjobs", NAME)
    written = h.client.objects[("trainjobs", NS, NAME)]["metadata"]["resourceVersion"]
    assert written != "7"

    mark = h.mark()
    assert await h.reconcile() == Result(requeue_after=STALE_REQUEUE)  # cache still at "7"
    assert h.since(mark) == []

    h.sync()  # the JobSet and the written TrainJob reach the caches
    assert h.job()["metadata"]["resourceVersion"] == written
    resumed = h.job()
    resumed["spec"]["suspend"] = False
    h.set_job(resumed)  # an edit on top of what was written: no newer resourceVersion yet
    mark = h.mark()
    assert await h.reconcile() == Result()
    assert h.since(mark) == [
        ("update", "jobsets", NAME),
        ("patch/status", "trainjobs", NAME),
    ]


# -- 11. the runtime snapshot ---------------------------------------------------------------------


async def test_the_snapshot_not_the_edited_runtime_builds_a_resumed_trainjob() -> None:
    """KEP-2599: the runtime is snapshotted at the first build; an edit of the runtime made
    while the TrainJob waits suspended does not reach it."""
    h = Harness.of(trainjob(rv="7", suspend=True))
    await h.reconcile()
    h.sync()
    snapshot = h.configmaps.get(f"{NS}/{NAME}-runtime-snapshot")
    assert snapshot is not None
    assert snapshot["metadata"]["ownerReferences"][0]["uid"] == UID
    assert snapshot["metadata"]["labels"] == {"trainer.kubeflow.org/trainjob-name": NAME}

    edited = copy.deepcopy(h.cluster_runtimes.get("torch-distributed"))
    assert edited is not None
    node = edited["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]
    node["template"]["spec"]["containers"][0]["image"] = "example.com/edited:9"
    h.cluster_runtimes.upsert(edited)

    resumed = h.job()
    resumed["spec"]["suspend"] = False
    h.set_job(resumed)
    mark = h.mark()
    await h.reconcile()
    assert ("apply", "configmaps", f"{NAME}-runtime-snapshot") not in h.since(mark)
    (body,) = h.client.update_bodies
    (rjob,) = body["spec"]["replicatedJobs"]
    image = rjob["template"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image != "example.com/edited:9"
    assert (
        image
        == runtime_spec("torch-distributed")["template"]["spec"]["replicatedJobs"][0]["template"][
            "spec"
        ]["template"]["spec"]["containers"][0]["image"]
    )


async def test_a_snapshot_owned_by_another_trainjob_is_a_creation_error() -> None:
    h = Harness.of(trainjob())
    h.configmaps.upsert(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"{NAME}-runtime-snapshot",
                "namespace": NS,
                "ownerReferences": [{"uid": "someone-else", "controller": True}],
            },
            "data": {"runtime": "{}"},
        }
    )
    with pytest.raises(RuntimeError, match="owned by another object"):
        await h.reconcile()
    assert h.since(0, "jobsets") == []
    (write,) = h.client.status_patches()
    assert write.body["status"]["conditions"][0]["type"] == "ResourcesCreationFailed"


# -- 12. phase and metrics ------------------------------------------------------------------------


async def test_the_phase_follows_the_jobset_and_the_metrics_count_each_transition() -> None:
    from prometheus_client import CollectorRegistry

    from kubetrain.reconcilers.metrics import JobMetrics

    registry = CollectorRegistry()
    job = trainjob()
    h = Harness.of(job, jobset=stored_jobset(job, suspend=False))
    h.reconciler.metrics = JobMetrics(registry)

    def sample(name: str, **labels: str) -> float:
        value = registry.get_sample_value(name, {"framework": "trainjob", **labels})
        return value or 0.0

    await h.reconcile()
    h.sync()
    assert h.job()["status"]["phase"] == "Pending"
    assert sample("training_operator_jobs_created_total", job_namespace=NS) == 1

    running = stored_jobset(
        job, suspend=False, status={"replicatedJobsStatus": [{"name": "node", "ready": 1}]}
    )
    h.jobsets.upsert(running)
    h.clock.advance(12)
    await h.reconcile()
    h.sync()
    status = h.job()["status"]
    assert status["phase"] == "Running"
    assert "conditions" not in status  # what lets the kubeflow SDK show Running
    assert sample("kubetrain_job_running_seconds_count") == 1
    assert sample("kubetrain_job_running_seconds_sum") == 12

    done = stored_jobset(
        job,
        suspend=False,
        status={
            "conditions": [{"type": "Completed", "status": "True", "reason": "AllJobsCompleted"}],
            "replicatedJobsStatus": [{"name": "node", "succeeded": 1}],
        },
    )
    h.jobsets.upsert(done)
    h.clock.advance(30)
    await h.reconcile()
    h.sync()
    assert h.job()["status"]["phase"] == "Complete"
    assert sample("training_operator_jobs_successful_total", job_namespace=NS) == 1
    assert sample("kubetrain_job_duration_seconds_sum", outcome="succeeded") == 42
    # counted once: a reconcile with nothing new counts nothing
    await h.reconcile()
    assert sample("training_operator_jobs_created_total", job_namespace=NS) == 1
    assert sample("training_operator_jobs_successful_total", job_namespace=NS) == 1


# -- 13. a cache behind our JobSet write ----------------------------------------------------------


async def test_a_jobset_the_cache_does_not_show_yet_is_not_applied_again() -> None:
    h = Harness.of(trainjob())
    await h.reconcile()
    assert h.since(0, "jobsets") == [("apply", "jobsets", NAME)]
    mark = h.mark()
    await h.reconcile()  # the JobSet's watch event has not arrived
    assert h.since(mark, "jobsets") == []

    h.sync()
    mark = h.mark()
    await h.reconcile()
    assert h.since(mark, "jobsets") == []  # running: never changed

    # A JobSet that never reaches the cache (deleted before its watch event) is not waited
    # for for ever: after JOBSET_WRITE_WAIT it is applied again.
    h.jobsets.delete(h.jobsets.get(KEY))
    h.reconciler._jobset_writes[KEY] = ("gone-uid", "999", h.clock.utcnow())
    mark = h.mark()
    await h.reconcile()
    assert h.since(mark, "jobsets") == []
    h.clock.advance(31)
    await h.reconcile()
    assert h.since(mark, "jobsets") == [("apply", "jobsets", NAME)]


async def test_a_resume_the_cache_does_not_show_yet_is_not_put_again() -> None:
    suspended = trainjob(rv="7", suspend=True)
    h = Harness.of(suspended, jobset=stored_jobset(suspended, suspend=True))
    await h.reconcile()
    h.sync()
    resumed = h.job()
    resumed["spec"]["suspend"] = False
    h.set_job(resumed)
    await h.reconcile()
    assert len(h.client.update_bodies) == 1
    stale = h.job()  # the status write reached the cache, the JobSet's update did not
    h.set_job(stale)
    h.reconciler._written.forget(KEY)
    await h.reconcile()
    assert len(h.client.update_bodies) == 1  # no PUT at the stale resourceVersion (a 409)
    assert h.recorder.events == []
