"""``new_trainjob_controller``: the TrainJob reconciler on an engine ``Controller``.

Informers: TrainJobs; JobSets (all of them: Trainer puts no label of its own on the JobSet, so
the cache is the namespace's JobSets, and only those a TrainJob controls wake one); the two
runtime kinds, which change rarely (a runtime edit reaches no existing TrainJob: it is read when
the JobSet is built, and a running JobSet is never changed).
"""

from __future__ import annotations

from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.enqueue import EnqueueForObject, EnqueueForOwner
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.resource import CONFIGMAPS
from kubetrain.informers.transforms import strip_managed_fields
from kubetrain.reconcilers.jobcontroller.protocols import EventSink
from kubetrain.reconcilers.metrics import JobMetrics, JobPhaseGauge

from .compact import compact_jobset, compact_trainjob, slim_configmap
from .reconciler import METRICS_FRAMEWORK, TrainJobOptions, TrainJobReconciler, TrainJobWriter
from .resources import CLUSTER_TRAINING_RUNTIMES, JOBSETS, TRAINING_RUNTIMES, TRAINJOBS
from .side_objects import TRAINJOB_NAME_LABEL
from .status import job_state

__all__ = [
    "CONTROLLER_NAME",
    "TRAINER_COMPONENT",
    "new_trainjob_controller",
]

CONTROLLER_NAME = "trainjob-controller"
#: ``source.component`` of its events.
TRAINER_COMPONENT = "trainer-controller-manager"


def new_trainjob_controller(
    *,
    client: TrainJobWriter,
    informers: SharedInformerFactory,
    recorder: EventSink,
    metrics: JobMetrics | None = None,
    options: TrainJobOptions | None = None,
    controller_options: ControllerOptions | None = None,
) -> tuple[Controller, TrainJobReconciler]:
    """The ``trainjob-controller`` wired to shared informers of ``informers``."""
    # Finished TrainJobs and JobSets are cached compacted (compact.py: what is still read).
    trainjobs = informers.informer_for(TRAINJOBS, transform=compact_trainjob)
    jobsets = informers.informer_for(JOBSETS, transform=compact_jobset)
    runtimes = informers.informer_for(TRAINING_RUNTIMES, transform=strip_managed_fields)
    cluster_runtimes = informers.informer_for(
        CLUSTER_TRAINING_RUNTIMES, namespace=None, transform=strip_managed_fields
    )
    # Only the ConfigMaps made for TrainJobs (snapshots, hostfiles): never the cluster's; of
    # them only a snapshot's data is read.
    configmaps = informers.informer_for(
        CONFIGMAPS, label_selector=TRAINJOB_NAME_LABEL, transform=slim_configmap
    )
    reconciler = TrainJobReconciler(
        client=client,
        trainjobs=trainjobs.lister,
        jobsets=jobsets.lister,
        training_runtimes=runtimes.lister,
        cluster_training_runtimes=cluster_runtimes.lister,
        configmaps=configmaps.lister,
        recorder=recorder,
        metrics=metrics,
        options=options,
    )
    controller = Controller(CONTROLLER_NAME, reconciler.reconcile, options=controller_options)
    controller.watch(trainjobs, EnqueueForObject())
    controller.watch(jobsets, EnqueueForOwner(TRAINJOBS))
    controller.watch(configmaps, EnqueueForOwner(TRAINJOBS))
    if metrics is not None:
        trainjobs.add_event_handler(
            JobPhaseGauge(metrics, framework=METRICS_FRAMEWORK, phase_of=job_state)
        )
    return controller, reconciler
