"""``DeletedFinalStateUnknown``: a deletion the informer inferred instead of watched.

When a watch breaks (410 Gone, or the informer was disconnected) and the relist no longer contains
an object the cache held, the object was deleted while we were not looking. Handlers then get
``on_delete(DeletedFinalStateUnknown(key, last_known_obj))``: the key is authoritative, the object
is only the last state we saw and may be stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetrain.base.objects import Obj

__all__ = ["DeletedFinalStateUnknown"]


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown:
    """A tombstone: ``key`` was deleted at some point we did not observe."""

    key: str
    """The ``namespace/name`` (or ``name``) key of the deleted object."""
    obj: Obj
    """The last state the cache held; read-only and possibly stale."""
