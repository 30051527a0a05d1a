"""``new_mpiv2_controller``: the v2beta1 MPIJob reconciler on an engine ``Controller``.

It shares every informer it can with the v1 job controllers (the factory returns one informer
per resource and selector): the MPIJob informer (same transform), and the owned-object pods,
services and configmaps (``OWNED_SELECTOR``, controller-UID index); secrets and batch Jobs are
its own, with the same selector. Which events wake which job:

- an MPIJob event, when the job is written as v2beta1 (the v1 controller takes the others);
- a worker pod, the ConfigMap, Secret, Service or launcher Job: its controlling MPIJob;
- a launcher pod: the MPIJob controlling the pod's Job (mpi-operator's ``handleObject``), found
  through the batch Job cache, never by a scan.
"""

from __future__ import annotations

from collections.abc import Iterable

from kubetrain.base.objects import Obj, controller_ref
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.enqueue import EnqueueForObject, EnqueueForOwner, EnqueueMapped, KeyQueue
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import (
    BATCH_JOBS,
    CONFIGMAPS,
    PODS,
    PRIORITYCLASSES,
    SECRETS,
    SERVICES,
    kubeflow,
)
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.informers.transforms import strip_managed_fields
from kubetrain.reconcilers.api.mpi_v2beta1 import written_as_v2beta1
from kubetrain.reconcilers.common.compact import compact_job, slim_pod
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.jobcontroller.protocols import EventSink
from kubetrain.reconcilers.jobcontroller.resources import OWNED_SELECTOR
from kubetrain.reconcilers.jobcontroller.triggers import OwnedObjectHandler
from kubetrain.reconcilers.metrics import JobMetrics

from .metrics import MPIOperatorMetrics
from .reconciler import MPIJobV2Options, MPIJobV2Reconciler, MPIJobWriter

__all__ = ["CONTROLLER_NAME", "MPI_OPERATOR_COMPONENT", "new_mpiv2_controller"]

#: The controller's name (logs, work-queue metrics).
CONTROLLER_NAME = "mpijob-v2beta1-controller"
#: ``source.component`` of its events: mpi-operator's (``mpi-job-controller``), so event
#: filters written for mpi-operator keep working.
MPI_OPERATOR_COMPONENT = "mpi-job-controller"

MPIJOBS = kubeflow("MPIJob")


class V2JobHandler:
    """Enqueues an MPIJob written as v2beta1; ignores the v1 ones."""

    __slots__ = ("_enqueue",)

    def __init__(self) -> None:
        self._enqueue = EnqueueForObject()

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None:
        if written_as_v2beta1(obj):
            self._enqueue.on_add(obj, is_in_initial_list, queue)

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None:
        if written_as_v2beta1(new):
            self._enqueue.on_update(old, new, queue)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None:
        final = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if written_as_v2beta1(final):
            self._enqueue.on_delete(obj, queue)


def launcher_pod_owner(batch_jobs: Lister) -> EnqueueMapped:
    """Maps a pod controlled by a batch Job to the MPIJob controlling that Job."""
    to_mpijob = EnqueueForOwner(MPIJOBS)

    def keys(pod: Obj) -> Iterable[str]:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
            return ()
        namespace = (pod.get("metadata") or {}).get("namespace")
        job = batch_jobs.get(namespace, str(ref.get("name") or ""))
        key = to_mpijob.owner_key(job) if job is not None else None
        return (key,) if key else ()

    return EnqueueMapped(keys)


def new_mpiv2_controller(
    *,
    client: MPIJobWriter,
    informers: SharedInformerFactory,
    recorder: EventSink,
    metrics: JobMetrics,
    mpi_metrics: MPIOperatorMetrics,
    options: MPIJobV2Options | None = None,
    controller_options: ControllerOptions | None = None,
) -> tuple[Controller, MPIJobV2Reconciler]:
    """The ``mpijob-v2beta1-controller`` wired to shared informers of ``informers``. Add the
    controller to the manager; the reconciler is returned for tests."""
    uid_index = {CONTROLLER_UID_INDEX: controller_uid_index}

    jobs = informers.informer_for(MPIJOBS, transform=compact_job)
    pods = informers.informer_for(
        PODS, label_selector=OWNED_SELECTOR, transform=slim_pod, indexers=uid_index
    )
    services = informers.informer_for(
        SERVICES, label_selector=OWNED_SELECTOR, transform=strip_managed_fields, indexers=uid_index
    )
    configmaps = informers.informer_for(
        CONFIGMAPS, label_selector=OWNED_SELECTOR, indexers=uid_index
    )
    secrets = informers.informer_for(
        SECRETS, label_selector=OWNED_SELECTOR, transform=strip_managed_fields, indexers=uid_index
    )
    batch_jobs = informers.informer_for(
        BATCH_JOBS,
        label_selector=OWNED_SELECTOR,
        transform=strip_managed_fields,
        indexers=uid_index,
    )
    opts = options or MPIJobV2Options()
    expectations = Expectations(clock=opts.clock)
    podgroups = priority_classes = None
    if opts.gang is not None:  # the same caches the v1 controllers ask for
        podgroups = informers.informer_for(
            opts.gang.podgroup_resource, label_selector=OWNED_SELECTOR
        )
        priority_classes = informers.informer_for(
            PRIORITYCLASSES, metadata_only=True, keep=("value",)
        )
    reconciler = MPIJobV2Reconciler(
        client=client,
        jobs=jobs.lister,
        pods=pods.lister,
        services=services.lister,
        configmaps=configmaps.lister,
        secrets=secrets.lister,
        batch_jobs=batch_jobs.lister,
        podgroups=podgroups.lister if podgroups is not None else None,
        priority_classes=priority_classes.lister if priority_classes is not None else None,
        recorder=recorder,
        metrics=metrics,
        mpi_metrics=mpi_metrics,
        expectations=expectations,
        options=opts,
    )
    controller = Controller(CONTROLLER_NAME, reconciler.reconcile, options=controller_options)
    controller.watch(jobs, V2JobHandler())
    # Owned objects wake their MPIJob and observe the expectations of its creations and
    # deletions; a launcher pod (owned by the launcher Job) wakes the MPIJob above that Job.
    controller.watch(pods, OwnedObjectHandler(MPIJOBS, expectations, PODS.plural))
    controller.watch(pods, launcher_pod_owner(batch_jobs.lister))
    for ref, informer in (
        (SERVICES, services),
        (CONFIGMAPS, configmaps),
        (SECRETS, secrets),
        (BATCH_JOBS, batch_jobs),
    ):
        controller.watch(informer, OwnedObjectHandler(MPIJOBS, expectations, ref.plural))
    if podgroups is not None and opts.gang is not None:
        plural = opts.gang.podgroup_resource.plural
        controller.watch(podgroups, OwnedObjectHandler(MPIJOBS, expectations, plural))
    return controller, reconciler
