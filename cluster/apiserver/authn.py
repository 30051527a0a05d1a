"""Bearer-token authentication, optional: who may talk to the embedded API server.

Off by default (every request is served, as a laptop cluster wants). With ``tokens`` set, a request
must carry ``Authorization: Bearer <token>`` for a token in the table, or it is answered 401
Unauthorized with a ``Status``, as kube-apiserver answers an unknown or missing credential. The
table is live: removing a token revokes it at once, which is how tests exercise a client's refresh
after a 401.

A request without any credential may still read the health and version endpoints, which
kube-apiserver's default RBAC grants anonymous users (``system:public-info-viewer``: ``/healthz``,
``/livez``, ``/readyz``, ``/version``); a credential that is presented and refused is 401 on every
path, as kube-apiserver fails a bad token before it falls back to the anonymous user.

The server speaks plain http, over which client-go (kubectl) sends no bearer token: with tokens on,
kubectl is refused; kubetrain's and kubernetes-asyncio's clients send it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from .errors import ApiError
from .http_json import json_response

__all__ = ["PUBLIC_PATHS", "BearerTokenAuthenticator"]

#: Paths served to a request without a credential (``system:public-info-viewer``'s URLs).
PUBLIC_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/version", "/version/"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BearerTokenAuthenticator:
    """Checks each request's bearer token against ``tokens`` (token -> user name).

    ``authenticated`` counts the requests let through per user, for tests and debugging.
    """

    __slots__ = ("authenticated", "tokens")

    def __init__(self, tokens: dict[str, str]) -> None:
        self.tokens = tokens
        self.authenticated: dict[str, int] = {}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Authorization")
        if header is None and request.path in PUBLIC_PATHS:
            return await handler(request)  # the anonymous user reads public info
        scheme, _, token = (header or "").partition(" ")
        user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            err = ApiError(401, "Unauthorized", "Unauthorized")
            return json_response(err.to_status(), status=401)
        self.authenticated[user] = self.authenticated.get(user, 0) + 1
        return await handler(request)
