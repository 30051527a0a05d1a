"""Gang decisions (``Scheduler.enable_gangs``): admitting and placing PodGroups all or nothing.

A member pod is not decided alone but filed under its group (``gangs.py``; ``podgroup.py`` says
which pods belong to which PodGroup and what each flavour's status is), and the group is decided
once per loop pass: its waiting members are assumed onto nodes one after another and, unless
enough of them fit to reach ``minMember``, all of them are released again (all or nothing, on
the same ``NodeCapacity``). A Volcano group is admitted first (phase ``Inqueue``) when its queue
admits it (``volcano_queues.py``) and the cluster's free total, less what the other admitted and
not yet placed groups *reserve*, covers its ``minResources``; its pods are bound only once it is
admitted. A group that waits for room is *blocked*: retried with the waiting shapes when capacity
frees. A gang that fits nowhere preempts (``preemptor.py``) for its ``minMember`` at once.
Status is written by ``gangstatus.py``, only on change.

Why a collaborator of its own: the decisions keep their own books (which groups to decide, to
refresh, blocked, reserving) and reach the scheduler only through the callables it passes:
``assume`` a member onto a node, its parsed ``requests``, ``say_unschedulable``, ``wake`` the
loop and ``flush`` (retry what waits for room).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kubetrain.base.clock import Clock
from kubetrain.base.objects import split_key
from kubetrain.informers.lister import Lister

from .capacity import NodeCapacity
from .gangs import GangBook, Group
from .gangstatus import GroupStatusWriter
from .podgroup import (
    VOLCANO,
    Flavour,
    GroupKey,
    MemberState,
    group_of,
    member_state,
    plugins_status,
    volcano_status,
)
from .podstatus import rfc3339
from .preemptor import Placement, Preemptor
from .priorities import Priorities
from .quantity import Resources, add_into, subtract_into
from .shapes import Shape, pod_key
from .volcano_queues import VolcanoQueues

__all__ = ["GangDecisions"]


class GangDecisions:
    """Which groups to decide, and deciding them, over the scheduler's books."""

    def __init__(
        self,
        *,
        pods: Lister,
        capacity: NodeCapacity,
        gangs: GangBook,
        queues: VolcanoQueues,
        preemptor: Preemptor,
        status: GroupStatusWriter,
        clock: Clock,
        priorities: Callable[[], Priorities],
        pod_to_place: Callable[[str], Mapping[str, Any] | None],
        requests: Callable[[str, Mapping[str, Any]], tuple[Resources, Shape]],
        assume: Callable[[Mapping[str, Any], str, Resources], None],
        say_unschedulable: Callable[[Mapping[str, Any], str], None],
        wake: Callable[[], None],
        flush: Callable[[], None],
    ) -> None:
        self._pods = pods
        self._capacity = capacity
        self._gangs = gangs
        self._queues = queues
        self._preemptor = preemptor
        self._status_writer = status
        self._clock = clock
        self._priorities = priorities
        self._pod_to_place = pod_to_place
        self._requests = requests
        self._assume = assume
        self._say_unschedulable = say_unschedulable
        self._wake = wake
        self._flush = flush
        self.flavours: frozenset[Flavour] = frozenset()
        """The PodGroup flavours scheduled with their group; none: gangs are off."""
        self._decide: set[GroupKey] = set()  # groups to decide in the next pass
        self._status: set[GroupKey] = set()  # groups whose status may have changed
        self._blocked: set[GroupKey] = set()  # groups waiting for capacity to free
        # Volcano: admitted, fewer than minMember placed. Invariant: kept right by ``_refresh``
        # (and ``end_reservation``); each one's outstanding ``minResources`` counts as taken.
        self._reserving: set[GroupKey] = set()

    # -- members (informer side) -----------------------------------------------------------------

    def gang_of(self, pod: Mapping[str, Any]) -> GroupKey | None:
        """The group the pod is scheduled with; its pods wait while it does not exist (Volcano
        waits for the group; scheduler-plugins' Permit denies a pod whose PodGroup is not
        found)."""
        if not self.flavours:
            return None
        return group_of(pod, self.flavours)

    def observe_member(self, key: str, pod: Mapping[str, Any], *, binding: bool) -> None:
        """Pod ``key`` was added or changed (``binding``: the scheduler is binding it)."""
        group = group_of(pod, self.flavours)
        state = member_state(pod)
        if state == "waiting" and binding:
            state = "binding"
        before = self._gangs.group_of_member(key)
        if group is None and before is None:
            return
        if self._gangs.set_member(key, group, state):
            for touched in {before, group}:
                if touched is not None:
                    self.touch(touched)

    def forget_member(self, key: str) -> None:
        """Pod ``key`` is gone."""
        group = self._gangs.group_of_member(key)
        if group is not None:
            self._gangs.set_member(key, None, None)
            self.touch(group)

    def set_state(self, key: str, state: MemberState) -> None:
        """The scheduler moved member ``key`` to ``state`` (binding, or waiting again)."""
        group = self._gangs.group_of_member(key)
        if group is not None and self._gangs.set_member(key, group, state):
            self.touch(group)

    def file_member(self, key: str, group: GroupKey) -> None:
        """Member ``key`` of ``group`` waits: decided with its group, in the next pass."""
        if self._gangs.group_of_member(key) != group:
            self._gangs.set_member(key, group, "waiting")
        self._gangs.file(key)
        self._decide.add(group)

    # -- groups (informer side) ------------------------------------------------------------------

    def observe_group(self, key: GroupKey, obj: Mapping[str, Any]) -> None:
        """A PodGroup was added or changed."""
        self._status_writer.observed(key, obj)
        before = self._gangs.group(key)
        queue = before.spec.queue if before is not None else None
        group, changed = self._gangs.observe_group(key, obj)
        if changed:
            self._decide.add(key)
        if key[0] == VOLCANO and group.spec.queue != queue:
            self._queues.recharge(key, group.spec.queue)
        self.touch(key)

    def forget_group(self, key: GroupKey) -> None:
        """A PodGroup was deleted: nothing is decided for it any more (see ``end_reservation``)."""
        self._gangs.forget_group(key)
        self._status_writer.forget(key)
        self._decide.discard(key)
        self._status.discard(key)
        self._blocked.discard(key)

    def end_reservation(self, key: GroupKey) -> None:
        """The deleted group ``key`` reserves nothing any more."""
        if key in self._reserving:
            self._reserving.discard(key)
            self.room_freed()

    def touch(self, key: GroupKey) -> None:
        """The group's status may have changed: recompute it in the next pass."""
        self._status.add(key)
        self._wake()

    def decide(self, key: GroupKey) -> None:
        """Decide for the group in the next pass."""
        self._decide.add(key)
        self._wake()

    def room_freed(self) -> None:
        """A reservation ended, or a queue changed: groups waiting for admission may now be
        admitted."""
        if self._blocked:
            self._flush()

    @property
    def blocked(self) -> bool:
        """Some group waits for capacity to free."""
        return bool(self._blocked)

    # -- the loop's side -------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Some group is to be decided, or its status refreshed, in the next pass."""
        return bool(self._decide or self._status)

    def decide_pending(self) -> None:
        """Decide for the groups that changed (higher priority first, then oldest), then bring
        the others' status up to date."""
        decide, self._decide = self._decide, set()
        for group in self._ordered(decide):
            self.schedule(group.key)
        status, self._status = self._status, set()
        for key in status - decide:
            group_ = self._gangs.group(key)
            if group_ is not None:
                self._refresh(group_)

    def blocked_in_order(self) -> Iterator[Group]:
        """The blocked groups in the order they take freed room (``VolcanoQueues.ordered``)."""
        return self._ordered(self._blocked)

    def _ordered(self, keys: set[GroupKey]) -> Iterator[Group]:
        groups = [g for key in keys if (g := self._gangs.group(key)) is not None]
        yield from self._queues.ordered(groups, self.priority)

    def priority(self, group: Group) -> int:
        """The group's priority: its priority class's, else its oldest waiting member's."""
        priorities = self._priorities()
        if group.spec.priority_class:
            return priorities.value(group.spec.priority_class)
        for key in self._gangs.filed(group.key)[:1]:
            pod = self._pods.get(*split_key(key))
            if pod is not None:
                return priorities.of_pod(pod)
        return priorities.value("")

    # -- deciding --------------------------------------------------------------------------------

    def schedule(self, key: GroupKey) -> None:
        """Admit (Volcano) and place the group's waiting members, all or nothing."""
        group = self._gangs.group(key)
        if group is None:
            self._blocked.discard(key)
            return
        nomination = self._preemptor.nominations.get(key)
        if nomination is not None:
            if nomination.victims:  # its room is held until they are gone
                self._blocked.add(key)
                self._refresh(group)
                return
            self._preemptor.drop(key)
        counts = self._gangs.counts(key)
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
        if reason not in ("", "NotEnoughTasks") or (reason == "" and self._gangs.filed(key)):
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
        free = self._capacity.free_total()
        priority: int | None = None
        if self._preemptor.enabled and not self._never_preempts(group):
            priority = self.priority(group)
            add_into(free, self._preemptor.reclaimable(priority))
        for other in self._reserving:
            reserving = self._gangs.group(other) if other != group.key else None
            if reserving is not None and (priority is None or self.priority(reserving) >= priority):
                subtract_into(free, self._outstanding(reserving))
        return all(free.get(name, 0) >= want for name, want in group.spec.reservation.items())

    def _queue_refusal(self, group: Group) -> tuple[str, str] | None:
        """Why the group's Volcano queue does not admit it now; None when it does (or queues
        are off)."""
        if not self._queues.enabled:
            return None
        name = group.spec.queue
        inqueue: Resources = {}
        for other in self._reserving:
            reserving = self._gangs.group(other)
            if other != group.key and reserving is not None and reserving.spec.queue == name:
                add_into(inqueue, self._outstanding(reserving))
        return self._queues.refusal(group, inqueue)

    def _outstanding(self, group: Group) -> Resources:
        """What an admitted group still reserves: its ``minResources`` less what its placed
        members hold (never below zero)."""
        left = dict(group.spec.reservation)
        for member in self._gangs.members(group.key):
            held = self._capacity.held(member)
            if held:
                subtract_into(left, held)
        return {name: value for name, value in left.items() if value > 0}

    def _place(self, group: Group, placed: int) -> str:
        """Bind the group's waiting members if, with those placed, ``minMember`` fit at once;
        "" when nothing more blocks the group, else why it waits."""
        keys = self._gangs.filed(group.key)
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
        self._preempt(group, keys, need)
        message = (
            f"pod group is not ready, {group.spec.min_member} minAvailable: "
            f"{need} of its pods cannot be placed at once"
        )
        for key in self._gangs.filed(group.key):
            waiting = self._pods.get(*split_key(key))
            if waiting is not None:
                self._say_unschedulable(waiting, message)
        return "NotEnoughResources"

    def _say_too_few(self, group: Group, keys: list[str], placed: int) -> None:
        """Fewer members exist than ``minMember``: each waiting one says so, as the gang
        schedulers do (scheduler-plugins' coscheduling rejects the pod in PreFilter, and kube's
        scheduler prefixes the node count; Volcano's gang plugin says the group is not ready)."""
        nodes = len(self._capacity.node_names)
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
    ) -> Placement | None:
        """Hold room for at least ``need`` of the members ``keys`` at once (every one that fits,
        or only ``need`` with ``only_need``); the holds are left for the caller to assume or
        release. None (nothing held) when fewer than ``need`` fit."""
        tentative: Placement = []
        for i, key in enumerate(keys):
            if len(tentative) + len(keys) - i < need:
                break  # the rest cannot make up the difference
            decidable = self._member_to_place(key)
            if decidable is None:
                continue
            pod, requests, shape = decidable
            fit = self._capacity.fit(requests, dict(shape[1]) or None)
            if fit.node is not None:
                self._capacity.hold(key, fit.node, requests)  # assumed, for the next fits
                tentative.append((pod, fit.node, requests))
                if only_need and len(tentative) >= need:
                    break
        if len(tentative) >= need:
            return tentative
        for member, _, _ in tentative:
            self._capacity.release(pod_key(member))  # none of them: all or nothing
        return None

    def _member_to_place(self, key: str) -> tuple[Mapping[str, Any], Resources, Shape] | None:
        """A filed member's pod, requests and shape; None (unfiled when gone, bound or being
        bound; said Unschedulable when its requests cannot be read) when it cannot be placed."""
        pod = self._pod_to_place(key)
        if pod is None:
            self._gangs.unfile(key)
            return None
        try:
            requests, shape = self._requests(key, pod)
        except ValueError as e:
            self._say_unschedulable(
                pod, f"0/{len(self._capacity.node_names)} nodes are available: {e}."
            )
            return None
        return pod, requests, shape

    def _place_alone(self, key: str) -> None:
        member = self._member_to_place(key)
        if member is None:
            return
        pod, requests, shape = member
        fit = self._capacity.fit(requests, dict(shape[1]) or None)
        if fit.node is None:
            self._say_unschedulable(pod, fit.message)
        else:
            self._assume(pod, fit.node, requests)

    def _preempt(self, group: Group, keys: list[str], need: int) -> None:
        """Evict lower-priority groups and pods so that ``need`` of the group's waiting members
        fit at once, unless the group is nominated already or may not preempt."""
        preemptor = self._preemptor
        if not preemptor.enabled or preemptor.nominations.get(group.key) is not None:
            return
        priority = self.priority(group)
        if not preemptor.any_below(priority) or self._never_preempts(group):
            return
        preemptor.for_group(
            group.key, priority, lambda: self._tentative(keys, need, only_need=True)
        )

    def _never_preempts(self, group: Group) -> bool:
        members = self._gangs.filed(group.key)[:1] or self._gangs.members(group.key)[:1]
        pod = self._pods.get(*split_key(members[0])) if members else None
        return self._priorities().never_preempts(pod, group.spec.priority_class)

    def _refresh(self, group: Group) -> None:
        """Write the group's status if it changed; keep ``_reserving`` right."""
        key = group.key
        counts = self._gangs.counts(key)
        if key[0] == VOLCANO:
            if group.admitted and counts.placed < group.spec.min_member:
                self._reserving.add(key)
            elif key in self._reserving:
                self._reserving.discard(key)
                self.room_freed()
            desired = volcano_status(
                self._status_writer.known(key, group.obj),
                group.spec,
                counts,
                admitted=group.admitted,
                reason=group.reason,
                now=rfc3339(self._clock.utcnow().timestamp()),
                message=group.message,
            )
            self._queues.set_phase(key, group.spec.queue, str(desired["phase"]))
        else:
            desired = plugins_status(self._status_writer.known(key, group.obj), group.spec, counts)
        self._status_writer.sync(key, group.obj, desired)
