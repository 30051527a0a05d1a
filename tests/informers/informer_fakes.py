"""Fakes for informer tests: a scripted Transport, a recording fake clock and a recording
sink/handler.

The clock never advances by itself: ``sleep`` parks until the test calls ``advance`` or ``step``
(advance to the next sleeper's deadline), so a test sees each wait the reflector asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from kubetrain.base.clock import FakeClock
from kubetrain.base.objects import Obj, object_key
from kubetrain.informers.tombstone import DeletedFinalStateUnknown
from kubetrain.informers.transport import ApiStatusError


async def settle(rounds: int = 50) -> None:
    """Let every runnable task run until they all wait on something."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class RecordingClock(FakeClock):
    """``kubetrain.base.clock.FakeClock`` at 1000.0 that records every positive sleep asked of it
    (``sleeps``, in order) and can ``step`` to the next deadline."""

    def __init__(self) -> None:
        super().__init__(1000.0)
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.sleeps.append(seconds)
        await super().sleep(seconds)

    async def step(self) -> float:
        """Settle, jump to the next sleeper's deadline, settle again; returns the jump."""
        await settle()
        deadline = self.next_deadline()
        assert deadline is not None, "nothing is sleeping on the fake clock"
        jump = deadline - self.monotonic()
        self.advance(jump)
        await settle()
        return jump


def line(event_type: str, obj: Obj) -> bytes:
    return orjson.dumps({"type": event_type, "object": obj})


def pod(
    name: str,
    rv: str,
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    phase: str = "Running",
    managed: bool = False,
) -> Obj:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "resourceVersion": rv,
        "uid": f"uid-{namespace}-{name}",
    }
    if labels:
        meta["labels"] = dict(labels)
    if managed:
        meta["managedFields"] = [{"manager": "kubectl", "operation": "Apply", "fieldsV1": {}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"phase": phase}}


def bookmark(rv: str, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": rv}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return line("BOOKMARK", {"kind": "Pod", "apiVersion": "v1", "metadata": meta})


def status_line(code: int, reason: str, message: str = "") -> bytes:
    return line(
        "ERROR",
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        },
    )


def page(items: Iterable[Obj], rv: str, cont: str = "") -> Obj:
    meta = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    # Like kube for built-in types: list items carry no apiVersion/kind.
    stripped = []
    for item in items:
        item = dict(item)
        item.pop("apiVersion", None)
        item.pop("kind", None)
        stripped.append(item)
    return {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": stripped}


@dataclass
class Stream:
    """One scripted watch response: its lines, then how it ends."""

    lines: list[bytes] = field(default_factory=list)
    end: str = "close"  # "close" (clean), "drop" (ConnectionResetError), "hang" (never ends)
    gate: asyncio.Event | None = None  # when set: wait for it before yielding lines


class FakeTransport:
    """Scripted answers: ``lists`` for request_json, ``watches`` for stream_lines.

    An exhausted script parks the caller forever (so a finished scenario stays still).
    """

    def __init__(self) -> None:
        self.lists: deque[Obj | Exception] = deque()
        self.watches: deque[Stream | Exception] = deque()
        self.list_calls: list[dict[str, str]] = []
        self.watch_calls: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.open_streams = 0

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        assert method == "GET"
        self.paths.append(path)
        self.list_calls.append(dict(query or {}))
        if not self.lists:
            await asyncio.Event().wait()
        answer = self.lists.popleft()
        if isinstance(answer, Exception):
            raise answer
        return orjson.loads(orjson.dumps(answer))  # a fresh parse, like a real answer

    def stream_lines(
        self,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[bytes]]:
        self.paths.append(path)
        self.watch_calls.append(dict(query or {}))
        return self._open()

    @contextlib.asynccontextmanager
    async def _open(self) -> AsyncIterator[AsyncIterator[bytes]]:
        if not self.watches:
            await asyncio.Event().wait()
        script = self.watches.popleft()
        if isinstance(script, Exception):
            raise script
        self.open_streams += 1
        try:
            yield self._lines(script)
        finally:
            self.open_streams -= 1

    async def _lines(self, script: Stream) -> AsyncIterator[bytes]:
        if script.gate is not None:
            await script.gate.wait()
        for item in script.lines:
            yield item
        if script.end == "drop":
            raise ConnectionResetError("connection reset by peer")
        if script.end == "hang":
            await asyncio.Event().wait()


def gone(where: str = "watch") -> ApiStatusError:
    return ApiStatusError(410, reason="Expired", message=f"too old resource version ({where})")


class RecordingSink:
    """A ReflectorSink that records calls as tuples."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def replace(self, objs: list[Obj], resource_version: str) -> None:
        self.calls.append(("replace", sorted(object_key(o) for o in objs), resource_version))
        self.last_objs = objs

    def upsert(self, obj: Obj) -> None:
        self.calls.append(("upsert", object_key(obj), obj["metadata"].get("resourceVersion")))

    def delete(self, obj: Obj) -> None:
        self.calls.append(("delete", object_key(obj)))

    def bookmark(self, resource_version: str) -> None:
        self.calls.append(("bookmark", resource_version))

    def kinds(self) -> list[str]:
        return [c[0] for c in self.calls]


class RecordingHandler:
    """An event handler that records what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_add(self, obj: Obj, is_in_initial_list: bool) -> None:
        self.events.append(("add", object_key(obj), is_in_initial_list))

    def on_update(self, old: Obj, new: Obj) -> None:
        kind = "resync" if old is new else "update"
        self.events.append((kind, object_key(new), new["metadata"].get("resourceVersion")))

    def on_delete(self, obj: Obj | DeletedFinalStateUnknown) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            self.events.append(("tombstone", obj.key))
        else:
            self.events.append(("delete", object_key(obj)))
