"""Pod logs for the page: the API server's ``pods/{name}/log``, streamed through.

Only a pod the dashboard has filed under the job may be read (the handler checks the index), so
the endpoint cannot be used to read any pod the user's credentials reach. Without ``follow`` the
answer is read whole; with it, lines are written to the page as the API server sends them.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from kubetrain.engine.client import ApiClient
from kubetrain.informers.resource import PODS

__all__ = ["log_query", "stream_log"]

_FLAGS = ("follow", "previous", "timestamps")


def log_query(params: Mapping[str, str]) -> dict[str, str]:
    """The API server's query from the page's (``container``, ``follow``, ``previous``,
    ``tailLines``); ValueError naming a bad value."""
    query: dict[str, str] = {}
    container = params.get("container")
    if container:
        query["container"] = container
    for name in _FLAGS:
        value = params.get(name)
        if value is None or value == "":
            continue
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        if value.lower() in ("true", "1"):
            query[name] = "true"
    tail = params.get("tailLines")
    if tail:
        if not tail.isdigit():
            raise ValueError(f"tailLines must be a whole number, got {tail!r}")
        query["tailLines"] = tail
    return query


async def stream_log(
    request: web.Request, client: ApiClient, namespace: str, pod: str, query: dict[str, str]
) -> web.StreamResponse:
    """Answer ``request`` with the log of ``namespace/pod``; ApiStatusError before any byte."""
    path = PODS.item_path(namespace, pod, "log")
    if query.get("follow") != "true":
        body = await client.request_bytes("GET", path, query=query)
        return web.Response(body=body, content_type="text/plain", charset="utf-8")
    async with client.stream_lines(path, query=query, keep_blank=True) as lines:
        response = web.StreamResponse(
            headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        async for line in lines:
            await response.write(line + b"\n")
        await response.write_eof()
        return response
