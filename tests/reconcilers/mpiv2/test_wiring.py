"""``mpiv2/wiring.py``: which MPIJob events reach the v2beta1 controller (``V2JobHandler``), how a
launcher pod finds its MPIJob through the launcher Job (``launcher_pod_owner``), and that
``new_mpiv2_controller`` shares its informers with the v1 MPIJob controller
(``jobcontroller.new_job_controller``) rather than caching pods, services and configmaps twice."""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest
from fakes import RecordingJobWriter, RecordingQueue, RecordingRecorder
from prometheus_client import CollectorRegistry

from kubetrain.base.clock import FakeClock
from kubetrain.base.objects import Obj
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.enqueue import EnqueueMapped
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import (
    BATCH_JOBS,
    CONFIGMAPS,
    PODS,
    SECRETS,
    SERVICES,
    kubeflow,
)
from kubetrain.informers.store import Store
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.informers.transforms import strip_managed_fields
from kubetrain.informers.transport import Transport
from kubetrain.reconcilers.api.mpi_v2beta1 import ORIGIN_ANNOTATION, V1, V2BETA1
from kubetrain.reconcilers.common.compact import compact_job, slim_pod
from kubetrain.reconcilers.jobcontroller import JobReconciler, new_job_controller
from kubetrain.reconcilers.jobcontroller.resources import OWNED_SELECTOR
from kubetrain.reconcilers.jobcontroller.triggers import OwnedObjectHandler
from kubetrain.reconcilers.kinds import ADAPTERS
from kubetrain.reconcilers.metrics import JobMetrics
from kubetrain.reconcilers.mpiv2 import objects as mpi
from kubetrain.reconcilers.mpiv2.metrics import MPIOperatorMetrics
from kubetrain.reconcilers.mpiv2.reconciler import MPIJobV2Reconciler
from kubetrain.reconcilers.mpiv2.wiring import (
    CONTROLLER_NAME,
    V2JobHandler,
    launcher_pod_owner,
    new_mpiv2_controller,
)

from .mpijobs import mpijob

MPIJOBS = kubeflow("MPIJob")


def annotated(origin: str | None) -> Obj:
    job = mpijob("foo", "bar", workers=1)
    if origin is not None:
        job["metadata"]["annotations"] = {ORIGIN_ANNOTATION: origin}
    return job


# -- V2JobHandler ------------------------------------------------------------------------------


@pytest.mark.parametrize(("origin", "keys"), [(V2BETA1, ["bar/foo"]), (V1, []), (None, [])])
def test_v2_job_handler_enqueues_only_jobs_written_as_v2beta1(
    origin: str | None, keys: list[str]
) -> None:
    job = annotated(origin)
    newer = copy.deepcopy(job)
    newer["metadata"]["resourceVersion"] = "2"
    handler = V2JobHandler()
    added, updated, deleted, tombstoned = (RecordingQueue() for _ in range(4))
    handler.on_add(job, False, added)
    handler.on_update(job, newer, updated)
    handler.on_delete(job, deleted)
    handler.on_delete(DeletedFinalStateUnknown("bar/foo", job), tombstoned)
    for queue in (added, updated, deleted, tombstoned):
        assert queue.keys == keys


# -- launcher_pod_owner ------------------------------------------------------------------------


def batch_job(name: str, owner: dict[str, Any] | None) -> Obj:
    meta: dict[str, Any] = {"name": name, "namespace": "bar", "uid": f"{name}-uid"}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta}


def pod_of(owner_kind: str, owner_name: str, *, api_version: str = "batch/v1") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{owner_name}-abcde",
            "namespace": "bar",
            "ownerReferences": [
                {
                    "apiVersion": api_version,
                    "kind": owner_kind,
                    "name": owner_name,
                    "uid": f"{owner_name}-uid",
                    "controller": True,
                }
            ],
        },
    }


def launcher_jobs() -> Lister:
    store = Store()
    launcher = mpi.new_launcher_job(mpijob("foo", "bar", workers=1))  # owned by MPIJob foo
    launcher["metadata"]["uid"] = "foo-launcher-uid"
    store.upsert(launcher)
    store.upsert(
        batch_job(
            "cron-1",
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "cron",
                "uid": "cron-uid",
                "controller": True,
            },
        )
    )
    store.upsert(batch_job("plain", None))
    return Lister(store)


@pytest.mark.parametrize(
    ("pod", "keys"),
    [
        pytest.param(pod_of("Job", "foo-launcher"), ["bar/foo"], id="launcher-pod"),
        pytest.param(pod_of("Job", "cron-1"), [], id="job-owned-by-a-cronjob"),
        pytest.param(pod_of("Job", "plain"), [], id="job-without-owner"),
        pytest.param(pod_of("Job", "not-cached"), [], id="job-not-in-the-cache"),
        pytest.param(
            pod_of("MPIJob", "foo", api_version="kubeflow.org/v2beta1"), [], id="worker-pod"
        ),
        pytest.param(
            pod_of("Job", "foo-launcher", api_version="example.com/v1"), [], id="other-group-job"
        ),
    ],
)
def test_launcher_pod_owner_maps_a_launcher_pod_to_the_mpijob_of_its_job(
    pod: Obj, keys: list[str]
) -> None:
    handler = launcher_pod_owner(launcher_jobs())
    queue = RecordingQueue()
    handler.on_add(pod, False, queue)
    assert queue.keys == keys


def test_launcher_pod_owner_also_maps_a_deleted_launcher_pod() -> None:
    handler = launcher_pod_owner(launcher_jobs())
    queue = RecordingQueue()
    pod = pod_of("Job", "foo-launcher")
    handler.on_delete(DeletedFinalStateUnknown("bar/foo-launcher-abcde", pod), queue)
    assert queue.keys == ["bar/foo"]


# -- new_mpiv2_controller ----------------------------------------------------------------------


class NoTransport:
    """The factory's transport; never called (no informer is started)."""

    async def request_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        raise AssertionError(f"unexpected request {method} {path}")

    def stream_lines(self, path: str, **kw: Any) -> Any:
        raise AssertionError(f"unexpected watch {path}")


def wire(*, v1_first: bool) -> tuple[SharedInformerFactory, JobReconciler, MPIJobV2Reconciler, Any]:
    """The v1 MPIJob controller and the v2beta1 controller on one factory, in either order
    (the operator adds the v1 controllers first)."""
    factory = SharedInformerFactory(cast(Transport, NoTransport()), clock=FakeClock())
    registry = CollectorRegistry()
    metrics = JobMetrics(registry)
    controller_options = ControllerOptions(registry=registry, clock=FakeClock())
    client = RecordingJobWriter()
    recorder = RecordingRecorder()

    def v1() -> JobReconciler:
        _, reconciler = new_job_controller(
            ADAPTERS["MPIJob"],
            client=client,
            informers=factory,
            recorder=recorder,
            metrics=metrics,
            controller_options=controller_options,
        )
        return reconciler

    def v2() -> tuple[Controller, MPIJobV2Reconciler]:
        controller, reconciler = new_mpiv2_controller(
            client=client,
            informers=factory,
            recorder=recorder,
            metrics=metrics,
            mpi_metrics=MPIOperatorMetrics(registry),
            controller_options=controller_options,
        )
        return controller, reconciler

    if v1_first:
        v1_reconciler = v1()
        controller, v2_reconciler = v2()
    else:
        controller, v2_reconciler = v2()
        v1_reconciler = v1()
    return factory, v1_reconciler, v2_reconciler, controller


@pytest.mark.parametrize("v1_first", [True, False], ids=["v1-first", "v2-first"])
async def test_the_v2_controller_shares_the_v1_controllers_informers(v1_first: bool) -> None:
    factory, v1, v2, _ = wire(v1_first=v1_first)

    # What new_job_controller asks for, asked again: the very informers both reconcilers read.
    jobs = factory.informer_for(MPIJOBS, transform=compact_job)
    pods = factory.informer_for(PODS, label_selector=OWNED_SELECTOR, transform=slim_pod)
    services = factory.informer_for(
        SERVICES, label_selector=OWNED_SELECTOR, transform=strip_managed_fields
    )
    configmaps = factory.informer_for(CONFIGMAPS, label_selector=OWNED_SELECTOR)
    assert v2.jobs is jobs.lister and v1.jobs is jobs.lister
    assert v2.pods is pods.lister and v1.pods is pods.lister
    assert v2.services is services.lister and v1.services is services.lister
    assert v2.configmaps is configmaps.lister
    # The v1 controller cached the configmaps without the UID index; the v2 one added it.
    assert CONTROLLER_UID_INDEX in configmaps.store.indexer_names

    # Its own: secrets and launcher Jobs, by the same selector, indexed by controller UID.
    secrets = factory.informer_for(
        SECRETS, label_selector=OWNED_SELECTOR, transform=strip_managed_fields
    )
    batch_jobs = factory.informer_for(
        BATCH_JOBS, label_selector=OWNED_SELECTOR, transform=strip_managed_fields
    )
    assert v2.secrets is secrets.lister and v2.batch_jobs is batch_jobs.lister
    for informer in (pods, services, secrets, batch_jobs):
        assert CONTROLLER_UID_INDEX in informer.store.indexer_names


async def test_the_v2_controller_watches_its_jobs_and_every_owned_informer() -> None:
    factory, _, _, controller = wire(v1_first=True)
    assert controller.name == CONTROLLER_NAME
    pods = factory.informer_for(PODS, label_selector=OWNED_SELECTOR, transform=slim_pod)
    jobs = factory.informer_for(MPIJOBS, transform=compact_job)
    watched = [(informer, type(handler)) for informer, handler in controller._watches]
    assert (jobs, V2JobHandler) in watched
    # Pods twice: workers by their controller, launcher pods through their Job.
    assert (pods, OwnedObjectHandler) in watched and (pods, EnqueueMapped) in watched
    for ref in (SERVICES, CONFIGMAPS, SECRETS, BATCH_JOBS):
        informer = next(i for i, _ in watched if i.resource == ref)
        assert (informer, OwnedObjectHandler) in watched
