"""The two streaming endpoints: ``?watch=true`` and ``pods/{name}/log?follow=true``.

Watch semantics (kube's watch cache): RV absent or "0" -> synthetic ADDED for the current state,
then live events; RV N -> the retained events after N (ERROR 410 Expired when N is older than
the history window); ``sendInitialEvents=true`` -> synthetic ADDEDs then a BOOKMARK annotated
``k8s.io/initial-events-end: "true"``; ``allowWatchBookmarks`` -> a BOOKMARK after each idle
``bookmark_interval_seconds``; ``timeoutSeconds`` ends the stream. Registration and the
snapshot/replay happen without an await in between, so no event is lost or duplicated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from . import errors
from .query import parse_bool, parse_int, parse_resource_version
from .resources import ResourceInfo
from .rest import served_bytes
from .serving import ResourcePath, ServerParts, parse_selectors
from .store import DATA
from .tables import to_table, wants_table
from .watch import ADDED, BOOKMARK, DELETED, ERROR, MODIFIED, Watcher, event_line

__all__ = ["convert_lines", "serve_log", "serve_watch"]

_TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
_COALESCE_TURNS = 2  # loop turns a woken watch waits for more events before it writes


def _bookmark(rp: ResourcePath, rv: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": rp.info.kind, "apiVersion": rp.info.api_version, "metadata": meta}
    return event_line(BOOKMARK, orjson.dumps(obj))


async def serve_watch(
    server: ServerParts, request: web.Request, rp: ResourcePath
) -> web.StreamResponse:
    """Stream watch events for the collection ``rp`` (see the module docstring)."""
    q = request.query
    info = rp.info
    key = info.storage_key
    lsel, fsel = parse_selectors(info, q)
    bookmarks = parse_bool(q, "allowWatchBookmarks")
    raw_send_initial = q.get("sendInitialEvents")
    send_initial = parse_bool(q, "sendInitialEvents") if raw_send_initial is not None else None
    timeout = parse_int(q, "timeoutSeconds")
    start_rv = parse_resource_version(q)
    opts = server.options
    deadline = time.monotonic() + (
        timeout if timeout is not None and timeout > 0 else opts.watch_default_timeout_seconds
    )
    namespace = rp.namespace if info.namespaced else None
    api_version = info.api_version  # events stored under another version are rewritten
    converting = info.conversion is not None  # then sent as stored, converted at each write
    render: Callable[[dict[str, Any]], bytes] | None = None
    if wants_table(request):

        def table_row(obj: dict[str, Any]) -> bytes:
            return orjson.dumps(to_table(info, [server.rest.present(info, obj)], {}, request))

        render = table_row

    watcher = Watcher(
        key,
        namespace=namespace,
        label_selector=lsel,
        field_selector=fsel,
        api_version=None if converting else api_version,
        max_buffer=opts.watch_buffer_size,
        render=render,
    )
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    try:
        await response.prepare(request)
    except ConnectionResetError:
        # the client went away before the answer started (a controller stopping): nothing
        # to serve, and nothing wrong with the server
        return response

    # -- synchronous section: snapshot or replay, then register ---------------------------
    expired_line: bytes | None = None
    synthetic = send_initial is True or (send_initial is None and start_rv is None)
    if synthetic:
        records, _, _ = server.store.list_records(
            key, namespace, label_selector=lsel, field_selector=fsel
        )
        for rec in records:
            data = (
                render(orjson.loads(rec[DATA]))
                if render is not None
                else rec[DATA]
                if converting
                else served_bytes(rec, info.api_version)
            )
            watcher.push_line(event_line(ADDED, data))
        if send_initial is True and bookmarks:
            watcher.push_line(_bookmark(rp, server.store.rv, initial_end=True))
        server.hub.register(watcher)
    elif start_rv is not None:
        if server.hub.is_expired(key, start_rv):
            status = errors.expired(
                f"too old resource version: {start_rv} ({server.hub.floor(key)})"
            ).to_status()
            expired_line = event_line(ERROR, orjson.dumps(status))
        else:
            for event in server.hub.since(key, start_rv):
                watcher.offer(event, bounded=False)
            server.hub.register(watcher)
    else:
        server.hub.register(watcher)
    # --------------------------------------------------------------------------------------

    if expired_line is not None:
        await response.write(expired_line)
        await response.write_eof()
        return response
    interval = opts.bookmark_interval_seconds
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait_for = min(remaining, interval) if bookmarks else remaining
            got = await watcher.wait(wait_for)
            if got and not watcher.closed:
                # Let the writes of this loop iteration and the next add their events: a
                # socket write costs about the same for one event as for many, so under load a
                # watcher sends batches (5 events a write without this pause, 20 with it, in
                # test_bench_apiserver's fan-out); when idle it costs two loop turns, not time.
                for _ in range(_COALESCE_TURNS):
                    await asyncio.sleep(0)
            if watcher.buffer:
                data = watcher.drain()
                if converting:
                    data, failed = await convert_lines(server, info, data)
                    if failed:
                        await response.write(data)
                        break
                await response.write(data)
            if watcher.closed:
                break
            if not got and bookmarks and time.monotonic() < deadline:
                await response.write(_bookmark(rp, server.store.rv))
    except ConnectionResetError:  # the client closed its watch: the stream just ends
        return response
    finally:
        server.hub.unregister(watcher)
    try:
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


async def convert_lines(server: ServerParts, info: ResourceInfo, data: bytes) -> tuple[bytes, bool]:
    """Watch event lines with their objects converted to ``info``'s version by its conversion
    webhook, one event at a time; (lines, failed): a failed conversion ends the lines with an
    ERROR event carrying the 500 (kube's watch then ends)."""
    out: list[bytes] = []
    for line in data.splitlines():
        event = orjson.loads(line)
        obj = event.get("object")
        if event.get("type") in (ADDED, MODIFIED, DELETED) and isinstance(obj, dict):
            try:
                event["object"] = await server.rest.converted(info, obj)
            except errors.ApiError as exc:
                out.append(event_line(ERROR, orjson.dumps(exc.to_status())))
                return b"".join(out), True
            out.append(orjson.dumps(event) + b"\n")
        else:
            out.append(line + b"\n")
    return b"".join(out), False


async def serve_log(
    server: ServerParts, request: web.Request, rp: ResourcePath
) -> web.StreamResponse:
    """``GET pods/{name}/log``: text/plain from the pod's log buffer; ``follow`` streams."""
    q = request.query
    pod = server.rest.get_existing(rp.info, rp.ns, rp.name)
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    init = [c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []]
    container = q.get("container") or ""
    if not container:
        if len(containers) == 1:
            container = containers[0]
        else:
            choices = " ".join(str(c) for c in containers)
            init_text = " ".join(str(c) for c in init)
            msg = (
                f"a container name must be specified for pod {rp.name}, choose one of: [{choices}]"
            )
            if init:
                msg += f" or one of the init containers: [{init_text}]"
            raise errors.bad_request(msg)
    if container not in containers and container not in init:
        raise errors.bad_request(f"container {container} is not valid for pod {rp.name}")
    follow = parse_bool(q, "follow")
    timestamps = parse_bool(q, "timestamps")
    tail = parse_int(q, "tailLines")
    if parse_bool(q, "previous"):
        raise errors.bad_request(
            f'previous terminated container "{container}" in pod "{rp.name}" not found'
        )
    logs = server.pod_logs
    text, offset = logs.read(rp.ns, rp.name, container, tail_lines=tail, timestamps=timestamps)
    if not follow:
        return web.Response(text=text, content_type="text/plain")
    response = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    if text:
        await response.write(text.encode())
    while True:
        current = server.store.get(rp.info.storage_key, rp.ns, rp.name)
        finished = (
            current is None
            or current["metadata"].get("uid") != pod["metadata"].get("uid")
            or (current.get("status") or {}).get("phase") in _TERMINAL_PHASES
        )
        if not finished:
            await logs.wait(rp.ns, rp.name, server.options.log_follow_poll_seconds)
        text, offset = logs.read(rp.ns, rp.name, container, start=offset, timestamps=timestamps)
        if text:
            await response.write(text.encode())
        if finished:
            break
    await response.write_eof()
    return response
