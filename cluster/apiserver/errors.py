"""API errors as kube-apiserver reports them: a ``Status`` object with the same code and reason.

Clients branch on ``reason``/``code`` (kubernetes-asyncio's ``ApiException.status``, client-go's
``IsNotFound``/``IsConflict``) and people read ``message``, so both follow
``k8s.io/apimachinery/pkg/api/errors`` word for word.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "ApiError",
    "GroupResource",
    "already_exists",
    "bad_request",
    "conflict",
    "expired",
    "forbidden",
    "internal",
    "invalid",
    "method_not_supported",
    "not_acceptable",
    "not_found",
    "not_found_path",
    "request_entity_too_large",
    "too_many_requests",
    "unsupported_media_type",
]


class GroupResource(Protocol):
    """Anything naming a resource: a ``ResourceInfo`` or a small stand-in."""

    @property
    def group(self) -> str: ...

    @property
    def plural(self) -> str: ...


class ApiError(Exception):
    """An error answered to the client as a ``Status`` with HTTP ``code``.

    ``details`` is the Status ``details`` dict (name, group, kind, causes, retryAfterSeconds).
    ``headers`` are extra response headers (``Retry-After`` for 429).
    """

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})

    def to_status(self) -> dict[str, Any]:
        """The ``Status`` object (apiVersion v1, kind Status, status Failure)."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"


def _qualified(res: GroupResource) -> str:
    return f"{res.plural}.{res.group}" if res.group else res.plural


def _details(res: GroupResource, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": res.plural}
    if res.group:
        details["group"] = res.group
    return details


def not_found(res: GroupResource, name: str) -> ApiError:
    """404 NotFound: ``pods "x" not found``."""
    return ApiError(
        404, "NotFound", f'{_qualified(res)} "{name}" not found', details=_details(res, name)
    )


def not_found_path() -> ApiError:
    """404 NotFound for a path the server does not serve."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


def already_exists(res: GroupResource, name: str) -> ApiError:
    """409 AlreadyExists: ``pytorchjobs.kubeflow.org "x" already exists``."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(res)} "{name}" already exists',
        details=_details(res, name),
    )


def conflict(res: GroupResource, name: str, detail: str | None = None) -> ApiError:
    """409 Conflict: ``Operation cannot be fulfilled on pods "x": <detail>``.

    ``detail`` defaults to the optimistic-concurrency text.
    """
    text = detail or (
        "the object has been modified; please apply your changes to the latest version and try again"
    )
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(res)} "{name}": {text}',
        details=_details(res, name),
    )


def invalid(kind: str, group: str, name: str, causes: Sequence[Mapping[str, str]]) -> ApiError:
    """422 Invalid: ``PyTorchJob.kubeflow.org "x" is invalid: spec.y: Invalid value: ...``.

    ``causes`` are StatusCause dicts (``reason``, ``message``, ``field``); ``message`` is the
    ``field.Error`` body (what follows ``<field>: ``), as ``schema.Cause.to_dict`` gives it.
    """
    qualified_kind = f"{kind}.{group}" if group else kind
    texts = [f"{c['field']}: {c['message']}" if c.get("field") else c["message"] for c in causes]
    body = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": [dict(c) for c in causes]}
    if group:
        details["group"] = group
    return ApiError(
        422, "Invalid", f'{qualified_kind} "{name}" is invalid: {body}', details=details
    )


def bad_request(message: str) -> ApiError:
    """400 BadRequest with ``message`` as is."""
    return ApiError(400, "BadRequest", message)


def method_not_supported(res: GroupResource, verb: str) -> ApiError:
    """405 MethodNotAllowed: ``<verb> is not supported on resources of kind "<plural>"``."""
    details: dict[str, Any] = {"kind": res.plural}
    if res.group:
        details["group"] = res.group
    return ApiError(
        405,
        "MethodNotAllowed",
        f'{verb} is not supported on resources of kind "{_qualified(res)}"',
        details=details,
    )


def expired(message: str) -> ApiError:
    """410 Expired (a too old resourceVersion or continue token)."""
    return ApiError(410, "Expired", message)


def too_many_requests(message: str, retry_after: int) -> ApiError:
    """429 TooManyRequests with a ``Retry-After`` header and ``details.retryAfterSeconds``."""
    return ApiError(
        429,
        "TooManyRequests",
        message,
        details={"retryAfterSeconds": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def request_entity_too_large(limit: int) -> ApiError:
    """413 RequestEntityTooLarge: ``Request entity too large: limit is 3145728`` (a body over
    kube-apiserver's ``MaxRequestBodyBytes``)."""
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def internal(message: str) -> ApiError:
    """500 InternalError: ``Internal error occurred: <message>``."""
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {message}",
        details={"causes": [{"message": message}]},
    )


def unsupported_media_type(content_type: str, accepted: Sequence[str]) -> ApiError:
    """415 UnsupportedMediaType naming the accepted media types."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
        details={"causes": [{"message": f"unsupported content type {content_type!r}"}]},
    )


def not_acceptable(accepted: Sequence[str]) -> ApiError:
    """406 NotAcceptable for an Accept header the server cannot satisfy."""
    return ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: " + ", ".join(accepted),
    )


def forbidden(res: GroupResource, name: str, detail: str) -> ApiError:
    """403 Forbidden: ``pods "x" is forbidden: <detail>``."""
    return ApiError(
        403,
        "Forbidden",
        f'{_qualified(res)} "{name}" is forbidden: {detail}',
        details=_details(res, name),
    )
