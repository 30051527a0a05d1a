"""Coroutines waiting in ``get()`` for an item: woken one per item, in arrival order.

Both the single queue and the sharded queue park getters the same way, and the subtle part is
the same: a getter woken and cancelled in the same loop turn must pass its wakeup on, or a ready
item is left with nobody coming for it.
"""

from __future__ import annotations

import asyncio
from collections import deque


class WaitingGetters:
    """A FIFO of parked getters. One event loop; no locks.

    Caller duties: ``wake_one`` each time one more item becomes available; ``wake_all`` at
    shutdown; a woken getter re-checks for an item itself (wakeups are hints, not hand-offs).
    """

    __slots__ = ("parked",)

    def __init__(self) -> None:
        # Futures of parked getters, oldest first; a done future is stale and skipped. Read-only
        # for callers: ``if getters.parked:`` is the hot-path test for "is anyone waiting".
        self.parked: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Park until woken; on cancellation a wakeup already received is passed on."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.parked.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.wake_one()  # woken and cancelled in the same turn: pass the wakeup on
            else:
                try:
                    self.parked.remove(waiter)
                except ValueError:
                    pass
            raise

    def wake_one(self) -> None:
        """Wake the oldest parked getter, if any."""
        futures = self.parked
        while futures:
            waiter = futures.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def wake_all(self) -> None:
        """Wake every parked getter (shutdown)."""
        futures = self.parked
        while futures:
            waiter = futures.popleft()
            if not waiter.done():
                waiter.set_result(None)
