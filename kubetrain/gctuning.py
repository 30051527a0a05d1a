"""Garbage collection for processes that hold a large heap of parsed JSON: fewer young
collections, and full collections that scan what is new since the last one, not the whole heap.

Why: an operator and an API server keep a large, long-lived heap (cached jobs and pods, stored
objects) and allocate fast. With CPython's defaults, in ``kubetrain bench ttl`` (5,000 jobs):

- the embedded API server spent 31 to 47 s in 26 to 31 full collections, up to 3.9 s each,
  answering nothing meanwhile: the tail of the TTL deletion lag. The collector scans its whole
  oldest generation each time that generation has grown by a quarter.
- the operator spent 6.6 s of its 55 s of CPU in the collector, 5.4 s of it in 2,900 young
  collections (threshold 700 allocations), which mostly re-scan objects still in flight.

``install`` does two things:

1. ``FreezeAfterFullCollections``: the survivors of each full collection are frozen
   (``gc.freeze``): moved to a permanent generation the collector does not scan, so the next
   full collection scans only what was promoted since. Reference counting still frees frozen
   objects as always; only reference *cycles* among them would never be found, so once every
   ``thaw_seconds`` the frozen objects are returned (``gc.unfreeze``) and the next full
   collection scans everything once.
2. ``YOUNG_THRESHOLDS``: a young generation of 20,000 allocations instead of 700, so most
   objects die (reference counting) before a collection ever looks at them. Operator GC time in
   the same run: 6.6 s -> 1.7 s; a young collection then takes ~30 ms at most.

Installed by every ``kubetrain`` command (``kubetrain.cli``); ``KUBETRAIN_GC_TUNING=0`` turns it
off. JSON trees hold no cycles, so what is frozen is almost all cached or stored objects.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_THAW_SECONDS", "YOUNG_THRESHOLDS", "FreezeAfterFullCollections", "install"]

DEFAULT_THAW_SECONDS = 600.0
"""How often the whole heap is scanned again (the bound on how long a frozen cycle can leak)."""

YOUNG_THRESHOLDS = (20_000, 20, 10)
"""``gc.set_threshold``: allocations before a generation-0 collection, generation-0 collections
before a generation-1 one, generation-1 collections before a full one is considered."""

_OLDEST = 2


class FreezeAfterFullCollections:
    """A ``gc.callbacks`` entry: after a full collection, freeze its survivors, or, once
    ``thaw_seconds`` have passed since the last thaw, unfreeze everything instead (the next full
    collection then scans all). ``clock`` is injectable for tests (monotonic seconds)."""

    __slots__ = ("_clock", "_thawed_at", "thaw_seconds")

    def __init__(
        self,
        *,
        thaw_seconds: float = DEFAULT_THAW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.thaw_seconds = thaw_seconds
        self._clock = clock
        self._thawed_at = clock()

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != _OLDEST:
            return
        now = self._clock()
        if now - self._thawed_at >= self.thaw_seconds:
            gc.unfreeze()
            self._thawed_at = now
        else:
            gc.freeze()


def install(*, thaw_seconds: float = DEFAULT_THAW_SECONDS) -> FreezeAfterFullCollections:
    """Set ``YOUNG_THRESHOLDS`` and add a ``FreezeAfterFullCollections`` to ``gc.callbacks``
    (once per process: a second call returns the first). Undo: ``gc.callbacks.remove`` it,
    ``gc.unfreeze()`` and ``gc.set_threshold(700, 10, 10)``."""
    gc.set_threshold(*YOUNG_THRESHOLDS)
    for callback in gc.callbacks:
        if isinstance(callback, FreezeAfterFullCollections):
            return callback
    callback = FreezeAfterFullCollections(thaw_seconds=thaw_seconds)
    gc.callbacks.append(callback)
    return callback
