"""``SharedInformer``: one reflector, one indexed store, many handlers.

Every controller interested in a resource shares one informer (built by ``SharedInformerFactory``),
so one watch and one cache serve them all. The reflector feeds the informer's ingest, which updates
the store first and then fans the change out to the handlers (``event_handlers.py`` for their contract).

Sync: ``has_synced`` turns true once the first complete list went into the store and through the
handlers; ``wait_for_sync`` awaits it. Handlers added later get synthetic ``on_add(obj, True)`` for
every cached object, then live events. Optional resync: every ``resync_period`` (jittered) each
handler gets ``on_update(obj, obj)`` for every cached object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import Obj, object_key

from .event_handlers import ResourceEventHandler
from .lister import Lister
from .metrics import InformerMetrics
from .objects import IndexFunc, Transform
from .reflector import Reflector, ReflectorOptions
from .resource import ResourceRef
from .store import Store
from .tombstone import DeletedFinalStateUnknown
from .transforms import strip_managed_fields
from .transport import Transport

__all__ = ["InformerOptions", "SharedInformer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InformerOptions:
    """Informer settings beyond what is watched."""

    reflector: ReflectorOptions = field(default_factory=ReflectorOptions)
    """List/watch behaviour (paging, timeouts, WatchList, backoff)."""
    resync_period: float | None = None
    """Seconds between resyncs (``on_update(obj, obj)`` for every cached object); None: never.
    Prefer ``requeue_after`` in reconcilers for timed work."""
    resync_jitter: float = 0.1
    """Each resync waits ``resync_period * U[1 - j, 1 + j)`` so informers do not resync together."""
    detect_mutations: bool | None = None
    """Snapshot cached objects and fail loudly when a reader mutates one (``Store``); None reads
    env ``KUBETRAIN_CACHE_MUTATION_DETECTOR``. Costs a serialization per object: debug only."""

    def __post_init__(self) -> None:
        if self.resync_period is not None and self.resync_period < 1.0:
            raise ValueError(
                f"InformerOptions.resync_period must be >= 1 s or None, got {self.resync_period}"
            )
        if not 0 <= self.resync_jitter < 1:
            raise ValueError(
                f"InformerOptions.resync_jitter must be in [0, 1), got {self.resync_jitter}"
            )


class SharedInformer:
    """A cache of one resource (in one namespace, with selectors) plus handler fan-out.

    Lifecycle: construct, add handlers and indexers, ``start()`` (inside a running event loop),
    ``await wait_for_sync()``, ..., ``await stop()``. A stopped informer cannot be restarted.
    """

    def __init__(
        self,
        transport: Transport,
        resource: ResourceRef,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Transform = strip_managed_fields,
        indexers: Mapping[str, IndexFunc] | None = None,
        options: InformerOptions | None = None,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
        metrics: InformerMetrics | None = None,
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.transform = transform
        self.options = options or InformerOptions()
        self.store = Store(indexers=indexers, detect_mutations=self.options.detect_mutations)
        self.lister = Lister(self.store)
        self._clock = clock
        self._rng = rng or random.Random()
        self._metrics = (metrics or InformerMetrics(None)).for_resource(resource.group_resource)
        # Handlers in registration order; dispatch iterates a tuple snapshot so that handlers
        # added or removed from inside a handler take effect at the next event.
        self._handlers: tuple[ResourceEventHandler, ...] = ()
        self._synced = asyncio.Event()
        self._reflector = Reflector(
            transport=transport,
            resource=resource,
            sink=_Ingest(self),
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            transform=transform,
            options=self.options.reflector,
            clock=clock,
            rng=self._rng,
            metrics=self._metrics,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._stopped = False

    def __repr__(self) -> str:
        scope = f" in {self.namespace}" if self.namespace else ""
        sel = f" labels={self.label_selector!r}" if self.label_selector else ""
        sel += f" fields={self.field_selector!r}" if self.field_selector else ""
        return f"<SharedInformer {self.resource.group_resource}{scope}{sel}>"

    # -- handlers and indexes -------------------------------------------------------------------

    def add_event_handler(self, handler: ResourceEventHandler) -> ResourceEventHandler:
        """Register ``handler``; it first gets ``on_add(obj, True)`` for every cached object.

        Returns ``handler`` (pass it to ``remove_event_handler``).
        """
        self._handlers = (*self._handlers, handler)
        for obj in self.store.list():
            try:
                handler.on_add(obj, True)
            except Exception:
                log.exception("%r: handler %r failed in on_add(%s)", self, handler, _safe_key(obj))
        return handler

    def remove_event_handler(self, handler: ResourceEventHandler) -> None:
        """Stop calling ``handler``; no-op if it is not registered."""
        self._handlers = tuple(h for h in self._handlers if h is not handler)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add indexes to the store, also after objects are cached (see ``Store.add_indexers``)."""
        self.store.add_indexers(indexers)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first full list is in the store and went through the handlers."""
        return self._synced.is_set()

    @property
    def is_started(self) -> bool:
        return self._started

    @property
    def last_sync_resource_version(self) -> str:
        return self._reflector.last_sync_resource_version

    @property
    def last_error(self) -> Exception | None:
        """The reflector's last list/watch error; None once a list succeeded (``Reflector``)."""
        return self._reflector.last_error

    def start(self) -> None:
        """Start listing and watching in background tasks. Idempotent; needs a running loop."""
        if self._stopped:
            raise RuntimeError(f"{self!r} was stopped; create a new informer instead")
        if self._started:
            return
        self._started = True
        name = f"informer {self.resource.group_resource}"
        reflector = asyncio.create_task(self._reflector.run(), name=name)
        reflector.add_done_callback(self._task_done)
        self._tasks.append(reflector)
        if self.options.resync_period is not None:
            resync = asyncio.create_task(self._resync_loop(), name=f"{name} resync")
            resync.add_done_callback(self._task_done)
            self._tasks.append(resync)

    async def stop(self) -> None:
        """Cancel the reflector (and resync) and wait for them. The cache stays readable."""
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Wait until ``has_synced``; False if ``timeout`` (real seconds) passed first."""
        try:
            async with asyncio.timeout(timeout):
                await self._synced.wait()
        except TimeoutError:
            return False
        return True

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%r: %s died", self, task.get_name(), exc_info=task.exception())

    async def _resync_loop(self) -> None:
        period = self.options.resync_period
        assert period is not None
        jitter = self.options.resync_jitter
        await self._synced.wait()
        while True:
            await self._clock.sleep(period * self._rng.uniform(1 - jitter, 1 + jitter))
            self.resync()

    def resync(self) -> None:
        """Deliver ``on_update(obj, obj)`` for every cached object to every handler, now."""
        for obj in self.store.list():
            self._dispatch_update(obj, obj)

    # -- dispatch ---------------------------------------------------------------------------------

    def _dispatch_add(self, obj: Obj, initial: bool) -> None:
        for handler in self._handlers:
            try:
                handler.on_add(obj, initial)
            except Exception:
                log.exception("%r: handler %r failed in on_add(%s)", self, handler, _safe_key(obj))

    def _dispatch_update(self, old: Obj, new: Obj) -> None:
        for handler in self._handlers:
            try:
                handler.on_update(old, new)
            except Exception:
                log.exception(
                    "%r: handler %r failed in on_update(%s)", self, handler, _safe_key(new)
                )

    def _dispatch_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        for handler in self._handlers:
            try:
                handler.on_delete(obj)
            except Exception:
                key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else _safe_key(obj)
                log.exception("%r: handler %r failed in on_delete(%s)", self, handler, key)


def _safe_key(obj: object) -> str:
    try:
        return object_key(obj)  # type: ignore[arg-type]
    except Exception:
        return "?"


class _Ingest:
    """The informer's ``ReflectorSink``: store first, then handlers, then metrics."""

    def __init__(self, informer: SharedInformer) -> None:
        self._informer = informer
        self._store = informer.store
        self._objects = informer._metrics.objects

    def replace(self, objs: list[Obj], resource_version: str) -> None:
        informer = self._informer
        initial = not informer.has_synced
        result = self._store.replace(objs, resource_version)
        self._objects.set(len(self._store))
        for obj in result.added:
            informer._dispatch_add(obj, initial)
        for old, new in result.updated:
            informer._dispatch_update(old, new)
        for tombstone in result.deleted:
            informer._dispatch_delete(tombstone)
        if initial:
            informer._synced.set()

    def upsert(self, obj: Obj) -> None:
        old = self._store.upsert(obj)
        if old is None:
            self._objects.inc()
            self._informer._dispatch_add(obj, False)
        else:
            self._informer._dispatch_update(old, obj)

    def delete(self, obj: Obj) -> None:
        old = self._store.delete(obj)
        if old is not None:
            self._objects.dec()
        # Handlers get the final state from the event even if the cache had missed the object.
        self._informer._dispatch_delete(obj)

    def bookmark(self, resource_version: str) -> None:
        self._store.bookmark(resource_version)
