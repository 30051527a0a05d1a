"""The watch hub: per-resource event history, fan-out to watchers, and 410 when history is gone.

Every committed change becomes one ``WatchEvent`` that carries the object as the store keeps it:
its serialized bytes (made once, at commit) and the few parsed fields selectors need (labels).
The event line a watcher receives is ``{"type":"...","object":`` + those bytes + ``}``, built at
most once per (event type, apiVersion) and shared by every watcher that sees it: fan-out to K
watchers costs one concatenation, not K serializations. A watcher with selectors gets the event
re-typed like kube's watch cache (an object that stops matching arrives as DELETED, one that
starts matching as ADDED); only a field selector on something other than the object's name and
namespace, or a custom rendering (kubectl's Table rows), needs the object parsed, and the event
parses it once for all of them. Writers never wait for watchers: each watcher has a bounded
buffer and a watcher that lets it overflow is closed (the client relists, as with kube).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from .selectors import FieldSelector, LabelSelector

__all__ = [
    "ADDED",
    "BOOKMARK",
    "DELETED",
    "ERROR",
    "MODIFIED",
    "Labels",
    "WatchEvent",
    "WatchHub",
    "Watcher",
    "event_line",
    "parse_labels",
    "reversion",
]

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"
ERROR = "ERROR"

StorageKey = tuple[str, str]

Labels = bytes
"""An object's ``metadata.labels`` as JSON bytes (``b""`` for none): kept next to the object's
bytes for label selectors, and, like them, never scanned by the collector (a dict or a tuple of
pairs inside a stored record would keep the record tracked)."""

_PREFIX: dict[str, bytes] = {
    t: b'{"type":"' + t.encode() + b'","object":'
    for t in (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)
}


def event_line(event_type: str, object_bytes: bytes) -> bytes:
    """One newline-terminated watch event line from an already serialized object."""
    return _PREFIX[event_type] + object_bytes + b"}\n"


def reversion(data: bytes, api_version: str) -> bytes:
    """``data`` (a serialized object) re-serialized with its apiVersion set to ``api_version``
    (an object read through a served version that is not the one it is stored in)."""
    obj = orjson.loads(data)
    obj["apiVersion"] = api_version
    return orjson.dumps(obj)


def parse_labels(labels: Labels) -> dict[str, str] | None:
    """``Labels`` back as the mapping a ``LabelSelector`` matches (None: no labels)."""
    if not labels:
        return None
    parsed: dict[str, str] = orjson.loads(labels)
    return parsed


@dataclass(slots=True, eq=False)
class WatchEvent:
    """A committed change, as serialized at commit (never mutated afterwards).

    ``data``: the object's bytes (for DELETED, the object as deleted, carrying the deletion's
    resourceVersion); ``api_version``: the apiVersion inside them; ``labels``: its labels.
    ``old_data``/``old_labels``: the previous state for a MODIFIED event (None otherwise), so a
    selecting watcher can tell whether the object entered or left its selection.
    """

    type: str
    rv: int
    data: bytes
    api_version: str
    labels: Labels
    namespace: str
    name: str
    old_data: bytes | None = None
    old_labels: Labels = b""
    _obj: dict[str, Any] | None = None
    _old: dict[str, Any] | None = None
    _label_maps: tuple[dict[str, str] | None, dict[str, str] | None] | None = None
    # built on first use: most events in the history are never sent, and an empty dict per
    # event would be one more object for every collection to scan
    _lines: dict[tuple[str, str], bytes] | None = None

    def obj(self) -> dict[str, Any]:
        """The object parsed (once, on first use; for field selectors and custom renderings).
        Do not mutate it."""
        if self._obj is None:
            self._obj = orjson.loads(self.data)
        return self._obj

    def old(self) -> dict[str, Any] | None:
        """The previous state parsed (MODIFIED only), or None. Do not mutate it."""
        if self._old is None and self.old_data is not None:
            self._old = orjson.loads(self.old_data)
        return self._old

    def label_maps(self) -> tuple[dict[str, str] | None, dict[str, str] | None]:
        """(labels, old labels) parsed, once for every selecting watcher. Do not mutate."""
        if self._label_maps is None:
            self._label_maps = (parse_labels(self.labels), parse_labels(self.old_labels))
        return self._label_maps

    def line(self, event_type: str, api_version: str | None) -> bytes:
        """The event line as ``event_type``, with ``apiVersion`` rewritten if ``api_version`` is
        given and differs from the stored one.

        Cached: each (type, apiVersion) is built once however many watchers get it; with the
        stored apiVersion the object's bytes are used as they are.
        """
        wanted = api_version or self.api_version
        cache_key = (event_type, wanted)
        lines = self._lines
        if lines is None:
            lines = self._lines = {}
        line = lines.get(cache_key)
        if line is None:
            data = self.data if wanted == self.api_version else reversion(self.data, wanted)
            line = event_line(event_type, data)
            lines[cache_key] = line
        return line


class Watcher:
    """One client watch on one resource: filters, a bounded buffer, a wake-up event.

    ``namespace`` None watches all namespaces. ``api_version`` rewrites objects served under a
    non-storage version. ``closed`` is set by the hub when the buffer overflowed (the handler
    then ends the stream) or by ``WatchHub.close_all``.
    """

    __slots__ = (
        "_waiter",
        "api_version",
        "buffer",
        "closed",
        "field_selector",
        "key",
        "label_selector",
        "max_buffer",
        "namespace",
        "overflowed",
        "render",
    )

    def __init__(
        self,
        key: StorageKey,
        *,
        namespace: str | None,
        label_selector: LabelSelector | None,
        field_selector: FieldSelector | None,
        api_version: str | None,
        max_buffer: int,
        render: Callable[[dict[str, Any]], bytes] | None = None,
    ) -> None:
        self.key = key
        self.render = render  # custom serialization (kubectl's Table rows); None: shared bytes
        self.namespace = namespace or None
        self.label_selector = (
            None if label_selector is None or label_selector.empty else label_selector
        )
        self.field_selector = (
            None if field_selector is None or field_selector.empty else field_selector
        )
        self.api_version = api_version
        self.max_buffer = max_buffer
        self.buffer: deque[bytes] = deque()
        self.closed = False
        self.overflowed = False
        # the handler's pending wait (None when it is not waiting); resolved True by new data
        # or close, False by its timeout
        self._waiter: asyncio.Future[bool] | None = None

    def matches(
        self, labels: Mapping[str, str] | None, obj: Callable[[], Mapping[str, Any] | None]
    ) -> bool:
        """Whether an object with ``labels`` passes this watcher's selectors (namespace checked
        by the caller); ``obj`` parses the object, called only for a field selector."""
        if self.label_selector is not None and not self.label_selector.matches(labels):
            return False
        if self.field_selector is None:
            return True
        parsed = obj()
        return parsed is not None and self.field_selector.matches(parsed)

    def event_type_for(self, event: WatchEvent) -> str | None:
        """The type this watcher sees ``event`` as, or None when it does not see it."""
        if self.namespace is not None and event.namespace != self.namespace:
            return None
        if self.label_selector is None and self.field_selector is None:
            return event.type
        labels, old_labels = event.label_maps()
        now = self.matches(labels, event.obj)
        if event.type != MODIFIED or event.old_data is None:
            return event.type if now else None
        before = self.matches(old_labels, event.old)
        if now and before:
            return MODIFIED
        if now:
            return ADDED
        if before:
            return DELETED
        return None

    def offer(self, event: WatchEvent, *, bounded: bool = True) -> None:
        """Queue ``event`` if it is visible here; close the watcher on overflow.

        ``bounded`` False (replaying retained history at watch start) skips the buffer bound.
        """
        if self.closed:
            return
        event_type = self.event_type_for(event)
        if event_type is None:
            return
        if bounded and len(self.buffer) >= self.max_buffer:
            self.overflowed = True
            self.close()
            return
        if self.render is not None:
            self.buffer.append(event_line(event_type, self.render(event.obj())))
        else:
            self.buffer.append(event.line(event_type, self.api_version))
        self._wake()

    def push_line(self, line: bytes) -> None:
        """Queue a pre-built line (synthetic ADDED, replayed history)."""
        self.buffer.append(line)
        self._wake()

    def close(self) -> None:
        """Stop accepting events and wake the handler."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def drain(self) -> bytes:
        """Everything buffered, joined; empties the buffer."""
        data = b"".join(self.buffer)
        self.buffer.clear()
        return data

    async def wait(self, timeout: float | None) -> bool:
        """Wait until something is buffered or the watcher closed; False on timeout.

        A bare future and a timer, not ``asyncio.wait_for`` (which, before Python 3.12, starts
        a task per call): a watcher waits once per batch of events it sends.
        """
        if self.buffer or self.closed:
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiter = waiter
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


_Retained = tuple[str, int, bytes, str, bytes, str, str, bytes | None, bytes]
"""A ``WatchEvent`` as the history keeps it: its fields in order, strings, ints and bytes only,
so the collector untracks it (thousands of retained events per resource cost a full
collection nothing); a replay makes ``WatchEvent`` objects of the ones it sends."""

_RV: Final = 1  # position of the rv in a _Retained


def _retain(event: WatchEvent) -> _Retained:
    return (
        event.type,
        event.rv,
        event.data,
        event.api_version,
        event.labels,
        event.namespace,
        event.name,
        event.old_data,
        event.old_labels,
    )


class WatchHub:
    """Event history per storage key plus the registered watchers.

    Invariant: ``_history[key]`` holds the last ``history_size`` events of ``key`` in rv order,
    and every event of ``key`` with rv > ``_floor[key]`` is in it (so a watch from any rv >=
    the floor can be served; older ones get 410). ``start_rv`` is the floor for keys with no
    evictions yet (the rv the server started at, non-zero after a reload).
    """

    def __init__(self, *, history_size: int = 10_000, start_rv: int = 0) -> None:
        if history_size < 1:
            raise ValueError(f"history_size must be >= 1, got {history_size}")
        self.history_size = history_size
        self.start_rv = start_rv
        self._history: dict[StorageKey, deque[_Retained]] = {}
        self._floor: dict[StorageKey, int] = {}
        self._watchers: dict[StorageKey, set[Watcher]] = {}
        self.listeners: list[Callable[[StorageKey, WatchEvent], None]] = []

    def publish(self, key: StorageKey, event: WatchEvent) -> None:
        """Record ``event`` and hand it to every watcher of ``key``."""
        hist = self._history.get(key)
        if hist is None:
            hist = self._history[key] = deque()
        if len(hist) >= self.history_size:
            self._floor[key] = hist.popleft()[_RV]
        hist.append(_retain(event))
        watchers = self._watchers.get(key)
        if watchers:
            for watcher in list(watchers):
                watcher.offer(event)
                if watcher.closed:
                    watchers.discard(watcher)

    def floor(self, key: StorageKey) -> int:
        """The oldest rv a watch of ``key`` may start from."""
        return self._floor.get(key, self.start_rv)

    def is_expired(self, key: StorageKey, rv: int) -> bool:
        """Whether history after ``rv`` is no longer complete for ``key``."""
        return rv < self.floor(key)

    def since(self, key: StorageKey, rv: int) -> list[WatchEvent]:
        """Events of ``key`` with rv > ``rv``, oldest first. Caller checks ``is_expired`` first."""
        hist = self._history.get(key)
        if not hist:
            return []
        out: list[WatchEvent] = []
        for retained in reversed(hist):
            if retained[_RV] <= rv:
                break
            out.append(WatchEvent(*retained))
        out.reverse()
        return out

    def register(self, watcher: Watcher) -> None:
        """Start delivering events of ``watcher.key`` to ``watcher``."""
        self._watchers.setdefault(watcher.key, set()).add(watcher)

    def unregister(self, watcher: Watcher) -> None:
        """Stop delivering to ``watcher`` (idempotent)."""
        watchers = self._watchers.get(watcher.key)
        if watchers is not None:
            watchers.discard(watcher)

    def watcher_count(self, key: StorageKey | None = None) -> int:
        """Open watchers (of ``key``, or all)."""
        if key is not None:
            return len(self._watchers.get(key, ()))
        return sum(len(w) for w in self._watchers.values())

    def compact(self, keys: Iterable[StorageKey] | None = None, *, rv: int) -> None:
        """Forget history up to ``rv`` (all keys by default): watches from older rvs get 410.

        A hook for tests and fault injection (a forced compaction).
        """
        for key in list(keys) if keys is not None else list(self._history):
            hist = self._history.get(key)
            while hist and hist[0][_RV] <= rv:
                hist.popleft()
            self._floor[key] = max(self.floor(key), rv)
        if keys is None:
            self.start_rv = max(self.start_rv, rv)

    def close_all(self, key: StorageKey | None = None) -> None:
        """Close every watcher (of ``key``, or all): streams end, clients re-watch."""
        keys = [key] if key is not None else list(self._watchers)
        for k in keys:
            for watcher in self._watchers.pop(k, set()):
                watcher.close()
