"""``NewJobPreSync``: new jobs get their pods while the operator's caches still sync.

Why: after a restart on a cluster with tens of thousands of finished jobs, the informers need
seconds to list them (and their pods) before any controller runs, and a job submitted meanwhile
would wait for all of it. This watch starts at the collection's current resourceVersion before
the informers list, so it sees exactly the jobs created from then on; for each one that no
controller has reconciled yet (no status conditions) it asks the reconciler to create the pods
and services (``JobReconciler.create_children_before_sync``). Status, events of transitions and
everything else wait for the full reconcile after the sync, which the expectations raised here
keep from creating anything twice.

It is ``engine.presync.PreSyncWork``: the manager opens it before its servers and runs it only
without leader election. A failed watch just ends it; the full reconcile covers every job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import kubeflow
from kubetrain.reconcilers.jobcontroller import JobReconciler

__all__ = ["NewJobPreSync"]

log = logging.getLogger(__name__)

#: Jobs handled at once; their creations share the reconciler's ``create_concurrency`` bound.
WORKERS = 8
#: Server-side bound of the watch (it only lives for the sync window anyway).
WATCH_TIMEOUT_SECONDS = 300


def is_fresh(job: Obj) -> bool:
    """No controller has reconciled ``job`` (no conditions) and it is not being deleted."""
    meta = job.get("metadata") or {}
    return not meta.get("deletionTimestamp") and not (job.get("status") or {}).get("conditions")


class NewJobPreSync:
    """The pre-sync work of one job kind (see the module docstring)."""

    def __init__(
        self, reconciler: JobReconciler, *, client: ApiClient, namespace: str | None
    ) -> None:
        self._reconciler = reconciler
        self._client = client
        self._ref = kubeflow(reconciler.kind.kind)
        self._namespace = namespace
        self._resource_version: str | None = None
        self._arrivals: asyncio.Queue[Obj] = asyncio.Queue()
        self.jobs_handled = 0
        """Jobs whose children this work created (for tests and logs)."""

    def __repr__(self) -> str:
        return f"NewJobPreSync({self._reconciler.kind.kind})"

    async def open(self) -> None:
        """Note the collection's current resourceVersion (a one-item LIST)."""
        page = await self._client.list(self._ref, self._namespace, limit=1)
        self._resource_version = str(page.get("metadata", {}).get("resourceVersion") or "")
        if not self._resource_version:
            raise RuntimeError(f"LIST {self._ref.plural} returned no resourceVersion")

    async def run(self, synced: asyncio.Event) -> None:
        """Watch from ``open``'s resourceVersion until ``synced``; hand fresh jobs to workers."""
        workers = [asyncio.create_task(self._work(synced)) for _ in range(WORKERS)]
        watch = asyncio.create_task(self._watch())
        waiter = asyncio.create_task(synced.wait())
        try:
            await asyncio.wait({watch, waiter}, return_when=asyncio.FIRST_COMPLETED)
            # The watch ended early: nothing more arrives, but what did is still worked on.
            await synced.wait()
        except asyncio.CancelledError:  # the manager stops: in-flight creations stop too
            for worker in workers:
                worker.cancel()
            raise
        finally:
            watch.cancel()
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watch
            # Workers take nothing new once synced; let the in-flight ones finish.
            for _ in workers:
                self._arrivals.put_nowait({})
            await asyncio.gather(*workers, return_exceptions=True)
        if self.jobs_handled:
            log.info(
                "%s: created the pods of %d new job(s) before the caches synced",
                self._reconciler.kind.kind,
                self.jobs_handled,
            )

    async def _watch(self) -> None:
        query = {
            "watch": "true",
            "resourceVersion": str(self._resource_version),
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT_SECONDS),
        }
        try:
            async with self._client.stream_lines(
                self._ref.collection_path(self._namespace), query=query
            ) as lines:
                async for line in lines:
                    event = orjson.loads(line)
                    if event.get("type") != "ADDED":
                        continue  # ERROR (e.g. 410) ends nothing here; BOOKMARK, MODIFIED...
                    job = event.get("object") or {}
                    if is_fresh(job):
                        self._arrivals.put_nowait(job)
        except Exception as e:  # any failure ends this optimisation, never the operator
            log.info("%r: watch ended (%s); new jobs wait for the caches", self, e)

    async def _work(self, synced: asyncio.Event) -> None:
        while True:
            job = await self._arrivals.get()
            if not job or synced.is_set():
                return
            try:
                if await self._reconciler.create_children_before_sync(job):
                    self.jobs_handled += 1
            except Exception:
                log.warning("%r: creating children early failed", self, exc_info=True)
