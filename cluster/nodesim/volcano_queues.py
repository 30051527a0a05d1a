"""The scheduler's side of Volcano queues (``Scheduler.enable_queues``; the rules are
``queues.py``'s): a Volcano group is admitted only when its queue exists, is open and stays
within its capability; waiting groups of several queues are tried queue by queue, the queue with
the lowest share (by weight) first, then by priority and age within a queue. What each queue
holds is charged per pod as pods start and stop holding capacity, and each Queue's status is
written, only on change.

Why a collaborator of its own: every call is a no-op until queues are enabled, so the scheduler
and the gang decisions call it unconditionally and never test for queues themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any

from kubetrain.base.clock import Clock
from kubetrain.engine.client import ApiClient

from .capacity import NodeCapacity
from .gangs import GangBook, Group
from .gangstatus import StatusWriter
from .podgroup import VOLCANO, GroupKey
from .quantity import Resources, add_into
from .queues import QUEUES, QueueBook, queue_status, refusal

__all__ = ["VolcanoQueues"]


class VolcanoQueues:
    """Queue admission, order, charges and status over the scheduler's ``gangs`` and
    ``capacity``; ``wake`` the scheduling loop when a queue's holdings or status change."""

    def __init__(
        self,
        client: ApiClient,
        *,
        gangs: GangBook,
        capacity: NodeCapacity,
        slots: asyncio.Semaphore,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        clock: Clock,
        wake: Callable[[], None],
    ) -> None:
        self._gangs = gangs
        self._capacity = capacity
        self._wake = wake
        self.book: QueueBook | None = None
        """The queues and what each holds; None until ``enable``."""
        self.status: StatusWriter[str] = StatusWriter(
            client,
            slots=slots,
            spawn=spawn,
            retry=self.touched,
            clock=clock,
            target=lambda name: (QUEUES, None, name, "status"),
        )

    def enable(self) -> None:
        """Admit Volcano groups by their Queue. Before the first group is observed."""
        self.book = QueueBook()

    @property
    def enabled(self) -> bool:
        return self.book is not None

    # -- Queue objects ---------------------------------------------------------------------------

    def observe(self, name: str, obj: Mapping[str, Any]) -> bool:
        """A Queue was added or changed; True when groups it refused may now be admitted.
        Enabled only."""
        assert self.book is not None
        self.status.observed(name, obj)
        return self.book.observe(name, obj)

    def forget(self, name: str) -> None:
        if self.book is not None:
            self.book.forget(name)
            self.status.forget(name)

    def touched(self, name: str) -> None:
        """The queue's status may need writing (again): in the next pass."""
        if self.book is not None:
            self.book.dirty.add(name)
            self._wake()

    @property
    def dirty(self) -> bool:
        """Some queue's status may need writing."""
        return self.book is not None and bool(self.book.dirty)

    def sync(self) -> None:
        """Write the status of the queues whose counts or holdings changed, where it differs."""
        assert self.book is not None
        dirty, self.book.dirty = self.book.dirty, set()
        for name in dirty:
            obj = self.book.obj(name)
            spec = self.book.spec(name)
            if obj is None or spec is None:
                continue
            desired = queue_status(
                self.status.known(name, obj),
                spec,
                self.book.phases(name),
                self.book.held(name),
            )
            self.status.sync(name, obj, desired)

    # -- what each queue holds -------------------------------------------------------------------

    def charge(self, key: str, requests: Resources) -> None:
        """Pod ``key`` started holding ``requests``: charged to its group's queue, if any."""
        if self.book is not None:
            queue = self._queue_of_member(key)
            if queue is not None:
                self.book.charge(key, queue, requests)
                self._wake()

    def released(self, key: str) -> None:
        """Pod ``key`` stopped holding capacity."""
        if self.book is not None and self.book.charged_to(key) is not None:
            self.book.uncharge(key)
            self._wake()

    def uncharge(self, key: str) -> None:
        """Pod ``key`` is a preemption victim: it holds nothing any more."""
        if self.book is not None:
            self.book.uncharge(key)

    def recharge(self, key: GroupKey, queue: str) -> None:
        """Volcano group ``key`` is (now) in ``queue``: its members that hold capacity (held
        before the group was known, or moved) are charged there."""
        if self.book is None:
            return
        for member in self._gangs.members(key):
            held = self._capacity.held(member)
            if held is not None:
                self.book.charge(member, queue, held)

    def _queue_of_member(self, key: str) -> str | None:
        """The Volcano queue the pod's group is in (None: not in a known Volcano group)."""
        group_key = self._gangs.group_of_member(key)
        if group_key is None or group_key[0] != VOLCANO:
            return None
        group = self._gangs.group(group_key)
        return group.spec.queue if group is not None else None

    # -- groups ----------------------------------------------------------------------------------

    def set_phase(self, key: GroupKey, queue: str, phase: str) -> None:
        """Count the Volcano group ``key``'s ``phase`` under ``queue``."""
        if self.book is not None:
            self.book.set_phase(key, queue, phase)

    def forget_group(self, key: GroupKey) -> None:
        if self.book is not None:
            self.book.forget_group(key)
            self._wake()

    def refusal(self, group: Group, inqueue: Resources) -> tuple[str, str] | None:
        """Why the group's queue does not admit it now (``queues.refusal``), ``inqueue`` being
        what the queue's other admitted groups still reserve; None when it does."""
        assert self.book is not None
        name = group.spec.queue
        return refusal(name, self.book.spec(name), group.spec, self.book.held(name), inqueue)

    def ordered(self, groups: list[Group], priority: Callable[[Group], int]) -> Iterator[Group]:
        """``groups``: of one queue (or none), higher ``priority`` first, then oldest; of
        several Volcano queues, Volcano's allocate order: the queue first by ``QueueOrderFn``
        (priority, then the lowest share), recomputed after each group as the groups placed
        change what the queue holds, then by priority and age within it."""
        by_queue: dict[str, list[tuple[int, int, Group]]] = {}
        for group in groups:
            queue = group.spec.queue if self.book is not None else ""
            by_queue.setdefault(queue, []).append((-priority(group), group.seq, group))
        if len(by_queue) <= 1 or self.book is None:
            groups.sort(key=lambda g: (-priority(g), g.seq))
            yield from groups
            return
        asks: dict[str, Resources] = {q: {} for q in by_queue}
        for queue, entries in by_queue.items():
            entries.sort(key=lambda entry: entry[:2], reverse=True)  # popped from the end
            for _, _, group in entries:
                if not group.admitted or self._gangs.filed(group.key):
                    add_into(asks[queue], group.spec.reservation)
        deserved = self.book.deserved(self._capacity.allocatable_total(), asks)
        book = self.book
        while by_queue:
            queue = min(by_queue, key=lambda q: book.order_key(q, deserved) if q else (0, 0.0, q))
            entries = by_queue[queue]
            yield entries.pop()[2]
            if not entries:
                del by_queue[queue]
