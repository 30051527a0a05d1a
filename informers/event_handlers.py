"""Event handlers: how controllers hear about cache changes.

A handler is any object with ``on_add``, ``on_update`` and ``on_delete`` (``ResourceEventHandler``).
Informers call handlers synchronously, in registration order, on the event loop, right after the
cache changed, so a handler sees the cache already holding the new state. Handlers must be fast and
must not block or await: they enqueue keys in a work queue and return. An exception in a handler is
logged and swallowed; it never stops the informer or the other handlers.

Resyncs (and relisted objects whose resourceVersion did not change) arrive as
``on_update(obj, obj)`` with ``old is new``: nothing changed, so a controller may enqueue at low
priority or skip (``is_resync``). Objects passed to handlers are the cached ones: read-only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kubetrain.base.objects import Obj

from .tombstone import DeletedFinalStateUnknown

__all__ = ["EventHandler", "FunctionHandler", "ResourceEventHandler", "is_resync"]


class ResourceEventHandler(Protocol):
    """What an informer calls. Fast, synchronous, never raising by intent (see module docs)."""

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        """``obj`` appeared. ``is_in_initial_list``: it came from the initial list (or the replay
        of the cache to a handler added later), not from a live watch event."""
        ...

    def on_update(self, old: Obj, new: Obj) -> None:
        """``old`` became ``new``. ``old is new`` marks a resync (no change)."""
        ...

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        """The object is gone: its final state, or a tombstone when the deletion was not watched."""
        ...


class EventHandler:
    """A handler that ignores everything; subclass and override what you need."""

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        return None

    def on_update(self, old: Obj, new: Obj) -> None:
        return None

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        return None


class FunctionHandler(EventHandler):
    """A handler from plain functions; missing ones ignore their events."""

    def __init__(
        self,
        *,
        on_add: Callable[[Obj, bool], None] | None = None,
        on_update: Callable[[Obj, Obj], None] | None = None,
        on_delete: Callable[[Obj | DeletedFinalStateUnknown], None] | None = None,
    ) -> None:
        self._on_add = on_add
        self._on_update = on_update
        self._on_delete = on_delete

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        if self._on_add is not None:
            self._on_add(obj, is_in_initial_list)

    def on_update(self, old: Obj, new: Obj) -> None:
        if self._on_update is not None:
            self._on_update(old, new)

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if self._on_delete is not None:
            self._on_delete(obj)


def is_resync(old: Obj, new: Obj) -> bool:
    """True for an update that changed nothing (a resync or an unchanged relisted object)."""
    return old is new
