"""One reconcile of an MPIJob written as v2beta1 (``mpiv2/reconciler.py``), over in-memory
caches (``informers.store.Store`` behind ``Lister``s, owned objects indexed by controller UID, the
jobs compacted and the pods slimmed as the informers' transforms do) and a recording writer.

``Harness.sync`` plays the watch: it copies what the writer created, updated or patched since the
last sync into the caches (giving each new object a UID, as the API server would) and drops what it
deleted; a test then sets the pods' phases the kubelet would report."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from fakes import RecordingJobWriter, RecordingRecorder
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.base.objects import Obj, controller_uid
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.store import Store
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.mpi_v2beta1 import (
    ORIGIN_ANNOTATION,
    V2BETA1,
    default_mpijob_v2beta1,
)
from kubetrain.reconcilers.common.compact import compact_job, slim_pod
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.metrics import JobMetrics
from kubetrain.reconcilers.mpiv2 import objects as mpi
from kubetrain.reconcilers.mpiv2.metrics import MPIOperatorMetrics
from kubetrain.reconcilers.mpiv2.reconciler import (
    MPIJobV2Options,
    MPIJobV2Reconciler,
    ResourceExistsError,
)

from .mpijobs import UID, mpijob

NAME, NS = "foo", "bar"
KEY = f"{NS}/{NAME}"
LAUNCHER = "foo-launcher"
LAUNCHER_UID = f"{LAUNCHER}-uid"
OPERATOR_NAME_LABEL = "training.kubeflow.org/operator-name"
CONFLICT = 409


def v2job(rv: str = "1", **spec: Any) -> Obj:
    """``mpijob(**spec)`` written as v2beta1 (the origin annotation), at resourceVersion ``rv``."""
    job = mpijob(NAME, NS, **spec)
    job["metadata"]["annotations"] = {ORIGIN_ANNOTATION: V2BETA1}
    job["metadata"]["resourceVersion"] = rv
    return job


def worker(job: Obj, index: int, phase: str | None = None, *, ready: bool = False) -> Obj:
    """Worker ``index`` as the reconciler builds it, with a UID and a kubelet-reported status."""
    pod = mpi.new_worker(default_mpijob_v2beta1(job), index)
    pod["metadata"]["uid"] = f"{pod['metadata']['name']}-uid"
    return with_phase(pod, phase, ready=ready)


def with_phase(pod: Obj, phase: str | None, *, ready: bool = False) -> Obj:
    out = copy.deepcopy(pod)
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    out["status"] = status
    return out


def launcher_pod(phase: str = "Running") -> Obj:
    """A pod of the launcher Job (controlled by it, not by the MPIJob)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{LAUNCHER}-x7k2p",
            "namespace": NS,
            "uid": "launcher-pod-uid",
            "labels": {OPERATOR_NAME_LABEL: "mpi-operator", mpi.JOB_ROLE_LABEL: "launcher"},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": LAUNCHER,
                    "uid": LAUNCHER_UID,
                    "controller": True,
                }
            ],
        },
        "status": {"phase": phase},
    }


def foreign_config_map() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "foo-config",
            "namespace": NS,
            "uid": "someone-elses",
            "labels": {OPERATOR_NAME_LABEL: "mpi-operator"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "other",
                    "uid": "other-uid",
                    "controller": True,
                }
            ],
        },
        "data": {"hostfile": ""},
    }


def conditions(status: Obj) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", "")) for c in status.get("conditions") or []]


class BodyRecordingWriter(RecordingJobWriter):
    """Also keeps the body of every update (the resourceVersion a PUT was sent with) and what
    every status PUT returned."""

    def __init__(self, *, jobs: Store | None = None) -> None:
        super().__init__(jobs=jobs)
        self.update_bodies: list[Obj] = []
        self.status_answers: list[Obj] = []

    async def update(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> Obj:
        self.update_bodies.append(copy.deepcopy(dict(obj)))
        return await super().update(ref, obj, field_manager=field_manager)

    async def update_status(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> Obj:
        answer = await super().update_status(ref, obj, field_manager=field_manager)
        self.status_answers.append(copy.deepcopy(answer))
        return answer


def indexed() -> Store:
    """An owned-object cache: indexed by controller UID, as the informers are."""
    return Store(indexers={CONTROLLER_UID_INDEX: controller_uid_index})


@dataclass
class Harness:
    """The reconciler over six caches and a recording writer; metrics on a registry of its own."""

    jobs: Store = field(default_factory=Store)
    pods: Store = field(default_factory=indexed)
    services: Store = field(default_factory=indexed)
    configmaps: Store = field(default_factory=indexed)
    secrets: Store = field(default_factory=indexed)
    batch_jobs: Store = field(default_factory=indexed)
    recorder: RecordingRecorder = field(default_factory=RecordingRecorder)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    client: BodyRecordingWriter = field(init=False)
    reconciler: MPIJobV2Reconciler = field(init=False)
    expectations: Expectations = field(default_factory=lambda: Expectations(clock=FakeClock()))
    _synced: int = 0

    def __post_init__(self) -> None:
        self.client = BodyRecordingWriter(jobs=self.jobs)
        self.reconciler = MPIJobV2Reconciler(
            client=self.client,
            jobs=Lister(self.jobs),
            pods=Lister(self.pods),
            services=Lister(self.services),
            configmaps=Lister(self.configmaps),
            secrets=Lister(self.secrets),
            batch_jobs=Lister(self.batch_jobs),
            recorder=self.recorder,
            metrics=JobMetrics(self.registry),
            mpi_metrics=MPIOperatorMetrics(self.registry),
            expectations=self.expectations,
            options=MPIJobV2Options(clock=FakeClock()),
        )

    @classmethod
    def of(cls, job: Obj, *, pods: Iterable[Obj] = (), configmaps: Iterable[Obj] = ()) -> Harness:
        h = cls()
        h.put_job(job)
        h.put_pods(*pods)
        for cm in configmaps:
            h.configmaps.upsert(copy.deepcopy(cm))
        return h

    # -- the caches -----------------------------------------------------------------------------

    def stores(self) -> dict[str, Store]:
        return {
            "mpijobs": self.jobs,
            "pods": self.pods,
            "services": self.services,
            "configmaps": self.configmaps,
            "secrets": self.secrets,
            "jobs": self.batch_jobs,
        }

    def put_job(self, job: Obj) -> None:
        self.jobs.upsert(compact_job(copy.deepcopy(job)))

    def put_pods(self, *pods: Obj) -> None:
        for pod in pods:
            self.pods.upsert(slim_pod(copy.deepcopy(pod)))

    def job(self) -> Obj:
        cached = self.jobs.get(KEY)
        assert cached is not None
        return copy.deepcopy(cached)

    def cached(self, plural: str, name: str) -> Obj:
        obj = self.stores()[plural].get(f"{NS}/{name}")
        assert obj is not None, (plural, name)
        return copy.deepcopy(obj)

    def sync(self) -> None:
        """The watch events of every write since the last sync reach the caches."""
        for verb, plural, name in self.client.requests[self._synced :]:
            store = self.stores()[plural]
            if verb == "delete":
                gone = store.get(f"{NS}/{name}")
                if gone is not None:
                    store.delete(gone)
                    owner = controller_uid(gone)
                    if owner:  # the informer handler's observation
                        self.expectations.observe_deleted(owner, plural, name)
                continue
            written = self.client.objects.get((plural, NS, name))
            if written is None:
                continue  # the write failed
            owner = controller_uid(written)
            if owner and verb == "create":
                self.expectations.observe_created(owner, plural, name)
            obj = copy.deepcopy(written)
            obj["metadata"].setdefault("uid", f"{name}-uid")
            if plural == "mpijobs":
                self.put_job(obj)
            elif plural == "pods":
                self.put_pods(obj)
            else:
                store.upsert(obj)
        self._synced = len(self.client.requests)

    # -- running and reading --------------------------------------------------------------------

    async def reconcile(self) -> Result:
        return await self.reconciler.reconcile(Request.from_key(KEY))

    def mark(self) -> int:
        return len(self.client.requests)

    def since(self, mark: int, *plurals: str) -> list[tuple[str, str, str]]:
        """The requests after ``mark`` (on ``plurals`` only, when given)."""
        return [r for r in self.client.requests[mark:] if not plurals or r[1] in plurals]

    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.recorder.events]

    def count(self, name: str) -> tuple[float, float]:
        """(kubetrain's ``training_operator_jobs_<name>``{mpi}, ``mpi_operator_jobs_<name>``)."""
        labels = {"job_namespace": NS, "framework": "mpi"}
        ours = self.registry.get_sample_value(f"training_operator_jobs_{name}", labels) or 0.0
        theirs = self.registry.get_sample_value(f"mpi_operator_jobs_{name}") or 0.0
        return ours, theirs

    async def run_until_running(self) -> None:
        """Create the job's objects, then report its workers and launcher pod Running and
        reconcile it to Running=True (both writes synced)."""
        await self.reconcile()
        self.sync()
        job = self.job()
        self.put_pods(
            *(worker(job, i, "Running", ready=True) for i in range(mpi.worker_replicas(job))),
            launcher_pod("Running"),
        )
        await self.reconcile()
        self.sync()
        assert ("Running", "True", "MPIJobRunning") in conditions(self.job()["status"])


# -- 1. what this controller leaves alone ----------------------------------------------------------


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(mpijob(NAME, NS, workers=1), id="v1-mpijob"),
        pytest.param(
            v2job(workers=1, runPolicy={"managedBy": "kueue.x-k8s.io/multikueue"}),
            id="multikueue",
        ),
    ],
)
async def test_a_v1_job_and_a_multikueue_job_are_left_alone(job: Obj) -> None:
    h = Harness.of(job)
    assert await h.reconcile() == Result()
    assert h.client.requests == [] and h.recorder.events == []


async def test_a_job_managed_by_mpi_operator_by_name_is_reconciled() -> None:
    """The control for the case above: ``managedBy`` naming this controller is no reason to skip."""
    h = Harness.of(v2job(workers=1, runPolicy={"managedBy": "kubeflow.org/mpi-operator"}))
    await h.reconcile()
    assert ("create", "jobs", LAUNCHER) in h.client.requests


# -- 2. a new job ------------------------------------------------------------------------------


async def test_a_new_job_creates_its_objects_in_order_and_is_written_created() -> None:
    h = Harness.of(v2job(rv="7", workers=2))
    assert await h.reconcile() == Result()

    assert h.client.requests == [
        ("create", "services", NAME),
        ("create", "configmaps", "foo-config"),
        ("create", "secrets", "foo-ssh"),
        ("create", "pods", "foo-worker-0"),
        ("create", "pods", "foo-worker-1"),
        ("create", "jobs", LAUNCHER),
        ("patch/status", "mpijobs", NAME),
    ]
    for (plural, _, name), obj in h.client.objects.items():
        if plural != "mpijobs":
            labels = obj["metadata"]["labels"]
            assert labels.get(OPERATOR_NAME_LABEL) == "mpi-operator", (plural, name)
            (owner,) = obj["metadata"]["ownerReferences"]
            assert (owner["kind"], owner["uid"], owner["controller"]) == ("MPIJob", UID, True)

    (body,) = h.client.patches
    assert body["metadata"] == {"resourceVersion": "7"}
    assert conditions(body["status"]) == [("Created", "True", "MPIJobCreated")]
    assert "startTime" in body["status"]
    assert h.recorder.events == [("Normal", "MPIJobCreated", "MPIJob bar/foo is created.")]

    # Its objects' events wake it again: nothing to create, write or record a second time.
    h.sync()
    mark = h.mark()
    await h.reconcile()
    assert h.since(mark) == []
    assert h.reasons() == ["MPIJobCreated"]
    assert h.count("created_total") == (1, 1)


# -- 3. WaitForWorkersReady ---------------------------------------------------------------------


async def test_wait_for_workers_ready_creates_the_launcher_once_every_worker_is_ready() -> None:
    job = v2job(workers=2, launcherCreationPolicy="WaitForWorkersReady")
    h = Harness.of(job)
    await h.reconcile()
    assert h.since(0, "pods") == [
        ("create", "pods", "foo-worker-0"),
        ("create", "pods", "foo-worker-1"),
    ]
    assert h.since(0, "jobs") == []
    h.sync()

    h.put_pods(worker(job, 0, "Running", ready=True), worker(job, 1, "Running"))
    mark = h.mark()
    await h.reconcile()
    assert h.since(mark, "jobs") == []

    h.sync()  # the cache shows the status that reconcile wrote
    h.put_pods(worker(job, 1, "Running", ready=True))
    await h.reconcile()
    assert h.since(mark, "jobs") == [("create", "jobs", LAUNCHER)]


# -- 4. a stale cache --------------------------------------------------------------------------


async def test_a_conflict_on_the_status_write_requeues_and_records_nothing_until_it_lands() -> None:
    h = Harness.of(v2job(rv="3", workers=1))
    h.client.errors[("patch/status", NAME)] = ApiStatusError(CONFLICT, reason="Conflict")
    assert await h.reconcile() == Result(requeue=True)
    assert ("patch/status", "mpijobs", NAME) in h.client.requests
    assert h.recorder.events == []
    assert h.count("created_total") == (0, 0)

    # The cache catches up (a newer job, the created objects): the write lands, events once.
    h.sync()
    job = h.job()
    job["metadata"]["resourceVersion"] = "4"
    h.put_job(job)
    assert await h.reconcile() == Result()
    assert h.client.patches[-1]["metadata"] == {"resourceVersion": "4"}
    assert h.reasons() == ["MPIJobCreated"]
    assert h.count("created_total") == (1, 1)


# -- 5. events on transitions only ---------------------------------------------------------------


async def test_a_running_job_reconciled_again_writes_and_records_nothing() -> None:
    h = Harness.of(v2job(workers=2))
    await h.run_until_running()
    assert h.reasons() == ["MPIJobCreated", "MPIJobRunning"]

    mark = h.mark()
    assert await h.reconcile() == Result()
    assert h.since(mark) == []
    assert h.reasons() == ["MPIJobCreated", "MPIJobRunning"]


async def test_a_running_job_whose_status_changes_records_no_second_running_event() -> None:
    """Go records ``MPIJobRunning`` on every pass that sees it running; kubetrain only when the
    condition turns True, even when the same write records something else."""
    h = Harness.of(v2job(workers=1))
    await h.run_until_running()
    launcher = h.cached("jobs", LAUNCHER)
    launcher["status"] = {"failed": 1, "active": 1}  # a launcher pod failed and was replaced
    h.batch_jobs.upsert(launcher)

    mark = h.mark()
    await h.reconcile()
    assert h.since(mark) == [("patch/status", "mpijobs", NAME)]
    assert h.client.patches[-1]["status"] == {
        "replicaStatuses": {"Launcher": {"failed": 1}},
    }
    assert h.reasons() == ["MPIJobCreated", "MPIJobRunning"]


# -- 6. the finished branch --------------------------------------------------------------------


def finished_job(clean_pod_policy: str) -> Obj:
    job = v2job(rv="9", workers=3, runPolicy={"cleanPodPolicy": clean_pod_policy})
    job["status"] = {
        "conditions": [
            {"type": "Created", "status": "True", "reason": "MPIJobCreated"},
            {"type": "Running", "status": "False", "reason": "MPIJobRunning"},
            {"type": "Succeeded", "status": "True", "reason": "MPIJobSucceeded"},
        ],
        "startTime": "2026-01-01T00:00:00Z",
        "completionTime": "2026-01-01T00:10:00Z",
        "replicaStatuses": {"Launcher": {"succeeded": 1}, "Worker": {"active": 2, "succeeded": 1}},
    }
    return job


def finished_workers(job: Obj) -> list[Obj]:
    return [worker(job, 0, "Running"), worker(job, 1, "Pending"), worker(job, 2, "Succeeded")]


async def test_a_finished_job_under_clean_pod_policy_running_deletes_its_unfinished_workers() -> (
    None
):
    job = finished_job("Running")
    h = Harness.of(job, pods=finished_workers(job))
    assert await h.reconcile() == Result()

    deleted = sorted(name for verb, _, name in h.client.requests if verb == "delete")
    assert deleted == ["foo-worker-0", "foo-worker-1"]  # the Succeeded worker stays
    assert h.since(0, "mpijobs") == [("patch/status", "mpijobs", NAME)]
    (body,) = h.client.patches
    assert body == {
        "metadata": {"resourceVersion": "9"},
        "status": {"replicaStatuses": {"Worker": {"active": None, "succeeded": None}}},
    }
    assert h.recorder.events == []


async def test_a_finished_job_under_clean_pod_policy_none_is_left_as_it_is() -> None:
    job = finished_job("None")
    h = Harness.of(job, pods=finished_workers(job))
    assert await h.reconcile() == Result()
    assert h.client.requests == [] and h.recorder.events == []


# -- 7. suspend and resume ---------------------------------------------------------------------


async def test_suspend_suspends_the_launcher_and_deletes_workers_by_clean_pod_policy() -> None:
    h = Harness.of(v2job(workers=2, runPolicy={"cleanPodPolicy": "Running"}))
    await h.run_until_running()
    job = h.job()
    h.put_pods(worker(job, 1, "Succeeded"))
    job["spec"]["runPolicy"]["suspend"] = True
    h.put_job(job)

    mark = h.mark()
    assert await h.reconcile() == Result()
    assert h.since(mark, "jobs") == [("update", "jobs", LAUNCHER)]
    assert h.client.update_bodies[-1]["spec"]["suspend"] is True
    assert h.since(mark, "pods") == [("delete", "pods", "foo-worker-0")]  # Succeeded worker-1 stays
    status = h.client.patches[-1]["status"]
    suspended = [c for c in status["conditions"] if c["type"] == "Suspended"]
    assert [(c["status"], c["reason"]) for c in suspended] == [("True", "MPIJobSuspended")]
    assert ("Running", "False", "MPIJobSuspended") in conditions(status)
    assert h.reasons()[-1] == "MPIJobSuspended"


async def test_resume_clears_the_launchers_start_time_before_unsuspending_it() -> None:
    h = Harness.of(v2job(workers=1, runPolicy={"suspend": True}))
    await h.reconcile()
    h.sync()
    launcher = h.cached("jobs", LAUNCHER)
    assert launcher["spec"]["suspend"] is True
    launcher["status"] = {"startTime": "2026-01-01T00:00:00Z", "active": 0}
    h.batch_jobs.upsert(launcher)
    job = h.job()
    job["spec"]["runPolicy"]["suspend"] = False
    h.put_job(job)

    mark = h.mark()
    await h.reconcile()
    assert h.since(mark, "jobs") == [
        ("update/status", "jobs", LAUNCHER),
        ("update", "jobs", LAUNCHER),
    ]
    assert h.client.status_writes[-1] == {"active": 0}  # startTime gone
    update = h.client.update_bodies[-1]
    assert update["spec"]["suspend"] is False
    assert "startTime" not in update["status"]
    # The PUT carries the resourceVersion the status write returned (no self-inflicted 409).
    answer = h.client.status_answers[-1]["metadata"]["resourceVersion"]
    assert update["metadata"]["resourceVersion"] == answer
    assert "MPIJobResumed" in h.reasons()


# -- 8. scale down -----------------------------------------------------------------------------


async def test_scale_down_with_the_launcher_as_worker_deletes_only_the_worker_past_the_count() -> (
    None
):
    three = v2job(workers=3, runLauncherAsWorker=True)
    pods = [worker(three, i, "Running") for i in range(3)]
    assert [p["metadata"]["labels"][mpi.REPLICA_INDEX_LABEL] for p in pods] == ["1", "2", "3"]
    h = Harness.of(v2job(workers=2, runLauncherAsWorker=True), pods=pods)

    await h.reconcile()
    assert h.since(0, "pods") == [("delete", "pods", "foo-worker-2")]


# -- 9. a name taken by someone else --------------------------------------------------------------


async def test_a_config_map_of_someone_else_is_reported_and_retried() -> None:
    h = Harness.of(v2job(workers=1), configmaps=[foreign_config_map()])
    with pytest.raises(ResourceExistsError):
        await h.reconcile()
    assert h.recorder.events == [
        (
            "Warning",
            "ErrResourceExists",
            'Resource "foo-config" of Kind "ConfigMap" already exists and is not managed by MPIJob',
        )
    ]
    assert h.since(0, "configmaps", "pods", "jobs", "mpijobs") == []


# -- 10. an invalid job ------------------------------------------------------------------------


async def test_an_invalid_job_is_failed_once_with_a_validation_error() -> None:
    job = v2job(rv="5", workers=1)
    job["spec"]["mpiReplicaSpecs"]["Launcher"]["replicas"] = 2
    h = Harness.of(job)

    assert await h.reconcile() == Result()
    assert h.client.requests == [("patch/status", "mpijobs", NAME)]
    ((type_, reason, message),) = h.recorder.events
    assert (type_, reason) == ("Warning", "ValidationError")
    assert message.startswith("Found validation errors: ")
    assert "spec.mpiReplicaSpecs[Launcher].replicas" in message
    (body,) = h.client.patches
    assert body["metadata"] == {"resourceVersion": "5"}
    status = body["status"]
    assert conditions(status) == [
        ("Created", "True", "MPIJobCreated"),
        ("Failed", "True", "ValidationError"),
    ]
    assert status["conditions"][-1]["message"] == message
    assert "completionTime" in status
    assert h.count("failed_total") == (1, 1)

    h.sync()
    mark = h.mark()
    assert await h.reconcile() == Result()
    assert h.since(mark) == [] and len(h.recorder.events) == 1
    assert h.count("failed_total") == (1, 1)


# -- 11. metrics -------------------------------------------------------------------------------


async def test_a_job_is_counted_created_and_successful_once() -> None:
    h = Harness.of(v2job(workers=1))
    await h.run_until_running()
    assert h.count("created_total") == (1, 1)

    launcher = h.cached("jobs", LAUNCHER)
    launcher["status"] = {
        "conditions": [{"type": "Complete", "status": "True"}],
        "succeeded": 1,
        "completionTime": "2026-01-01T00:30:00Z",
    }
    h.batch_jobs.upsert(launcher)
    h.put_pods(launcher_pod("Succeeded"))
    await h.reconcile()
    assert ("Succeeded", "True", "MPIJobSucceeded") in conditions(h.client.patches[-1]["status"])
    assert h.count("successful_total") == (1, 1)

    # Reconciled again before the cache shows that write: the gate waits (no request at all),
    # nothing counted.
    mark = h.mark()
    stale = await h.reconcile()
    assert stale.requeue_after is not None and h.since(mark) == []
    # ... and once the cache shows it succeeded (the finished branch): nothing either.
    h.sync()
    mark = h.mark()
    assert await h.reconcile() == Result()
    assert h.since(mark) == []
    assert h.count("created_total") == (1, 1)
    assert h.count("successful_total") == (1, 1)
    assert h.count("failed_total") == (0, 0)
    assert h.reasons().count("MPIJobSucceeded") == 1
