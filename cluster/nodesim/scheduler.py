"""The simulated scheduler: binds pending pods to simulated nodes with enough free capacity.

Pods whose ``spec.schedulerName`` is one of ``NodeSimOptions.scheduler_names``, with no
``spec.nodeName`` and no deletionTimestamp, enter the *active* queue (FIFO, deduplicated). One loop
decides for one pod at a time against ``NodeCapacity`` (no API call, no scan of pods), *assumes*
the pod onto the chosen node (its resources are held at once) and hands the write to a bounded set
of binders: ``POST pods/{name}/binding``, or ``PATCH spec.nodeName`` when the server has no binding
subresource. Pods that fit nowhere get ``PodScheduled=False, reason Unschedulable`` with kube's
message and wait in the *unschedulable* set until capacity frees (a pod on a node finished or went
away, or a node appeared), as kube's ``MoveAllToActiveQueue`` does.

Waiting pods are filed by *shape* (their requests and node selector), oldest first. When capacity
frees, each shape is tried from its oldest pod and only until one of its pods fits nowhere: the
pods behind it, asking for the same, would not fit either. A pod's requests are parsed once, when
first decided. So a cluster holding thousands of waiting pods spends a few fits per freed pod, not
one per waiting pod (that retry of every waiting pod on every release, and the quantity parsing
in it, was 90 % of the embedded server's CPU with 60,000 pods waiting for 2,560 places).

Priority: a shape includes the pods' priority (``priorities.py``), and when capacity frees the
shapes and the waiting groups are tried higher priority first, then oldest first. A new pod that
fits when it arrives is bound at once, whatever waits (kube's scheduler does the same; there is
no preemption).

Gangs (``enable_gangs``; ``podgroup.py`` says which pods belong to which PodGroup and what each
flavour's status is): a member pod is not decided alone but filed under its group
(``gangs.py``), and the group is decided once per loop pass: its waiting members are assumed
onto nodes one after another and, unless enough of them fit to reach ``minMember``, all of them
are released again (all or nothing, on the same ``NodeCapacity``). A Volcano group is admitted
first (phase ``Inqueue``) when the cluster's free total, less what the other admitted and not yet
placed groups reserve, covers its ``minResources``; its pods are bound only once it is admitted.
A group that waits for room is retried with the waiting shapes when capacity frees. Status is
written by ``gangstatus.py``, only on change.

Volcano queues (``enable_queues``, ``queues.py``): a Volcano group is admitted only when its
queue exists, is open and stays within its capability; waiting groups of several queues are
tried queue by queue, the queue with the lowest share (by weight) first, then by priority and
age within a queue. What each queue holds is charged per pod as pods start and stop holding
capacity, and each Queue's status is written, only on change.

Preemption (``preemption``, off by default; ``preemption.py``, ``evictions.py``): a pod, or a
gang, that fits nowhere evicts lower-priority pods (whole lower-priority groups) when that makes
it fit, is nominated, and keeps the room it was nominated for until its victims are gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import split_key
from kubetrain.engine.client import ApiClient
from kubetrain.informers.lister import Lister
from kubetrain.informers.resource import PODS
from kubetrain.informers.transport import ApiStatusError

from .capacity import NodeCapacity
from .evictions import Evictor
from .gangs import GangBook, Group
from .gangstatus import GroupStatusWriter, StatusWriter
from .podgroup import (
    VOLCANO,
    Flavour,
    GroupKey,
    group_of,
    member_state,
    plugins_status,
    volcano_status,
)
from .podstatus import rfc3339
from .preemption import (
    Holders,
    Nomination,
    Nominations,
    Unit,
    choose_victims,
    reservation_key,
)
from .priorities import Priorities
from .quantity import Resources, add_into, pod_requests, subtract_into
from .queues import QUEUES, QueueBook, queue_status, refusal

__all__ = ["TERMINAL_PHASES", "Scheduler"]

_Shape = tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...], int]
"""What a pod asks of a node: its requests and its node selector, sorted, and its priority. Pods
of one shape fit on the same nodes and go in the same order."""

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
        self._client = client
        self._clock = clock
        self._pods = pods
        self.capacity = capacity
        self._names = scheduler_names
        self._active: deque[str] = deque()
        self._queued: set[str] = set()
        # Pods waiting for capacity to free, by shape, oldest first: shape -> {key: None}.
        # Invariant: a key is in at most one group, the one ``_waiting_shape`` names; no group
        # is empty.
        self._waiting: dict[_Shape, dict[str, None]] = {}
        self._waiting_shape: dict[str, _Shape] = {}
        # key -> (uid, requests, shape) of a pod decided once and not bound yet: requests are
        # parsed once per pod, not once per attempt.
        self._decided: dict[str, tuple[str, Resources, _Shape]] = {}
        # Keys assumed onto a node whose binding is in flight. Invariant: each holds capacity.
        self._binding: set[str] = set()
        self._wake = asyncio.Event()
        self._flush = False
        self._bind_slots = asyncio.Semaphore(bind_concurrency)
        self._max_in_flight = 4 * bind_concurrency + 64
        self._tasks: set[asyncio.Task[None]] = set()
        self._binding_supported = True
        self.bound = 0
        """Pods bound so far (for tests and progress)."""
        # order in which waiting shapes appeared: oldest first among equal priorities
        self._shape_seq: dict[_Shape, int] = {}
        self._seq = 0
        self.priorities = Priorities()
        # -- gangs (enable_gangs) --
        self._flavours: frozenset[Flavour] = frozenset()
        self.gangs = GangBook()
        self._decide: set[GroupKey] = set()  # groups to decide in the next pass
        self._status: set[GroupKey] = set()  # groups whose status may have changed
        self._blocked: set[GroupKey] = set()  # groups waiting for capacity to free
        self._reserving: set[GroupKey] = set()  # Volcano: admitted, fewer than minMember placed
        self.group_status = GroupStatusWriter(
            client, slots=self._bind_slots, spawn=self._spawn, retry=self._touch, clock=clock
        )
        # -- Volcano queues (enable_queues) --
        self.queues: QueueBook | None = None
        self.queue_status: StatusWriter[str] = StatusWriter(
            client,
            slots=self._bind_slots,
            spawn=self._spawn,
            retry=self._queue_touched,
            clock=clock,
            target=lambda name: (QUEUES, None, name, "status"),
        )
        # -- preemption --
        self.preemption = preemption
        self._holders = Holders()  # pods holding capacity, by priority (preemption only)
        self.nominations = Nominations()
        self._evicting: dict[str, str] = {}  # victim key -> uid, until it is gone
        self.evictor = Evictor(client, slots=self._bind_slots, spawn=self._spawn, clock=clock)

    def enable_gangs(self, flavours: frozenset[Flavour], priorities: Priorities) -> None:
        """Schedule members of PodGroups of ``flavours`` (the CRDs the server serves) with their
        group, and order by ``priorities``. Before the first pod is observed."""
        self._flavours = flavours
        self.priorities = priorities

    def enable_queues(self) -> None:
        """Admit Volcano groups by their Queue (``observe_queue``). Before the first group is
        observed."""
        self.queues = QueueBook()

    @property
    def gang_flavours(self) -> frozenset[Flavour]:
        """The PodGroup flavours scheduled with their group."""
        return self._flavours

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
        key = _pod_key(pod)
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if self._flavours:
            self._observe_member(key, pod)
        evicting = self._evicting.get(key)
        if evicting is not None:
            if evicting == pod["metadata"].get("uid", "") and node and phase not in TERMINAL_PHASES:
                return  # a victim on its way out: it holds nothing any more
            self._victim_gone(key)
        if node:
            self._binding.discard(key)
            self._unfile(key)
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
        if self.wants(pod) and key not in self._waiting_shape and not self.gangs.is_filed(key):
            self._enqueue(key)

    def forget(self, key: str) -> None:
        """The pod is gone."""
        self._binding.discard(key)
        self._unfile(key)
        self._decided.pop(key, None)
        if key in self._evicting:
            self._victim_gone(key)
        if self._drop_nomination(key):
            self._capacity_freed()
        group = self.gangs.group_of_member(key)
        if group is not None:
            self.gangs.set_member(key, None, None)
            self._touch(group)
        self._released(key)

    def _observe_member(self, key: str, pod: Mapping[str, Any]) -> None:
        group = group_of(pod, self._flavours)
        state = member_state(pod)
        if state == "waiting" and key in self._binding:
            state = "binding"
        before = self.gangs.group_of_member(key)
        if group is None and before is None:
            return
        if self.gangs.set_member(key, group, state):
            for touched in {before, group}:
                if touched is not None:
                    self._touch(touched)

    # -- groups (informer side) ----------------------------------------------------------------

    def observe_group(self, key: GroupKey, obj: Mapping[str, Any]) -> None:
        """A PodGroup was added or changed."""
        self.group_status.observed(key, obj)
        before = self.gangs.group(key)
        queue = before.spec.queue if before is not None else None
        group, changed = self.gangs.observe_group(key, obj)
        if changed:
            self._decide.add(key)
        if self.queues is not None and key[0] == VOLCANO and group.spec.queue != queue:
            for member in self.gangs.members(key):  # held before the group was known, or moved
                held = self.capacity.held(member)
                if held is not None:
                    self.queues.charge(member, group.spec.queue, held)
        self._touch(key)

    def forget_group(self, key: GroupKey) -> None:
        """A PodGroup was deleted."""
        self.gangs.forget_group(key)
        self.group_status.forget(key)
        self._decide.discard(key)
        self._status.discard(key)
        self._blocked.discard(key)
        if self.queues is not None:
            self.queues.forget_group(key)
            self._wake.set()
        if self._drop_nomination(key):
            self._capacity_freed()
        if key in self._reserving:
            self._reserving.discard(key)
            self._capacity_freed_for_groups()

    def _touch(self, key: GroupKey) -> None:
        """The group's status may have changed: recompute it in the next pass."""
        self._status.add(key)
        self._wake.set()

    @property
    def waiting(self) -> int:
        """Pods waiting for capacity to free (for tests and progress)."""
        return len(self._waiting_shape)

    def _file(self, key: str, shape: _Shape) -> None:
        """File ``key`` as waiting under ``shape``; one filed there already keeps its place."""
        if self._waiting_shape.get(key) == shape:
            return
        self._unfile(key)
        if shape not in self._waiting:
            self._seq += 1
            self._shape_seq[shape] = self._seq
        self._waiting.setdefault(shape, {})[key] = None
        self._waiting_shape[key] = shape

    def _unfile(self, key: str) -> None:
        shape = self._waiting_shape.pop(key, None)
        if shape is not None:
            group = self._waiting[shape]
            del group[key]
            if not group:
                del self._waiting[shape]
                del self._shape_seq[shape]

    def _hold(self, key: str, node: str, requests: Resources, pod: Mapping[str, Any]) -> None:
        """``key`` holds ``requests`` on ``node``: charged to its queue, filed by priority."""
        self.capacity.hold(key, node, requests)
        if self.queues is not None:
            queue = self._queue_of_member(key)
            if queue is not None:
                self.queues.charge(key, queue, requests)
                self._wake.set()
        if self.preemption:
            self._holders.add(key, self._holder_priority(key, pod), requests)

    def _released(self, key: str) -> None:
        if self.queues is not None and self.queues.charged_to(key) is not None:
            self.queues.uncharge(key)
            self._wake.set()
        self._holders.discard(key)
        if self.capacity.release(key):
            self._capacity_freed()

    def _capacity_freed(self) -> None:
        if self._waiting or self._blocked:
            self._flush = True
            self._wake.set()

    def _capacity_freed_for_groups(self) -> None:
        """A reservation ended: groups waiting for admission may now be admitted."""
        if self._blocked:
            self._flush = True
            self._wake.set()

    def _enqueue(self, key: str) -> None:
        if key not in self._queued:
            self._queued.add(key)
            self._active.append(key)
            self._wake.set()

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
                if self._decide or self._status:
                    self._groups_pass()
                if self.queues is not None and self.queues.dirty:
                    self._sync_queues()
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _retry_waiting(self) -> None:
        """Capacity freed: shapes and waiting groups, higher priority first, then oldest (groups
        of several Volcano queues: queue by queue, see ``_ordered``); each shape's waiting pods,
        oldest first, until one fits nowhere."""
        shapes = sorted((-shape[2], self._shape_seq[shape], shape) for shape in self._waiting)
        i = 0
        for group in self._ordered(self._blocked):
            rank = (-self._group_priority(group), group.seq)
            while i < len(shapes) and shapes[i][:2] < rank:
                self._retry_shape(shapes[i][2])
                i += 1
            self._schedule_group(group.key)
        for _, _, shape in shapes[i:]:
            self._retry_shape(shape)

    def _retry_shape(self, shape: _Shape) -> None:
        while (group_ := self._waiting.get(shape)) is not None:
            pod_key = next(iter(group_))
            if self._schedule_one(pod_key) is False and self._waiting_shape.get(pod_key) == shape:
                break  # it keeps its place; the pods behind it ask for the same

    def _schedule_one(self, key: str) -> bool | None:
        """Decide for one pod: True bound (assumed), False waiting for capacity, None nothing to
        decide (gone, bound, being bound). Only a pod that waits stays filed as waiting."""
        ns, name = split_key(key)
        pod = self._pods.get(ns, name)
        if pod is None or not self.wants(pod) or key in self._binding:
            self._unfile(key)
            self.gangs.unfile(key)
            return None
        group = self._gang_of(pod)
        if group is not None:  # decided with its group, in the next pass
            self._unfile(key)
            if self.gangs.group_of_member(key) != group:
                self.gangs.set_member(key, group, "waiting")
            self.gangs.file(key)
            self._decide.add(group)
            return False
        try:
            requests, shape = self._requests(key, pod)
        except ValueError as e:
            self._mark_unschedulable(
                pod, f"0/{len(self.capacity.node_names)} nodes are available: {e}.", None
            )
            return False
        nomination = self.nominations.get(key)
        if nomination is not None:
            if nomination.victims:  # its room is held until they are gone
                self._file(key, shape)
                return False
            self._drop_nomination(key)
        fit = self.capacity.fit(requests, dict(shape[1]) or None)
        if fit.node is None:
            self._preempt_for_pod(pod, requests, shape)
            self._mark_unschedulable(pod, fit.message, shape)
            return False
        self._assume(pod, fit.node, requests)
        return True

    def _requests(self, key: str, pod: Mapping[str, Any]) -> tuple[Resources, _Shape]:
        """The pod's requests and shape, parsed once per pod; ValueError for a malformed one."""
        uid = pod["metadata"].get("uid", "")
        decided = self._decided.get(key)
        if decided is None or decided[0] != uid:
            requests = pod_requests(pod)
            selector = (pod.get("spec") or {}).get("nodeSelector") or {}
            shape: _Shape = (
                tuple(sorted(requests.items())),
                tuple(sorted((str(k), str(v)) for k, v in selector.items())),
                self.priorities.of_pod(pod),
            )
            decided = self._decided[key] = (uid, requests, shape)
        return decided[1], decided[2]

    def _assume(self, pod: Mapping[str, Any], node: str, requests: Resources) -> None:
        """Hold ``requests`` on ``node`` for the pod and bind it."""
        key = _pod_key(pod)
        self._unfile(key)
        self.gangs.unfile(key)
        self._decided.pop(key, None)
        self._hold(key, node, requests, pod)
        self._binding.add(key)
        group = self.gangs.group_of_member(key)
        if group is not None and self.gangs.set_member(key, group, "binding"):
            self._touch(group)
        self._spawn(self._bind(pod, node))

    # -- groups (decisions) --------------------------------------------------------------------

    def _gang_of(self, pod: Mapping[str, Any]) -> GroupKey | None:
        """The group the pod is scheduled with; its pods wait while it does not exist (Volcano
        waits for the group; scheduler-plugins' Permit denies a pod whose PodGroup is not
        found)."""
        if not self._flavours:
            return None
        return group_of(pod, self._flavours)

    def _group_priority(self, group: Group) -> int:
        if group.spec.priority_class:
            return self.priorities.value(group.spec.priority_class)
        for key in self.gangs.filed(group.key)[:1]:
            pod = self._pods.get(*split_key(key))
            if pod is not None:
                return self.priorities.of_pod(pod)
        return self.priorities.value("")

    def _groups_pass(self) -> None:
        """Decide for the groups that changed (higher priority first, then oldest), then bring
        the others' status up to date."""
        decide, self._decide = self._decide, set()
        for group in self._ordered(decide):
            self._schedule_group(group.key)
        status, self._status = self._status, set()
        for key in status - decide:
            group_ = self.gangs.group(key)
            if group_ is not None:
                self._refresh(group_)

    def _schedule_group(self, key: GroupKey) -> None:
        """Admit (Volcano) and place the group's waiting members, all or nothing."""
        group = self.gangs.group(key)
        if group is None:
            self._blocked.discard(key)
            return
        nomination = self.nominations.get(key)
        if nomination is not None:
            if nomination.victims:  # its room is held until they are gone
                self._blocked.add(key)
                self._refresh(group)
                return
            self._drop_nomination(key)
        counts = self.gangs.counts(key)
        reason = message = ""
        if key[0] == VOLCANO and not group.admitted:
            refused = None
            if counts.placed < max(group.spec.min_member, 1):
                refused = self._queue_refusal(group)
                if refused is None and not self._admits(group):
                    refused = ("NotEnoughResources", "")
            if refused is None:
                group.admitted = True
            else:
                reason, message = refused
        if not reason:
            reason = self._place(group, counts.placed)
        group.reason, group.message = reason, message
        if reason not in ("", "NotEnoughTasks") or (reason == "" and self.gangs.filed(key)):
            self._blocked.add(key)  # retried when capacity frees or its queue changes
        else:
            self._blocked.discard(key)
        self._refresh(group)

    def _admits(self, group: Group) -> bool:
        """Volcano's enqueue: the free total, less the other admitted groups' outstanding
        reservations, covers this group's ``minResources``. With preemption, what
        lower-priority pods hold and lower-priority groups reserve counts as free: the group
        may reclaim it once admitted."""
        if not group.spec.valid:
            return False
        free = self.capacity.free_total()
        priority: int | None = None
        if self.preemption and not self._group_never_preempts(group):
            priority = self._group_priority(group)
            add_into(free, self._holders.reclaimable(priority))
        for other in self._reserving:
            reserving = self.gangs.group(other) if other != group.key else None
            if reserving is not None and (
                priority is None or self._group_priority(reserving) >= priority
            ):
                subtract_into(free, self._outstanding(reserving))
        return all(free.get(name, 0) >= want for name, want in group.spec.reservation.items())

    def _queue_refusal(self, group: Group) -> tuple[str, str] | None:
        """Why the group's Volcano queue does not admit it now (``queues.refusal``)."""
        if self.queues is None:
            return None
        name = group.spec.queue
        inqueue: Resources = {}
        for other in self._reserving:
            reserving = self.gangs.group(other)
            if other != group.key and reserving is not None and reserving.spec.queue == name:
                add_into(inqueue, self._outstanding(reserving))
        return refusal(name, self.queues.spec(name), group.spec, self.queues.held(name), inqueue)

    def _outstanding(self, group: Group) -> Resources:
        """What an admitted group still reserves: its ``minResources`` less what its placed
        members hold (never below zero)."""
        left = dict(group.spec.reservation)
        for member in self.gangs.members(group.key):
            held = self.capacity.held(member)
            if held:
                subtract_into(left, held)
        return {name: value for name, value in left.items() if value > 0}

    def _place(self, group: Group, placed: int) -> str:
        """Bind the group's waiting members if, with those placed, ``minMember`` fit at once;
        "" when nothing more blocks the group, else why it waits."""
        keys = self.gangs.filed(group.key)
        need = group.spec.min_member - placed
        if need <= 0:  # the gang runs: further members go alone
            for key in keys:
                self._place_alone(key)
            return ""
        if len(keys) < need:
            self._say_too_few(group, keys, placed)
            return "NotEnoughTasks"
        tentative = self._tentative(keys, need)
        if tentative is not None:
            for member, node, requests in tentative:
                self._assume(member, node, requests)
            return ""
        self._preempt_for_group(group, keys, need)
        message = (
            f"pod group is not ready, {group.spec.min_member} minAvailable: "
            f"{need} of its pods cannot be placed at once"
        )
        for key in self.gangs.filed(group.key):
            waiting = self._pods.get(*split_key(key))
            if waiting is not None:
                self._say_unschedulable(waiting, message)
        return "NotEnoughResources"

    def _say_too_few(self, group: Group, keys: list[str], placed: int) -> None:
        """Fewer members exist than ``minMember``: each waiting one says so, as the gang
        schedulers do (scheduler-plugins' coscheduling rejects the pod in PreFilter, and kube's
        scheduler prefixes the node count; Volcano's gang plugin says the group is not ready)."""
        nodes = len(self.capacity.node_names)
        exist = len(keys) + placed
        for key in keys:
            waiting = self._pods.get(*split_key(key))
            if waiting is None:
                continue
            if group.key[0] == VOLCANO:
                message = (
                    f"pod group is not ready, {exist} Pending, {group.spec.min_member} minAvailable"
                )
            else:
                message = (
                    f"0/{nodes} nodes are available: pre-filter pod {split_key(key)[1]} cannot "
                    f"find enough sibling pods, current pods number: {exist}, minMember of "
                    f"group: {group.spec.min_member}."
                )
            self._say_unschedulable(waiting, message)

    def _tentative(
        self, keys: list[str], need: int, *, only_need: bool = False
    ) -> list[tuple[Mapping[str, Any], str, Resources]] | None:
        """Hold room for at least ``need`` of the members ``keys`` at once (every one that fits,
        or only ``need`` with ``only_need``); the holds are left for the caller to assume or
        release. None (nothing held) when fewer than ``need`` fit."""
        tentative: list[tuple[Mapping[str, Any], str, Resources]] = []
        for i, key in enumerate(keys):
            if len(tentative) + len(keys) - i < need:
                break  # the rest cannot make up the difference
            decidable = self._member_to_place(key)
            if decidable is None:
                continue
            pod, requests, shape = decidable
            fit = self.capacity.fit(requests, dict(shape[1]) or None)
            if fit.node is not None:
                self.capacity.hold(key, fit.node, requests)  # assumed, for the next fits
                tentative.append((pod, fit.node, requests))
                if only_need and len(tentative) >= need:
                    break
        if len(tentative) >= need:
            return tentative
        for member, _, _ in tentative:
            self.capacity.release(_pod_key(member))  # none of them: all or nothing
        return None

    def _member_to_place(self, key: str) -> tuple[Mapping[str, Any], Resources, _Shape] | None:
        """A filed member's pod, requests and shape; None (unfiled when gone, bound or being
        bound; said Unschedulable when its requests cannot be read) when it cannot be placed."""
        pod = self._pods.get(*split_key(key))
        if pod is None or not self.wants(pod) or key in self._binding:
            self.gangs.unfile(key)
            return None
        try:
            requests, shape = self._requests(key, pod)
        except ValueError as e:
            self._say_unschedulable(
                pod, f"0/{len(self.capacity.node_names)} nodes are available: {e}."
            )
            return None
        return pod, requests, shape

    def _place_alone(self, key: str) -> None:
        member = self._member_to_place(key)
        if member is None:
            return
        pod, requests, shape = member
        fit = self.capacity.fit(requests, dict(shape[1]) or None)
        if fit.node is None:
            self._say_unschedulable(pod, fit.message)
        else:
            self._assume(pod, fit.node, requests)

    def _refresh(self, group: Group) -> None:
        """Write the group's status if it changed; keep ``_reserving`` right."""
        key = group.key
        counts = self.gangs.counts(key)
        if key[0] == VOLCANO:
            if group.admitted and counts.placed < group.spec.min_member:
                self._reserving.add(key)
            elif key in self._reserving:
                self._reserving.discard(key)
                self._capacity_freed_for_groups()
            desired = volcano_status(
                self.group_status.known(key, group.obj),
                group.spec,
                counts,
                admitted=group.admitted,
                reason=group.reason,
                now=rfc3339(self._clock.utcnow().timestamp()),
                message=group.message,
            )
            if self.queues is not None:
                self.queues.set_phase(key, group.spec.queue, str(desired["phase"]))
        else:
            desired = plugins_status(self.group_status.known(key, group.obj), group.spec, counts)
        self.group_status.sync(key, group.obj, desired)

    # -- Volcano queues -----------------------------------------------------------------------

    def observe_queue(self, name: str, obj: Mapping[str, Any]) -> None:
        """A Queue was added or changed: groups it refused may now be admitted."""
        if self.queues is None:
            return
        self.queue_status.observed(name, obj)
        if self.queues.observe(name, obj):
            self._capacity_freed_for_groups()
        self.queues.dirty.add(name)  # a resync too: the status may need writing again
        self._wake.set()

    def forget_queue(self, name: str) -> None:
        if self.queues is not None:
            self.queues.forget(name)
            self.queue_status.forget(name)

    def _queue_touched(self, name: str) -> None:
        if self.queues is not None:
            self.queues.dirty.add(name)
            self._wake.set()

    def _queue_of_member(self, key: str) -> str | None:
        """The Volcano queue the pod's group is in (None: not in a known Volcano group)."""
        group_key = self.gangs.group_of_member(key)
        if group_key is None or group_key[0] != VOLCANO:
            return None
        group = self.gangs.group(group_key)
        return group.spec.queue if group is not None else None

    def _ordered(self, keys: set[GroupKey]) -> Iterator[Group]:
        """The groups of ``keys``: of one queue (or none), higher priority first, then oldest;
        of several Volcano queues, Volcano's allocate order: the queue first by
        ``QueueOrderFn`` (priority, then the lowest share), recomputed after each group as the
        groups placed change what the queue holds, then by priority and age within it."""
        groups = [g for key in keys if (g := self.gangs.group(key)) is not None]
        by_queue: dict[str, list[tuple[int, int, Group]]] = {}
        for group in groups:
            queue = group.spec.queue if self.queues is not None else ""
            by_queue.setdefault(queue, []).append((-self._group_priority(group), group.seq, group))
        if len(by_queue) <= 1 or self.queues is None:
            groups.sort(key=lambda g: (-self._group_priority(g), g.seq))
            yield from groups
            return
        asks: dict[str, Resources] = {q: {} for q in by_queue}
        for queue, entries in by_queue.items():
            entries.sort(key=lambda entry: entry[:2], reverse=True)  # popped from the end
            for _, _, group in entries:
                if not group.admitted or self.gangs.filed(group.key):
                    add_into(asks[queue], group.spec.reservation)
        deserved = self.queues.deserved(self.capacity.allocatable_total(), asks)
        queues = self.queues
        while by_queue:
            queue = min(by_queue, key=lambda q: queues.order_key(q, deserved) if q else (0, 0.0, q))
            entries = by_queue[queue]
            yield entries.pop()[2]
            if not entries:
                del by_queue[queue]

    def _sync_queues(self) -> None:
        """Write the status of the queues whose counts or holdings changed, where it differs."""
        assert self.queues is not None
        dirty, self.queues.dirty = self.queues.dirty, set()
        for name in dirty:
            obj = self.queues.obj(name)
            spec = self.queues.spec(name)
            if obj is None or spec is None:
                continue
            desired = queue_status(
                self.queue_status.known(name, obj),
                spec,
                self.queues.phases(name),
                self.queues.held(name),
            )
            self.queue_status.sync(name, obj, desired)

    # -- preemption ----------------------------------------------------------------------------

    def _holder_priority(self, key: str, pod: Mapping[str, Any]) -> int:
        """The priority a holder is evicted at: its group's, else its own."""
        group_key = self.gangs.group_of_member(key)
        group = self.gangs.group(group_key) if group_key is not None else None
        if group is not None and group.spec.priority_class:
            return self.priorities.value(group.spec.priority_class)
        return self.priorities.of_pod(pod)

    def _group_never_preempts(self, group: Group) -> bool:
        members = self.gangs.filed(group.key)[:1] or self.gangs.members(group.key)[:1]
        pod = self._pods.get(*split_key(members[0])) if members else None
        return self.priorities.never_preempts(pod, group.spec.priority_class)

    def _preempt_for_pod(self, pod: Mapping[str, Any], requests: Resources, shape: _Shape) -> bool:
        """Evict lower-priority pods so that ``pod`` fits; True when it was nominated."""
        key = _pod_key(pod)
        priority = shape[2]
        if (
            not self.preemption
            or not self._holders.any_below(priority)
            or self.priorities.never_preempts(pod)
        ):
            return False
        ahead = next(iter(self._waiting.get(shape) or ()), key)
        if ahead != key and self.nominations.get(ahead) is None:
            return False  # an older pod asking the same found no victims: neither would this one
        selector = dict(shape[1]) or None

        def fits() -> bool:
            return self.capacity.fit(requests, selector).node is not None

        victims = self._choose(priority, None, fits)
        if victims is None:
            return False
        node = self.capacity.fit(requests, selector).node
        assert node is not None
        self._commit(key, {key: (node, requests)}, victims, pod, gang=False)
        return True

    def _preempt_for_group(self, group: Group, keys: list[str], need: int) -> bool:
        """Evict lower-priority groups and pods so that ``need`` of the group's waiting members
        fit at once; True when they were nominated."""
        if not self.preemption or self.nominations.get(group.key) is not None:
            return False
        priority = self._group_priority(group)
        if not self._holders.any_below(priority) or self._group_never_preempts(group):
            return False

        def fits() -> bool:
            placed = self._tentative(keys, need, only_need=True)
            for member, _, _ in placed or ():
                self.capacity.release(_pod_key(member))
            return placed is not None

        victims = self._choose(priority, group.key, fits)
        if victims is None:
            return False
        placed = self._tentative(keys, need, only_need=True)
        assert placed is not None
        for member, _, _ in placed:
            self.capacity.release(_pod_key(member))
        nodes = {_pod_key(member): (node, requests) for member, node, requests in placed}
        self._commit(group.key, nodes, victims, placed[0][0], gang=True)
        return True

    def _choose(
        self, priority: int, own: GroupKey | None, fits: Callable[[], bool]
    ) -> list[Unit] | None:
        """``choose_victims`` among what holds capacity below ``priority`` (not ``own`` group's
        members): whole groups for gang members."""
        stash: dict[str, tuple[str, Resources]] = {}

        def release(unit: Unit) -> None:
            for key in unit.pods:
                node, held = self.capacity.holder(key), self.capacity.held(key)
                if node is not None and held is not None:
                    stash[key] = (node, held)
                    self.capacity.release(key)

        def restore(unit: Unit) -> None:
            for key in unit.pods:
                if key in stash:
                    self.capacity.hold(key, *stash.pop(key))

        return choose_victims(self._units_below(priority, own), release, restore, fits)

    def _units_below(self, priority: int, own: GroupKey | None) -> Iterator[Unit]:
        seen: set[GroupKey] = set()
        for key in self._holders.below(priority):
            pod = self._pods.get(*split_key(key))
            if pod is None or pod["metadata"].get("deletionTimestamp"):
                continue  # going away already
            group_key = self.gangs.group_of_member(key)
            if group_key is None or self.gangs.group(group_key) is None:
                yield Unit(key, self._holders.priority(key) or 0, [key])
                continue
            if group_key == own or group_key in seen:
                continue
            seen.add(group_key)
            members = [
                m
                for m in self.gangs.members(group_key)
                if self.capacity.held(m) is not None and m not in self._evicting
            ]
            yield Unit(group_key, self._holders.priority(key) or 0, members)

    def _commit(
        self,
        preemptor: str | GroupKey,
        nodes: dict[str, tuple[str, Resources]],
        victims: list[Unit],
        representative: Mapping[str, Any],
        *,
        gang: bool,
    ) -> None:
        """Evict ``victims`` (their room is free already), hold the room of the preemptor's
        pods on ``nodes`` and nominate them there."""
        waiting: set[str] = set()
        for unit in victims:
            for key in unit.pods:
                self._holders.discard(key)
                if self.queues is not None:
                    self.queues.uncharge(key)
                self._binding.discard(key)
                victim = self._pods.get(*split_key(key))
                if victim is None:
                    continue
                self._evicting[key] = victim["metadata"].get("uid", "")
                waiting.add(key)
                self.evictor.evict(victim, representative, gang=gang, gone=self._victim_gone)
        for key, (node, requests) in nodes.items():
            self.capacity.hold(reservation_key(key), node, requests)
            pod = self._pods.get(*split_key(key))
            if pod is not None:
                self.evictor.nominate(pod, node)
        self.nominations.add(preemptor, Nomination({k: n for k, (n, _) in nodes.items()}, waiting))
        log.info(
            "preemption: %s evicts %s",
            preemptor if isinstance(preemptor, str) else "/".join(preemptor),
            ", ".join(sorted(waiting)) or "nothing",
        )
        if not waiting:
            self._nominee_ready(preemptor)

    def _victim_gone(self, key: str) -> None:
        """A victim is gone (or will never go): its preemptor is decided once its last is."""
        self._evicting.pop(key, None)
        preemptor = self.nominations.victim_gone(key)
        if preemptor is not None:
            self._nominee_ready(preemptor)  # type: ignore[arg-type]
            self._capacity_freed()

    def _nominee_ready(self, preemptor: str | GroupKey) -> None:
        if isinstance(preemptor, str):
            self._enqueue(preemptor)
        else:
            self._decide.add(preemptor)
            self._wake.set()

    def _drop_nomination(self, preemptor: str | GroupKey) -> bool:
        """Give back the room held for ``preemptor``; True when it held any."""
        nomination = self.nominations.drop(preemptor)
        if nomination is None:
            return False
        for key in nomination.nodes:
            self.capacity.release(reservation_key(key))
        return True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _mark_unschedulable(
        self, pod: Mapping[str, Any], message: str, shape: _Shape | None
    ) -> None:
        """File the pod as waiting (a malformed one, ``shape`` None, under its own shape: its
        requests cannot be read, so only a change to the pod brings it back) and say why."""
        key = _pod_key(pod)
        self._file(key, shape if shape is not None else ((("", 0),), (("key", key),), 0))
        self._say_unschedulable(pod, message)

    def _say_unschedulable(self, pod: Mapping[str, Any], message: str) -> None:
        """Write ``PodScheduled=False`` with ``message`` unless the pod says so already."""
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if (
                cond.get("type") == "PodScheduled"
                and cond.get("status") == "False"
                and cond.get("message") == message
            ):
                return  # already says so: no write
        self._spawn(self._write_unschedulable(pod, message))

    async def _write_unschedulable(self, pod: Mapping[str, Any], message: str) -> None:
        meta = pod["metadata"]

        def mutate(obj: dict[str, Any]) -> dict[str, Any] | None:
            if (obj.get("spec") or {}).get("nodeName") or obj["metadata"].get("uid") != meta.get(
                "uid"
            ):
                return None
            status = obj.setdefault("status", {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            conds.append(
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(self._clock.utcnow().timestamp()),
                }
            )
            status["conditions"] = conds
            status.setdefault("phase", "Pending")
            return obj

        async with self._bind_slots:
            try:
                await self._client.update_status_with_retry(
                    PODS, meta.get("namespace"), meta["name"], mutate, current=pod
                )
            except ApiStatusError as e:
                if not e.is_not_found:
                    log.warning("marking pod %s unschedulable failed: %s", meta["name"], e)
            except (ConnectionError, TimeoutError) as e:
                log.warning("marking pod %s unschedulable failed: %s", meta["name"], e)

    async def _bind(self, pod: Mapping[str, Any], node: str) -> None:
        meta = pod["metadata"]
        ns, name = meta.get("namespace", ""), meta["name"]
        key = f"{ns}/{name}"
        async with self._bind_slots:
            try:
                await self._write_binding(ns, name, meta.get("uid", ""), node)
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
        group = self.gangs.group_of_member(key)
        if group is not None and self.gangs.set_member(key, group, "waiting"):
            self._touch(group)
        self._released(key)
        self._clock.call_at(self._clock.monotonic() + _RETRY_SECONDS, lambda: self._enqueue(key))

    async def _write_binding(self, ns: str, name: str, uid: str, node: str) -> None:
        if self._binding_supported:
            body = {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": name, "namespace": ns, "uid": uid}
                if uid
                else {"name": name, "namespace": ns},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            }
            try:
                await self._client.request_json(
                    "POST", PODS.item_path(ns, name, "binding"), body=body
                )
                return
            except ApiStatusError as e:
                # A server without the subresource answers 404 naming no pod, or 405.
                if not (e.code == 405 or (e.code == 404 and name not in e.message)):
                    raise
                self._binding_supported = False
                log.info("the API server has no pods/binding (%s); binding by PATCH", e)
        await self._client.patch(PODS, ns, name, {"spec": {"nodeName": node}})


def _pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"
