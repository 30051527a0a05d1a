"""Watches of one namespace from a given resourceVersion, with no initial list.

The harness needs to see what changes *after* a moment (the backlog's writes to finished jobs,
the new jobs' pods) without caching the objects that already exist (an informer of a
50,000-job backlog would cost the harness a full list and its memory). ``RawWatch`` keeps one
watch per resource open from ``resource_version``, hands each event to ``on_event`` and
resumes from the last resourceVersion when the stream ends; a 410 (history gone) resumes from
the server's current version and counts a gap, since events in between were missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError

__all__ = ["EventHandler", "RawWatch", "current_resource_version"]

EventHandler = Callable[[ResourceRef, str, dict[str, Any]], None]
"""``(resource, event type ADDED/MODIFIED/DELETED, object)``; synchronous and cheap."""


async def current_resource_version(client: ApiClient, ref: ResourceRef, namespace: str) -> str:
    """The server's current resourceVersion, from a one-item list of ``ref``."""
    page = await client.list(ref, namespace, limit=1)
    return str((page.get("metadata") or {}).get("resourceVersion") or "0")


class RawWatch:
    """Watches ``resources`` in ``namespace`` from ``resource_version``; ``stop()`` in a finally.

    ``gaps`` counts resumptions after a 410, where events may have been missed.
    """

    def __init__(
        self,
        client: ApiClient,
        namespace: str,
        resources: Sequence[ResourceRef],
        *,
        resource_version: str,
        on_event: EventHandler,
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._resources = list(resources)
        self._rv = resource_version
        self._on_event = on_event
        self._tasks: list[asyncio.Task[None]] = []
        self.gaps = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(ref)) for ref in self._resources]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, ref: ResourceRef) -> None:
        rv = self._rv
        while True:
            query = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "true"}
            try:
                async with self._client.stream_lines(
                    ref.collection_path(self._namespace), query=query
                ) as lines:
                    async for line in lines:
                        event = orjson.loads(line)
                        etype = event.get("type")
                        obj = event.get("object") or {}
                        if etype == "ERROR":
                            if obj.get("code") == 410:
                                raise ApiStatusError(410, reason="Expired", message="watch")
                            break
                        rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                        if etype != "BOOKMARK":
                            self._on_event(ref, etype, obj)
            except ApiStatusError as exc:
                if exc.code != 410:
                    await asyncio.sleep(0.2)
                    continue
                self.gaps += 1
                rv = await current_resource_version(self._client, ref, self._namespace)
            except (ConnectionError, TimeoutError, OSError):
                await asyncio.sleep(0.2)
