"""TokenReview and SubjectAccessReview: the two review APIs a delegating server needs.

Why here: an operator serving ``/metrics`` with ``--metrics-secure`` (``engine/metrics_auth.py``,
controller-runtime's ``filters.WithAuthenticationAndAuthorization``) asks the API server who a
scraper's bearer token belongs to (``POST /apis/authentication.k8s.io/v1/tokenreviews``) and
whether that user may ``get /metrics`` (``POST /apis/authorization.k8s.io/v1/subjectaccessreviews``).
The embedded server answers both so the secure path runs locally and in tests.

Both are create-only and never stored: the answer is the posted object with its ``status``
filled, ``201 Created``, as kube-apiserver answers.

Policies of the embedded server (it has no RBAC):

- **TokenReview**: a service-account token this server issued (``tokenrequest.py``) is
  reviewed there, ``spec.audiences`` included. A token of ``ApiServerOptions.tokens`` is
  authenticated as its user, with the group ``system:authenticated``, when the review asks for
  no audiences or for the API server's own (``API_AUDIENCE``; kube's audience-agnostic tokens);
  any other token is not (``status.error`` says why). Without a tokens table every other token
  is unauthenticated: there is nothing to check a token against, and answering "yes" to
  anything would make ``--metrics-secure`` a no-op.
- **SubjectAccessReview**: ``ApiServerOptions.authorizer`` decides when set (a function of the
  review's ``spec`` returning ``(allowed, reason)``; tests use it to deny someone); else every
  subject in the group ``system:authenticated`` is allowed and any other subject is not.

Validation is kube's: an empty ``spec.token`` is 400; a SubjectAccessReview needs a user or a
group and exactly one of ``resourceAttributes`` and ``nonResourceAttributes`` (422 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import errors
from .options import Authorizer
from .resources import ResourceInfo, StorageKey
from .serving import ServerParts
from .tokenrequest import API_AUDIENCE
from .tokenrequest import review as review_token

__all__ = [
    "AUTHENTICATED_GROUP",
    "REVIEW_RESOURCES",
    "Authorizer",
    "answer_review",
    "default_authorizer",
    "subject_access_review",
    "token_review",
]

AUTHENTICATED_GROUP = "system:authenticated"

TOKEN_REVIEWS: StorageKey = ("authentication.k8s.io", "tokenreviews")
SUBJECT_ACCESS_REVIEWS: StorageKey = ("authorization.k8s.io", "subjectaccessreviews")
#: The storage keys answered by ``handle_review`` instead of the object store.
REVIEW_RESOURCES = frozenset({TOKEN_REVIEWS, SUBJECT_ACCESS_REVIEWS})


def default_authorizer(spec: Mapping[str, Any]) -> tuple[bool, str]:
    """No RBAC here: every authenticated subject is allowed, anyone else is not."""
    if AUTHENTICATED_GROUP in (spec.get("groups") or ()):
        return True, "kubetrain embedded API server: every authenticated user is allowed"
    return False, ""


def token_review(
    tokens: Mapping[str, str] | None,
    body: Mapping[str, Any],
    service_accounts: Callable[[str, list[str]], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """The answered TokenReview (``body`` with its ``status``); raises 400 without a token.
    ``service_accounts``: ``(token, audiences) -> status`` of a service-account token, None
    when it is not one (``tokenrequest.review``)."""
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    token = spec.get("token") if isinstance(spec, dict) else None
    if not isinstance(token, str) or not token:
        raise errors.bad_request("token is required for TokenReview in authentication")
    audiences = spec.get("audiences") if isinstance(spec, dict) else None
    wanted = [a for a in audiences if isinstance(a, str)] if isinstance(audiences, list) else []
    found = service_accounts(token, wanted) if service_accounts is not None else None
    if found is not None:
        return _answered(body, "authentication.k8s.io/v1", "TokenReview", found)
    user = tokens.get(token) if tokens is not None else None
    status: dict[str, Any]
    if user is not None and wanted and API_AUDIENCE not in wanted:
        status = {"user": {}, "error": f"token audiences are invalid for {wanted!r}"}
    elif user is not None and wanted:
        status = {
            "authenticated": True,
            "user": {"username": user, "groups": [AUTHENTICATED_GROUP]},
            "audiences": [API_AUDIENCE],
        }
    elif user is not None:
        status = {
            "authenticated": True,
            "user": {"username": user, "groups": [AUTHENTICATED_GROUP]},
        }
    elif tokens is None:
        status = {"user": {}, "error": "token authentication is off (no tokens configured)"}
    else:
        status = {"user": {}, "error": "invalid bearer token"}
    return _answered(body, "authentication.k8s.io/v1", "TokenReview", status)


def subject_access_review(authorizer: Authorizer | None, body: Mapping[str, Any]) -> dict[str, Any]:
    """The answered SubjectAccessReview; raises 422 for a spec kube refuses."""
    spec = body.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    causes: list[dict[str, str]] = []
    has_resource = spec.get("resourceAttributes") is not None
    has_non_resource = spec.get("nonResourceAttributes") is not None
    if has_resource and has_non_resource:
        causes.append(
            _cause(
                "spec.nonResourceAttributes",
                'Invalid value: "null": cannot be specified in combination with resourceAttributes',
            )
        )
    elif not has_resource and not has_non_resource:
        causes.append(
            _cause(
                "spec.resourceAttributes",
                'Invalid value: "null": exactly one of nonResourceAttributes or '
                "resourceAttributes must be specified",
            )
        )
    if not spec.get("user") and not spec.get("groups"):
        causes.append(
            _cause(
                "spec.user",
                'Invalid value: "": at least one of user or group must be specified',
            )
        )
    if causes:
        raise errors.invalid("SubjectAccessReview", "authorization.k8s.io", "", causes)
    allowed, reason = (authorizer or default_authorizer)(spec)
    status: dict[str, Any] = {"allowed": bool(allowed)}
    if reason:
        status["reason"] = reason
    return _answered(body, "authorization.k8s.io/v1", "SubjectAccessReview", status)


def answer_review(server: ServerParts, info: ResourceInfo, body: Any) -> dict[str, Any]:
    """The answer to a review ``body`` POSTed to ``info``'s collection (a storage key of
    ``REVIEW_RESOURCES``); raises 400 for a body that is not that kind of review."""
    kind = "TokenReview" if info.storage_key == TOKEN_REVIEWS else "SubjectAccessReview"
    if not isinstance(body, dict) or body.get("kind", kind) != kind:
        got = body.get("kind") if isinstance(body, dict) else type(body).__name__
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type {kind}): {got}"
        )
    if kind == "TokenReview":
        clock = server.options.clock
        return token_review(
            server.options.tokens,
            body,
            lambda token, audiences: review_token(server.store, token, audiences, clock.utcnow()),
        )
    return subject_access_review(server.options.authorizer, body)


def _cause(field: str, message: str) -> dict[str, str]:
    return {"reason": "FieldValueInvalid", "message": message, "field": field}


def _answered(
    body: Mapping[str, Any], api_version: str, kind: str, status: dict[str, Any]
) -> dict[str, Any]:
    answer = dict(body)
    answer["apiVersion"] = api_version
    answer["kind"] = kind
    meta = answer.get("metadata")
    answer["metadata"] = dict(meta) if isinstance(meta, dict) else {}
    answer["metadata"].setdefault("creationTimestamp", None)
    answer["status"] = status
    return answer
