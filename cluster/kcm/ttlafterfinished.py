"""The TTL-after-finished controller (kube v1.36 ``pkg/controller/ttlafterfinished``).

A Job with ``spec.ttlSecondsAfterFinished`` that has finished (``Complete`` or ``Failed``
True) is deleted, with Background propagation so its pods go too, once that many seconds have
passed since the terminal condition's ``lastTransitionTime``. Before deleting, the Job is read
fresh from the API server (the cache may lag: the TTL may just have been changed) and the
DELETE carries its resourceVersion as a precondition. Until it expires the key is re-queued for
the moment it will.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import object_key
from kubetrain.engine.client import ApiClient
from kubetrain.engine.controller import Controller, ControllerOptions
from kubetrain.engine.reconcile import Request, Result
from kubetrain.informers.informer import SharedInformer
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.informers.transport import ApiStatusError

from .job.constants import JOBS
from .job.pods import parse_time

__all__ = ["TtlAfterFinishedController", "expires_in"]

Obj = dict[str, Any]


def _finish_time(job: Mapping[str, Any]) -> datetime | None:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def expires_in(job: Mapping[str, Any], now: datetime) -> float | None:
    """Seconds until the Job is to be deleted (<= 0: now); None when it never is (no TTL, not
    finished, already being deleted)."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or job["metadata"].get("deletionTimestamp"):
        return None
    finished = _finish_time(job)
    if finished is None:
        return None
    return float(ttl) - (now - finished).total_seconds()


class _Events:
    """Enqueue a Job that has a TTL and is finished (``addJob``/``updateJob``)."""

    def __init__(self, controller: TtlAfterFinishedController) -> None:
        self._ctl = controller

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._ctl.consider(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._ctl.consider(new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        return None


class TtlAfterFinishedController:
    def __init__(
        self,
        client: ApiClient,
        jobs: SharedInformer,
        *,
        clock: Clock = REAL_CLOCK,
        workers: int = 5,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._client = client
        self._jobs = jobs
        self._clock = clock
        self.controller = Controller(
            "ttl_jobs_to_delete",
            self._reconcile,
            options=ControllerOptions(
                workers_per_shard=workers, clock=clock, registry=registry or CollectorRegistry()
            ),
        )
        jobs.add_event_handler(_Events(self))
        self._task: asyncio.Task[None] | None = None

    def consider(self, job: Mapping[str, Any]) -> None:
        if (
            expires_in(job, self._clock.utcnow()) is not None
            and not self.controller.queue.shutting_down
        ):
            self.controller.queue.add(object_key(dict(job)))

    async def _reconcile(self, request: Request) -> Result:
        cached = self._jobs.lister.get(request.namespace, request.name)
        if cached is None:
            return Result()
        left = expires_in(cached, self._clock.utcnow())
        if left is None:
            return Result()
        if left > 0:
            return Result(requeue_after=left)
        ns = request.namespace or ""
        try:
            fresh = await self._client.get(JOBS, ns, request.name)
        except ApiStatusError as exc:
            if exc.is_not_found:
                return Result()
            raise
        left = expires_in(fresh, self._clock.utcnow())
        if left is None:
            return Result()
        if left > 0:
            return Result(requeue_after=left)
        try:
            await self._client.delete(
                JOBS,
                ns,
                request.name,
                propagation_policy="Background",
                resource_version=fresh["metadata"].get("resourceVersion"),
            )
        except ApiStatusError as exc:
            if not exc.is_not_found:
                raise
        return Result()

    def start(self) -> None:
        self._task = asyncio.create_task(self.controller.run(), name="kcm ttl-after-finished")

    async def stop(self) -> None:
        await self.controller.stop(timeout=2.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
