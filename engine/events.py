"""Kubernetes Events for users (``kubectl describe``), written like client-go's recorder.

A reconciler calls ``EventRecorder.event(obj, "Normal", "Created", "...")`` and returns at once:
the event is correlated and queued synchronously, and one writer task sends it. What client-go's
``EventCorrelator`` does, we do too, so a hot loop cannot flood the API server:

- aggregation: an event identical to one seen within ``aggregation_window`` (same object, type,
  reason, message, source) is not a new object; the existing Event is PATCHed with ``count + 1``
  and a new ``lastTimestamp``;
- a per-object token bucket (client-go's spam filter: burst 25, one token per 5 minutes); events
  over it are dropped and counted. Repeats still advance the count, so the next written PATCH
  carries the true number of occurrences;
- a bounded queue (client-go: 1000); when full, events are dropped and counted, never awaited.
  Unlike client-go, a Warning is not dropped while a Normal event waits: the newest waiting
  Normal one is dropped in its place. In a burst that overflows the queue (hundreds of jobs
  created at once, each creating pods) the failures are what an SRE reads afterwards.

Event objects are core/v1 ``Event``: name ``<object name>.<hex nanoseconds>``, ``involvedObject``,
``source``, ``firstTimestamp``/``lastTimestamp``, ``count``, ``reportingComponent``/``Instance``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter

from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.tokenbucket import TokenBucket
from kubetrain.engine.metrics_registry import once_per_registry
from kubetrain.informers.resource import EVENTS, ResourceRef
from kubetrain.informers.transport import ApiStatusError, Transport

__all__ = ["EventRecorder", "EventRecorderOptions", "EventType"]

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
_EVENT_TYPES = ("Normal", "Warning")
_STRATEGIC = "application/strategic-merge-patch+json"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecorderOptions:
    """Limits of an ``EventRecorder``; defaults are client-go's."""

    queue_size: int = 1000
    """Writes waiting for the writer task (client-go ``maxQueuedEvents``); more are dropped."""
    burst: int = 25
    """Events one object may emit at once (client-go spam filter burst)."""
    refill_seconds: float = 300.0
    """Seconds per regained token of an object's bucket (client-go: qps 1/300)."""
    aggregation_window: float = 600.0
    """An identical event within this many seconds of the previous one is counted on the
    existing Event (client-go's ``maxIntervalInSeconds``); later it starts a new Event."""
    cache_size: int = 4096
    """Objects and distinct events remembered for limiting and aggregation, LRU
    (client-go ``maxLruCacheEntries``)."""
    max_tries: int = 12
    """Attempts of one write when the server cannot be reached (client-go ``maxTriesPerEvent``)."""
    retry_interval: float = 10.0
    """Seconds between those attempts (client-go ``sleepDuration``)."""
    clock: Clock = REAL_CLOCK
    """Monotonic time for windows, buckets and retries; wall time (``utcnow``) for timestamps
    and names. Tests pass a ``FakeClock``."""
    registry: CollectorRegistry | None = None
    """Where ``kubetrain_events_*`` metrics go; ``None``: the global registry."""


@dataclass(slots=True)
class _Seen:
    """What the correlator remembers of one distinct event (the last one written or queued)."""

    event: dict[str, Any]  # the full Event as last queued; count and lastTimestamp advance
    last_seen: float  # clock.monotonic() of the latest occurrence


@dataclass(slots=True)
class _Write:
    verb: Literal["create", "patch"]
    event: dict[str, Any]
    tries: int = field(default=0)


class _WriteQueue(asyncio.Queue[_Write]):
    """The writer's bounded FIFO, with room made for a Warning by dropping a waiting Normal."""

    def drop_newest_normal(self) -> bool:
        """Remove the newest waiting Normal write; False when every waiting write is a Warning.
        O(queue size), and only called when the queue is full and a Warning arrives."""
        waiting: deque[_Write] = self._queue  # type: ignore[attr-defined]  # asyncio's own deque
        for index in range(len(waiting) - 1, -1, -1):
            if waiting[index].event.get("type") != "Warning":
                del waiting[index]
                self.task_done()  # it will never be written: join() must not wait for it
                return True
        return False


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dropped = Counter(
            "kubetrain_events_dropped",
            "Events not written: reason=rate_limited|queue_full|write_failed.",
            ["reason"],
            registry=registry,
        )
        self.writes = Counter(
            "kubetrain_events_writes",
            "Event writes sent to the API server, by verb=create|patch.",
            ["verb"],
            registry=registry,
        )


def _metrics_for(registry: CollectorRegistry | None) -> _Metrics:
    return once_per_registry(_Metrics, registry)


class EventRecorder:
    """Records core/v1 Events for objects. ``event`` never blocks; one writer task writes.

    ``client`` is any ``Transport`` (the ``ApiClient``). ``component`` is ``source.component``
    (e.g. ``"pytorchjob-controller"``); ``host`` is ``source.host`` (the pod or node name).
    Callers must ``await close()`` on shutdown to flush queued writes.
    """

    def __init__(
        self,
        client: Transport,
        component: str,
        host: str = "",
        *,
        options: EventRecorderOptions | None = None,
    ) -> None:
        if not component:
            raise ValueError("EventRecorder: component (source.component) must not be empty")
        self.client = client
        self.component = component
        self.host = host
        self.options = opts = options or EventRecorderOptions()
        self._clock: Clock = opts.clock
        self._metrics = _metrics_for(opts.registry)
        self._buckets: OrderedDict[tuple[str, ...], TokenBucket] = OrderedDict()
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()
        self._queue = _WriteQueue(maxsize=opts.queue_size)
        self._writer: asyncio.Task[None] | None = None
        self._last_name_ns = 0
        self._closed = False

    # -- the reconciler's side (synchronous, never blocks) --------------------------------------

    def event(
        self,
        obj: Mapping[str, Any],
        type: EventType,
        reason: str,
        message: str,
        *,
        resource: ResourceRef | None = None,
    ) -> None:
        """Record that ``reason``/``message`` happened to ``obj`` (a dict with metadata).

        ``type`` is ``"Normal"`` or ``"Warning"``. ``obj`` must carry ``kind``/``apiVersion``
        unless ``resource`` names them (items of a LIST answer lack both). Must be called from
        the event loop thread; the first call starts the writer task. Dropped events are
        counted in ``kubetrain_events_dropped_total``.
        """
        if type not in _EVENT_TYPES:
            raise ValueError(f"event type {type!r} is not one of {_EVENT_TYPES}")
        if not reason:
            raise ValueError("event reason must not be empty (a CamelCase word like 'Created')")
        if self._closed:
            self._metrics.dropped.labels("queue_full").inc()
            return
        involved = self._reference(obj, resource)
        now = self._clock.monotonic()
        object_key = (
            involved["kind"],
            involved.get("namespace", ""),
            involved["name"],
            involved.get("uid", ""),
            involved["apiVersion"],
        )
        event_key = (*object_key, type, reason, message)

        seen = self._seen.get(event_key)
        repeat = seen is not None and now - seen.last_seen <= self.options.aggregation_window
        if not repeat and type != "Warning" and self._queue.full():
            # Dropped before anything is built, remembered or charged to the object's bucket: in
            # a burst that overflows the queue most events end here, and building them first was
            # most of the recorder's CPU. (A repeat still advances its count; a Warning may take
            # a Normal one's place below.)
            self._metrics.dropped.labels("queue_full").inc()
            return
        wall = self._clock.utcnow().timestamp()
        timestamp = _rfc3339(wall)
        if repeat:
            assert seen is not None
            self._seen.move_to_end(event_key)
            seen.last_seen = now
            ev = seen.event
            ev["count"] = int(ev.get("count", 1)) + 1
            ev["lastTimestamp"] = timestamp
            write = _Write("patch", dict(ev))
        else:
            ev = self._make_event(involved, type, reason, message, timestamp, wall)
            self._remember(event_key, _Seen(ev, now))
            write = _Write("create", dict(ev))

        if not self._bucket(object_key).try_take():
            self._metrics.dropped.labels("rate_limited").inc()
            return
        self._ensure_writer()
        if type == "Warning" and self._queue.full() and self._queue.drop_newest_normal():
            self._metrics.dropped.labels("queue_full").inc()  # the Normal one, for this Warning
        try:
            self._queue.put_nowait(write)
        except asyncio.QueueFull:
            self._metrics.dropped.labels("queue_full").inc()

    # -- lifecycle ------------------------------------------------------------------------------

    async def flush(self) -> None:
        """Wait until every queued write has been attempted (tests, shutdown)."""
        if self._writer is not None:
            await self._queue.join()

    async def close(self, *, timeout: float = 5.0) -> None:
        """Stop accepting events, flush for at most ``timeout`` seconds, stop the writer."""
        self._closed = True
        if self._writer is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._queue.join()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None

    @property
    def pending(self) -> int:
        """Writes queued and not yet attempted."""
        return self._queue.qsize()

    # -- internals ------------------------------------------------------------------------------

    def _reference(self, obj: Mapping[str, Any], resource: ResourceRef | None) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        kind = obj.get("kind") or (resource.kind if resource else None)
        api_version = obj.get("apiVersion") or (resource.api_version if resource else None)
        if not name or not kind or not api_version:
            raise ValueError(
                "event: the object needs metadata.name, kind and apiVersion; pass resource= "
                f"for objects from a LIST (got name={name!r}, kind={kind!r}, "
                f"apiVersion={api_version!r})"
            )
        ref: dict[str, Any] = {"kind": kind, "name": name, "apiVersion": api_version}
        for src, dst in (("namespace", "namespace"), ("uid", "uid")):
            if meta.get(src):
                ref[dst] = meta[src]
        if meta.get("resourceVersion"):
            ref["resourceVersion"] = meta["resourceVersion"]
        return ref

    def _make_event(
        self,
        involved: dict[str, Any],
        type: str,
        reason: str,
        message: str,
        timestamp: str,
        wall: float,
    ) -> dict[str, Any]:
        nanos = max(int(wall * 1e9), self._last_name_ns + 1)  # unique per recorder
        self._last_name_ns = nanos
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        event: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{involved['name']}.{nanos:x}",
                "namespace": involved.get("namespace") or "default",
            },
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type,
            "source": source,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": self.host,
        }
        return event

    def _remember(self, key: tuple[str, ...], seen: _Seen) -> None:
        self._seen[key] = seen
        self._seen.move_to_end(key)
        while len(self._seen) > self.options.cache_size:
            self._seen.popitem(last=False)

    def _bucket(self, key: tuple[str, ...]) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = TokenBucket(
                1.0 / self.options.refill_seconds, self.options.burst, clock=self._clock
            )
            self._buckets[key] = bucket
            while len(self._buckets) > self.options.cache_size:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def _ensure_writer(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(
                self._write_loop(), name=f"event-recorder:{self.component}"
            )

    async def _write_loop(self) -> None:
        while True:
            write = await self._queue.get()
            try:
                await self._write(write)
            except asyncio.CancelledError:
                raise
            except Exception:  # a writer must survive anything a single event does
                log.exception("event recorder: unexpected error writing an event")
                self._metrics.dropped.labels("write_failed").inc()
            finally:
                self._queue.task_done()

    async def _write(self, write: _Write) -> None:
        event = write.event
        meta = event["metadata"]
        for attempt in range(1, self.options.max_tries + 1):
            try:
                if write.verb == "patch":
                    try:
                        await self.client.request_json(
                            "PATCH",
                            EVENTS.item_path(meta["namespace"], meta["name"]),
                            body={
                                "count": event["count"],
                                "lastTimestamp": event["lastTimestamp"],
                                "message": event["message"],
                            },
                            content_type=_STRATEGIC,
                        )
                        self._metrics.writes.labels("patch").inc()
                        return
                    except ApiStatusError as e:
                        if not e.is_not_found:
                            raise
                        write.verb = "create"  # the first write was lost: create with the count
                await self.client.request_json(
                    "POST", EVENTS.collection_path(meta["namespace"]), body=event
                )
                self._metrics.writes.labels("create").inc()
                return
            except ApiStatusError as e:
                # client-go does not retry an answered request; AlreadyExists means it landed.
                if not e.is_already_exists:
                    log.warning(
                        "event recorder: server refused event %s/%s: %s",
                        meta["namespace"],
                        meta["name"],
                        e,
                    )
                    self._metrics.dropped.labels("write_failed").inc()
                return
            except (ConnectionError, TimeoutError) as e:
                if attempt == self.options.max_tries:
                    log.warning("event recorder: giving up on event %s: %s", meta["name"], e)
                    self._metrics.dropped.labels("write_failed").inc()
                    return
                await self._clock.sleep(self.options.retry_interval)


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
