"""``PreSyncWork``: what a manager may run while its informer caches are still syncing.

Why: a controller waits for its caches before it reconciles anything, so after a restart on a
cluster with tens of thousands of finished objects, a request that arrives meanwhile waits for
the whole sync (seconds to tens of seconds). Some of that work is safe without a full cache, for
example creating the deterministic-named children of an object no controller has seen yet; a
``PreSyncWork`` does it during the sync window, and only then.

Contract (kept by ``Manager``):
- ``open`` is awaited before the HTTP servers start, so a passing ``/healthz`` means every
  opened work is live. An exception from ``open`` is logged and that work is skipped: pre-sync
  work is an optimisation and never keeps the manager from starting.
- ``run(synced)`` runs as one task from then on; ``synced`` is set once all caches have synced.
  It must start nothing new after that and return once its in-flight work has finished. It runs
  concurrently with the controllers from then on, so what it started must be safe alongside them
  (the caller's duty, e.g. through expectations). A ``run`` still running at stop is cancelled.
- It never runs when the manager does leader election: the Lease is taken after the caches sync
  (as in controller-runtime), so before that this replica may not be the one allowed to write.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["PreSyncWork"]


class PreSyncWork(Protocol):
    """Work the manager runs from before its servers start until its caches have synced."""

    async def open(self) -> None:
        """Get ready to see what arrives from now on (e.g. open a watch)."""
        ...

    async def run(self, synced: asyncio.Event) -> None:
        """Do the work until ``synced`` is set, then finish what is in flight and return."""
        ...
