"""Service-account tokens: the ``serviceaccounts/token`` subresource (TokenRequest) and their
TokenReview, audiences included.

Why here: the trainer status server (``reconcilers/trainer/status_server.py``) accepts only a
token of a service account, bound to one TrainJob's audience, and asks the API server about it
with a TokenReview carrying that audience. The kubelet gets such tokens through TokenRequest for
a projected volume; tests ask for them the same way, so the embedded server issues and reviews
them as kube-apiserver does, minimally:

- ``POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`` with a ``TokenRequest``: the
  ServiceAccount must exist (404); ``spec.audiences`` defaults to the API server's audience
  (``API_AUDIENCE``), ``spec.expirationSeconds`` to 3600 and must be 600..2^32 (422). The answer
  is the request with ``status.token`` and ``status.expirationTimestamp``, ``201``.
- The token is a JWT (HS256 with a key of this process, so it means nothing to another cluster)
  whose claims are kube's: ``iss``, ``sub`` = ``system:serviceaccount:<ns>:<name>``, ``aud``,
  ``exp``, ``iat``, ``nbf`` and ``kubernetes.io{namespace, serviceaccount{name, uid}}``.
- A TokenReview of such a token (``review``) authenticates it when its signature holds, it has
  not expired, the ServiceAccount still exists with the same uid, and one of its audiences is one
  the review asks for (``spec.audiences``, else ``API_AUDIENCE``); ``status.audiences`` lists the
  ones that matched. The user is kube's: that ``sub``, the account's uid, the groups
  ``system:serviceaccounts``, ``system:serviceaccounts:<ns>`` and ``system:authenticated``.

These tokens do not authenticate requests to the embedded server (``authn.py`` reads the static
``tokens`` table only): a token for a custom audience must not open the API anyway. Not done:
bound object references (``spec.boundObjectRef`` is accepted and ignored), key rotation.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from . import errors
from .errors import GroupResource
from .store import ObjectStore

__all__ = ["API_AUDIENCE", "ISSUER", "SERVICE_ACCOUNTS", "issue_token", "review"]

#: The audience (and issuer) kube-apiserver has by default: ``--service-account-issuer``.
ISSUER = "https://kubernetes.default.svc.cluster.local"
API_AUDIENCE = ISSUER
SERVICE_ACCOUNTS = ("", "serviceaccounts")
_DEFAULT_SECONDS = 3600
_MIN_SECONDS = 600
_MAX_SECONDS = 1 << 32
_KEY = secrets.token_bytes(32)
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: str) -> str:
    return _b64(hmac.new(_KEY, signing_input.encode(), hashlib.sha256).digest())


def issue_token(
    store: ObjectStore,
    info: GroupResource,
    namespace: str,
    name: str,
    body: Any,
    now: datetime.datetime,
) -> dict[str, Any]:
    """The answered TokenRequest for ServiceAccount ``namespace/name``."""
    if not isinstance(body, dict) or body.get("kind", "TokenRequest") != "TokenRequest":
        got = body.get("kind") if isinstance(body, dict) else type(body).__name__
        raise errors.bad_request(
            f"the object provided is unrecognized (must be of type TokenRequest): {got}"
        )
    account = store.get(SERVICE_ACCOUNTS, namespace, name)
    if account is None:
        raise errors.not_found(info, name)
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
    assert isinstance(spec, dict)
    seconds = spec.get("expirationSeconds", _DEFAULT_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise errors.bad_request("spec.expirationSeconds must be an integer")
    if seconds < _MIN_SECONDS or seconds > _MAX_SECONDS:
        what = "less than 10 minutes" if seconds < _MIN_SECONDS else "larger than 2^32 seconds"
        raise errors.invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            [
                {
                    "reason": "FieldValueInvalid",
                    "message": f"Invalid value: {seconds}: may not specify a duration {what}",
                    "field": "spec.expirationSeconds",
                }
            ],
        )
    audiences = [a for a in spec.get("audiences") or [] if isinstance(a, str)] or [API_AUDIENCE]
    uid = str((account.get("metadata") or {}).get("uid") or "")
    issued = int(now.timestamp())
    claims = {
        "aud": audiences,
        "exp": issued + seconds,
        "iat": issued,
        "iss": ISSUER,
        "nbf": issued,
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
    }
    signing_input = f"{_HEADER}.{_b64(orjson.dumps(claims))}"
    token = f"{signing_input}.{_sign(signing_input)}"
    expires = datetime.datetime.fromtimestamp(issued + seconds, datetime.UTC)
    answer = dict(body)
    answer["apiVersion"] = "authentication.k8s.io/v1"
    answer["kind"] = "TokenRequest"
    meta = answer.get("metadata")
    answer["metadata"] = {
        **(meta if isinstance(meta, dict) else {}),
        "name": name,
        "namespace": namespace,
        "creationTimestamp": None,
    }
    answer["spec"] = {**spec, "audiences": audiences, "expirationSeconds": seconds}
    answer["status"] = {
        "token": token,
        "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return answer


def _claims(token: str) -> dict[str, Any] | None:
    """The claims of a token this process signed, else None (not one of ours)."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _HEADER:
        return None
    if not hmac.compare_digest(parts[2], _sign(f"{parts[0]}.{parts[1]}")):
        return None
    try:
        claims = orjson.loads(_unb64(parts[1]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def review(
    store: ObjectStore, token: str, audiences: Sequence[str], now: datetime.datetime
) -> dict[str, Any] | None:
    """The TokenReview ``status`` of a service-account token, or None when ``token`` is not one
    this process issued (the caller then tries its other authenticators)."""
    claims = _claims(token)
    if claims is None:
        return None
    k8s = claims.get("kubernetes.io") if isinstance(claims.get("kubernetes.io"), Mapping) else {}
    assert isinstance(k8s, Mapping)
    namespace = str(k8s.get("namespace") or "")
    account_claim = (
        k8s.get("serviceaccount") if isinstance(k8s.get("serviceaccount"), Mapping) else {}
    )
    assert isinstance(account_claim, Mapping)
    name, uid = str(account_claim.get("name") or ""), str(account_claim.get("uid") or "")
    if int(claims.get("exp") or 0) <= now.timestamp():
        return _refused("token has expired")
    account = store.get(SERVICE_ACCOUNTS, namespace, name)
    if account is None or str((account.get("metadata") or {}).get("uid") or "") != uid:
        return _refused(f"service account {namespace}/{name} has been deleted or replaced")
    wanted = list(audiences) or [API_AUDIENCE]
    has = claims.get("aud") or []
    matched = [a for a in wanted if a in has]
    if not matched:
        return _refused(f"token audiences {has!r} is invalid for the target audiences {wanted!r}")
    return {
        "authenticated": True,
        "user": {
            "username": str(claims.get("sub") or ""),
            "uid": uid,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{namespace}",
                "system:authenticated",
            ],
        },
        "audiences": matched,
    }


def _refused(message: str) -> dict[str, Any]:
    return {"user": {}, "error": f"[invalid bearer token, {message}]"}
