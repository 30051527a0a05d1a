"""Authentication and authorization of ``/metrics`` scrapers, delegated to the API server
(controller-runtime's ``filters.WithAuthenticationAndAuthorization``, behind ``--metrics-secure``).

Why: ``/metrics`` names every job, namespace and controller the operator runs, and scraping it
costs the operator CPU; on a shared cluster only who the cluster's RBAC allows should read it.
The operator has no user database of its own, so it asks the API server, as kube-rbac-proxy and
controller-runtime do:

1. **authentication**: the request's ``Authorization: Bearer <token>`` goes into a TokenReview
   (``authentication.k8s.io/v1``); no token, or a token the API server does not authenticate,
   is ``401 Unauthorized``;
2. **authorization**: the reviewed user (name, uid, groups, extra) goes into a
   SubjectAccessReview (``authorization.k8s.io/v1``) for ``nonResourceAttributes``
   ``{path: <request path>, verb: <lowercased method>}``, which RBAC grants with a ClusterRole
   rule ``nonResourceURLs: ["/metrics"], verbs: ["get"]``; not allowed is ``403 Forbidden``.

A review that fails (API server unreachable, an error status) is ``500`` and is not cached.
Decisions are cached as controller-runtime configures client-go's delegating authenticator and
authorizer: token reviews for 1 minute (either answer; keyed by the SHA-256 of the token, so
no token is kept in memory), allowed for 5 minutes, denied for 30 seconds. The operator needs
``create`` on ``tokenreviews`` and ``subjectaccessreviews`` (the chart's
``metrics-auth-role``).

Answers are text/plain as Go's ``http.Error`` writes them (``Unauthorized``, ``Authorization
denied for user <name>``, ...).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import orjson
from aiohttp import web

from kubetrain.base.clock import REAL_CLOCK, Clock

__all__ = [
    "SUBJECT_ACCESS_REVIEWS_PATH",
    "TOKEN_REVIEWS_PATH",
    "MetricsAuthOptions",
    "MetricsAuthorizer",
    "ReviewClient",
    "bearer_token",
]

log = logging.getLogger(__name__)

TOKEN_REVIEWS_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReviewClient(Protocol):
    """What the filter needs of ``engine.client.ApiClient``: one JSON request (raw dicts)."""

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsAuthOptions:
    """Cache lifetimes (controller-runtime's) and the review timeout, in seconds."""

    authentication_ttl: float = 60.0
    allow_ttl: float = 300.0
    deny_ttl: float = 30.0
    review_timeout: float = 10.0
    cache_size: int = 1024
    """Entries per cache; the oldest goes first when full."""


def bearer_token(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (scheme in any case), else None."""
    if not header:
        return None
    parts = header.split(" ")
    if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
        return None
    return parts[1]


K = TypeVar("K")
V = TypeVar("V")


class _TtlCache(Generic[K, V]):
    """A bounded map whose entries expire ``ttl`` seconds (per entry) after they were put."""

    def __init__(self, size: int, clock: Clock) -> None:
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> tuple[bool, V | None]:
        hit = self._entries.get(key)
        if hit is None:
            return False, None
        if hit[0] <= self._clock.monotonic():
            del self._entries[key]
            return False, None
        return True, hit[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        self._entries[key] = (self._clock.monotonic() + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class ReviewFailed(Exception):
    """A review could not be made (the API server did not answer it)."""


class MetricsAuthorizer:
    """Checks each scrape with the API server; ``wrap(handler)`` is the filtered handler.

    ``reviews`` counts the TokenReviews and SubjectAccessReviews sent (tests check the cache).
    """

    def __init__(
        self,
        client: ReviewClient,
        options: MetricsAuthOptions | None = None,
        *,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.client = client
        self.options = opts = options if options is not None else MetricsAuthOptions()
        self._users: _TtlCache[bytes, dict[str, Any]] = _TtlCache(opts.cache_size, clock)
        self._decisions: _TtlCache[bytes, tuple[bool, str]] = _TtlCache(opts.cache_size, clock)
        self.reviews = {"tokenreviews": 0, "subjectaccessreviews": 0}

    def wrap(self, handler: Handler) -> Handler:
        """``handler`` behind authentication (401) and authorization (403)."""

        async def filtered(request: web.Request) -> web.StreamResponse:
            try:
                token = bearer_token(request.headers.get("Authorization"))
                user = await self.authenticate(token) if token is not None else None
                if user is None:
                    return _text(401, "Unauthorized")
                name = str(user.get("username", ""))
                verb = request.method.lower()
                allowed, reason = await self.authorize(user, verb, request.path)
            except ReviewFailed as e:
                log.error("metrics scrape not checked: %s", e)
                return _text(500, "Authentication or authorization failed")
            if not allowed:
                log.debug("metrics scrape by %s denied: %s", name, reason)
                return _text(403, f"Authorization denied for user {name}")
            return await handler(request)

        return filtered

    async def authenticate(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """The user a TokenReview finds for ``token`` (``status.user``), else None.

        ``audiences``: the review's ``spec.audiences`` (the trainer status server asks for its
        per-TrainJob audience); the token is then accepted only when the API server says it is
        valid for one of them (``status.audiences``). Empty: the API server's own audiences."""
        material = token if not audiences else "\0".join((token, *audiences))
        key = hashlib.sha256(material.encode()).digest()
        cached, user = self._users.get(key)
        if cached:
            return user or None
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        status = await self._review("tokenreviews", TOKEN_REVIEWS_PATH, review)
        found = status.get("user")
        user = dict(found) if status.get("authenticated") and isinstance(found, dict) else {}
        if audiences and not set(audiences) & set(status.get("audiences") or ()):
            user = {}  # authenticated, but not for what was asked (kube-apiserver never says so)
        self._users.put(key, user, self.options.authentication_ttl)
        return user or None

    async def authorize(self, user: Mapping[str, Any], verb: str, path: str) -> tuple[bool, str]:
        """``(allowed, reason)`` of a SubjectAccessReview of ``user`` for ``verb path``."""
        spec: dict[str, Any] = {"nonResourceAttributes": {"path": path, "verb": verb}}
        if user.get("username"):
            spec["user"] = user["username"]
        for field in ("uid", "groups", "extra"):
            if user.get(field):
                spec[field] = user[field]
        key = hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).digest()
        cached, decision = self._decisions.get(key)
        if cached and decision is not None:
            return decision
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        status = await self._review("subjectaccessreviews", SUBJECT_ACCESS_REVIEWS_PATH, review)
        allowed = status.get("allowed") is True and status.get("denied") is not True
        decision = (allowed, str(status.get("reason") or status.get("evaluationError") or ""))
        ttl = self.options.allow_ttl if allowed else self.options.deny_ttl
        self._decisions.put(key, decision, ttl)
        return decision

    async def _review(self, what: str, path: str, review: dict[str, Any]) -> dict[str, Any]:
        self.reviews[what] += 1
        try:
            answer = await self.client.request_json(
                "POST", path, body=review, timeout=self.options.review_timeout
            )
        except Exception as e:  # ApiStatusError, ApiConnectionError, TimeoutError
            raise ReviewFailed(f"{review['kind']} failed: {e}") from e
        status = answer.get("status")
        return status if isinstance(status, dict) else {}


def _text(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        text=message + "\n",
        headers={"X-Content-Type-Options": "nosniff"},
        content_type="text/plain",
    )
