"""``NodeSimulator``: nodes, scheduler and kubelets wired to one pod informer and one API client.

Everything goes through HTTP (``ApiClient``) and a shared pod informer, so the simulator works
against any API server. Start order: register nodes (so capacity is known), ask discovery which
PodGroup CRDs, Volcano Queues and PriorityClasses the server serves (a server without them gets no watch on
them: pods are then scheduled alone), start the informers and wait for their first list, then
the scheduler loop, kubelet workers and lease heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from prometheus_client import CollectorRegistry

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import Obj, object_key, split_key
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.engine.discovery import missing_resources
from kubetrain.informers.event_handlers import EventHandler
from kubetrain.informers.factory import SharedInformerFactory
from kubetrain.informers.resource import (
    PODGROUPS_SCHEDULER_PLUGINS,
    PODGROUPS_VOLCANO,
    PODS,
    PRIORITYCLASSES,
    ResourceRef,
)
from kubetrain.informers.tombstone import DeletedFinalStateUnknown

from .capacity import NodeCapacity
from .kubelet import Kubelet
from .logsink import HttpLogSink, LogSink
from .nodes import NodeRegistrar, host_ip, node_allocatable, node_labels, pod_cidr_prefix
from .options import NodeSimOptions
from .podgroup import PLUGINS, VOLCANO, Flavour
from .priorities import Priorities
from .queues import QUEUES
from .scheduler import Scheduler

__all__ = ["NodeSimulator"]

log = logging.getLogger(__name__)


class _PodEvents(EventHandler):
    """Fans pod events out to the scheduler and the kubelets (synchronous, cheap)."""

    def __init__(self, scheduler: Scheduler, kubelet: Kubelet) -> None:
        self._scheduler = scheduler
        self._kubelet = kubelet

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._changed(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        if old is not new:
            self._changed(new)

    def _changed(self, pod: Obj) -> None:
        key = object_key(pod)
        self._scheduler.observe(pod)
        self._kubelet.observe(key, pod)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)
        self._scheduler.forget(key)
        self._kubelet.forget(key)


class _GroupEvents(EventHandler):
    """PodGroup events of one flavour to the scheduler."""

    def __init__(self, scheduler: Scheduler, flavour: Flavour) -> None:
        self._scheduler = scheduler
        self._flavour = flavour

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._changed(obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._changed(new)  # a resync too: the status may need writing again

    def _changed(self, obj: Obj) -> None:
        meta = obj["metadata"]
        self._scheduler.observe_group((self._flavour, meta.get("namespace", ""), meta["name"]), obj)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)
        ns, name = split_key(key)
        self._scheduler.forget_group((self._flavour, ns or "", name))


class _QueueEvents(EventHandler):
    """Volcano Queue events to the scheduler."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self._scheduler.observe_queue(obj["metadata"]["name"], obj)

    def on_update(self, old: Obj, new: Obj) -> None:
        self._scheduler.observe_queue(new["metadata"]["name"], new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)
        self._scheduler.forget_queue(split_key(key)[1])


_FLAVOURS: tuple[tuple[Flavour, ResourceRef], ...] = (
    (VOLCANO, PODGROUPS_VOLCANO),
    (PLUGINS, PODGROUPS_SCHEDULER_PLUGINS),
)


class NodeSimulator:
    """A fleet of simulated nodes (kubelets) plus a scheduler, as one API client.

    Use ``await sim.start()`` / ``await sim.stop()`` or ``async with``. ``client`` is used as is
    (the caller closes it) unless the simulator built it (``for_config``).
    """

    def __init__(
        self,
        client: ApiClient,
        options: NodeSimOptions | None = None,
        *,
        log_sink: LogSink | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        """``log_sink`` None delivers logs over HTTP to the embedded server's endpoint. ``clock``:
        the time pods run on and nodes and conditions are stamped with (its pod informer, the
        scheduler's retries, lease renewals too); tests pass the operator's ``FakeClock``."""
        self.options = options or NodeSimOptions()
        self.client = client
        self._owns_client = False
        names = self.options.node_names()
        self.capacity = NodeCapacity()
        allocatable = node_allocatable(self.options)
        for name in names:
            self.capacity.add_node(name, allocatable, node_labels(self.options, name))
        self._factory = SharedInformerFactory(client, clock=clock)
        self._informer = self._factory.informer_for(PODS, namespace=None)
        self.scheduler = Scheduler(
            client,
            self._informer.lister,
            self.capacity,
            scheduler_names=self.options.scheduler_names,
            bind_concurrency=self.options.bind_concurrency,
            clock=clock,
            preemption=self.options.preemption,
        )
        self.kubelet = Kubelet(
            client,
            self._informer.lister,
            self.options,
            host_ips={n: host_ip(i) for i, n in enumerate(names)},
            pod_cidr_prefixes={n: pod_cidr_prefix(i) for i, n in enumerate(names)},
            log_sink=log_sink if log_sink is not None else HttpLogSink(client),
            clock=clock,
        )
        self._nodes = NodeRegistrar(client, self.options, clock=clock)
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def for_config(
        cls,
        config: ClientConfig,
        options: NodeSimOptions | None = None,
        *,
        log_sink: LogSink | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> NodeSimulator:
        """A simulator with its own API client (closed by ``stop``), metrics in a private
        registry so they never mix with an operator's in the same process."""
        opts = options or NodeSimOptions()
        client = ApiClient(
            config,
            ClientOptions(
                qps=opts.qps,
                burst=opts.burst,
                adaptive=None,  # kubelets are not throttled by an operator's limit
                registry=CollectorRegistry(),
                user_agent="kubetrain-nodesim/0.1",
                connection_limit=max(100, opts.workers + opts.bind_concurrency + 8),
            ),
        )
        sim = cls(client, opts, log_sink=log_sink, clock=clock)
        sim._owns_client = True
        return sim

    async def start(self, *, sync_timeout: float | None = 60.0) -> None:
        """Register nodes, sync the pod cache, start scheduling and running pods."""
        await self._nodes.register()
        if self.options.gang_scheduling:
            await self._watch_gangs()
        self._informer.add_event_handler(_PodEvents(self.scheduler, self.kubelet))
        self._factory.start()
        if not await self._factory.wait_for_sync(sync_timeout):
            raise TimeoutError(f"nodesim: the pod informer did not sync within {sync_timeout} s")
        self.kubelet.start()
        self._tasks.append(asyncio.create_task(self.scheduler.run(), name="nodesim scheduler"))
        self._tasks.append(
            asyncio.create_task(self._nodes.heartbeat_forever(), name="nodesim leases")
        )
        gangs = sorted(self.scheduler.gang_flavours)
        log.info(
            "nodesim: %d nodes registered and running%s",
            self.options.nodes,
            f"; gang scheduling PodGroups of {', '.join(gangs)}" if gangs else "",
        )

    async def _watch_gangs(self) -> None:
        """Informers on the PodGroups, Volcano Queues and PriorityClasses the server serves (one
        discovery request per group/version); the scheduler gang-schedules the flavours found,
        and admits Volcano groups by their queue when Queues are served."""
        refs = [ref for _, ref in _FLAVOURS] + [PRIORITYCLASSES, QUEUES]
        missing = set(await missing_resources(self.client, refs))
        flavours: set[Flavour] = set()
        for flavour, ref in _FLAVOURS:
            if ref not in missing:
                informer = self._factory.informer_for(ref, namespace=None)
                informer.add_event_handler(_GroupEvents(self.scheduler, flavour))
                flavours.add(flavour)
        priorities = Priorities()
        if PRIORITYCLASSES not in missing:
            priorities = Priorities(
                self._factory.informer_for(PRIORITYCLASSES, namespace=None).lister
            )
        self.scheduler.enable_gangs(frozenset(flavours), priorities)
        if VOLCANO in flavours and QUEUES not in missing:
            self.scheduler.enable_queues()
            informer = self._factory.informer_for(QUEUES, namespace=None)
            informer.add_event_handler(_QueueEvents(self.scheduler))

    async def stop(self) -> None:
        """Stop every loop; nodes stay registered (as when kubelets stop)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.kubelet.stop()
        await self._factory.stop()
        if self._owns_client:
            await self.client.close()

    async def __aenter__(self) -> NodeSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
