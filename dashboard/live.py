"""``LiveHub``: the server-sent events every open page listens to (docs/dashboard.md).

One subscription per open page. Changes are not sent as they come: the hub gathers the rows that
changed and the jobs that went, and at most every ``coalesce`` seconds builds one ``jobs`` event,
serialized once and queued to every subscriber (a burst of a thousand watch events is one event).
A page that follows one job (``?job=KIND/NS/NAME``) gets that job's detail as ``job`` events the
same way, built once per flush for all its followers. ``metrics`` events go out after each scrape,
a comment line every ``keepalive`` seconds.

A subscriber's queue is bounded: a client that does not read (its socket full, the page frozen)
is dropped when it falls ``limit`` events behind, instead of holding memory for it; its page
reconnects (EventSource does) and re-reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson

from kubetrain.base.clock import Clock

from .index import Row
from .pods import split_job_key

__all__ = ["LiveHub", "Subscription", "sse", "ws_message"]

log = logging.getLogger(__name__)

KEEPALIVE = b": keepalive\n\n"


def sse(event: str, data: Any) -> bytes:
    """One server-sent event: ``event: NAME`` and ``data: JSON`` (orjson writes no newline)."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def ws_message(frame: bytes) -> bytes | None:
    """The WebSocket text message of one encoded server-sent event: ``{"event": NAME, "data":
    JSON}``, spliced from the event's bytes (never parsed again); None for a keepalive comment,
    which a WebSocket does with its own pings."""
    if not frame.startswith(b"event: "):
        return None
    name, _, rest = frame[len(b"event: ") :].partition(b"\ndata: ")
    return b'{"event":"' + name + b'","data":' + rest.rstrip(b"\n") + b"}"


class Subscription:
    """One open stream: a bounded queue of encoded events and whether it was dropped."""

    def __init__(self, *, job: str | None, limit: int) -> None:
        self.job = job
        self.limit = limit
        self.dropped = False
        self.closed = False
        self.on_drop: Callable[[], None] | None = None
        """Called once when the subscription is dropped (the server closes the connection, so a
        writer blocked on a full socket ends too)."""
        self._items: deque[bytes] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, data: bytes) -> bool:
        """Queue ``data``; False (and the subscription dropped) when the queue is full."""
        if self.dropped or self.closed:
            return False
        if len(self._items) >= self.limit:
            self.dropped = True
            self._items.clear()
            self._ready.set()
            if self.on_drop is not None:
                self.on_drop()
            return False
        self._items.append(data)
        self._ready.set()
        return True

    async def next(self) -> bytes | None:
        """The next event to write; None once dropped or closed."""
        while not self._items:
            if self.dropped or self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if self.dropped:
            return None
        return self._items.popleft()

    def close(self) -> None:
        self.closed = True
        self._ready.set()


DetailFunc = Callable[[str], dict[str, Any] | None]


class LiveHub:
    """Fans coalesced changes out to the subscriptions (module docstring)."""

    def __init__(
        self,
        *,
        version: Callable[[], int],
        detail: DetailFunc,
        clock: Clock,
        coalesce: float = 0.2,
        keepalive: float = 15.0,
        limit: int = 256,
    ) -> None:
        self._version = version
        self._detail = detail
        self._clock = clock
        self._coalesce = coalesce
        self._keepalive = keepalive
        self._limit = limit
        self._subs: set[Subscription] = set()
        self._by_job: dict[str, set[Subscription]] = {}
        self._changed: dict[str, Row] = {}
        self._deleted: dict[str, dict[str, str]] = {}
        self._jobs_dirty: set[str] = set()
        self._dirty = asyncio.Event()
        self._last_flush = float("-inf")
        self._tasks: list[asyncio.Task[None]] = []
        self.events_sent = 0
        self.dropped = 0

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="dashboard flush"),
            asyncio.create_task(self._keepalive_loop(), name="dashboard keepalive"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for sub in list(self._subs):
            sub.close()
        self._subs.clear()
        self._by_job.clear()

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(self, *, job: str | None = None) -> Subscription:
        """A new stream: ``hello`` queued first, then (with ``job``) that job's detail."""
        sub = Subscription(job=job, limit=self._limit)
        sub.offer(sse("hello", {"version": self._version()}))
        if job is not None:
            detail = self._detail(job)
            if detail is not None:
                sub.offer(sse("job", detail))
            self._by_job.setdefault(job, set()).add(sub)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        self._subs.discard(sub)
        if sub.job is not None:
            followers = self._by_job.get(sub.job)
            if followers is not None:
                followers.discard(sub)
                if not followers:
                    del self._by_job[sub.job]

    # -- changes (called from informer handlers: O(1), no I/O) -----------------------------------

    def row_changed(self, key: str, row: Row | None) -> None:
        """The index changed ``key``'s row (None: the job is gone)."""
        if key in self._by_job:
            self._jobs_dirty.add(key)
        if not self._subs:
            return  # nobody listens; a page that connects later reads /api/jobs
        if row is None:
            self._changed.pop(key, None)
            kind, namespace, name = split_job_key(key)
            self._deleted[key] = {"kind": kind, "namespace": namespace, "name": name}
        else:
            self._deleted.pop(key, None)
            self._changed[key] = row
        self._dirty.set()

    def job_touched(self, key: str) -> None:
        """Something in job ``key``'s detail changed (a pod, an event)."""
        if key in self._by_job:
            self._jobs_dirty.add(key)
            self._dirty.set()

    def metrics(self, point: dict[str, Any]) -> None:
        """A scrape's values: sent at once to every stream."""
        self._broadcast(sse("metrics", point))

    # -- sending --------------------------------------------------------------------------------

    def _broadcast(self, data: bytes, subs: set[Subscription] | None = None) -> None:
        for sub in list(self._subs if subs is None else subs):
            if sub.offer(data):
                self.events_sent += 1
            elif sub.dropped:
                self.dropped += 1
                log.info("dashboard: dropped a stream that fell %d events behind", sub.limit)
                self.unsubscribe(sub)

    def flush(self) -> None:
        """Send what gathered since the last flush (the loop calls it; tests may too)."""
        self._dirty.clear()
        self._last_flush = self._clock.monotonic()
        if self._changed or self._deleted:
            data = sse(
                "jobs",
                {
                    "version": self._version(),
                    "changed": list(self._changed.values()),
                    "deleted": list(self._deleted.values()),
                },
            )
            self._changed = {}
            self._deleted = {}
            self._broadcast(data)
        dirty, self._jobs_dirty = self._jobs_dirty, set()
        for key in dirty:
            followers = self._by_job.get(key)
            if not followers:
                continue
            detail = self._detail(key)
            if detail is None:
                detail = {"deleted": True, "key": key}
            self._broadcast(sse("job", detail), followers)

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            wait = self._last_flush + self._coalesce - self._clock.monotonic()
            if wait > 0:
                await self._clock.sleep(wait)
            try:
                self.flush()
            except Exception:
                log.exception("dashboard: sending changes failed")

    async def _keepalive_loop(self) -> None:
        while True:
            await self._clock.sleep(self._keepalive)
            self._broadcast(KEEPALIVE)
