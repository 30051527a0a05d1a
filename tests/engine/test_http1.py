"""Http1Pool against a raw asyncio server whose every byte the test controls: keep-alive reuse,
chunked answers, Retry-After, Connection: close, a connection the server dropped, timeouts,
cancellation, the connection limit, a malformed answer, uvloop; and the ApiClient's use of it
(a server URL with a path prefix, query strings)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvloop
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient, ApiConnectionError, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.engine.http1 import Http1Pool

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]
"""Given a request head (and body), write the answer; False closes the connection."""


def ok(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class RawServer:
    """Reads requests (head + Content-Length body), records them and the connection they came
    on, and lets ``answer`` reply."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[int, bytes]] = []  # (connection number, head + body)
        self.connections = 0
        self.open_connections = 0
        self.peak_open = 0
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open_connections += 1
        self.peak_open = max(self.peak_open, self.open_connections)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append((number, head + body))
                if not await self.answer(head + body, writer):
                    return
                await writer.drain()
        finally:
            self.open_connections -= 1
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], Awaitable[RawServer]]]:
    servers: list[RawServer] = []

    async def start(answer: Answer) -> RawServer:
        server = RawServer(answer)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def pool_for(server: RawServer, **options: Any) -> Http1Pool:
    return Http1Pool("127.0.0.1", server.port, ssl_context=None, **options)


async def always_ok(request: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(ok(b'{"n": 1}'))
    return True


async def test_sequential_requests_share_one_keep_alive_connection(serve: Any) -> None:
    server = await serve(always_ok)
    pool = pool_for(server)
    for _ in range(5):
        answer = await pool.request("GET", "/api/v1/pods", b"Accept: x\r\n", None, timeout=5)
        assert (answer.status, answer.body) == (200, b'{"n": 1}')
    await pool.close()
    assert server.connections == 1
    head = server.requests[0][1]
    assert head.startswith(b"GET /api/v1/pods HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in head
    assert b"Accept: x\r\n" in head and b"Content-Length" not in head


async def test_a_body_is_sent_with_its_length(serve: Any) -> None:
    server = await serve(always_ok)
    pool = pool_for(server)
    await pool.request("POST", "/x", b"", b'{"a": 1}', timeout=5)
    await pool.close()
    assert server.requests[0][1].endswith(b'Content-Length: 8\r\n\r\n{"a": 1}')


async def test_chunked_answers_and_retry_after_are_read(serve: Any) -> None:
    async def chunked(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n4\r\n: 1}\r\n0\r\n\r\n'
        )
        return True

    pool = pool_for(await serve(chunked))
    answer = await pool.request("GET", "/", b"", None, timeout=5)
    await pool.close()
    assert (answer.status, answer.retry_after, answer.body) == (429, "3", b'{"a": 1}')


async def test_connection_close_is_honoured(serve: Any) -> None:
    async def closing(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(extra=b"Connection: close\r\n"))
        return False

    server = await serve(closing)
    pool = pool_for(server)
    for _ in range(3):
        assert (await pool.request("GET", "/", b"", None, timeout=5)).status == 200
    await pool.close()
    assert server.connections == 3


@pytest.mark.parametrize(("method", "retried"), [("GET", True), ("POST", False)])
async def test_a_dropped_keep_alive_connection_is_retried_only_when_idempotent(
    serve: Any, method: str, retried: bool
) -> None:
    """The server reads the second request on a reused connection and drops it unanswered (a
    keep-alive timeout racing our write looks the same from here)."""

    async def drop_second(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 2:
            return False
        writer.write(ok())
        return True

    server = await serve(drop_second)
    pool = pool_for(server)
    await pool.request(method, "/", b"", b"{}" if method == "POST" else None, timeout=5)
    if retried:
        assert (await pool.request(method, "/", b"", None, timeout=5)).status == 200
        assert [n for n, _ in server.requests] == [1, 1, 2]
    else:
        with pytest.raises(ConnectionError, match="closed before the answer"):
            await pool.request(method, "/", b"", b"{}", timeout=5)
        assert len(server.requests) == 2
        assert (await pool.request(method, "/", b"", b"{}", timeout=5)).status == 200
    await pool.close()


async def test_a_timeout_raises_and_drops_the_connection(serve: Any) -> None:
    async def slow_first(request: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) == 1:
            await asyncio.sleep(0.5)
        writer.write(ok())
        return True

    server = await serve(slow_first)
    pool = pool_for(server)
    with pytest.raises(TimeoutError):
        await pool.request("GET", "/", b"", None, timeout=0.05)
    assert (await pool.request("GET", "/", b"", None, timeout=5)).status == 200
    await pool.close()
    assert server.connections == 2  # the late answer never reaches the second request


async def test_a_cancelled_request_drops_its_connection(serve: Any) -> None:
    gate = asyncio.Event()
    arrived = asyncio.Event()

    async def held(request: bytes, writer: asyncio.StreamWriter) -> bool:
        arrived.set()
        if len(server.requests) == 1:
            await gate.wait()
        writer.write(ok())
        return True

    server = await serve(held)
    pool = pool_for(server)
    task = asyncio.ensure_future(pool.request("GET", "/", b"", None, timeout=5))
    await arrived.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gate.set()
    assert (await pool.request("GET", "/", b"", None, timeout=5)).status == 200
    await pool.close()
    assert server.connections == 2


async def test_at_most_limit_connections_are_open(serve: Any) -> None:
    async def slowish(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        writer.write(ok())
        return True

    server = await serve(slowish)
    pool = pool_for(server, limit=3)
    answers = await asyncio.gather(
        *(pool.request("GET", "/", b"", None, timeout=5) for _ in range(20))
    )
    await pool.close()
    assert {a.status for a in answers} == {200}
    assert server.connections == 3 and server.peak_open == 3


async def test_a_malformed_answer_and_a_refused_connect_are_connection_errors(serve: Any) -> None:
    async def garbage(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        return True

    server = await serve(garbage)
    pool = pool_for(server)
    with pytest.raises(ConnectionError, match="malformed HTTP answer"):
        await pool.request("GET", "/", b"", None, timeout=5)
    await pool.close()
    port = server.port
    await server.stop()
    refused = Http1Pool("127.0.0.1", port, ssl_context=None)
    with pytest.raises(ConnectionError, match=r"connect to 127\.0\.0\.1"):
        await refused.request("GET", "/", b"", None, timeout=5)


def test_the_pool_works_on_uvloop() -> None:
    """The operator runs on uvloop, whose transports are not asyncio.Transport subclasses."""

    async def main() -> tuple[int, int]:
        server = RawServer(always_ok)
        await server.start()
        pool = pool_for(server)
        try:
            for _ in range(3):
                assert (await pool.request("GET", "/", b"", None, timeout=5)).status == 200
        finally:
            await pool.close()
            await server.stop()
        return len(server.requests), server.connections

    assert uvloop.run(main()) == (3, 1)


async def test_the_client_keeps_a_path_prefix_and_encodes_the_query(serve: Any) -> None:
    server = await serve(always_ok)
    client = ApiClient(
        ClientConfig(server=f"http://127.0.0.1:{server.port}/k8s/clusters/c-1", token="t"),
        ClientOptions(registry=CollectorRegistry()),
    )
    async with client:
        await client.request_json(
            "GET", "/api/v1/pods", query={"labelSelector": "a in (x,y)", "limit": "5"}
        )
    head = server.requests[0][1]
    assert head.startswith(
        b"GET /k8s/clusters/c-1/api/v1/pods?labelSelector=a+in+%28x%2Cy%29&limit=5 HTTP/1.1\r\n"
    )
    assert b"Authorization: Bearer t\r\n" in head and b"User-Agent: kubetrain/" in head


async def test_the_client_maps_a_broken_exchange_to_api_connection_error(serve: Any) -> None:
    async def drop(request: bytes, writer: asyncio.StreamWriter) -> bool:
        return False

    server = await serve(drop)
    client = ApiClient(
        ClientConfig(server=f"http://127.0.0.1:{server.port}"),
        ClientOptions(registry=CollectorRegistry(), max_retries=0),
    )
    async with client:
        with pytest.raises(ApiConnectionError, match="POST /api/v1/namespaces/d/pods"):
            await client.request_json("POST", "/api/v1/namespaces/d/pods", body={})


async def test_the_client_tells_its_limit_when_the_server_has_fair_queuing(serve: Any) -> None:
    async def apf(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(ok(extra=b"X-Kubernetes-PF-FlowSchema-UID: 1f2e\r\n"))
        return True

    server = await serve(apf)
    for transport in ("http1", "aiohttp"):
        client = ApiClient(
            ClientConfig(server=f"http://127.0.0.1:{server.port}"),
            ClientOptions(registry=CollectorRegistry(), transport=transport),  # type: ignore[arg-type]
        )
        async with client:
            assert client._adaptive is not None and not client._adaptive.fair_queuing
            await client.request_json("GET", "/api/v1/pods")
            assert client._adaptive.fair_queuing, transport
