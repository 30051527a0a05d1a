"""ConversionReview (apiextensions.k8s.io/v1) as converters see it: one object and the version
wanted in, the converted object out.

Why a converter is per object: kube-apiserver sends a CRD's conversion webhook every object it
needs in another version, a list's items in one review, and checks what comes back object by
object (same kind, name, namespace and uid, the desired apiVersion, as many objects as sent, in
order). A converter that sees one object and returns one keeps that contract by construction;
``answer_conversion`` puts the review around it.

The answer: ``response.uid`` the request's, ``result.status: Success`` with
``convertedObjects`` in request order, or ``result.status: Failure`` with a message (the first
object that could not be converted names it; kube then fails the client's request with a 500
``conversion webhook for <gvk> failed: <message>``). A converter raises ``ConversionError`` for
a refusal it means; any other exception is a bug, answered as a Failure too (and logged by the
server), never a dropped connection. A body that is not a v1 ConversionReview with a request,
a uid, a ``desiredAPIVersion`` and a list of objects is ``BadConversionReview`` (the server
answers 400, as controller-runtime does). Only v1 reviews are spoken: a CRD lists
``conversionReviewVersions: [v1]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubetrain.base.objects import Obj

__all__ = [
    "CONVERSION_API_VERSION",
    "BadConversionReview",
    "ConversionError",
    "Converter",
    "answer_conversion",
    "conversion_failure",
    "review_uid",
]

CONVERSION_API_VERSION = "apiextensions.k8s.io/v1"

Converter = Callable[[Obj, str], Obj]
"""Converts one object (as sent, read-only) to ``desiredAPIVersion`` (``group/version``);
returns a new object, or raises ``ConversionError`` with the reason it cannot."""


class ConversionError(Exception):
    """A converter's refusal: the message becomes the review's ``result.message``."""


class BadConversionReview(ValueError):
    """The body is not a ConversionReview this server can answer (HTTP 400)."""


def _request_of(review: object) -> tuple[str, str, list[Any]]:
    """The request's uid, desiredAPIVersion and objects; raises ``BadConversionReview``."""
    if not isinstance(review, dict) or review.get("apiVersion") != CONVERSION_API_VERSION:
        got = review.get("apiVersion") if isinstance(review, dict) else type(review).__name__
        raise BadConversionReview(
            f"expected an {CONVERSION_API_VERSION} ConversionReview, got {got!r}"
        )
    request = review.get("request")
    if review.get("kind") != "ConversionReview" or not isinstance(request, dict):
        raise BadConversionReview("expected a ConversionReview with a request")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadConversionReview("the ConversionReview's request has no uid")
    desired = request.get("desiredAPIVersion")
    if not isinstance(desired, str) or not desired:
        raise BadConversionReview("the ConversionReview's request has no desiredAPIVersion")
    objects = request.get("objects")
    if objects is None:
        objects = []
    if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
        raise BadConversionReview("the ConversionReview's request.objects is not a list of objects")
    return uid, desired, objects


def _review(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": CONVERSION_API_VERSION, "kind": "ConversionReview", "response": response}


def conversion_failure(uid: str, message: str) -> dict[str, Any]:
    """The review answering ``uid`` with a Failure result."""
    return _review(
        {
            "uid": uid,
            "convertedObjects": [],
            "result": {"metadata": {}, "status": "Failure", "message": message},
        }
    )


def answer_conversion(review: object, converter: Converter) -> dict[str, Any]:
    """The ConversionReview answering ``review``: every object through ``converter``.

    Raises ``BadConversionReview`` for a malformed review, and lets a converter's exception
    other than ``ConversionError`` through (the caller logs it and answers a Failure with
    ``conversion_failure``); a ``ConversionError`` becomes a Failure naming the object."""
    uid, desired, objects = _request_of(review)
    converted: list[Obj] = []
    for obj in objects:
        try:
            converted.append(converter(obj, desired))
        except ConversionError as e:
            return conversion_failure(uid, f"{_describe(obj)}: {e}")
    return _review(
        {"uid": uid, "convertedObjects": converted, "result": {"metadata": {}, "status": "Success"}}
    )


def review_uid(review: object) -> str:
    """The request's uid of a review ``_request_of`` accepted ("" otherwise)."""
    request = review.get("request") if isinstance(review, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) else ""


def _describe(obj: Obj) -> str:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    where = "/".join(str(p) for p in (meta.get("namespace"), meta.get("name")) if p)
    return f"{obj.get('kind', '?')} {where or '?'} ({obj.get('apiVersion', '?')})"
