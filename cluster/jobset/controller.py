"""``JobSetController``: JobSet's controller as an HTTP client of any API server, like the
kcm controllers: a JobSet informer, a Job informer indexed by controller UID (a JobSet's Jobs
are one lookup) and a Service informer, one work queue (an ``engine.Controller``: one key never
reconciled twice at once, failures retried with backoff).

Triggers, as JobSet's ``For(JobSet).Owns(Job).Owns(Service)``: any JobSet event, and any event
of a Job or Service whose controller reference is a JobSet. Events are recorded as ``jobset``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.jsoncopy import json_copy
from kubetrain.base.objects import controller_ref, object_key
from kubetrain.engine.client import ApiClient
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.events import EventRecorder, EventRecorderOptions
from kubetrain.engine.ratelimiters import ItemExponentialFailureRateLimiter
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.indexers import CONTROLLER_UID_INDEX, controller_uid_index
from kubetrain.informers.resource import SERVICES
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.informers.transport import ApiStatusError

from .api import ClientJobSetApi, JobSetApi
from .constants import API_VERSION, JOBS, JOBSETS, KIND
from .reconcile import Deps, reconcile

__all__ = ["JobSetController", "JobSetControllerOptions"]

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSetControllerOptions:
    workers: int = 5
    backoff: tuple[float, float] = (0.005, 60.0)
    """Retry delays of a failed reconcile, first and cap (controller-runtime's defaults)."""
    clock: Clock = REAL_CLOCK
    registry: CollectorRegistry | None = field(default=None)


class _JobSetEvents:
    def __init__(self, enqueue: Any) -> None:
        self._enqueue = enqueue

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._enqueue(object_key(obj))

    def on_update(self, old: Obj, new: Obj) -> None:
        self._enqueue(object_key(new))

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        return None  # its Jobs and Service go with it (owner references)


class _OwnedEvents:
    """A Job or Service event wakes the JobSet named by its controller reference."""

    def __init__(self, enqueue: Any) -> None:
        self._enqueue = enqueue

    def _owner(self, obj: Mapping[str, Any]) -> None:
        ref = controller_ref(dict(obj))
        if ref is not None and ref.get("kind") == KIND and ref.get("apiVersion") == API_VERSION:
            self._enqueue(f"{obj['metadata'].get('namespace')}/{ref.get('name')}")

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._owner(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._owner(new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            inner = obj.obj
            if isinstance(inner, dict):
                self._owner(inner)
            return
        self._owner(obj)


class JobSetController:
    def __init__(
        self,
        client: ApiClient,
        factory: SharedInformerFactory,
        options: JobSetControllerOptions | None = None,
        *,
        api: JobSetApi | None = None,
    ) -> None:
        self.options = opts = options or JobSetControllerOptions()
        registry = opts.registry or CollectorRegistry()
        self.jobsets = factory.informer_for(JOBSETS, namespace=None)
        self.jobs = factory.informer_for(
            JOBS, namespace=None, indexers={CONTROLLER_UID_INDEX: controller_uid_index}
        )
        self.services = factory.informer_for(SERVICES, namespace=None)
        base, cap = opts.backoff
        self.controller = Controller(
            "jobset",
            self._reconcile,
            options=ControllerOptions(
                workers_per_shard=opts.workers,
                rate_limiter=ItemExponentialFailureRateLimiter(base_delay=base, max_delay=cap),
                clock=opts.clock,
                registry=registry,
            ),
        )
        self.recorder = EventRecorder(
            client, "jobset", options=EventRecorderOptions(clock=opts.clock, registry=registry)
        )
        self.api = api or ClientJobSetApi(client)
        self.deps = Deps(
            api=self.api,
            jobs_of=self._jobs_of,
            service_exists=lambda ns, name: self.services.lister.get(ns, name) is not None,
            event=self._event,
            clock=opts.clock,
        )
        self.jobsets.add_event_handler(_JobSetEvents(self._enqueue))
        owned = _OwnedEvents(self._enqueue)
        self.jobs.add_event_handler(owned)
        self.services.add_event_handler(owned)
        self._task: asyncio.Task[None] | None = None

    def _enqueue(self, key: str) -> None:
        if not self.controller.queue.shutting_down:
            self.controller.queue.add(key)

    def _event(self, obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        self.recorder.event(
            obj, "Warning" if type == "Warning" else "Normal", reason, message, resource=JOBSETS
        )

    def _jobs_of(self, js: Mapping[str, Any]) -> list[Obj]:
        return self.jobs.lister.by_index(CONTROLLER_UID_INDEX, str(js["metadata"].get("uid")))

    async def _reconcile(self, request: Request) -> Result:
        cached = self.jobsets.lister.get(request.namespace, request.name)
        if cached is None:
            return Result()
        js = json_copy(cached)
        update, requeue = await reconcile(self.deps, js)
        if update.should_update:
            try:
                await self.api.update_status(js)
            except ApiStatusError as e:
                if e.code != 409:
                    raise
                # Our cache was behind (the TrainJob controller or a Job changed it): the watch
                # brings the newer JobSet, and this reconcile runs again on it.
                return Result(requeue=True)
            for type_, reason, message in update.events:
                self._event(js, type_, reason, message)
        return Result(requeue_after=requeue) if requeue else Result()

    def start(self) -> None:
        self._task = asyncio.create_task(self.controller.run(), name="jobset controller")

    async def stop(self) -> None:
        await self.controller.stop(timeout=2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.recorder.close()
