"""The watch hub: per-resource event history, fan-out to watchers, and 410 when history is gone.

Every committed change becomes one ``WatchEvent``. Its object is serialized once (orjson) and
the same bytes go to every watcher that sees it unchanged; a watcher with selectors gets the
event re-typed like kube's watch cache (an object that stops matching arrives as DELETED, one
that starts matching as ADDED). Writers never wait for watchers: each watcher has a bounded
buffer and a watcher that lets it overflow is closed (the client relists, as with kube).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from .selectors import FieldSelector, LabelSelector

__all__ = [
    "ADDED",
    "BOOKMARK",
    "DELETED",
    "ERROR",
    "MODIFIED",
    "WatchEvent",
    "WatchHub",
    "Watcher",
    "event_line",
]

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
BOOKMARK = "BOOKMARK"
ERROR = "ERROR"

StorageKey = tuple[str, str]

_PREFIX: dict[str, bytes] = {
    t: b'{"type":"' + t.encode() + b'","object":'
    for t in (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR)
}


def event_line(event_type: str, object_bytes: bytes) -> bytes:
    """One newline-terminated watch event line from an already serialized object."""
    return _PREFIX[event_type] + object_bytes + b"}\n"


@dataclass(slots=True)
class WatchEvent:
    """A committed change. ``obj`` is the stored object (never mutated); ``old`` the previous one.

    For DELETED, ``obj`` is the object as deleted (with the deletion's resourceVersion).
    """

    type: str
    rv: int
    obj: dict[str, Any]
    old: dict[str, Any] | None
    namespace: str
    _lines: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def line(self, event_type: str, api_version: str | None) -> bytes:
        """The serialized event line as ``event_type``, with ``apiVersion`` rewritten if given.

        Cached: each (type, apiVersion) is serialized once however many watchers get it.
        """
        cache_key = (event_type, api_version or "")
        line = self._lines.get(cache_key)
        if line is None:
            obj = self.obj
            if api_version and obj.get("apiVersion") != api_version:
                obj = {**obj, "apiVersion": api_version}
            line = event_line(event_type, orjson.dumps(obj))
            self._lines[cache_key] = line
        return line


class Watcher:
    """One client watch on one resource: filters, a bounded buffer, a wake-up event.

    ``namespace`` None watches all namespaces. ``api_version`` rewrites objects served under a
    non-storage version. ``closed`` is set by the hub when the buffer overflowed (the handler
    then ends the stream) or by ``WatchHub.close_all``.
    """

    __slots__ = (
        "_wake",
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
        self._wake = asyncio.Event()

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether ``obj`` passes this watcher's selectors (namespace checked by the caller)."""
        if self.label_selector is not None and not self.label_selector.matches(
            (obj.get("metadata") or {}).get("labels")
        ):
            return False
        return self.field_selector is None or self.field_selector.matches(obj)

    def event_type_for(self, event: WatchEvent) -> str | None:
        """The type this watcher sees ``event`` as, or None when it does not see it."""
        if self.namespace is not None and event.namespace != self.namespace:
            return None
        if self.label_selector is None and self.field_selector is None:
            return event.type
        now = self.matches(event.obj)
        if event.type != MODIFIED or event.old is None:
            return event.type if now else None
        before = self.matches(event.old)
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
            self.buffer.append(event_line(event_type, self.render(event.obj)))
        else:
            self.buffer.append(event.line(event_type, self.api_version))
        self._wake.set()

    def push_line(self, line: bytes) -> None:
        """Queue a pre-built line (synthetic ADDED, replayed history)."""
        self.buffer.append(line)
        self._wake.set()

    def close(self) -> None:
        """Stop accepting events and wake the handler."""
        self.closed = True
        self._wake.set()

    def drain(self) -> bytes:
        """Everything buffered, joined; empties the buffer."""
        data = b"".join(self.buffer)
        self.buffer.clear()
        self._wake.clear()
        return data

    async def wait(self, timeout: float | None) -> bool:
        """Wait until something is buffered or the watcher closed; False on timeout."""
        if self.buffer or self.closed:
            return True
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return False
        return True


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
        self._history: dict[StorageKey, deque[WatchEvent]] = {}
        self._floor: dict[StorageKey, int] = {}
        self._watchers: dict[StorageKey, set[Watcher]] = {}
        self.listeners: list[Callable[[StorageKey, WatchEvent], None]] = []

    def publish(self, key: StorageKey, event: WatchEvent) -> None:
        """Record ``event`` and hand it to every watcher of ``key``."""
        hist = self._history.get(key)
        if hist is None:
            hist = self._history[key] = deque()
        if len(hist) >= self.history_size:
            self._floor[key] = hist.popleft().rv
        hist.append(event)
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
        for event in reversed(hist):
            if event.rv <= rv:
                break
            out.append(event)
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
            while hist and hist[0].rv <= rv:
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
