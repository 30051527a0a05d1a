"""Test doubles shared by the suites, and the polling helper they wait with: one copy each,
importable as ``fakes`` (``tests/`` is on the path through its conftest). Each double implements
only the protocol its users need."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from typing import Any, Literal

from kubetrain.base.objects import Obj
from kubetrain.engine.queue import NORMAL_PRIORITY
from kubetrain.engine.request_priority import current_request_priority
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.store import Store


class RecordingQueue:
    """A ``KeyQueue`` that records every add with its priority."""

    def __init__(self) -> None:
        self.added: list[tuple[str, int]] = []

    def add(self, key: str, *, priority: int = NORMAL_PRIORITY) -> None:
        self.added.append((key, priority))

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.added]


class RecordingRecorder:
    """An ``EventSink`` that keeps ``(type, reason, message)`` of every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Mapping[str, Any], type: str, reason: str, message: str, **_: Any) -> None:
        self.events.append((type, reason, message))


class RecordingJobWriter:
    """A ``JobWriter`` (``reconcilers/jobcontroller/protocols.py``) that answers at once and
    records every request in ``requests`` as ``(verb, resource plural, name)`` and the request
    priority of its context (``engine.request_priority``) in ``priorities``.

    Objects it created or updated are what ``get`` answers. A status write stores the job with the
    next resourceVersion (from 100), appends it to ``status_writes`` and, when ``jobs`` is given,
    upserts it there as its watch event would. ``hold``: an ``asyncio.Event`` creations wait for
    (``max_in_flight`` is the most waiting at once). ``errors``: ``(verb, name)`` -> the error to
    raise instead of answering (once).
    """

    def __init__(self, *, jobs: Store | None = None) -> None:
        self.jobs = jobs
        self.requests: list[tuple[str, str, str]] = []
        self.priorities: dict[tuple[str, str, str], int] = {}
        self.status_writes: list[Obj] = []
        self.patches: list[Obj] = []
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.errors: dict[tuple[str, str], Exception] = {}
        self.hold: asyncio.Event | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._version = 100

    def verbs(self, plural: str) -> list[str]:
        """The verbs of the requests on ``plural``, in order."""
        return [verb for verb, p, _ in self.requests if p == plural]

    def _request(self, verb: str, ref: ResourceRef, name: str) -> None:
        self.requests.append((verb, ref.plural, name))
        self.priorities[(verb, ref.plural, name)] = current_request_priority()
        error = self.errors.pop((verb, name), None)
        if error is not None:
            raise error

    def _store(self, ref: ResourceRef, obj: Mapping[str, Any]) -> Obj:
        stored = copy.deepcopy(dict(obj))
        meta = stored.setdefault("metadata", {})
        self._version += 1
        meta["resourceVersion"] = str(self._version)
        self.objects[(ref.plural, meta.get("namespace") or "", meta["name"])] = stored
        return stored

    async def get(self, ref: ResourceRef, namespace: str | None, name: str) -> Obj:
        self._request("get", ref, name)
        return copy.deepcopy(self.objects[(ref.plural, namespace or "", name)])

    async def create(
        self,
        ref: ResourceRef,
        obj: Mapping[str, Any],
        *,
        namespace: str | None = None,
        field_manager: str | None = None,
        read_answer: bool = True,
    ) -> Obj:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.hold is not None:
                await self.hold.wait()
            self._request("create", ref, obj["metadata"]["name"])
        finally:
            self.in_flight -= 1
        stored = self._store(ref, obj)
        return stored if read_answer else {}

    async def update(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> Obj:
        self._request("update", ref, obj["metadata"]["name"])
        return self._store(ref, obj)

    async def update_status(
        self, ref: ResourceRef, obj: Mapping[str, Any], *, field_manager: str | None = None
    ) -> Obj:
        """A PUT of the status subresource (``MPIJobWriter``): stored like ``update``, its
        status appended to ``status_writes``."""
        self._request("update/status", ref, obj["metadata"]["name"])
        stored = self._store(ref, obj)
        self.status_writes.append(copy.deepcopy(stored.get("status") or {}))
        return stored

    async def patch(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> Obj:
        self._request("patch" if subresource is None else f"patch/{subresource}", ref, name)
        self.patches.append(copy.deepcopy(patch))
        current = self.jobs.get(f"{namespace}/{name}") if self.jobs is not None else None
        merged = _merge(copy.deepcopy(current or {"metadata": {"name": name}}), patch)
        merged["metadata"].pop("resourceVersion", None)
        return self._store(ref, merged)

    async def delete(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        *,
        propagation_policy: Literal["Foreground", "Background", "Orphan"] | None = None,
        uid: str | None = None,
    ) -> Obj:
        self._request("delete", ref, name)
        self.objects.pop((ref.plural, namespace or "", name), None)
        return {}

    async def update_status_with_retry(
        self,
        ref: ResourceRef,
        namespace: str | None,
        name: str,
        mutate: Callable[[Obj], Obj | None],
        *,
        current: Mapping[str, Any] | None = None,
    ) -> Obj | None:
        self._request("update/status", ref, name)
        changed = mutate(copy.deepcopy(dict(current or {})))
        if changed is None:
            return None
        stored = self._store(ref, changed)
        self.status_writes.append(copy.deepcopy(stored["status"]))
        if self.jobs is not None:
            self.jobs.upsert(copy.deepcopy(stored))
        return stored


def _merge(target: Obj, patch: Any) -> Obj:
    """``patch`` merged into ``target`` as a JSON merge patch (RFC 7386)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


class Gated:
    """A Transport over ``inner`` that holds configmap LISTs while ``opened`` is clear (set at
    first unless ``opened=False``) and refuses every request while ``down`` (a partition)."""

    def __init__(self, inner: Any, *, opened: bool = True) -> None:
        self.inner = inner
        self.opened = asyncio.Event()
        if opened:
            self.opened.set()
        self.down = False
        self.lists = 0

    async def request_json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        if self.down:
            raise ConnectionRefusedError("partitioned")
        if method == "GET" and path.endswith("/configmaps"):
            self.lists += 1
            await self.opened.wait()
        result: dict[str, Any] = await self.inner.request_json(method, path, **kw)
        return result

    def stream_lines(self, path: str, **kw: Any) -> Any:
        return self.inner.stream_lines(path, **kw)


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` (state other tasks change) every 10 ms until true; fail after
    ``timeout`` seconds."""
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")
