"""Full garbage collections that scan what is new since the last one, not the whole heap.

Why: an operator and an API server keep a large, long-lived heap of parsed JSON (cached jobs and
pods, stored objects). CPython's cyclic collector scans its whole oldest generation at every full
collection, which comes each time that generation has grown by a quarter. In ``kubetrain bench
ttl`` (5,000 jobs) the embedded API server spent 31 to 47 s in 26 to 31 full collections, up to
3.9 s each, answering nothing meanwhile; those pauses were the tail of the TTL deletion lag. The
operator spent 5 to 8 s (up to 0.56 s each).

``FreezeAfterFullCollections`` freezes the survivors of each full collection (``gc.freeze``): they
move to a permanent generation the collector does not scan, so the next full collection scans
only what was promoted since. Reference counting still frees frozen objects as always; only
reference *cycles* among them would never be found, so once every ``thaw_seconds`` the frozen
objects are returned (``gc.unfreeze``) and the next full collection scans everything once.
Installed by every ``kubetrain`` command (``kubetrain.cli``); JSON trees hold no cycles, so what
is frozen is almost all cached or stored objects.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_THAW_SECONDS", "FreezeAfterFullCollections", "install"]

DEFAULT_THAW_SECONDS = 600.0
"""How often the whole heap is scanned again (the bound on how long a frozen cycle can leak)."""

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
    """Add a ``FreezeAfterFullCollections`` to ``gc.callbacks`` (once per process: a second call
    returns the first). Remove it with ``gc.callbacks.remove`` and call ``gc.unfreeze()``."""
    for callback in gc.callbacks:
        if isinstance(callback, FreezeAfterFullCollections):
            return callback
    callback = FreezeAfterFullCollections(thaw_seconds=thaw_seconds)
    gc.callbacks.append(callback)
    return callback
