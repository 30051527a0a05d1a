"""``JobController``: the Job controller wired to shared informers, two work queues and the API.

The Job informer and the pod informer (indexed by controller UID, so a Job's pods are one
lookup) feed ``handlers.py``; keys go to the ``job`` queue (an ``engine.Controller``: one key
never synced twice at once, failed syncs retried with kube's 1 s .. 60 s backoff) and orphan
pods to the ``job_orphan_pod`` queue. Events are written as ``job-controller``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import controller_ref, split_key
from kubetrain.engine.client import ApiClient
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.events import EventRecorder, EventRecorderOptions
from kubetrain.engine.ratelimiters import ItemExponentialFailureRateLimiter
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.informer import SharedInformer
from kubetrain.informers.resource import PODS

from .api import ClientJobApi
from .backoff import BackoffStore
from .conditions import is_finished
from .constants import JOBS
from .context import Deps, JobApi
from .expectations import FinalizerExpectations, PodExpectations
from .handlers import JobEvents, PodEvents, resolve_job
from .pods import has_tracking_finalizer
from .sync import managed_by_other, sync_job

__all__ = ["JobController", "JobControllerOptions", "job_informers"]

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobControllerOptions:
    workers: int = 5
    """Jobs synced at once (kube's ``--concurrent-job-syncs``)."""
    batch_seconds: float = 1.0
    """Delay of a sync triggered by pod events or status updates (kube's 1 s batch period)."""
    api_backoff: tuple[float, float] = (1.0, 60.0)
    """Retry delays of a failed sync, first and cap (kube's ``DefaultJobApiBackOff``/``Max``)."""
    clock: Clock = REAL_CLOCK
    registry: CollectorRegistry | None = field(default=None)
    """Where the queues' metrics go; None: a private registry."""


def job_informers(factory: SharedInformerFactory) -> tuple[SharedInformer, SharedInformer]:
    """The (jobs, pods) informers of ``factory`` the controller needs (pods indexed by owner)."""
    jobs = factory.informer_for(JOBS, namespace=None)
    pods = factory.informer_for(
        PODS, namespace=None, indexers={CONTROLLER_UID_INDEX: controller_uid_index}
    )
    return jobs, pods


class JobController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        options: JobControllerOptions | None = None,
        *,
        api: JobApi | None = None,
    ) -> None:
        self.options = opts = options or JobControllerOptions()
        registry = opts.registry or CollectorRegistry()
        self.jobs, self.pods = job_informers(factory)
        base, cap = opts.api_backoff

        def controller_options() -> ControllerOptions:
            return ControllerOptions(
                workers_per_shard=opts.workers,
                rate_limiter=ItemExponentialFailureRateLimiter(base_delay=base, max_delay=cap),
                clock=opts.clock,
                registry=registry,
            )

        self.controller = Controller("job", self._reconcile, options=controller_options())
        self.orphans = Controller("job_orphan_pod", self._sync_orphan, options=controller_options())
        self.recorder = EventRecorder(
            client,
            "job-controller",
            options=EventRecorderOptions(clock=opts.clock, registry=registry),
        )
        self._client = client
        self.expectations = PodExpectations(opts.clock)
        self.finalizers = FinalizerExpectations()
        self.deps = Deps(
            api=api or ClientJobApi(client),
            pods_of=self._pods_of,
            event=self._event,
            clock=opts.clock,
            expectations=self.expectations,
            finalizers=self.finalizers,
            backoff=BackoffStore(),
            enqueue_after=self._enqueue,
            batch_seconds=opts.batch_seconds,
        )
        self.jobs.add_event_handler(
            JobEvents(
                pods=self.pods.lister,
                enqueue=self._enqueue,
                enqueue_orphan=self._enqueue_orphan,
                batch_seconds=opts.batch_seconds,
                now=opts.clock.utcnow,
            )
        )
        self.pods.add_event_handler(
            PodEvents(
                jobs=self.jobs.lister,
                expectations=self.expectations,
                finalizers=self.finalizers,
                enqueue=self._enqueue,
                enqueue_orphan=self._enqueue_orphan,
                batch_seconds=opts.batch_seconds,
            )
        )
        self._tasks: list[asyncio.Task[None]] = []

    # -- plumbing -------------------------------------------------------------------------------

    def _enqueue(self, key: str, delay: float) -> None:
        queue = self.controller.queue
        if queue.shutting_down:
            return
        if delay > 0:
            queue.add_after(key, delay)
        else:
            queue.add(key)

    def _enqueue_orphan(self, key: str) -> None:
        if not self.orphans.queue.shutting_down:
            self.orphans.queue.add(key)

    def _event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        self.recorder.event(
            obj, "Warning" if type == "Warning" else "Normal", reason, message, resource=JOBS
        )

    def _pods_of(self, job: Mapping[str, Any]) -> list[Obj]:
        return self.pods.lister.by_index(CONTROLLER_UID_INDEX, str(job["metadata"].get("uid")))

    # -- the queues' work ------------------------------------------------------------------------

    async def _reconcile(self, request: Request) -> Result:
        cached = self.jobs.lister.get(request.namespace, request.name)
        await sync_job(self.deps, request.key, cached)
        return Result()

    async def _sync_orphan(self, request: Request) -> Result:
        """``syncOrphanPod``: remove the finalizer of a pod no running Job will count."""
        pod = self.pods.lister.get(request.namespace, request.name)
        if pod is None or not has_tracking_finalizer(pod):
            return Result()
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return Result()
            job = resolve_job(self.jobs.lister, pod)
            if job is not None and (managed_by_other(job) or not is_finished(job)):
                return Result()
        ns, name = split_key(request.key)
        await self.deps.api.remove_tracking_finalizer(ns or "", name)
        return Result()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start both queues' workers; the caller starts the informers and waits for them."""
        for controller in (self.controller, self.orphans):
            self._tasks.append(asyncio.create_task(controller.run(), name=f"kcm {controller.name}"))

    async def stop(self) -> None:
        for controller in (self.controller, self.orphans):
            await controller.stop(timeout=2.0)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.recorder.close()
