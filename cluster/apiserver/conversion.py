"""CRD conversion webhooks: objects converted between versions by a ``ConversionReview``.

For a CRD with ``conversion.strategy: Webhook`` (``ResourceInfo.conversion``), kube-apiserver
keeps objects in the storage version and converts at the storage boundary: a write converts the
request's object to the storage version before it is stored, a read converts what is stored to
the requested version. An object already in the wanted version is never sent, so requests in
the storage version cost nothing (the stored bytes are served as they are). A list converts all
its items needing it in one review (as kube's webhook converter does for lists); a watch event
is converted on its own.

What kube checks of the answer (``webhook_converter.go``) is checked here with its messages:
response apiVersion/kind ``apiextensions.k8s.io/v1, Kind=ConversionReview``, the uid, a
``Success`` result (else its message), as many objects as sent, each of the desired
apiVersion and the same kind, name, namespace and uid; the metadata is then restored from the
original except labels and annotations. The converted object is pruned and defaulted against
the target version's schema (kube's schema coercion after conversion). Any failure is a 500
with kube's text (``conversion webhook for example.com/v1, Kind=Widget failed: ...``); the
server itself is never affected.
"""

from __future__ import annotations

import binascii
import ssl
import uuid
from typing import Any

import orjson

from . import errors
from .conversion_spec import REVIEW_VERSIONS, ConversionWebhook
from .resources import ResourceInfo
from .webhook_client import WebhookCallError, WebhookClient, ssl_context

__all__ = ["ConversionFailed", "Converter"]

_META_FIELDS = ("labels", "annotations")


class ConversionFailed(Exception):
    """A conversion that could not be done; the text is kube's error string."""


def _gvk(api_version: str, kind: str) -> str:
    """A GroupVersionKind as Go's ``%v`` prints it."""
    return f"{api_version}, Kind={kind}"


class Converter:
    """Calls conversion webhooks through the server's shared ``WebhookClient``."""

    def __init__(self, *, client: WebhookClient) -> None:
        self.client = client
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _context(self, hook: ConversionWebhook) -> ssl.SSLContext:
        key = hook.ca_bundle or ""
        ctx = self._contexts.get(key)
        if ctx is None:
            try:
                ctx = ssl_context(hook.ca_bundle)
            except (binascii.Error, ValueError, ssl.SSLError) as exc:
                raise WebhookCallError(f"invalid caBundle: {exc}") from None
            self._contexts[key] = ctx
        return ctx

    async def convert(
        self, info: ResourceInfo, objs: list[dict[str, Any]], version: str, *, as_list: bool
    ) -> list[dict[str, Any]]:
        """``objs`` (parsed, not shared: they may be reused) in ``info``'s group at ``version``.

        ``as_list``: the objects are a list's items (one review, kube's list messages).
        Raises ``errors.ApiError`` 500 with kube's message when the conversion fails.
        """
        hook = info.conversion
        desired = f"{info.group}/{version}"
        todo = [i for i, o in enumerate(objs) if o.get("apiVersion") != desired]
        if hook is None or not todo:
            for o in objs:
                o["apiVersion"] = desired
            return objs
        source = objs[todo[0]]
        gvk = _gvk(str(source.get("apiVersion") or ""), info.list_kind if as_list else info.kind)
        try:
            converted = await self._call(hook, [objs[i] for i in todo], desired, gvk)
            for n, i in enumerate(todo):
                objs[i] = _checked(objs[i], converted[n], desired, gvk, n, as_list=as_list)
        except ConversionFailed as exc:
            raise errors.ApiError(500, "", str(exc)) from None
        schema = hook.schemas.get(version)
        if schema is not None:
            for i in todo:
                schema.prune(objs[i])
                schema.apply_defaults(objs[i])
        return objs

    async def _call(
        self, hook: ConversionWebhook, objs: list[dict[str, Any]], desired: str, gvk: str
    ) -> list[Any]:
        review_version = next((v for v in hook.review_versions if v in REVIEW_VERSIONS), None)
        if review_version is None:
            raise ConversionFailed("no supported conversion review versions")
        uid = str(uuid.uuid4())
        review = {
            "kind": "ConversionReview",
            "apiVersion": f"apiextensions.k8s.io/{review_version}",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objs},
            "response": {"uid": "", "convertedObjects": None, "result": {"metadata": {}}},
        }
        failed = f"conversion webhook for {gvk} failed"
        try:
            url, server_name = self.client.endpoint(url=hook.url, service=hook.service)
            raw = await self.client.post(
                url=url,
                server_name=server_name,
                context=self._context(hook),
                body=orjson.dumps(review),
                timeout=None,
            )
            answer = orjson.loads(raw)
        except WebhookCallError as exc:
            raise ConversionFailed(f"{failed}: {exc}") from None
        except orjson.JSONDecodeError as exc:
            raise ConversionFailed(f"{failed}: {exc}") from None
        if not isinstance(answer, dict):
            raise ConversionFailed(f"{failed}: the webhook answered with no object")
        got_gvk = _gvk(str(answer.get("apiVersion") or ""), str(answer.get("kind") or ""))
        if review_version == "v1" and got_gvk != _gvk(
            "apiextensions.k8s.io/v1", "ConversionReview"
        ):
            raise ConversionFailed(
                f"{failed}: expected webhook response of apiextensions.k8s.io/v1, "
                f"Kind=ConversionReview, got {got_gvk}"
            )
        response = answer.get("response")
        if not isinstance(response, dict):
            raise ConversionFailed(f"{failed}: no response provided")
        if review_version == "v1" and response.get("uid") != uid:
            raise ConversionFailed(
                f'{failed}: expected response.uid="{uid}", got "{response.get("uid") or ""}"'
            )
        result = response.get("result") or {}
        if not isinstance(result, dict) or result.get("status") != "Success":
            status = result.get("status", "") if isinstance(result, dict) else ""
            message = result.get("message") if isinstance(result, dict) else None
            if message:
                raise ConversionFailed(f"{failed}: {message}")
            raise ConversionFailed(
                f"{failed}: response.result.status was '{status}', not 'Success'"
            )
        converted = response.get("convertedObjects") or []
        if not isinstance(converted, list) or len(converted) != len(objs):
            count = len(converted) if isinstance(converted, list) else 0
            raise ConversionFailed(
                f"conversion webhook for {gvk} returned {count} objects, expected {len(objs)}"
            )
        return converted


def _checked(
    original: dict[str, Any],
    converted: Any,
    desired: str,
    gvk: str,
    index: int,
    *,
    as_list: bool,
) -> dict[str, Any]:
    """``converted`` validated against ``original`` and given its metadata back (kube's
    validateConvertedObject and restoreObjectMeta)."""
    # kube's list path names the index after counting the object (index + 1) here
    where = f"converted object at index {index + 1}" if as_list else "object at index 0"
    prefix = f"conversion webhook for {gvk} returned invalid {where}"
    if not isinstance(converted, dict):
        raise ConversionFailed(f"{prefix}: not an object")
    got = str(converted.get("apiVersion") or "")
    if got != desired:
        raise ConversionFailed(
            f"{prefix}: invalid groupVersion (expected {desired}, received {got})"
        )
    kind, got_kind = original.get("kind"), converted.get("kind")
    if got_kind != kind:
        raise ConversionFailed(f"{prefix}: invalid kind (expected {kind}, received {got_kind})")
    invalid = (
        f"conversion webhook for {gvk} returned invalid converted object at index {index}"
        if as_list
        else f"conversion webhook for {gvk} returned invalid object"
    )
    meta = original.get("metadata") or {}
    new_meta = converted.get("metadata")
    new_meta_map = new_meta if isinstance(new_meta, dict) else {}
    for fld, label in (("name", "name"), ("namespace", "namespace"), ("uid", "UID")):
        want, have = meta.get(fld) or "", new_meta_map.get(fld) or ""
        if want != have:
            raise ConversionFailed(f"{invalid}: must have the same {label}: {want} != {have}")
    bad_meta = (
        f"conversion webhook for {gvk} returned invalid metadata in object at index {index}"
        if as_list
        else f"conversion webhook for {gvk} returned invalid metadata"
    )
    if new_meta is None:
        raise ConversionFailed(f"{bad_meta}: missing metadata in converted object")
    restored = orjson.loads(orjson.dumps(meta))
    for fld in _META_FIELDS:
        value = new_meta_map.get(fld)
        if value is None:
            restored.pop(fld, None)
            continue
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConversionFailed(f"{bad_meta}: metadata.{fld} must be a map of strings")
        restored[fld] = value
    converted["metadata"] = restored
    return converted
