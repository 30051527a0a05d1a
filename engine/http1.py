"""``Http1Pool``: keep-alive HTTP/1.1 request/response over asyncio protocols and httptools.

Why: the operator's CPU goes largely into its API requests, and aiohttp's client machinery
(request and response objects, header multidicts, payload and writer layers, a task per
connection) costs about 80 us of CPU a request; a protocol that writes one buffer and feeds the
answer to httptools' C parser (llhttp, the parser Node.js uses) costs about 13 us
(``tests/engine/test_bench_client.py``). The API client sends every request/response exchange
through this pool; watches, which stream, stay on aiohttp.

Scope, on purpose small: one origin (scheme, host, port) per pool, HTTP/1.1 only, bodies in
memory, ``Content-Length`` or chunked answers (httptools decodes both), no redirects, no proxies,
no compression (we do not ask for it). TLS, client certificates and ``tls-server-name`` come from
the ``ssl.SSLContext`` and ``server_hostname`` the caller passes.

Connections: at most ``limit`` open at once; an idle one is reused newest first and closed after
``idle_timeout`` seconds (below the API servers' keep-alive timeouts, so they rarely close one
under us). A request on a reused connection that the server closed meanwhile gets no answer at
all: an idempotent one (GET, PUT, DELETE) is sent once more on a new connection; a POST or PATCH is
not, since the server may have acted on it, and fails with ``ConnectionError`` like any other
broken exchange (the caller's retry then meets AlreadyExists or a conflict, as with client-go). A
timeout raises ``TimeoutError``; a cancelled request closes its connection (its answer would
arrive on a connection that is no longer in step).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass
from typing import cast

import httptools

__all__ = ["Http1Pool", "Http1Response"]

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Http1Response:
    """One answer: status, the headers the API client reads, the body."""

    status: int
    retry_after: str | None
    body: bytes
    fair_queuing: bool = False
    """The answer carried ``X-Kubernetes-PF-FlowSchema-UID``: the server has API Priority and
    Fairness."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Http1Response] | None = None
        self._body: list[bytes] = []
        self._retry_after: str | None = None
        self._fair_queuing = False
        self._received = False  # any byte of the current answer arrived
        self.closed = False
        self.idle_since = 0.0
        self.used = False  # carried an exchange before (so the server may have closed it idle)

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"malformed HTTP answer: {exc}"))
            self.close()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            reason = f": {exc}" if exc else ""
            self._fail(_ClosedError(f"connection closed before the answer{reason}", self._received))

    # -- httptools callbacks -------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 11 and name.lower() == b"retry-after":
            self._retry_after = value.decode("latin-1")
        elif len(name) == 30 and name.lower() == b"x-kubernetes-pf-flowschema-uid":
            self._fair_queuing = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        response = Http1Response(
            self._parser.get_status_code(), self._retry_after, body, self._fair_queuing
        )
        if not self._parser.should_keep_alive():
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    # -- use -----------------------------------------------------------------------------------

    def send(self, data: bytes, waiter: asyncio.Future[Http1Response]) -> None:
        """Write one request; ``waiter`` gets the answer (or the connection's failure)."""
        assert self.transport is not None and self._waiter is None
        self._waiter = waiter
        self._body = []
        self._retry_after = None
        self._fair_queuing = False
        self._received = False
        self.transport.write(data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class _ClosedError(ConnectionError):
    """The connection ended before a whole answer; ``received``: some of it had arrived."""

    def __init__(self, message: str, received: bool) -> None:
        super().__init__(message)
        self.received = received


class Http1Pool:
    """Pooled HTTP/1.1 connections to one origin (module docs). One event loop; not thread-safe.

    ``request`` takes the request head's header lines ready-made (``b"Name: value\\r\\n"`` each;
    the pool adds ``Host`` and ``Content-Length``), so a caller can keep its constant headers as
    one precomputed ``bytes``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None = None,
        limit: int = 100,
        connect_timeout: float = 10.0,
        idle_timeout: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._server_hostname = server_hostname if ssl_context is not None else None
        default_port = 443 if ssl_context is not None else 80
        authority = host if port == default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):  # an IPv6 literal
            authority = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        self._host_line = f"Host: {authority}\r\n".encode("latin-1")
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._idle: deque[_Connection] = deque()  # newest last
        # invariant: open connections (idle or busy) <= limit; a request waits for a slot
        self._slots = asyncio.Semaphore(limit) if limit > 0 else None
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: bytes,
        body: bytes | None,
        *,
        timeout: float | None,
    ) -> Http1Response:
        """Send ``method target`` with ``headers`` and ``body``; the whole answer, or raise
        ``ConnectionError`` / ``TimeoutError`` (``timeout`` bounds the wait for a connection,
        the connect and the exchange together; ``None``: no bound)."""
        if self._closed:
            raise ConnectionError("Http1Pool is closed")
        head = b"%s %s HTTP/1.1\r\n%s%s" % (
            method.encode("ascii"),
            target.encode("latin-1"),
            self._host_line,
            headers,
        )
        if body is not None:
            data = b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
        else:
            data = head + b"\r\n"
        async with asyncio.timeout(timeout):
            if self._slots is not None:
                await self._slots.acquire()
            try:
                return await self._exchange(method, data)
            finally:
                if self._slots is not None:
                    self._slots.release()

    async def _exchange(self, method: str, data: bytes) -> Http1Response:
        for attempt in (1, 2):
            conn = self._idle_connection() or await self._connect()
            waiter: asyncio.Future[Http1Response] = asyncio.get_running_loop().create_future()
            conn.send(data, waiter)
            try:
                response = await waiter
            except _ClosedError as exc:
                conn.abort()
                stale = conn.used and not exc.received
                if attempt == 1 and stale and method in _IDEMPOTENT:
                    continue  # the server closed it while idle: try once on a new connection
                raise
            except BaseException:
                conn.abort()  # cancelled or timed out mid-exchange: the answer is lost
                raise
            conn.used = True
            if self._closed:
                conn.close()
            elif not conn.closed:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            return response
        raise AssertionError("unreachable")

    def _idle_connection(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            transport = conn.transport
            if conn.closed or transport is None or transport.is_closing():
                continue
            if now - conn.idle_since > self._idle_timeout:
                conn.close()
                continue
            return conn
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._server_hostname,
                )
        except TimeoutError as exc:
            raise ConnectionError(
                f"connect to {self._host}:{self._port} timed out after {self._connect_timeout} s"
            ) from exc
        except OSError as exc:  # refused, unreachable, TLS handshake failures (ssl.SSLError)
            raise ConnectionError(f"connect to {self._host}:{self._port}: {exc}") from exc
        return conn

    async def close(self) -> None:
        """Close every idle connection; busy ones close when their exchange ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()
