"""What a request is about (verb, resource, namespace...), parsed once from its URL.

Fault rules and request metrics both classify requests the way kube-apiserver's
``RequestInfoFactory`` does, before routing and without the resource registry (an unknown
resource is still classified; routing answers 404 later). The result is cached on the request,
so the middlewares that need it pay for the parse once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

from aiohttp import web

from .query import parse_bool

__all__ = ["RequestInfo", "request_info"]

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_APPLY_PATCH = "application/apply-patch+yaml"
_NO_QUERY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """One request, classified.

    ``verb`` is kube's lowercase authorization verb (get, list, watch, create, update, patch,
    delete, deletecollection); ``metrics_verb`` the uppercase one apiserver metrics report (GET,
    LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE, DELETECOLLECTION). ``namespace`` is "" for
    cluster-scoped and all-namespaces requests. ``scope`` is kube's metric scope label
    (resource, namespace or cluster).
    """

    verb: str
    metrics_verb: str
    group: str
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    scope: str
    dry_run: bool


_KEY: web.RequestKey[RequestInfo | None] = web.RequestKey("kubetrain_request_info")
_UNSET = object()


_MEMO_SIZE = 4096
# (method, path, query string, content type) -> RequestInfo: what a request is about depends on
# nothing else, and clients repeat the same requests (every create of a kind POSTs to one path)
_memo: dict[tuple[str, str, str, str], RequestInfo | None] = {}


def request_info(request: web.Request) -> RequestInfo | None:
    """The request's ``RequestInfo``; None for non-resource requests (discovery, /metrics...).

    Cached on the request: safe to call from several middlewares; and recent classifications
    are remembered by URL, method and content type (``RequestInfo`` is immutable).
    """
    known = request.get(_KEY, _UNSET)  # not ``request[_KEY]``: a KeyError costs more
    if known is not _UNSET:
        return cast(RequestInfo | None, known)
    memo_key = (request.method, request.raw_path, request.query_string, request.content_type)
    try:
        info = _memo[memo_key]
    except KeyError:
        info = _parse(request)
        if len(_memo) >= _MEMO_SIZE:
            _memo.clear()
        _memo[memo_key] = info
    request[_KEY] = info
    return info


def _parse(request: web.Request) -> RequestInfo | None:
    parts = [p for p in request.path.split("/") if p]
    if len(parts) < 3:
        return None
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if resource == "namespaces" and name:
        namespace = ""  # a namespace object is cluster-scoped
    method = request.method
    # most requests carry no query string: then nothing needs parsing
    query: Mapping[str, str] = request.query if request.query_string else _NO_QUERY
    if method == "GET":
        if parse_bool(query, "watch"):
            verb, metrics_verb = "watch", "WATCH"
        elif name:
            verb, metrics_verb = "get", "GET"
        else:
            verb, metrics_verb = "list", "LIST"
    elif method == "POST":
        verb, metrics_verb = "create", "POST"
    elif method == "PUT":
        verb, metrics_verb = "update", "PUT"
    elif method == "PATCH":
        verb = "patch"
        metrics_verb = "APPLY" if request.content_type == _APPLY_PATCH else "PATCH"
    elif method == "DELETE":
        verb, metrics_verb = (
            ("delete", "DELETE") if name else ("deletecollection", "DELETECOLLECTION")
        )
    else:
        verb, metrics_verb = method.lower(), method
    if name or verb == "create":
        scope = "resource"
    elif namespace:
        scope = "namespace"
    else:
        scope = "cluster"
    return RequestInfo(
        verb=verb,
        metrics_verb=metrics_verb,
        group=group,
        version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        scope=scope,
        dry_run=query.get("dryRun", "") == "All",
    )
