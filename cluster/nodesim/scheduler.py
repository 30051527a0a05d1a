"""The simulated scheduler: binds pending pods to simulated nodes with enough free capacity.

Pods whose ``spec.schedulerName`` is one of ``NodeSimOptions.scheduler_names``, with no
``spec.nodeName`` and no deletionTimestamp, enter the *active* queue (FIFO, deduplicated). One loop
decides for one pod at a time against ``NodeCapacity`` (no API call, no scan of pods), *assumes*
the pod onto the chosen node (its resources are held at once) and hands the write to a bounded set
of binders: ``POST pods/{name}/binding``, or ``PATCH spec.nodeName`` when the server has no binding
subresource. Pods that fit nowhere get ``PodScheduled=False, reason Unschedulable`` with kube's
message and wait in the *unschedulable* set until capacity frees (a pod on a node finished or went
away, or a node appeared), as kube's ``MoveAllToActiveQueue`` does.

Waiting pods are filed by *shape* (their requests and node selector, ``shapes.py``), oldest first.
When capacity frees, each shape is tried from its oldest pod and only until one of its pods fits
nowhere: the pods behind it, asking for the same, would not fit either. A pod's requests are
parsed once, when first decided. So a cluster holding thousands of waiting pods spends a few fits
per freed pod, not one per waiting pod (that retry of every waiting pod on every release, and the
quantity parsing in it, was 90 % of the embedded server's CPU with 60,000 pods waiting for 2,560
places).

Priority: a shape includes the pods' priority (``priorities.py``), and when capacity frees the
shapes and the waiting groups are tried higher priority first, then oldest first. A new pod that
fits when it arrives is bound at once, whatever waits (kube's scheduler does the same).

This file is the loop, the active queue, single pods by shape and binding; the rest is composed,
each collaborator given only what it needs (keyword-only, callables for what it asks back):

- ``gang_decisions.py`` (``enable_gangs``): PodGroup members filed under their group, groups
  admitted and placed all or nothing, the blocked groups and the Volcano reservations;
- ``volcano_queues.py`` (``enable_queues``): admission by Queue, queue-by-queue order, what each
  queue holds, the Queues' status;
- ``preemptor.py`` (``preemption``, off by default): victims, nominations and the room held for
  nominees;
- ``podwrites.py``: the binding and Unschedulable writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine, Mapping
from typing import Any

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import split_key
from kubetrain.engine.client import ApiClient
from kubetrain.informers.lister import Lister
from kubetrain.informers.transport import ApiStatusError

from .capacity import NodeCapacity
from .evictions import Evictor
from .gang_decisions import GangDecisions
from .gangs import GangBook
from .gangstatus import GroupStatusWriter, StatusWriter
from .podgroup import Flavour, GroupKey
from .podwrites import PodWriter
from .preemption import Nominations
from .preemptor import Preemptor
from .priorities import Priorities
from .quantity import Resources, pod_requests
from .queues import QueueBook
from .shapes import Shape, WaitingPods, pod_key, shape_of
from .volcano_queues import VolcanoQueues

__all__ = ["TERMINAL_PHASES", "Scheduler"]

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
_RETRY_SECONDS = 1.0

log = logging.getLogger(__name__)


class Scheduler:
    """Active queue, unschedulable set and binders over one ``NodeCapacity``."""

    def __init__(
        self,
        client: ApiClient,
        pods: Lister,
        capacity: NodeCapacity,
        *,
        scheduler_names: frozenset[str],
        bind_concurrency: int,
        clock: Clock = REAL_CLOCK,
        preemption: bool = False,
    ) -> None:
        self._clock = clock
        self._pods = pods
        self.capacity = capacity
        self._names = scheduler_names
        self._active: deque[str] = deque()
        self._queued: set[str] = set()  # Invariant: the keys in ``_active``.
        self._waiting = WaitingPods()  # pods waiting for capacity to free, by shape
        # key -> (uid, requests, shape) of a pod decided once and not bound yet: requests are
        # parsed once per pod, not once per attempt.
        self._decided: dict[str, tuple[str, Resources, Shape]] = {}
        # Keys assumed onto a node whose binding is in flight. Invariant: each holds capacity.
        self._binding: set[str] = set()
        self._wake = asyncio.Event()
        self._flush = False  # capacity freed: retry what waits before the next active pod
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._max_in_flight = 4 * bind_concurrency + 64
        self._tasks: set[asyncio.Task[None]] = set()
        self.bound = 0
        """Pods bound so far (for tests and progress)."""
        self.priorities = Priorities()
        self.gangs = GangBook()
        # -- the API writers: fire-and-forget, bounded by the binding slots --
        self._writer = PodWriter(client, slots=self._bind_slots, spawn=self._spawn, clock=clock)
        self.group_status = GroupStatusWriter(
            client,
            slots=self._bind_slots,
            spawn=self._spawn,
            retry=lambda key: self._groups.touch(key),
            clock=clock,
        )
        self.evictor = Evictor(client, slots=self._bind_slots, spawn=self._spawn, clock=clock)
        # -- the collaborators --
        self._queues = VolcanoQueues(
            client,
            gangs=self.gangs,
            capacity=capacity,
            slots=self._bind_slots,
            spawn=self._spawn,
            clock=clock,
            wake=self._wake.set,
        )
        self._preemptor = Preemptor(
            enabled=preemption,
            pods=pods,
            capacity=capacity,
            gangs=self.gangs,
            queues=self._queues,
            evictor=self.evictor,
            binding=self._binding,
            priorities=lambda: self.priorities,
            ready=self._nominee_ready,
            freed=self._capacity_freed,
        )
        self._groups = GangDecisions(
            pods=pods,
            capacity=capacity,
            gangs=self.gangs,
            queues=self._queues,
            preemptor=self._preemptor,
            status=self.group_status,
            clock=clock,
            priorities=lambda: self.priorities,
            pod_to_place=self._pod_to_place,
            requests=self._requests,
            assume=self._assume,
            say_unschedulable=self._writer.say_unschedulable,
            wake=self._wake.set,
            flush=self._request_flush,
        )

    def enable_gangs(self, flavours: frozenset[Flavour], priorities: Priorities) -> None:
        """Schedule members of PodGroups of ``flavours`` (the CRDs the server serves) with their
        group, and order by ``priorities``. Before the first pod is observed."""
        self._groups.flavours = flavours
        self.priorities = priorities

    def enable_queues(self) -> None:
        """Admit Volcano groups by their Queue (``observe_queue``). Before the first group is
        observed."""
        self._queues.enable()

    @property
    def gang_flavours(self) -> frozenset[Flavour]:
        """The PodGroup flavours scheduled with their group."""
        return self._groups.flavours

    @property
    def queues(self) -> QueueBook | None:
        """The Volcano queues' book; None unless ``enable_queues``."""
        return self._queues.book

    @property
    def queue_status(self) -> StatusWriter[str]:
        """The Queues' status writer."""
        return self._queues.status

    @property
    def preemption(self) -> bool:
        """Whether pods that fit nowhere preempt."""
        return self._preemptor.enabled

    @property
    def nominations(self) -> Nominations:
        """Preemptors waiting for their victims."""
        return self._preemptor.nominations

    @property
    def waiting(self) -> int:
        """Pods waiting for capacity to free (for tests and progress)."""
        return len(self._waiting)

    # -- informer side (synchronous, never awaits) ---------------------------------------------

    def wants(self, pod: Mapping[str, Any]) -> bool:
        """True when this scheduler must place ``pod``."""
        spec = pod.get("spec") or {}
        return (
            not spec.get("nodeName")
            and spec.get("schedulerName", "default-scheduler") in self._names
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("phase", "Pending") == "Pending"
        )

    def observe(self, pod: Mapping[str, Any]) -> None:
        """A pod was added or changed: account its capacity, queue it if it needs a node."""
        key = pod_key(pod)
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if self._groups.flavours:
            self._groups.observe_member(key, pod, binding=key in self._binding)
        evicting = self._preemptor.evicting(key)
        if evicting is not None:
            if evicting == pod["metadata"].get("uid", "") and node and phase not in TERMINAL_PHASES:
                return  # a victim on its way out: it holds nothing any more
            self._preemptor.victim_gone(key)
        if node:
            self._binding.discard(key)
            self._waiting.unfile(key)
            self.gangs.unfile(key)
            decided = self._decided.pop(key, None)
            if phase in TERMINAL_PHASES or node not in self.capacity:
                self._released(key)
            elif self.capacity.holder(key) != node:
                try:
                    uid = pod["metadata"].get("uid", "")
                    requests = decided[1] if decided and decided[0] == uid else pod_requests(pod)
                    self._hold(key, node, requests, pod)
                except ValueError as e:
                    log.warning("pod %s on %s: %s", key, node, e)
            return
        if key not in self._binding:
            self._released(key)
        if self.wants(pod) and self._waiting.shape(key) is None and not self.gangs.is_filed(key):
            self._enqueue(key)

    def forget(self, key: str) -> None:
        """The pod is gone."""
        self._binding.discard(key)
        self._waiting.unfile(key)
        self._decided.pop(key, None)
        if self._preemptor.evicting(key) is not None:
            self._preemptor.victim_gone(key)
        if self._preemptor.drop(key):
            self._capacity_freed()
        self._groups.forget_member(key)
        self._released(key)

    def observe_group(self, key: GroupKey, obj: Mapping[str, Any]) -> None:
        """A PodGroup was added or changed."""
        self._groups.observe_group(key, obj)

    def forget_group(self, key: GroupKey) -> None:
        """A PodGroup was deleted."""
        self._groups.forget_group(key)
        self._queues.forget_group(key)
        if self._preemptor.drop(key):
            self._capacity_freed()
        self._groups.end_reservation(key)

    def observe_queue(self, name: str, obj: Mapping[str, Any]) -> None:
        """A Queue was added or changed: groups it refused may now be admitted."""
        if not self._queues.enabled:
            return
        if self._queues.observe(name, obj):
            self._groups.room_freed()
        self._queues.touched(name)  # a resync too: the status may need writing again

    def forget_queue(self, name: str) -> None:
        self._queues.forget(name)

    def _hold(self, key: str, node: str, requests: Resources, pod: Mapping[str, Any]) -> None:
        """``key`` holds ``requests`` on ``node``: charged to its queue, filed by priority."""
        self.capacity.hold(key, node, requests)
        self._queues.charge(key, requests)
        self._preemptor.hold(key, pod, requests)

    def _released(self, key: str) -> None:
        self._queues.released(key)
        self._preemptor.released(key)
        if self.capacity.release(key):
            self._capacity_freed()

    def _capacity_freed(self) -> None:
        if self._waiting or self._groups.blocked:
            self._request_flush()

    def _request_flush(self) -> None:
        """Retry what waits for capacity, before the next active pod."""
        self._flush = True
        self._wake.set()

    def _enqueue(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._active.append(key)
            self._wake.set()

    def _nominee_ready(self, preemptor: str | GroupKey) -> None:
        """A preemptor's victims are all gone: decide for it again."""
        if isinstance(preemptor, str):
            self._enqueue(preemptor)
        else:
            self._groups.decide(preemptor)

    # -- the scheduling loop -------------------------------------------------------------------

    async def run(self) -> None:
        """Decide for queued pods until cancelled."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._flush:
                    self._flush = False
                    self._retry_waiting()
                while self._active:
                    if self._flush:  # capacity freed meanwhile: older waiters go first
                        self._flush = False
                        self._retry_waiting()
                    key = self._active.popleft()
                    self._queued.discard(key)
                    self._schedule_one(key)
                    if len(self._tasks) > self._max_in_flight:
                        await asyncio.sleep(0)  # let binders drain a long burst
                if self._groups.pending:
                    self._groups.decide_pending()
                if self._queues.dirty:
                    self._queues.sync()
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _retry_waiting(self) -> None:
        """Capacity freed: shapes and waiting groups, higher priority first, then oldest (groups
        of several Volcano queues: queue by queue, see ``VolcanoQueues.ordered``); each shape's
        waiting pods, oldest first, until one fits nowhere."""
        shapes = self._waiting.ordered()
        i = 0
        for group in self._groups.blocked_in_order():
            rank = (-self._groups.priority(group), group.seq)
            while i < len(shapes) and shapes[i][:2] < rank:
                self._retry_shape(shapes[i][2])
                i += 1
            self._groups.schedule(group.key)
        for _, _, shape in shapes[i:]:
            self._retry_shape(shape)

    def _retry_shape(self, shape: Shape) -> None:
        while (key := self._waiting.oldest(shape)) is not None:
            if self._schedule_one(key) is False and self._waiting.shape(key) == shape:
                break  # it keeps its place; the pods behind it ask for the same

    def _pod_to_place(self, key: str) -> Mapping[str, Any] | None:
        """The pod ``key`` when it is to be decided: it exists, wants a node from this
        scheduler and is not being bound; else None."""
        pod = self._pods.get(*split_key(key))
        if pod is None or not self.wants(pod) or key in self._binding:
            return None
        return pod

    def _schedule_one(self, key: str) -> bool | None:
        """Decide for one pod: True bound (assumed), False waiting for capacity, None nothing to
        decide (gone, bound, being bound). Only a pod that waits stays filed as waiting."""
        pod = self._pod_to_place(key)
        if pod is None:
            self._waiting.unfile(key)
            self.gangs.unfile(key)
            return None
        group = self._groups.gang_of(pod)
        if group is not None:  # decided with its group, in the next pass
            self._waiting.unfile(key)
            self._groups.file_member(key, group)
            return False
        try:
            requests, shape = self._requests(key, pod)
        except ValueError as e:
            self._mark_unschedulable(
                pod, f"0/{len(self.capacity.node_names)} nodes are available: {e}.", None
            )
            return False
        nomination = self._preemptor.nominations.get(key)
        if nomination is not None:
            if nomination.victims:  # its room is held until they are gone
                self._waiting.file(key, shape)
                return False
            self._preemptor.drop(key)
        fit = self.capacity.fit(requests, dict(shape[1]) or None)
        if fit.node is None:
            self._preemptor.for_pod(pod, requests, shape, oldest=self._waiting.oldest(shape))
            self._mark_unschedulable(pod, fit.message, shape)
            return False
        self._assume(pod, fit.node, requests)
        return True

    def _requests(self, key: str, pod: Mapping[str, Any]) -> tuple[Resources, Shape]:
        """The pod's requests and shape, parsed once per pod; ValueError for a malformed one."""
        uid = pod["metadata"].get("uid", "")
        decided = self._decided.get(key)
        if decided is None or decided[0] != uid:
            requests = pod_requests(pod)
            shape = shape_of(pod, requests, self.priorities.of_pod(pod))
            decided = self._decided[key] = (uid, requests, shape)
        return decided[1], decided[2]

    def _mark_unschedulable(
        self, pod: Mapping[str, Any], message: str, shape: Shape | None
    ) -> None:
        """File the pod as waiting (a malformed one, ``shape`` None, under its own shape: its
        requests cannot be read, so only a change to the pod brings it back) and say why."""
        key = pod_key(pod)
        self._waiting.file(key, shape if shape is not None else ((("", 0),), (("key", key),), 0))
        self._writer.say_unschedulable(pod, message)

    # -- binding -------------------------------------------------------------------------------

    def _assume(self, pod: Mapping[str, Any], node: str, requests: Resources) -> None:
        """Hold ``requests`` on ``node`` for the pod and bind it."""
        key = pod_key(pod)
        self._waiting.unfile(key)
        self.gangs.unfile(key)
        self._decided.pop(key, None)
        self._hold(key, node, requests, pod)
        self._binding.add(key)
        self._groups.set_state(key, "binding")
        self._spawn(self._bind(pod, node))

    async def _bind(self, pod: Mapping[str, Any], node: str) -> None:
        meta = pod["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        key = f"{ns}/{name}"
        async with self._bind_slots:
            try:
                await self._writer.bind(ns, name, meta.get("uid", ""), node)
                self.bound += 1
                return
            except ApiStatusError as e:
                if e.is_not_found:
                    self.forget(key)
                    return
                if e.is_conflict:
                    # Already bound elsewhere, or being deleted: the informer tells the truth.
                    self._binding.discard(key)
                    current = self._pods.get(ns, name)
                    if current is not None and (current.get("spec") or {}).get("nodeName"):
                        self.observe(current)
                    else:
                        self._released(key)
                    return
                log.warning("binding pod %s to %s failed: %s", key, node, e)
            except (ConnectionError, TimeoutError) as e:
                log.warning("binding pod %s to %s failed: %s", key, node, e)
        # Transient failure: give the capacity back and try again later.
        self._binding.discard(key)
        self._groups.set_state(key, "waiting")
        self._released(key)
        self._clock.call_at(self._clock.monotonic() + _RETRY_SECONDS, lambda: self._enqueue(key))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
