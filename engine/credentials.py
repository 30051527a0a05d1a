"""``Credentials``: the ``Authorization`` header of every request, refreshed when it expires.

kubernetes-asyncio's config loaders produce the credential (a kubeconfig's token, tokenFile, basic
auth, ``exec`` plugin or ``auth-provider``; an in-cluster service-account token); this module
caches the header they give and asks them again when it is due, as client-go's transport does:

- an ``exec`` plugin's credential is kept until its ``expirationTimestamp`` (forever when it names
  none) and fetched again after that, or at once after the server answered 401;
- every other source is re-read once a minute (a rotated service-account token or tokenFile is
  picked up) and at once after a 401.

The API client calls ``authorization()`` before each request and ``invalidate()`` when one is
answered 401, then retries that request once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from kubetrain.base.clock import REAL_CLOCK, Clock

__all__ = [
    "REREAD_SECONDS",
    "CachedCredentials",
    "Credential",
    "Credentials",
    "StaticCredentials",
]

#: How long a credential without an expiry is used before its source is read again.
REREAD_SECONDS = 60.0


class Credentials(Protocol):
    """Where the ``Authorization`` header comes from."""

    async def authorization(self) -> str | None:
        """The header value (``Bearer ...``/``Basic ...``), or None for no header. Raises
        ``ConfigError`` (``engine.config``) when the credential cannot be had."""
        ...

    def invalidate(self) -> None:
        """The server refused the last header (401): fetch it anew at the next call."""
        ...


class StaticCredentials:
    """A header that never changes (a token or basic auth given directly)."""

    __slots__ = ("_header",)

    def __init__(self, header: str | None) -> None:
        self._header = header

    async def authorization(self) -> str | None:
        return self._header

    def invalidate(self) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Credential:
    """One fetch's result: the header and, when the source says, when it expires (UTC)."""

    header: str | None
    expires: datetime | None = None


Fetch = Callable[[], Awaitable[Credential]]


class CachedCredentials:
    """Calls ``fetch`` for the header and keeps it until it is due (see the module docstring).

    ``reread_seconds`` None: a credential without an expiry is kept until ``invalidate`` (exec
    plugins); else it is fetched again after that many seconds of ``clock``'s time. ``first``: a
    credential the caller fetched already (a loader checks it at start), used as if fetched now.
    One fetch at a time: concurrent requests wait for the same one.
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        reread_seconds: float | None,
        clock: Clock = REAL_CLOCK,
        first: Credential | None = None,
    ) -> None:
        self._fetch = fetch
        self._reread = reread_seconds
        self._clock = clock
        self._lock = asyncio.Lock()
        self._header: str | None = None
        self._valid = False  # invariant: False until the first fetch and after invalidate()
        self._expires: datetime | None = None  # wall time from the credential itself
        self._fetched_at = 0.0  # clock.monotonic() of the last fetch
        if first is not None:
            self._keep(first)

    def _keep(self, got: Credential) -> None:
        self._header, self._expires = got.header, got.expires
        self._fetched_at = self._clock.monotonic()
        self._valid = True

    def _fresh(self) -> bool:
        if not self._valid:
            return False
        if self._expires is not None:
            return self._clock.utcnow() < self._expires
        if self._reread is None:
            return True
        return self._clock.monotonic() - self._fetched_at < self._reread

    async def authorization(self) -> str | None:
        if self._fresh():
            return self._header
        async with self._lock:
            if not self._fresh():
                self._keep(await self._fetch())
        return self._header

    def invalidate(self) -> None:
        self._valid = False
