"""HTTP handlers for resource paths: GET/LIST, POST, PUT, PATCH, DELETE and deletecollection,
plus the status, scale, binding and finalize subresources.

Parsing and response shaping live here; object semantics live in ``rest.ObjectService``.
Stored objects are answered with the bytes the store keeps for them (``store.Record``): a GET
sends them as they are, a LIST joins them (``list_body``), a write answers with the bytes it
just committed (``ObjectService.encode``). Only a Table, a scale or a version other than the
stored one needs an object parsed.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from . import errors
from .bodies import load_json, load_yaml, read_body
from .decoding import check_delete_options_types
from .http_json import json_bytes_response, json_response
from .patch import PatchError, json_patch, merge_patch
from .protobuf import PROTOBUF, ProtobufError, decode_object
from .query import (
    decode_continue,
    encode_continue,
    parse_bool,
    parse_dry_run,
    parse_field_validation,
    parse_int,
    parse_resource_version,
)
from .resources import ResourceInfo
from .rest import served_bytes
from .rest_common import DeleteOptions, WriteOptions
from .reviews import REVIEW_RESOURCES, answer_review
from .serving import ResourcePath, ServerParts, parse_selectors
from .store import API_VERSION, DATA, Record
from .streams import serve_log, serve_watch
from .tables import to_table, wants_table
from .tokenrequest import issue_token

__all__ = ["handle_resource", "list_body", "read_json"]

_LIMIT_CAP = 1 << 62


def _warn_headers(warnings: list[str]) -> CIMultiDict[str] | None:
    """One ``Warning: 299 - "<text>"`` header per warning, as kube-apiserver sends them."""
    if not warnings:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    for text in warnings:
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        headers.add("Warning", f'299 - "{escaped}"')
    return headers


_BODY_TYPES = ("application/json", "application/yaml", PROTOBUF)


async def read_json(request: web.Request) -> Any:
    """The request body parsed as JSON (YAML accepted for ``application/yaml``): a new tree the
    caller owns (the write path takes it over, ``owned=True``, instead of copying it).

    A body without a Content-Type is JSON, as for kube; any type but JSON (``+json`` patch
    types too, for the scale subresource), YAML and protobuf is 415 UnsupportedMediaType."""
    ctype = request.content_type
    if ctype == PROTOBUF:
        try:
            return decode_object(await read_body(request))
        except ProtobufError as exc:
            raise errors.unsupported_media_type(
                ctype, ("application/json", "application/yaml")
            ) from exc
    if "protobuf" in ctype or "cbor" in ctype:
        raise errors.unsupported_media_type(ctype, ("application/json", "application/yaml"))
    is_yaml = ctype in ("application/yaml", "application/apply-patch+yaml")
    if not (
        is_yaml
        or ctype == "application/json"
        or ctype.endswith("+json")
        or "Content-Type" not in request.headers
    ):
        raise errors.unsupported_media_type(ctype, _BODY_TYPES)
    raw = await read_body(request)
    if not raw:
        raise errors.bad_request("the request body is empty")
    if is_yaml:
        return load_yaml(raw)
    return load_json(raw, "couldn't get version/kind; json parse error")


def _write_options(request: web.Request) -> WriteOptions:
    if not request.query_string:
        return WriteOptions()  # most writes: nothing to parse
    q = request.query
    return WriteOptions(
        dry_run=parse_dry_run(q),
        field_validation=parse_field_validation(q),
        field_manager=q.get("fieldManager", ""),
        force=parse_bool(q, "force"),
    )


async def handle_resource(
    server: ServerParts, request: web.Request, rp: ResourcePath
) -> web.StreamResponse:
    """Dispatch a resource request by method, collection/item and subresource."""
    method = request.method
    info = rp.info
    if info.storage_key in REVIEW_RESOURCES:
        return await _review(server, request, rp)
    if rp.subresource:
        return await _handle_subresource(server, request, rp)
    if not rp.name:
        if method == "GET":
            if parse_bool(request.query, "watch"):
                return await serve_watch(server, request, rp)
            return await _list(server, request, rp)
        if method == "POST":
            return await _create(server, request, rp)
        if method == "DELETE":
            return await _delete_collection(server, request, rp)
        raise errors.method_not_supported(info, _verb(method, collection=True))
    if method == "GET":
        parse_resource_version(request.query)
        if info.conversion is not None:
            encoded = await server.rest.get_converted(info, rp.ns, rp.name)
        else:
            encoded = server.rest.get_encoded(info, rp.ns, rp.name)
        if wants_table(request):  # ``kubectl get KIND NAME``: one row, the CRD's columns
            return json_response(to_table(info, [orjson.loads(encoded)], {}, request))
        return json_bytes_response(encoded)
    if method == "PUT":
        opts = _write_options(request)
        body = await read_json(request)
        obj = await server.rest.update(info, rp.ns, rp.name, body, opts, owned=True)
        return json_bytes_response(
            (
                server.rest.encode(info, obj)
                if info.conversion is None
                else await server.rest.encode_converted(info, obj)
            ),
            headers=_warn_headers(opts.warnings),
        )
    if method == "PATCH":
        return await _patch(server, request, rp, subresource="")
    if method == "DELETE":
        return await _delete(server, request, rp)
    raise errors.method_not_supported(info, _verb(method, collection=False))


async def _review(server: ServerParts, request: web.Request, rp: ResourcePath) -> web.Response:
    """A TokenReview or SubjectAccessReview (``reviews.py``): POST to the collection only."""
    if rp.name or rp.subresource:
        raise errors.not_found_path()
    if request.method != "POST":
        raise errors.method_not_supported(rp.info, _verb(request.method, collection=True))
    answer = answer_review(server, rp.info, await read_json(request))
    return json_response(answer, status=201)


def list_body(info: ResourceInfo, meta: dict[str, Any], records: list[Record]) -> bytes:
    """A List as kube serializes it (apiVersion, kind, metadata, items), its items the records'
    stored bytes joined as they are: no item is parsed or serialized again."""
    head = orjson.dumps({"apiVersion": info.api_version, "kind": info.list_kind, "metadata": meta})
    version = info.api_version
    items = b",".join([served_bytes(rec, version) for rec in records])
    return b"".join((head[:-1], b',"items":[', items, b"]}"))


def _verb(method: str, *, collection: bool) -> str:
    return {
        "GET": "list" if collection else "get",
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "deletecollection" if collection else "delete",
    }.get(method, method.lower())


async def _list(server: ServerParts, request: web.Request, rp: ResourcePath) -> web.Response:
    q = request.query
    info = rp.info
    lsel, fsel = parse_selectors(info, q)
    parse_resource_version(q)
    # the store slices ``limit + 1`` records: a limit past any store's size is no limit
    limit = min(parse_int(q, "limit") or 0, _LIMIT_CAP)
    token = q.get("continue")
    list_rv = server.store.rv
    after = None
    if token:
        token_rv, after = decode_continue(token)
        if server.hub.is_expired(info.storage_key, token_rv):
            raise errors.expired(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter, or use the continue "
                "token in this response to retrieve the remainder of the results. Continuing with "
                "the provided token results in an inconsistent list - objects that were created, "
                "modified, or deleted between the time the first chunk was returned and now may "
                "show up in the list."
            )
        list_rv = token_rv
    records, last, remaining = server.store.list_records(
        info.storage_key,
        rp.namespace if info.namespaced else None,
        label_selector=lsel,
        field_selector=fsel,
        limit=limit,
        after=after,
    )
    meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
    if last is not None:
        meta["continue"] = encode_continue(list_rv, last)
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    if info.conversion is not None and any(rec[API_VERSION] != info.api_version for rec in records):
        assert server.rest.converter is not None
        objs = [orjson.loads(rec[DATA]) for rec in records]
        items = await server.rest.converter.convert(info, objs, info.version, as_list=True)
        if wants_table(request):
            return json_response(to_table(info, items, meta, request))
        head = {"apiVersion": info.api_version, "kind": info.list_kind, "metadata": meta}
        return json_response({**head, "items": items})
    if wants_table(request):
        items = [server.rest.present(info, orjson.loads(rec[DATA])) for rec in records]
        return json_response(to_table(info, items, meta, request))
    return json_bytes_response(list_body(info, meta, records))


async def _create(server: ServerParts, request: web.Request, rp: ResourcePath) -> web.Response:
    info = rp.info
    if info.namespaced and not rp.namespace:
        raise errors.method_not_supported(info, "create")
    opts = _write_options(request)
    body = await read_json(request)
    obj = await server.rest.create(info, rp.ns, body, opts, owned=True)
    return json_bytes_response(
        (
            server.rest.encode(info, obj)
            if info.conversion is None
            else await server.rest.encode_converted(info, obj)
        ),
        status=201,
        headers=_warn_headers(opts.warnings),
    )


async def _patch(
    server: ServerParts, request: web.Request, rp: ResourcePath, *, subresource: str
) -> web.Response:
    opts = _write_options(request)
    raw = await read_body(request)
    obj, created = await server.rest.patch(
        rp.info,
        rp.ns,
        rp.name,
        request.content_type,
        raw,
        opts,
        subresource=subresource,
        parse_json=_patch_json,
    )
    return json_bytes_response(
        (
            server.rest.encode(rp.info, obj)
            if rp.info.conversion is None
            else await server.rest.encode_converted(rp.info, obj)
        ),
        status=201 if created else 200,
        headers=_warn_headers(opts.warnings),
    )


def _patch_json(raw: bytes) -> Any:
    return load_json(raw, "error decoding patch")


async def _delete_options(request: web.Request) -> DeleteOptions:
    q = request.query
    opts = DeleteOptions(
        propagation_policy=q.get("propagationPolicy") or None,
        grace_period_seconds=parse_int(q, "gracePeriodSeconds"),
        dry_run=parse_dry_run(q),
    )
    if parse_bool(q, "orphanDependents", False) and opts.propagation_policy is None:
        opts.propagation_policy = "Orphan"
    if request.can_read_body:
        raw = await read_body(request)
        if request.content_type == PROTOBUF:  # typed Go clients (controller-runtime's)
            try:
                _body_delete_options(decode_object(raw), opts)
            except ProtobufError as exc:
                raise errors.bad_request(f"invalid DeleteOptions: {exc}") from exc
        elif raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise errors.bad_request(f"invalid DeleteOptions: {exc}") from exc
            if body is not None:
                _body_delete_options(body, opts)
    return opts


def _body_delete_options(body: Any, opts: DeleteOptions) -> None:
    """Fold a DeleteOptions body into ``opts``; 400 for a field of the wrong type (as kube's
    decoding), 422 for a dryRun other than ``All``."""
    problem = check_delete_options_types(body)
    if problem is not None:
        raise errors.bad_request(problem)
    if body.get("propagationPolicy"):
        opts.propagation_policy = body["propagationPolicy"]
    elif body.get("orphanDependents") is True and opts.propagation_policy is None:
        opts.propagation_policy = "Orphan"
    if body.get("gracePeriodSeconds") is not None:
        opts.grace_period_seconds = body["gracePeriodSeconds"]
    pre = body.get("preconditions") or {}
    opts.precondition_uid = pre.get("uid")
    opts.precondition_rv = pre.get("resourceVersion")
    for value in body.get("dryRun") or ():
        opts.dry_run = parse_dry_run({"dryRun": value})  # True, or 422 for all but "All"


async def _delete(server: ServerParts, request: web.Request, rp: ResourcePath) -> web.Response:
    options = await _delete_options(request)
    result, _gone = await server.rest.delete(rp.info, rp.ns, rp.name, options)
    if rp.info.conversion is not None and result.get("kind") == rp.info.kind:
        result = await server.rest.converted(rp.info, result)
    return json_response(result)


async def _delete_collection(
    server: ServerParts, request: web.Request, rp: ResourcePath
) -> web.Response:
    info = rp.info
    if "deletecollection" not in info.verbs:
        raise errors.method_not_supported(info, "deletecollection")
    lsel, fsel = parse_selectors(info, request.query)
    options = await _delete_options(request)
    items, _, _ = server.store.list(
        info.storage_key,
        rp.namespace if info.namespaced else None,
        label_selector=lsel,
        field_selector=fsel,
    )
    out: list[dict[str, Any]] = []
    for obj in items:
        meta = obj["metadata"]
        try:
            result, gone = await server.rest.delete(
                info, meta.get("namespace", ""), meta["name"], options
            )
        except errors.ApiError as exc:
            if exc.code == 404:
                continue
            raise
        if not gone or result.get("kind") != "Status":
            out.append(server.rest.present(info, result if not gone else obj))
        else:
            out.append(server.rest.present(info, obj))
    return json_response(
        {
            "apiVersion": info.api_version,
            "kind": info.list_kind,
            "metadata": {"resourceVersion": str(server.store.rv)},
            "items": out,
        }
    )


# -- subresources ------------------------------------------------------------------------------


async def _handle_subresource(
    server: ServerParts, request: web.Request, rp: ResourcePath
) -> web.StreamResponse:
    info = rp.info
    sub = rp.subresource
    method = request.method
    if sub not in info.subresources:
        raise errors.not_found_path()
    if sub == "log":
        if method != "GET":
            raise errors.method_not_supported(info, _verb(method, collection=False))
        return await serve_log(server, request, rp)
    if sub == "binding":
        if method != "POST":
            raise errors.method_not_supported(info, _verb(method, collection=False))
        body = await read_json(request)
        return json_response(await server.rest.bind(info, rp.ns, rp.name, body), status=201)
    if sub == "scale":
        return await _scale(server, request, rp)
    if sub == "token":  # serviceaccounts/token: a TokenRequest (tokenrequest.py)
        if method != "POST":
            raise errors.method_not_supported(info, _verb(method, collection=False))
        body = await read_json(request)
        now = server.options.clock.utcnow()
        answer = issue_token(server.store, info, rp.ns, rp.name, body, now)
        return json_response(answer, status=201)
    if sub in ("status", "finalize"):
        if method == "GET" and sub == "status":
            if info.conversion is not None:
                return json_bytes_response(await server.rest.get_converted(info, rp.ns, rp.name))
            return json_bytes_response(server.rest.get_encoded(info, rp.ns, rp.name))
        if method == "PUT":
            opts = _write_options(request)
            body = await read_json(request)
            obj = await server.rest.update(
                info, rp.ns, rp.name, body, opts, subresource=sub, require_rv=False, owned=True
            )
            return json_bytes_response(
                (
                    server.rest.encode(info, obj)
                    if info.conversion is None
                    else await server.rest.encode_converted(info, obj)
                ),
                headers=_warn_headers(opts.warnings),
            )
        if method == "PATCH" and sub == "status":
            return await _patch(server, request, rp, subresource="status")
    raise errors.method_not_supported(info, _verb(method, collection=False))


def _get_path(obj: Any, path: str) -> Any:
    node = obj
    for part in path.lstrip(".").split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    parts = path.lstrip(".").split(".")
    node = obj
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


def _scale_of(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    assert info.scale is not None
    meta = obj["metadata"]
    status: dict[str, Any] = {"replicas": _get_path(obj, info.scale.status_replicas) or 0}
    if info.scale.label_selector:
        selector = _get_path(obj, info.scale.label_selector)
        if selector is not None:
            status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": _get_path(obj, info.scale.spec_replicas) or 0},
        "status": status,
    }


async def _scale(server: ServerParts, request: web.Request, rp: ResourcePath) -> web.Response:
    info = rp.info
    assert info.scale is not None
    obj = server.rest.get_existing(info, rp.ns, rp.name)
    if request.method == "GET":
        return json_response(_scale_of(info, obj))
    if request.method not in ("PUT", "PATCH"):
        raise errors.method_not_supported(info, _verb(request.method, collection=False))
    current = _scale_of(info, obj)
    if request.method == "PUT":
        scale = await read_json(request)
    else:
        patch_doc = await read_json(request)
        try:
            if request.content_type == "application/json-patch+json":
                scale = json_patch(current, patch_doc)
            else:
                scale = merge_patch(current, patch_doc)
        except PatchError as exc:
            raise errors.ApiError(422, "Invalid", str(exc)) from exc
    replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise errors.invalid(
            "Scale",
            "autoscaling",
            rp.name,
            [
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {replicas}: must be greater than or equal to 0",
                    "field": "spec.replicas",
                }
            ],
        )
    rv = (scale.get("metadata") or {}).get("resourceVersion")
    if request.method == "PUT" and rv and rv != obj["metadata"]["resourceVersion"]:
        raise errors.conflict(info, rp.name)
    new = server.rest.stored_copy(info, obj)
    _set_path(new, info.scale.spec_replicas, replicas)
    new["metadata"].pop("resourceVersion", None)
    opts = _write_options(request)
    stored = await server.rest.update(info, rp.ns, rp.name, new, opts, require_rv=False, owned=True)
    return json_response(_scale_of(info, stored))
