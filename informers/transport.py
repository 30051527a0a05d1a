"""The seam between informers and HTTP: the ``Transport`` protocol and ``ApiStatusError``.

``informers/`` may not import ``engine/`` (DESIGN.md), yet reflectors must LIST and WATCH. So the
informers define what they need here, and the engine's ``ApiClient`` implements it; tests may pass
a fake. Objects travel as plain dicts parsed once with orjson; watch lines travel as raw bytes so
the reflector parses each exactly once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

__all__ = ["ApiStatusError", "Transport"]


class ApiStatusError(Exception):
    """A non-2xx answer from the API server, with the decoded ``Status`` when there is one.

    Also raised by reflectors for a watch ``ERROR`` event, whose ``Status.code`` becomes ``code``.
    """

    code: int
    """HTTP status code (for a watch ERROR event: the Status' ``code``)."""
    reason: str
    """``Status.reason``: "Expired", "Gone", "Conflict", "NotFound", "TooManyRequests", ... or ""."""
    message: str
    """``Status.message``, or a short description when the server sent no Status."""
    status: dict[str, Any] | None
    """The decoded ``Status`` object, when the body was one."""
    retry_after: float | None
    """Seconds to wait before retrying: from ``Retry-After`` or ``Status.details.retryAfterSeconds``."""

    def __init__(
        self,
        code: int,
        *,
        reason: str = "",
        message: str = "",
        status: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.message = message
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")

    @classmethod
    def from_status(
        cls, status: Mapping[str, Any], *, code: int | None = None, retry_after: float | None = None
    ) -> ApiStatusError:
        """Build from a ``Status`` object (an HTTP error body or a watch ERROR event's object).

        ``code`` overrides ``status["code"]`` (use the HTTP status when there is one);
        ``retry_after`` overrides ``status.details.retryAfterSeconds`` (use the header).
        """
        details = status.get("details")
        if retry_after is None and isinstance(details, Mapping):
            seconds = details.get("retryAfterSeconds")
            if isinstance(seconds, int | float) and seconds > 0:
                retry_after = float(seconds)
        raw_code = status.get("code")
        final_code = code if code is not None else (raw_code if isinstance(raw_code, int) else 500)
        return cls(
            final_code,
            reason=str(status.get("reason") or ""),
            message=str(status.get("message") or ""),
            status=dict(status),
            retry_after=retry_after,
        )

    @property
    def is_not_found(self) -> bool:
        return self.code == 404 or self.reason == "NotFound"

    @property
    def is_conflict(self) -> bool:
        """A write lost an optimistic-concurrency race (409, but not AlreadyExists)."""
        return self.reason == "Conflict" or (self.code == 409 and self.reason != "AlreadyExists")

    @property
    def is_already_exists(self) -> bool:
        return self.reason == "AlreadyExists"

    @property
    def is_gone(self) -> bool:
        """The requested resourceVersion is too old: relist (HTTP 410, reason Expired or Gone)."""
        return self.code == 410 or self.reason in ("Expired", "Gone")

    @property
    def is_too_many_requests(self) -> bool:
        return self.code == 429 or self.reason == "TooManyRequests"


@runtime_checkable
class Transport(Protocol):
    """What informers need from an API client. ``engine.client.ApiClient`` implements it.

    Paths are full API paths (``/api/v1/namespaces/ns/pods``, ``/apis/kubeflow.org/v1/pytorchjobs``);
    query values are strings (booleans as ``"true"``).
    """

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One request; the answer parsed once with orjson.

        ``body`` is serialized with orjson unless it is ``bytes``. Non-2xx raises
        ``ApiStatusError``; connection problems raise ``ConnectionError`` subclasses or
        ``asyncio.TimeoutError``.
        """
        ...

    def stream_lines(
        self,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """A watch: yields each newline-delimited JSON line as ``bytes``, unparsed.

        Non-2xx on open raises ``ApiStatusError`` from ``__aenter__``. The stream ends when the
        server closes it; the caller decides whether to resume.
        """
        ...
