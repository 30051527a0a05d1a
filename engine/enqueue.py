"""From informer events to work-queue keys: which objects a controller reconciles, and how urgently.

A controller reconciles keys, never events (DESIGN.md). These handlers are the only place an event
is looked at: each maps the event's object to zero or more keys and adds them to the controller's
queue. They are stateless and reusable; ``Controller.watch(informer, handler)`` binds one to its
queue (``bind``) and registers it with the informer when the controller starts.

- ``EnqueueForObject``: the object's own key (a job controller watching jobs).
- ``EnqueueForOwner(owner)``: the key of the object's *controlling* owner of the given kind
  (``ownerReferences[]`` entry with ``controller: true``), so a pod event reconciles its job.
  Cluster-scoped owners get a bare name; namespaced owners share the object's namespace (owner
  references never cross namespaces).
- ``EnqueueMapped(fn)``: any mapping ``obj -> keys`` (e.g. a label naming the job).

Priority: objects from the initial list (or the replay to a handler added late) and resyncs
(``on_update`` with nothing changed) go in at ``LOW_PRIORITY``, so a new job is never stuck behind
a backlog of unchanged ones (controller-runtime's ``LowPriority`` for ``IsInInitialList`` and
``WithLowPriorityWhenUnchanged``). Real changes and deletions go in at ``NORMAL_PRIORITY``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from kubetrain.base.objects import (
    Obj,
    controller_ref,
    group_of,
    object_key,
    resource_version_of,
)
from kubetrain.informers.event_handlers import ResourceEventHandler
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.tombstone import DeletedFinalStateUnknown

from .queue import LOW_PRIORITY, NORMAL_PRIORITY

__all__ = [
    "EnqueueForObject",
    "EnqueueForOwner",
    "EnqueueMapped",
    "KeyQueue",
    "QueueEventHandler",
    "bind",
    "is_unchanged",
]


class KeyQueue(Protocol):
    """The part of a work queue handlers use (a ``ShardedQueue`` or any rate-limiting queue)."""

    def add(self, key: str, *, priority: int = NORMAL_PRIORITY) -> None: ...


class QueueEventHandler(Protocol):
    """An informer handler that also receives the queue to add keys to.

    Same contract as ``informers.handlers.ResourceEventHandler``: synchronous, fast, cached
    objects are read-only.
    """

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None: ...

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None: ...

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None: ...


def is_unchanged(old: Obj, new: Obj) -> bool:
    """True for a resync or a relisted object whose resourceVersion did not move."""
    if old is new:
        return True
    rv = resource_version_of(new)
    return bool(rv) and rv == resource_version_of(old)


def _added_priority(is_in_initial_list: bool) -> int:
    return LOW_PRIORITY if is_in_initial_list else NORMAL_PRIORITY


def _updated_priority(old: Obj, new: Obj) -> int:
    return LOW_PRIORITY if is_unchanged(old, new) else NORMAL_PRIORITY


def _final_state(obj: Obj | DeletedFinalStateUnknown) -> Obj:
    return obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj


class EnqueueForObject:
    """Enqueue the object's own key (``namespace/name``)."""

    __slots__ = ()

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None:
        queue.add(object_key(obj), priority=_added_priority(is_in_initial_list))

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None:
        queue.add(object_key(new), priority=_updated_priority(old, new))

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None:
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else object_key(obj)
        queue.add(key, priority=NORMAL_PRIORITY)

    def __repr__(self) -> str:
        return "EnqueueForObject()"


class EnqueueForOwner:
    """Enqueue the key of the object's controlling owner of kind ``owner`` (if it has one).

    Only the ``ownerReferences`` entry with ``controller: true`` counts, and only when its kind
    and API group match ``owner`` (the version may differ). On an update whose controller
    reference changed, both the old and the new owner are enqueued.
    """

    __slots__ = ("_group", "_kind", "_namespaced")

    def __init__(self, owner: ResourceRef) -> None:
        self._kind = owner.kind
        self._group = owner.group
        self._namespaced = owner.namespaced

    def owner_key(self, obj: Obj) -> str | None:
        """The owner's key, or None when ``obj`` has no matching controller reference."""
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != self._kind:
            return None
        if group_of(str(ref.get("apiVersion") or "")) != self._group:
            return None
        name = ref.get("name")
        if not name:
            return None
        namespace = (obj.get("metadata") or {}).get("namespace") if self._namespaced else None
        return f"{namespace}/{name}" if namespace else str(name)

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None:
        key = self.owner_key(obj)
        if key is not None:
            queue.add(key, priority=_added_priority(is_in_initial_list))

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None:
        priority = _updated_priority(old, new)
        new_key = self.owner_key(new)
        if new_key is not None:
            queue.add(new_key, priority=priority)
        if old is not new:
            old_key = self.owner_key(old)
            if old_key is not None and old_key != new_key:
                queue.add(old_key, priority=priority)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None:
        key = self.owner_key(_final_state(obj))
        if key is not None:
            queue.add(key, priority=NORMAL_PRIORITY)

    def __repr__(self) -> str:
        group = f"{self._group}/" if self._group else ""
        return f"EnqueueForOwner({group}{self._kind})"


class EnqueueMapped:
    """Enqueue the keys ``map_keys(obj)`` returns (possibly none).

    ``map_keys`` must be fast and use indexes, never scan a cache; for an update it is called
    with the old and the new object and the union is enqueued.
    """

    __slots__ = ("_map",)

    def __init__(self, map_keys: Callable[[Obj], Iterable[str]]) -> None:
        self._map = map_keys

    def on_add(self, obj: Obj, is_in_initial_list: bool, queue: KeyQueue) -> None:
        priority = _added_priority(is_in_initial_list)
        for key in self._map(obj):
            queue.add(key, priority=priority)

    def on_update(self, old: Obj, new: Obj, queue: KeyQueue) -> None:
        priority = _updated_priority(old, new)
        keys = set(self._map(new))
        if old is not new:
            keys.update(self._map(old))
        for key in keys:
            queue.add(key, priority=priority)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown, queue: KeyQueue) -> None:
        for key in self._map(_final_state(obj)):
            queue.add(key, priority=NORMAL_PRIORITY)


class _Bound:
    """A ``QueueEventHandler`` bound to one queue: what the informer calls."""

    __slots__ = ("handler", "queue")

    def __init__(self, handler: QueueEventHandler, queue: KeyQueue) -> None:
        self.handler = handler
        self.queue = queue

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self.handler.on_add(obj, is_in_initial_list, self.queue)

    def on_update(self, old: Obj, new: Obj) -> None:
        self.handler.on_update(old, new, self.queue)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        self.handler.on_delete(obj, self.queue)

    def __repr__(self) -> str:
        return f"{self.handler!r} -> queue"


def bind(handler: QueueEventHandler, queue: KeyQueue) -> ResourceEventHandler:
    """The informer handler that feeds ``queue`` through ``handler``."""
    return _Bound(handler, queue)
