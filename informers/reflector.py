"""``Reflector``: keeps a sink in step with the API server by LIST (or WatchList) then WATCH.

This is client-go's reflector state machine (controller-machinery.md 2.1) on asyncio, plus a
kopf-style inactivity timeout:

- List: pages of ``page_size`` (500); ``resourceVersion="0"`` on the first list (served from the
  watch cache), the last synced RV on a relist after an ordinary error (no paging then, so the
  watch cache can serve it), and ``""`` (a consistent read) after a 410. An expired ``continue``
  token falls back to one unpaginated LIST.
- WatchList (``use_watch_list``): one watch with ``sendInitialEvents=true`` and
  ``resourceVersionMatch=NotOlderThan``; events are collected until the BOOKMARK annotated
  ``k8s.io/initial-events-end``, then handed over as one list and the same stream goes on as the
  watch. Any failure before that bookmark falls back to LIST; a 4xx answer (server without the
  feature) disables WatchList for this reflector.
- Watch: ``allowWatchBookmarks=true``, ``timeoutSeconds`` uniform in [5, 10] min, from the last
  RV. A clean end re-watches at once. 410 Gone (HTTP or ERROR event) -> backoff from the initial
  delay (the server answered: failures before it say nothing about it now), relist (the sink
  turns vanished objects into tombstones). 429 -> wait Retry-After (or backoff), re-watch without
  relist. Dropped streams, connection errors and 5xx -> backoff, re-watch from the last RV. Other
  4xx -> backoff, relist. No event nor bookmark for ``inactivity_timeout`` -> reconnect. A watch
  closed within ``min_watch_duration`` with no event is treated as an error (no hot loop).
- Backoff: ``Backoff`` (0.8 s doubling to 30 s, jitter 1.0, reset after 2 min).

Each watch line is parsed once with orjson; each object is transformed once before the sink sees
it. Time and randomness are injectable (``clock``, ``rng``) so tests run in fake time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from kubetrain.base.backoff import Backoff, BackoffOptions
from kubetrain.base.clock import REAL_CLOCK, Clock
from kubetrain.base.objects import Obj, object_key, resource_version_of

from .gcpause import gc_paused
from .metrics import InformerMetrics, ResourceMetrics
from .objects import Transform
from .resource import ResourceRef
from .transforms import identity
from .transport import ApiStatusError, Transport

__all__ = ["INITIAL_EVENTS_END_ANNOTATION", "Reflector", "ReflectorOptions", "ReflectorSink"]

log = logging.getLogger(__name__)

INITIAL_EVENTS_END_ANNOTATION = "k8s.io/initial-events-end"


@dataclass(frozen=True, slots=True)
class ReflectorOptions:
    """How a reflector lists and watches; defaults follow client-go."""

    page_size: int = 500
    """LIST page size (``limit``); 0 disables paging."""
    watch_timeout_min: float = 300.0
    """Lower bound of the random ``timeoutSeconds`` of each watch (spreads reconnects)."""
    watch_timeout_max: float = 600.0
    """Upper bound of the random ``timeoutSeconds``."""
    inactivity_timeout: float | None = 90.0
    """Reconnect when a watch delivers no line (event or bookmark) for this long; None disables.
    Keep it above the server's bookmark interval (about 60 s for kube-apiserver)."""
    min_watch_duration: float = 1.0
    """A watch that ends within this many seconds without any event counts as an error."""
    request_timeout: float | None = 60.0
    """Timeout of each LIST request, seconds."""
    pause_gc_during_list: bool = True
    """Pause the cyclic garbage collector while a LIST is parsed and stored (``gcpause.py``):
    about 3x faster ingest of large lists. Handlers run inside the pause too."""
    use_watch_list: bool = False
    """Try WatchList (KEP-3157 streaming list) before falling back to a paginated LIST."""
    backoff: BackoffOptions = field(default_factory=BackoffOptions)
    """Delays between failed attempts."""

    def __post_init__(self) -> None:
        if self.page_size < 0:
            raise ValueError(f"ReflectorOptions.page_size must be >= 0, got {self.page_size}")
        if not 0 < self.watch_timeout_min <= self.watch_timeout_max:
            raise ValueError(
                "ReflectorOptions needs 0 < watch_timeout_min <= watch_timeout_max, got "
                f"{self.watch_timeout_min} and {self.watch_timeout_max}"
            )
        if self.inactivity_timeout is not None and self.inactivity_timeout <= 0:
            raise ValueError(
                "ReflectorOptions.inactivity_timeout must be > 0 or None, "
                f"got {self.inactivity_timeout}"
            )


class ReflectorSink(Protocol):
    """Where a reflector delivers; the informer implements it. Called on the event loop, in order;
    every object has already been transformed."""

    def replace(self, objs: list[Obj], resource_version: str) -> None:
        """The complete current state (a LIST, or WatchList's initial events)."""
        ...

    def upsert(self, obj: Obj) -> None:
        """A watch ADDED or MODIFIED event."""
        ...

    def delete(self, obj: Obj) -> None:
        """A watch DELETED event (``obj`` is the final state)."""
        ...

    def bookmark(self, resource_version: str) -> None:
        """The watch progressed to ``resource_version`` with no object change."""
        ...


class WatchInactivityError(Exception):
    """The watch stream was silent for longer than ``inactivity_timeout``."""


class WatchTooShortError(Exception):
    """The watch ended almost at once without any event (the server is likely unhealthy)."""


class _WatchListFailed(Exception):
    """WatchList ended or failed before the initial-events-end bookmark; ``__cause__`` says why."""


@dataclass(slots=True)
class _WatchOutcome:
    events: int = 0  # lines with an event (any type) received on this watch


class Reflector:
    """One list+watch loop for one resource and scope. Run ``run()`` as a task; cancel to stop."""

    def __init__(
        self,
        *,
        transport: Transport,
        resource: ResourceRef,
        sink: ReflectorSink,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        transform: Transform = identity,
        options: ReflectorOptions | None = None,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
        metrics: ResourceMetrics | None = None,
    ) -> None:
        self.resource = resource
        self.options = options or ReflectorOptions()
        self._transport = transport
        self._sink = sink
        self._path = resource.collection_path(namespace)
        self._selectors: dict[str, str] = {}
        if label_selector:
            self._selectors["labelSelector"] = label_selector
        if field_selector:
            self._selectors["fieldSelector"] = field_selector
        self._transform = transform
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(self.options.backoff, clock=clock, rng=self._rng)
        self._metrics = metrics or InformerMetrics(None).for_resource(resource.group_resource)
        self._name = f"{resource.group_resource}" + (f" in {namespace}" if namespace else "")
        # The RV the sink is synced to: from the last list, event or bookmark. "" before any list.
        self._rv = ""
        # True after a 410: the next list/watch-list must be a consistent read (RV "").
        self._rv_unavailable = False
        # False once the server refused WatchList; then only LIST is used.
        self._watch_list_supported = self.options.use_watch_list
        self._watch_started = 0.0  # clock time the current watch was requested
        self._last_activity = 0.0  # clock time of the last line (or open) of the current watch
        self._last_error: Exception | None = None

    @property
    def last_sync_resource_version(self) -> str:
        """The resourceVersion the sink is synced to; "" before the first list."""
        return self._rv

    @property
    def last_error(self) -> Exception | None:
        """The error of the last failed list or watch, None after a list that succeeded: what
        client-go hands its WatchErrorHandler, here read by whoever waits on a sync (a 403 says
        the credentials may not list this resource, which retrying will not change)."""
        return self._last_error

    async def run(self) -> None:
        """List, then watch forever, recovering from every error. Returns only by cancellation."""
        need_list = True
        while True:
            in_watch = False
            try:
                if need_list:
                    # A WatchList sync hands back its stream, still running as the watch.
                    tail = await self._sync()
                    need_list = False
                    in_watch = True
                    if tail is not None:
                        self._after_watch(await self._finish(tail))
                        continue
                in_watch = True
                self._after_watch(await self._watch(initial_events=False))
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self._last_error = err
                reason, relist, delay = self._classify(err)
                need_list = need_list or relist
                if in_watch:
                    self._metrics.watch_restart(reason)
                if delay > 0:
                    await self._clock.sleep(delay)

    # -- error policy ---------------------------------------------------------------------------

    def _classify(self, err: Exception) -> tuple[str, bool, float]:
        """(restart reason, relist?, delay) for an error out of a list or watch."""
        if isinstance(err, WatchInactivityError):
            log.info(
                "%s: watch silent for %ss, reconnecting",
                self._name,
                self.options.inactivity_timeout,
            )
            return "inactivity", False, 0.0
        if isinstance(err, ApiStatusError):
            if err.is_gone:
                log.info(
                    "%s: resourceVersion %s expired (%s), relisting", self._name, self._rv, err
                )
                self._rv_unavailable = True
                # A 410 is an answer: the server is reachable again, so the delays grown while
                # it was not (a partition) do not hold back the relist; consecutive 410s still
                # back off from the initial delay.
                self._backoff.reset()
                return "expired", True, self._backoff.next_delay()
            if err.is_too_many_requests:
                delay = (
                    err.retry_after if err.retry_after is not None else self._backoff.next_delay()
                )
                log.info("%s: throttled (429), retrying in %.1fs", self._name, delay)
                return "throttled", False, delay
            delay = self._backoff.next_delay()
            log.warning("%s: list/watch failed: %s; retrying in %.1fs", self._name, err, delay)
            return "error", err.code < 500, delay
        delay = self._backoff.next_delay()
        if isinstance(err, WatchTooShortError | ConnectionError | asyncio.TimeoutError | OSError):
            log.info("%s: watch closed (%r); retrying in %.1fs", self._name, err, delay)
            return "closed", False, delay
        log.warning("%s: list/watch failed: %r; retrying in %.1fs", self._name, err, delay)
        return "error", False, delay

    def _after_watch(self, outcome: _WatchOutcome) -> None:
        """Account for a watch the server ended cleanly; raise if it was suspiciously short."""
        if outcome.events == 0 and (
            self._clock.monotonic() - self._watch_started < self.options.min_watch_duration
        ):
            raise WatchTooShortError(f"{self._name}: watch closed at once with no event")
        self._metrics.watch_restart("timeout")

    # -- list -------------------------------------------------------------------------------------

    async def _sync(self) -> asyncio.Future[_WatchOutcome] | None:
        """Bring the sink to the current state: WatchList if enabled, else LIST.

        Returns the WatchList stream (now an ordinary watch) when that path was taken, else None.
        """
        if self._watch_list_supported:
            try:
                return await self._start_watch_list()
            except _WatchListFailed as failed:
                cause = failed.__cause__
                if isinstance(cause, ApiStatusError) and cause.is_gone:
                    self._rv_unavailable = True
                elif (
                    isinstance(cause, ApiStatusError)
                    and 400 <= cause.code < 500
                    and not cause.is_too_many_requests
                ):
                    self._watch_list_supported = False
                    log.info("%s: server refused WatchList (%s); using LIST", self._name, cause)
                else:
                    log.info("%s: WatchList failed (%r); falling back to LIST", self._name, cause)
        await self._list()
        return None

    async def _list(self) -> None:
        rv = "" if self._rv_unavailable else (self._rv or "0")
        paged = self.options.page_size > 0 and rv in ("", "0")
        with gc_paused() if self.options.pause_gc_during_list else contextlib.nullcontext():
            try:
                items, list_rv = await self._list_pages(rv, paged=paged)
            except ApiStatusError as err:
                if not (err.is_gone and rv not in ("", "0")):
                    raise
                # The RV we relisted at is too old: a consistent read instead, at once (client-go).
                self._rv_unavailable = True
                items, list_rv = await self._list_pages("", paged=self.options.page_size > 0)
            self._rv = list_rv
            self._rv_unavailable = False
            self._metrics.relists.inc()
            self._sink.replace(items, list_rv)
            self._last_error = None

    async def _list_pages(self, rv: str, *, paged: bool) -> tuple[list[Obj], str]:
        base = dict(self._selectors)
        if paged:
            base["limit"] = str(self.options.page_size)
        items: list[Obj] = []
        token = ""
        while True:
            query = dict(base)
            if token:
                query["continue"] = token
            else:
                query["resourceVersion"] = rv
            try:
                body = await self._transport.request_json(
                    "GET", self._path, query=query, timeout=self.options.request_timeout
                )
            except ApiStatusError as err:
                if token and err.is_gone:
                    log.info("%s: list continue token expired; listing unpaginated", self._name)
                    return await self._list_pages(rv, paged=False)
                raise
            self._ingest_page(body, items)
            meta = body.get("metadata") or {}
            token = meta.get("continue") or ""
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    def _ingest_page(self, body: Mapping[str, Any], into: list[Obj]) -> None:
        api_version = self.resource.api_version
        kind = self.resource.kind
        transform = self._transform
        for item in body.get("items") or ():
            # List items of built-in types come without apiVersion/kind; make objects uniform.
            if "kind" not in item:
                item["kind"] = kind
            if "apiVersion" not in item:
                item["apiVersion"] = api_version
            into.append(transform(item))

    # -- watch ------------------------------------------------------------------------------------

    async def _start_watch_list(self) -> asyncio.Future[_WatchOutcome]:
        """Open a WatchList stream and run it until the initial state reached the sink.

        Returns the still running stream (await it with ``_finish``). Raises ``_WatchListFailed``
        when the initial state could not be had.
        """
        synced: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(self._watch(initial_events=True, synced=synced))
        try:
            waiters: set[asyncio.Future[Any]] = {task, synced}
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if synced.done():
            return task
        try:
            task.result()
        except _WatchListFailed:
            raise
        except Exception as err:
            raise _WatchListFailed(repr(err)) from err
        raise _WatchListFailed("stream ended before the initial-events-end bookmark")

    @staticmethod
    async def _finish(stream: asyncio.Future[_WatchOutcome]) -> _WatchOutcome:
        try:
            return await stream
        finally:
            stream.cancel()

    async def _watch(
        self, *, initial_events: bool, synced: asyncio.Future[None] | None = None
    ) -> _WatchOutcome:
        """One watch request, consumed until the server ends it; the inactivity watchdog around it.

        ``initial_events``: a WatchList request; ``synced`` is resolved once the initial state went
        to the sink. Errors before that are raised as ``_WatchListFailed``.
        """
        timeout_seconds = int(
            self._rng.uniform(self.options.watch_timeout_min, self.options.watch_timeout_max)
        )
        query = dict(self._selectors)
        query["watch"] = "true"
        query["allowWatchBookmarks"] = "true"
        query["timeoutSeconds"] = str(timeout_seconds)
        if initial_events:
            query["sendInitialEvents"] = "true"
            query["resourceVersionMatch"] = "NotOlderThan"
            query["resourceVersion"] = "" if self._rv_unavailable else self._rv
        else:
            query["resourceVersion"] = self._rv
        self._watch_started = self._last_activity = self._clock.monotonic()
        outcome = _WatchOutcome()
        consume = asyncio.ensure_future(self._consume(query, outcome, initial_events, synced))
        try:
            await self._watchdog(consume)
        finally:
            consume.cancel()
        try:
            consume.result()
        except _WatchListFailed:
            raise
        except Exception as err:
            if initial_events and (synced is None or not synced.done()):
                raise _WatchListFailed(repr(err)) from err
            raise
        return outcome

    async def _watchdog(self, consume: asyncio.Future[None]) -> None:
        """Wait for ``consume``; cancel it and raise ``WatchInactivityError`` when silent too long."""
        limit = self.options.inactivity_timeout
        if limit is None:
            await asyncio.wait({consume})
            return
        while not consume.done():
            remaining = self._last_activity + limit - self._clock.monotonic()
            if remaining <= 0:
                consume.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await consume
                raise WatchInactivityError(f"no watch event for {limit}s")
            sleeper = asyncio.ensure_future(self._clock.sleep(remaining))
            try:
                await asyncio.wait({consume, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()

    async def _consume(
        self,
        query: dict[str, str],
        outcome: _WatchOutcome,
        initial_events: bool,
        synced: asyncio.Future[None] | None,
    ) -> None:
        clock = self._clock
        sink = self._sink
        transform = self._transform
        metrics = self._metrics
        # While collecting WatchList's initial events: key -> object, handed over at the end bookmark.
        initial: dict[str, Obj] | None = {} if initial_events else None
        async with self._transport.stream_lines(self._path, query=query) as lines:
            self._last_activity = clock.monotonic()
            async for line in lines:
                self._last_activity = clock.monotonic()
                if not line or line.isspace():
                    continue
                event = orjson.loads(line)
                event_type = event.get("type")
                obj = event.get("object")
                metrics.event(str(event_type))
                outcome.events += 1
                if event_type == "ADDED" or event_type == "MODIFIED":
                    obj = transform(obj)
                    if initial is not None:
                        initial[object_key(obj)] = obj
                    else:
                        sink.upsert(obj)
                        self._advance(obj)
                elif event_type == "DELETED":
                    obj = transform(obj)
                    if initial is not None:
                        initial.pop(object_key(obj), None)
                    else:
                        sink.delete(obj)
                        self._advance(obj)
                elif event_type == "BOOKMARK":
                    rv = resource_version_of(obj)
                    if initial is not None:
                        annotations = (obj.get("metadata") or {}).get("annotations") or {}
                        if annotations.get(INITIAL_EVENTS_END_ANNOTATION) == "true":
                            self._rv = rv
                            self._rv_unavailable = False
                            metrics.relists.inc()
                            sink.replace(list(initial.values()), rv)
                            self._last_error = None
                            initial = None
                            if synced is not None and not synced.done():
                                synced.set_result(None)
                    elif rv:
                        self._rv = rv
                        sink.bookmark(rv)
                elif event_type == "ERROR":
                    raise ApiStatusError.from_status(obj if isinstance(obj, dict) else {})
                else:
                    log.warning(
                        "%s: ignoring watch event of unknown type %r", self._name, event_type
                    )

    def _advance(self, obj: Obj) -> None:
        rv = resource_version_of(obj)
        if rv:
            self._rv = rv
