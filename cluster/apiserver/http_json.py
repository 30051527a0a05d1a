"""JSON over HTTP: the content type and the one way every part of the server answers JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

__all__ = ["JSON", "json_bytes_response", "json_response"]

JSON = "application/json"


def json_response(
    obj: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An ``application/json`` response serialized with orjson."""
    return web.Response(body=orjson.dumps(obj), status=status, content_type=JSON, headers=headers)


def json_bytes_response(
    data: bytes, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An ``application/json`` response of already serialized JSON (a stored object's bytes)."""
    return web.Response(body=data, status=status, content_type=JSON, headers=headers)
