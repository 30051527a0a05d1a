"""A lean HTTP/1.1 serving path for the API server's plain resource requests.

Why: aiohttp's server machinery (its parser's URL and header objects, ``web.Request``, the
router's walk over the catch-all routes, the payload stream, ``StreamWriter``) cost about half
of the server's CPU per pod create. Here one ``asyncio.Protocol`` per connection feeds the bytes
to httptools' C parser (llhttp, the parser the client side uses too: ``engine/http1.py``),
builds a ``FastRequest`` that carries what the API handlers read of a request, runs the *same*
middleware chain and ``_dispatch`` the aiohttp app runs for ``/api/...`` and ``/apis/...``, and
writes the ``web.Response`` they return as one buffer, with the status line and headers aiohttp
would send (Content-Type, Content-Length, Date, Server, Connection).

What it serves (``_fast``): GET, POST, PUT, PATCH and DELETE under ``/api/`` and ``/apis/``,
except watches, pod logs (both stream), upgrades, ``Expect``, bodies whose Content-Length is
over the server's limit, and URLs aiohttp would normalize or decode (``%``, ``/.``, ``#``,
non-ASCII). Nothing else changes: a request it does not serve hands the *whole connection* to
aiohttp's own protocol (``web.Server``'s ``RequestHandler``) from that request on, fed the
request's bytes as received; so discovery, watch streams, logs, the admin routes, malformed
requests and everything aiohttp answers itself (400s, 413 before the body, 100-continue) are
served by the same code as before. With middlewares other than the server's own, or extra
routes under ``/api``, the fast path is off and every connection is aiohttp's from the start.

Connections: HTTP/1.1 keep-alive (HTTP/1.0 only with ``Connection: keep-alive``), requests
answered one at a time and in order (pipelined ones wait their turn), reading paused while the
transport's write buffer is over its high-water mark, an idle connection closed after
``KEEPALIVE_TIMEOUT`` (aiohttp's default); a connection lost mid-request cancels its handler
(aiohttp's ``handler_cancellation``). A chunked request body is decoded by llhttp; a body over the
limit is dropped as it arrives and the handler's read gets aiohttp's 413.

Hand-over bytes: the parser does not say where in a received chunk a message began. When the
request to hand over began at the start of a chunk (always, for clients that wait for each
answer: aiohttp, client-go, kubernetes-asyncio), the received bytes are handed over as they
are. After a pipelined request in the same chunk, the request is re-serialized from what was
parsed (request line, headers as received, the body re-chunked if it came chunked) until the
parser is between messages at the end of a chunk; from then on the transport feeds aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any, cast

import httptools
from aiohttp import web
from aiohttp.helpers import HeadersMixin
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict, CIMultiDictProxy, MultiMapping
from yarl import URL

__all__ = ["KEEPALIVE_TIMEOUT", "FastRequest", "FastServing", "FastSite"]

log = logging.getLogger(__name__)

KEEPALIVE_TIMEOUT = 3630.0
"""Seconds an idle keep-alive connection is kept (aiohttp's ``keepalive_timeout`` default)."""

_METHODS = {m.encode(): m for m in ("GET", "POST", "PUT", "PATCH", "DELETE")}
_SPECIAL = {
    name.encode(): name
    for name in ("expect", "content-length", "content-type", "transfer-encoding")
}
_MAX_LINE = 8190  # aiohttp's max_line_size and max_field_size
_MAX_HEADERS = 128  # aiohttp's max_headers
_MAX_HEAD = 1 << 20  # a head past this is refused outright (llhttp sets no limit)

_UNSEEN = ""
# header name as received -> its _SPECIAL name or None: clients send a handful of names, and
# lowercasing each of them per request cost more than the lookup (bounded: cleared when full)
_header_kinds: dict[bytes, str | None] = {}


def _header_kind(name: bytes) -> str | None:
    special = _SPECIAL.get(name.lower())
    if len(_header_kinds) >= 256:
        _header_kinds.clear()
    _header_kinds[name] = special
    return special


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_EMPTY_QUERY: MultiMapping[str] = URL("/").query


class _ContentType(HeadersMixin):
    """aiohttp's own Content-Type parsing, for one raw header value."""

    def __init__(self, raw: str | None) -> None:
        self._headers = CIMultiDict() if raw is None else CIMultiDict({"Content-Type": raw})


_content_types: dict[str | None, str] = {}


def _content_type(raw: str | None) -> str:
    """``web.Request.content_type`` for a raw Content-Type value (remembered: clients send a
    handful of them)."""
    try:
        return _content_types[raw]
    except KeyError:
        pass
    parsed = _ContentType(raw).content_type
    if len(_content_types) >= 256:
        _content_types.clear()
    _content_types[raw] = parsed
    return parsed


class FastRequest:
    """The part of ``web.Request`` the API's middlewares and resource handlers use: method,
    path, raw_path, query, query_string, headers, content_type (aiohttp's parsing), host,
    transport, client_max_size, can_read_body, ``read()`` and item storage (``request[key]``).
    Passed to them as a ``web.Request`` (``FastServing`` casts): what the fast path serves
    touches nothing else (``tests/cluster/apiserver/test_fasthttp.py`` runs every request kind
    through it). The header multidict is built only when asked for."""

    __slots__ = (
        "_body",
        "_content_type_raw",
        "_headers",
        "_query_string",
        "_raw_headers",
        "_read",
        "_state",
        "_too_large",
        "_url",
        "client_max_size",
        "keep_alive",
        "method",
        "path",
        "raw_path",
        "transport",
        "version",
    )

    def __init__(
        self,
        method: str,
        target: str,
        raw_headers: list[tuple[bytes, bytes]],
        content_type_raw: str | None,
        *,
        client_max_size: int,
        transport: asyncio.Transport,
        version: str,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.raw_path = target
        path, _, query_string = target.partition("?")
        self.path = path
        self._query_string = query_string
        self._url: URL | None = None
        self._raw_headers = raw_headers
        self._headers: CIMultiDictProxy[str] | None = None
        self._content_type_raw = content_type_raw
        self._body = b""
        self._too_large = False
        self._read = False
        self._state: dict[Any, Any] = {}
        self.client_max_size = client_max_size
        self.transport = transport
        self.version = version
        self.keep_alive = keep_alive

    def _rel_url(self) -> URL:
        if self._url is None:
            self._url = URL.build(path=self.path, query_string=self._query_string, encoded=True)
        return self._url

    @property
    def query(self) -> MultiMapping[str]:
        return self._rel_url().query if self._query_string else _EMPTY_QUERY

    @property
    def query_string(self) -> str:
        return self._rel_url().query_string if self._query_string else ""

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        headers = self._headers
        if headers is None:
            headers = self._headers = CIMultiDictProxy(
                CIMultiDict(
                    [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw_headers]
                )
            )
        return headers

    @property
    def content_type(self) -> str:
        return _content_type(self._content_type_raw)

    @property
    def host(self) -> str:
        host = self.headers.get("Host")
        if host is not None:
            return host
        sockname = self.transport.get_extra_info("sockname")
        if isinstance(sockname, tuple) and len(sockname) >= 2:
            return f"{sockname[0]}:{sockname[1]}"
        return str(sockname or "")

    @property
    def can_read_body(self) -> bool:
        return not self._read and (bool(self._body) or self._too_large)

    async def read(self) -> bytes:
        self._read = True
        if self._too_large:
            raise web.HTTPRequestEntityTooLarge(self.client_max_size)
        return self._body

    def __getitem__(self, key: Any) -> Any:
        return self._state[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._state[key] = value

    def get(self, key: Any, default: Any = None) -> Any:
        return self._state.get(key, default)


_date_second = 0
_date_text = ""
_date_line = b""


def _http_date() -> str:
    global _date_second, _date_text, _date_line
    now = int(time.time())
    if now != _date_second:
        _date_second, _date_text = now, formatdate(now, usegmt=True)
        _date_line = f"Date: {_date_text}\r\n".encode()
    return _date_text


def _http_date_line() -> bytes:
    """``Date: <now>\r\n`` (formatted once a second)."""
    if int(time.time()) != _date_second:
        _http_date()
    return _date_line


_CL = "content-length"
_SERVER_LINE = f"Server: {SERVER_SOFTWARE}\r\n"

_HeadParts = tuple[bytes, bool, bytes, bool, bytes, bool]
# A response head in parts around the two values that change between answers of one kind,
# Content-Length and Date: (status line and headers, whether a Content-Length line follows,
# what comes before the Date, whether a Date line follows, the rest, whether the body follows).
# Keyed by (status, reason, version, keep-alive, has a body, the response's headers). Why:
# formatting the head anew was a quarter of the fast path's own cost. Bounded: cleared when full.
_heads: dict[tuple[Any, ...], _HeadParts] = {}
_HEADS_SIZE = 256


def _head_parts(resp: web.Response, version: str, keep_alive: bool, has_data: bool) -> _HeadParts:
    status = resp.status
    headers = resp.headers
    empty = status < 200 or status in (204, 304)  # no body, no Content-Length (as aiohttp)
    start = f"HTTP/{version} {status} {resp.reason}\r\n"
    for k, v in headers.items():
        if not (empty and k.lower() == _CL):
            start += f"{k}: {v}\r\n"
    length = not empty and "Content-Length" not in headers
    middle = ""
    if not empty and has_data and "Content-Type" not in headers:
        middle = "Content-Type: application/octet-stream\r\n"
    end = "" if "Server" in headers else _SERVER_LINE
    if "Connection" not in headers:
        if keep_alive:
            if version == "1.0":
                end += "Connection: keep-alive\r\n"
        elif version == "1.1":
            end += "Connection: close\r\n"
    end += "\r\n"
    date = "Date" not in headers
    return start.encode(), length, middle.encode(), date, end.encode(), has_data and not empty


def encode_response(resp: web.Response, method: str, version: str, keep_alive: bool) -> bytes:
    """``resp`` as aiohttp writes a ``web.Response`` with a bytes body: status line, its headers,
    then the Content-Length, Content-Type, Date, Server and Connection aiohttp adds."""
    status = resp.status
    body = resp.body
    if body is not None and not isinstance(body, (bytes, bytearray)):
        raise TypeError(f"fast path: unsupported response body {type(body).__name__}")
    data = body if type(body) is bytes else bytes(body) if body else b""
    key = (status, resp.reason, version, keep_alive, bool(data), *resp.headers.items())
    parts = _heads.get(key)
    if parts is None:
        parts = _head_parts(resp, version, keep_alive, bool(data))
        if len(_heads) >= _HEADS_SIZE:
            _heads.clear()
        _heads[key] = parts
    start, length, middle, date, end, with_body = parts
    return b"".join(
        (
            start,
            b"Content-Length: %d\r\n" % len(data) if length else b"",
            middle,
            _http_date_line() if date else b"",
            end,
            data if with_body else b"",
        )
    )


class FastServing:
    """The fast path of one server: the handler chain it runs, aiohttp's ``web.Server`` it hands
    connections over to, and its open connections (closed by ``close``)."""

    def __init__(
        self,
        handler: Handler,
        aiohttp_server: web.Server,
        *,
        max_body_bytes: int,
        enabled: bool = True,
    ) -> None:
        self.handler = handler
        self.aiohttp_server = aiohttp_server
        self.max_body_bytes = max_body_bytes
        self.enabled = enabled
        self.connections: set[_Connection] = set()
        self.keepalive_timeout = KEEPALIVE_TIMEOUT

    def protocol(self) -> asyncio.Protocol:
        """The protocol factory for ``loop.create_server``."""
        if not self.enabled:
            return self.aiohttp_server()
        return _Connection(self)

    async def close(self) -> None:
        """Cancel in-flight requests and close every connection still on the fast path."""
        for conn in list(self.connections):
            conn.close()
        self.connections.clear()
        await asyncio.sleep(0)


class FastSite(web.SockSite):
    """``web.SockSite`` serving through ``FastServing.protocol`` instead of aiohttp's
    ``RequestHandler`` for every connection."""

    def __init__(self, runner: web.AppRunner, sock: Any, fast: FastServing, **kwargs: Any) -> None:
        super().__init__(runner, sock, **kwargs)
        self._fast = fast

    async def start(self) -> None:
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._fast.protocol, sock=self._sock, ssl=self._ssl_context, backlog=self._backlog
        )


class _Connection(asyncio.Protocol):
    """One client connection on the fast path (see the module docstring)."""

    def __init__(self, serving: FastServing) -> None:
        self._serving = serving
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        # the message being parsed
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._in_message = False
        self._chunked = False
        self._request: FastRequest | None = None
        # raw bytes since the parser was last between messages at the end of a chunk; exact
        # (starting where the current message starts) unless a message began after another
        # ended in the same chunk
        self._raw: list[bytes] = []
        self._raw_exact = True
        self._completed_in_feed = False
        # requests parsed and waiting; the serving task while it serves one (None: idle)
        self._queue: deque[FastRequest] = deque()
        self._task: asyncio.Task[None] | None = None
        # the connection's serving task (``_work``), kept between requests, and the future it
        # waits on for the next one while idle
        self._worker: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[FastRequest] | None = None
        self._writing_paused = False
        self._reading_paused = False
        self._eof = False
        self._half_close = True  # set per transport in connection_made
        self._closed = False
        self._idle_since = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        # hand-over to aiohttp: its protocol, the bytes for it, how we get there
        self._handover: asyncio.Protocol | None = None
        self._handover_out: list[bytes] = []
        self._relaying = False  # re-serializing parsed messages (else forwarding raw bytes)
        self._handover_eof = False
        self._connected_aiohttp = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        # TLS has no half-close: asyncio closes the transport after eof_received whatever it
        # returns, and warns when it returns True
        self._half_close = transport.get_extra_info("sslcontext") is None
        self._serving.connections.add(self)
        self._idle_since = self._loop.time()
        self._arm_idle_timer(self._serving.keepalive_timeout)

    def data_received(self, data: bytes) -> None:
        if self._handover is not None and not self._relaying:
            self._handover_out.append(data)
            self._maybe_hand_over()
            return
        if self._handover is None and self._request is None:
            self._raw.append(data)  # not while a fast request's body streams in: unbounded
        self._completed_in_feed = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # only a handed-over request upgrades: its bytes are forwarded already
        except httptools.HttpParserError:
            self._parse_error()
            return
        if self._handover is None:
            if not self._in_message:
                self._raw.clear()
                self._raw_exact = True
        else:
            self._maybe_hand_over()

    def eof_received(self) -> bool | None:
        if self._handover is not None:
            self._handover_eof = True
            self._maybe_hand_over()
            return self._half_close or None
        # half-closed: answer what is queued, then close
        self._eof = True
        if self._task is None and not self._queue:
            self.close()
        return self._half_close or None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._serving.connections.discard(self)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._task is not None:
            self._task.cancel()
        self._release_worker()
        self._queue.clear()
        if self._connected_aiohttp and self._handover is not None:
            self._handover.connection_lost(exc)

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self._connected_aiohttp and self._handover is not None:
            self._handover.pause_writing()
        else:
            self._pause_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._connected_aiohttp and self._handover is not None:
            self._handover.resume_writing()
        elif self._handover is None and len(self._queue) <= 1:
            self._resume_reading()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None and not self._closed:
            self._reading_paused = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self._transport is not None and not self._closed:
            self._reading_paused = False
            self._transport.resume_reading()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._release_worker()
        if self._transport is not None and not self._closed:
            self._transport.close()
        self._closed = True

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_message = True
        if self._completed_in_feed:
            self._raw_exact = False
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._body = []
        self._body_size = 0
        self._too_large = False
        self._chunked = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._head_size += len(name) + len(value) + 4
        if self._head_size > _MAX_HEAD and self._handover is None:
            self._refuse_head()

    def on_headers_complete(self) -> None:
        if self._handover is not None:
            if self._relaying:
                self._relay_head()
            return
        request = self._fast_request()
        if request is None:
            self._start_handover()
        else:
            # its raw bytes are not kept past here: malformed input later in this message
            # gets a bare 400 (aiohttp answers 400 too)
            self._raw_exact = False
        self._request = request

    def on_body(self, body: bytes) -> None:
        if self._handover is not None:
            if self._relaying:
                out = self._handover_out
                if self._chunked:
                    out.append(b"%x\r\n" % len(body))
                    out.append(body)
                    out.append(b"\r\n")
                else:
                    out.append(body)
            return
        if self._too_large:
            return
        self._body_size += len(body)
        if self._body_size > self._serving.max_body_bytes:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_message = False
        self._completed_in_feed = True
        if self._handover is not None:
            if self._relaying and self._chunked:
                self._handover_out.append(b"0\r\n\r\n")
            return
        request = self._request
        assert request is not None
        self._request = None
        body = self._body
        if body:
            request._body = body[0] if len(body) == 1 else b"".join(body)
        request._too_large = self._too_large
        self._queue.append(request)
        if self._task is None:
            self._next()
        elif len(self._queue) > 1:
            self._pause_reading()  # pipelining: one answer at a time

    # -- serving ---------------------------------------------------------------------------

    def _fast_request(self) -> FastRequest | None:
        """The request whose head was just parsed, when the fast path serves it; else None."""
        parser = self._parser
        method = _METHODS.get(parser.get_method())
        if method is None or parser.should_upgrade():
            return None
        url = self._url
        if len(url) > _MAX_LINE or not url.isascii():
            return None
        # looked at as text: ``in`` on str is several times cheaper than on bytes
        target = url.decode("ascii")
        if not target.startswith(("/api/", "/apis/")):
            return None
        path, _, query = target.partition("?")
        if "%" in path or "/." in path or "#" in target:
            return None
        if "watch" in query or "/log" in path:
            return None
        headers = self._headers
        if len(headers) > _MAX_HEADERS:
            return None
        # no single header can be over the limit when the whole head is not
        long_head = self._head_size > _MAX_LINE
        kinds = _header_kinds
        content_type: str | None = None
        for name, value in headers:
            if long_head and len(name) + len(value) > _MAX_LINE:
                return None
            special = kinds.get(name, _UNSEEN)
            if special is _UNSEEN:
                special = _header_kind(name)
            if special is None:
                continue
            if special == "expect":
                return None
            if special == "content-length":
                if not value.isdigit() or int(value) > self._serving.max_body_bytes:
                    return None
            elif special == "content-type":
                if content_type is None:
                    content_type = value.decode("latin-1")
            else:  # transfer-encoding
                self._chunked = b"chunked" in value.lower()
        assert self._transport is not None
        return FastRequest(
            method,
            target,
            headers,
            content_type,
            client_max_size=self._serving.max_body_bytes,
            transport=self._transport,
            version=parser.get_http_version(),
            keep_alive=parser.should_keep_alive(),
        )

    def _next(self) -> None:
        """Serve the next queued request (none is being served), or settle into idle."""
        if self._closed:
            return
        if self._queue:
            request = self._queue.popleft()
            wake = self._wake
            if wake is not None:
                self._wake = None
                self._task = self._worker
                wake.set_result(request)
            else:
                self._task = self._worker = self._loop.create_task(self._work(request))
            return
        self._idle()

    def _idle(self) -> None:
        self._task = None
        if self._eof and self._handover is None:
            self.close()
            return
        self._idle_since = self._loop.time()
        if self._reading_paused and not self._writing_paused:
            self._resume_reading()
        if self._handover is not None:
            self._maybe_hand_over()

    async def _work(self, request: FastRequest) -> None:
        """The connection's serving task: ``request``, then the queued ones in order; between
        them it waits for the next (``_next`` wakes it). One task per connection, not one per
        request: a task costs more to make than a future (asyncio registers each task in a
        WeakSet, in Python)."""
        try:
            while await self._serve(request):
                if self._queue:
                    request = self._queue.popleft()
                    continue
                self._idle()
                if self._closed or self._handover is not None:
                    return
                wake = self._wake = self._loop.create_future()
                try:
                    request = await wake
                except asyncio.CancelledError:
                    if wake.cancelled():  # released (``_release_worker``): the connection is done
                        return
                    raise
        finally:
            if self._worker is asyncio.current_task():
                self._worker = None

    def _release_worker(self) -> None:
        """End the serving task if it waits for a request (closed, or handed over)."""
        wake = self._wake
        if wake is not None:
            self._wake = None
            wake.cancel()

    async def _serve(self, request: FastRequest) -> bool:
        """Answer ``request``; whether the connection goes on (keep-alive, still open)."""
        transport = self._transport
        assert transport is not None
        keep_alive = request.keep_alive
        try:
            response: web.StreamResponse
            try:
                response = await self._serving.handler(cast(web.Request, request))
            except web.HTTPException as exc:  # a Response too: aiohttp sends it as it is
                response = exc
            if (
                not isinstance(response, web.Response)
                or response.prepared
                or response.chunked
                or response.compression
            ):
                raise TypeError(f"fast path: unsupported response {type(response).__name__}")
            data = encode_response(response, request.method, request.version, keep_alive)
        except asyncio.CancelledError:
            # a connection reset (faults) or lost: drop it silently, as aiohttp does
            self._task = None
            self.close()
            raise
        except Exception:
            log.exception("Error handling request %s %s", request.method, request.raw_path)
            err = web.Response(
                status=500,
                text="500 Internal Server Error\n\nServer got itself in trouble",
            )
            data = encode_response(err, request.method, request.version, False)
            keep_alive = False
        if self._closed:
            return False
        transport.write(data)
        if not keep_alive:
            self._task = None
            self.close()
            return False
        return True

    # -- idle connections ------------------------------------------------------------------

    def _arm_idle_timer(self, delay: float) -> None:
        self._idle_timer = self._loop.call_later(delay, self._idle_check)

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self._closed or self._handover is not None:
            return
        idle = self._loop.time() - self._idle_since
        timeout = self._serving.keepalive_timeout
        if self._task is None and not self._queue and not self._in_message and idle >= timeout:
            self.close()
            return
        self._arm_idle_timer(max(timeout - idle, 1.0) if self._task is None else timeout)

    # -- hand-over to aiohttp --------------------------------------------------------------

    def _start_handover(self) -> None:
        """From the request whose head was just parsed on, the connection is aiohttp's."""
        self._handover = self._serving.aiohttp_server()
        if self._raw_exact:
            # the raw bytes start with this request: forward them (and what follows) as is
            self._handover_out = list(self._raw)
            self._relaying = False
        else:
            self._relaying = True
            self._relay_head()
        self._raw = []

    def _relay_head(self) -> None:
        parser = self._parser
        lines = [
            parser.get_method() + b" " + self._url + b" HTTP/" + parser.get_http_version().encode()
        ]
        chunked = False
        for name, value in self._headers:
            lines.append(name + b": " + value)
            if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        self._chunked = chunked
        lines.append(b"\r\n")
        self._handover_out.append(b"\r\n".join(lines))

    def _maybe_hand_over(self) -> None:
        """Give the connection to aiohttp once no fast request is before it."""
        handler = self._handover
        transport = self._transport
        if handler is None or transport is None or self._closed:
            return
        if self._task is not None or self._queue:
            return
        if not self._connected_aiohttp:
            self._connected_aiohttp = True
            self._release_worker()
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            self._serving.connections.discard(self)
            handler.connection_made(transport)
            if self._writing_paused:
                handler.pause_writing()
            self._resume_reading()
        if self._handover_out:
            data = b"".join(self._handover_out)
            self._handover_out = []
            handler.data_received(data)
        if self._relaying and not self._in_message:
            self._relaying = False  # between messages: raw bytes from here on
        if not self._relaying:
            transport.set_protocol(handler)
            if self._handover_eof:
                handler.eof_received()

    def _parse_error(self) -> None:
        """Malformed input: aiohttp answers it (its 400) when the raw bytes of the message are
        known; else a bare 400 and the connection closes."""
        if self._closed:
            return
        if self._handover is not None and not self._relaying:
            self._maybe_hand_over()  # the raw bytes went to aiohttp already: its parser judges
            return
        if self._handover is None and self._raw_exact:
            self._handover = self._serving.aiohttp_server()
            self._handover_out = list(self._raw)
            self._raw = []
            self._relaying = False
            self._maybe_hand_over()
            return
        if self._handover is not None and self._relaying:
            self._relaying = False  # the parser is done: pass on what comes as it is
            self._maybe_hand_over()
            return
        self._bad_request()

    def _refuse_head(self) -> None:
        self._bad_request()
        raise httptools.HttpParserError("request head too large")

    def _bad_request(self) -> None:
        if self._transport is not None and not self._closed:
            err = web.Response(status=400, text="Bad Request")
            self._transport.write(encode_response(err, "GET", "1.1", False))
        self.close()
