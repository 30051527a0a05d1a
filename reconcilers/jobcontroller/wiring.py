"""``new_job_controller``: a kind's reconciler on an engine ``Controller``, fed by shared informers."""

from __future__ import annotations

from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.resource import PODS, PRIORITYCLASSES, SERVICES, kubeflow
from kubetrain.informers.transforms import strip_managed_fields
from kubetrain.reconcilers.common.compact import compact_job, slim_pod
from kubetrain.reconcilers.common.expectations import Expectations
from kubetrain.reconcilers.common.kind_adapter import KindAdapter
from kubetrain.reconcilers.exits import ExitLog
from kubetrain.reconcilers.metrics import JobMetrics, JobPhaseGauge

from .gang_cache import GangCache
from .options import JobControllerOptions
from .protocols import EventSink, JobWriter
from .reconciler import JobReconciler
from .resources import CACHED_EXTRAS, OWNED_SELECTOR
from .triggers import JobHandler, OwnedObjectHandler

__all__ = ["new_job_controller"]


def new_job_controller(
    adapter: KindAdapter,
    *,
    client: JobWriter,
    informers: SharedInformerFactory,
    recorder: EventSink,
    metrics: JobMetrics,
    options: JobControllerOptions | None = None,
    controller_options: ControllerOptions | None = None,
) -> tuple[Controller, JobReconciler]:
    """The ``<kind>-controller`` for ``adapter``'s kind, wired to shared informers of
    ``informers`` (pods and services filtered by ``OWNED_SELECTOR``, one informer each however
    many kinds ask). Add the controller to the manager; the reconciler is returned for tests
    and the pre-sync.

    With gang scheduling (``options.domain.gang``) it also caches the chosen flavour's PodGroups
    (by ``OWNED_SELECTOR``: the controller labels what it creates; a PodGroup event wakes its
    job, a phase change at ``POD_PHASE_PRIORITY``) and every PriorityClass (metadata and
    ``value`` only: few, small, cluster-scoped)."""
    opts = options or JobControllerOptions()
    kind = adapter.kind
    owner = kubeflow(kind.kind)
    expectations = Expectations(timeout=opts.expectations_timeout, clock=opts.clock)
    exits = ExitLog(kind.default_container)
    uid_index = {CONTROLLER_UID_INDEX: controller_uid_index}
    jobs = informers.informer_for(owner, transform=compact_job)
    pods = informers.informer_for(
        PODS, label_selector=OWNED_SELECTOR, transform=slim_pod, indexers=uid_index
    )
    services = informers.informer_for(
        SERVICES, label_selector=OWNED_SELECTOR, transform=strip_managed_fields, indexers=uid_index
    )
    extras = {
        ref.plural: informers.informer_for(ref, label_selector=OWNED_SELECTOR)
        for ref in CACHED_EXTRAS.get(kind.kind, ())
    }
    gang_cache: GangCache | None = None
    if opts.domain.gang is not None:
        podgroups = opts.domain.gang.podgroup_resource
        extras[podgroups.plural] = informers.informer_for(podgroups, label_selector=OWNED_SELECTOR)
        priority_classes = informers.informer_for(
            PRIORITYCLASSES, metadata_only=True, keep=("value",)
        )
        gang_cache = GangCache(
            podgroups=extras[podgroups.plural].lister, priority_classes=priority_classes.lister
        )
    reconciler = JobReconciler(
        adapter,
        client=client,
        jobs=jobs.lister,
        pods=pods.lister,
        services=services.lister,
        extras={plural: inf.lister for plural, inf in extras.items()},
        recorder=recorder,
        metrics=metrics,
        expectations=expectations,
        exits=exits,
        options=opts,
        gang=gang_cache,
    )
    jobs.add_event_handler(JobPhaseGauge(metrics, framework=kind.framework))
    controller = Controller(kind.controller_name, reconciler.reconcile, options=controller_options)
    controller.watch(jobs, JobHandler(kind))
    controller.watch(pods, OwnedObjectHandler(owner, expectations, PODS.plural, exits=exits))
    controller.watch(services, OwnedObjectHandler(owner, expectations, SERVICES.plural))
    for plural, informer in extras.items():
        controller.watch(informer, OwnedObjectHandler(owner, expectations, plural))
    return controller, reconciler
