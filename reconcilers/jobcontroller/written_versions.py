"""Status written as a guarded merge patch, and the gate that waits for the cache to show it.

Why: a controller that reads its own objects from a cache must not decide on a version older than
its last write (it would record a transition, an event or a count twice). The v1 job controller
keeps this in ``memory.py``; the get-or-create controllers (MPIJob v2beta1, TrainJob)
share this small form of it: the status goes as a JSON merge patch carrying the object's cached
``resourceVersion`` (a stale cache gets a 409, never a lost update), and the version the server
gave the write is remembered until the cache shows it (or a newer one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.common.compact import merge_patch_of

from .protocols import JobWriter

__all__ = ["WrittenVersions", "patch_status"]


class WrittenVersions:
    """Object key -> (uid, resourceVersion) of our last status write.

    Contract: ``note`` after each successful write; ``caught_up`` at the start of a reconcile
    (False: requeue, the cache is behind); ``forget`` when the object is gone.
    """

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[str, tuple[str, str]] = {}

    def note(self, key: str, uid: str, stored: Obj) -> None:
        rv = (stored.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._by_key[key] = (uid, str(rv))

    def caught_up(self, key: str, uid: str, cached_rv: str) -> bool:
        """True when the cached object (``uid`` at ``cached_rv``) shows our last write, or
        when it is another object of the name (deleted and re-created); the entry then ends."""
        written = self._by_key.get(key)
        if written is None:
            return True
        same = written[0] == uid
        if same and not (
            cached_rv == written[1]
            or (cached_rv.isdigit() and written[1].isdigit() and int(cached_rv) > int(written[1]))
        ):
            return False
        del self._by_key[key]
        return True

    def forget(self, key: str) -> str | None:
        """Drop the key's entry; the uid it was for (None when there was none)."""
        gone = self._by_key.pop(key, None)
        return gone[0] if gone is not None else None

    def uid_of(self, key: str) -> str | None:
        written = self._by_key.get(key)
        return written[0] if written is not None else None


async def patch_status(
    client: JobWriter,
    ref: ResourceRef,
    cached: Obj,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    field_manager: str,
    written: WrittenVersions,
) -> bool:
    """Merge-patch ``cached``'s status from ``old`` to ``new`` with its resourceVersion as
    precondition and note the version written. True when written or nothing changed; False on a
    409 (the cache was stale: the caller requeues). Other errors propagate."""
    patch = merge_patch_of(dict(old), dict(new))
    if not patch:
        return True
    meta = cached["metadata"]
    try:
        stored = await client.patch(
            ref,
            meta.get("namespace"),
            meta["name"],
            {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": patch},
            subresource="status",
            field_manager=field_manager,
        )
    except ApiStatusError as e:
        if e.is_conflict:
            return False
        raise
    key = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else str(meta["name"])
    written.note(key, str(meta.get("uid") or ""), stored)
    return True
