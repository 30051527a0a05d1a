"""What the API server's own controllers (garbage collector, namespace lifecycle) share.

Both follow the store through its change listener and work off a deduplicating queue with a
fixed pool of asyncio workers and per-key exponential retry, like a controller built on
client-go's workqueue. The API server may not import ``kubetrain.engine`` (it must stay a
standalone stand-in for kube-apiserver + kube-controller-manager), hence this small copy of the
idea instead of the engine's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable
from typing import Any

from .resources import ResourceInfo
from .store import ObjectStore

__all__ = ["StoreWorkers", "WorkQueue"]

log = logging.getLogger(__name__)


class WorkQueue:
    """A deduplicating FIFO of hashable keys for a pool of asyncio workers (client-go style).

    Invariants: a key is in ``_dirty`` iff it waits to be processed (queued, or re-added while
    being processed); a key is in ``_processing`` while one worker holds it, so no key is ever
    handled by two workers at once; ``_outstanding`` counts dirty + processing + delayed keys,
    and ``_idle`` is set exactly when it is 0.

    Caller duties: every ``get`` is followed by ``done`` for the same key.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._delayed = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._dirty)

    def _update_idle(self) -> None:
        if self._dirty or self._processing or self._delayed:
            self._idle.clear()
        else:
            self._idle.set()

    def add(self, key: Hashable) -> None:
        """Queue ``key`` unless it is already waiting; a key being processed runs once more."""
        if key in self._dirty:
            return
        self._dirty.add(key)
        self._idle.clear()
        if key not in self._processing:
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        """``add(key)`` after ``delay`` seconds (needs a running loop)."""
        self._delayed += 1
        self._idle.clear()

        def fire() -> None:
            self._delayed -= 1
            self.add(key)
            self._update_idle()

        asyncio.get_running_loop().call_later(delay, fire)

    async def get(self) -> Hashable:
        """The next key; the caller now holds it until ``done(key)``."""
        key = await self._queue.get()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Hashable) -> None:
        """Release ``key``; when it was re-added meanwhile it is queued again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.put_nowait(key)
        self._update_idle()

    @property
    def idle(self) -> bool:
        """Nothing queued, processing or scheduled for later."""
        return self._idle.is_set()

    async def wait_idle(self) -> None:
        """Return once nothing is queued, processing or scheduled for later."""
        await self._idle.wait()


class StoreWorkers:
    """A store listener feeding a ``WorkQueue`` drained by ``workers`` asyncio tasks.

    Subclasses implement ``_on_change`` (the listener: synchronous and cheap, it only queues
    keys), ``_queue_existing`` (queue what the store already holds at start) and ``_handle``
    (one key's work; an exception retries the key after an exponential delay). Optional hooks:
    ``_before_item`` (e.g. a shared time slice), ``_after_item``, ``_log_failure``.

    ``start()`` from a running loop once the store is loaded; ``await stop()`` at shutdown
    (pending work is dropped).
    """

    worker_name = "store-worker"

    def __init__(
        self,
        *,
        store: ObjectStore,
        workers: int,
        retry_base_seconds: float,
        retry_max_seconds: float,
    ) -> None:
        self.store = store
        self.queue = WorkQueue()
        self._workers_wanted = max(1, workers)
        self._retry_base = retry_base_seconds
        self._retry_max = retry_max_seconds
        self._retries: dict[Hashable, int] = {}
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Follow the store, queue what is already stored and start the workers (idempotent).

        Listener and initial scan happen in one synchronous step, so no change is missed.
        """
        if self._workers:
            return
        self.store.add_listener(self._on_change)
        self._queue_existing()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"{self.worker_name}-{i}")
            for i in range(self._workers_wanted)
        ]

    async def stop(self) -> None:
        """Stop following the store; cancel the workers (pending work is dropped)."""
        if self._workers:
            self.store.remove_listener(self._on_change)
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_idle(self) -> None:
        """Return once nothing is queued, being processed or scheduled for a retry."""
        await self.queue.wait_idle()

    # -- for subclasses ----------------------------------------------------------------------

    def _on_change(
        self, event_type: str, info: ResourceInfo, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        raise NotImplementedError

    def _queue_existing(self) -> None:
        raise NotImplementedError

    async def _handle(self, item: Any) -> None:
        raise NotImplementedError

    async def _before_item(self) -> None:
        """Called before each item's work (inside its retry scope)."""

    async def _after_item(self) -> None:
        """Called after each item, once it is released."""

    def _log_failure(self, item: Hashable, delay: float, exc: Exception) -> None:
        log.warning("%s: %s failed (retry in %.3fs): %s", self.worker_name, item, delay, exc)

    # -- the worker loop ---------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self._before_item()
                await self._handle(item)
            except asyncio.CancelledError:
                self.queue.done(item)
                raise
            except Exception as exc:
                tries = self._retries.get(item, 0) + 1
                self._retries[item] = tries
                delay = min(self._retry_max, self._retry_base * 2 ** (tries - 1))
                self._log_failure(item, delay, exc)
                self.queue.add_after(item, delay)
            else:
                self._retries.pop(item, None)
            self.queue.done(item)
            await self._after_item()
