"""The API server's fast serving path (``cluster/apiserver/fasthttp.py``) over raw TCP.

Each test speaks HTTP/1.1 byte by byte, so what is checked is what a client sees on the wire:
keep-alive, bodies split across TCP packets, pipelining, chunked request bodies (as kubectl
sends them), the 413s, HTTP/1.0 and ``Connection: close``, the hand-over of a connection to
aiohttp for what the fast path does not serve (discovery, watches, malformed requests), and
that the fast path answers byte for byte as aiohttp did (bar the Date header and the fields that
differ per object).
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from multidict import CIMultiDict

from kubetrain.cluster.apiserver.fasthttp import FastRequest, encode_response
from kubetrain.cluster.apiserver.http_json import json_bytes_response
from kubetrain.cluster.apiserver.options import ApiServerOptions
from kubetrain.cluster.apiserver.server import ApiServer

pytestmark = pytest.mark.embedded_only(reason="the embedded server's own HTTP serving")

CM = "/api/v1/namespaces/default/configmaps"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def server() -> AsyncIterator[ApiServer]:
    api = ApiServer(ApiServerOptions(max_body_bytes=64 * 1024))
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


class Conn:
    """One raw TCP connection: send bytes, read answers (Content-Length or chunked)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, url: str) -> Conn:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        return cls(reader, writer)

    async def send(self, *parts: bytes, pause: float = 0.0) -> None:
        for part in parts:
            self.writer.write(part)
            await self.writer.drain()
            if pause:
                await asyncio.sleep(pause)

    async def answer(self) -> tuple[int, dict[str, str], bytes, bytes]:
        """(status, headers lowercased, body, the head as received)."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body = b""
        return status, headers, body, head

    async def eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), 5) == b""

    def close(self) -> None:
        self.writer.close()


def post(path: str, body: bytes, *, extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def get(path: str, *, version: str = "1.1", extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: x\r\n".encode() + extra + b"\r\n"


def cm(name: str) -> bytes:
    return orjson.dumps({"metadata": {"name": name}, "data": {"k": "v"}})


async def test_the_fast_path_serves_resource_requests(
    server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = FastRequest.__init__

    def spy(self: FastRequest, method: str, target: str, *args: object, **kw: object) -> None:
        seen.append(f"{method} {target}")
        original(self, method, target, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(FastRequest, "__init__", spy)
    conn = await Conn.open(server.url)
    await conn.send(post(CM, cm("fast-1")))
    status, _, _, _ = await conn.answer()
    assert status == 201
    await conn.send(get(f"{CM}/fast-1"))
    status, _, body, _ = await conn.answer()
    assert status == 200 and orjson.loads(body)["metadata"]["name"] == "fast-1"
    conn.close()
    assert seen == [f"POST {CM}", f"GET {CM}/fast-1"]


async def test_keep_alive_serves_many_requests_on_one_connection(server: ApiServer) -> None:
    conn = await Conn.open(server.url)
    for i in range(20):
        await conn.send(post(CM, cm(f"ka-{i}")))
        status, headers, body, _ = await conn.answer()
        assert status == 201, body
        assert "connection" not in headers
    await conn.send(get(CM))
    status, _, body, _ = await conn.answer()
    assert status == 200
    assert {i["metadata"]["name"] for i in orjson.loads(body)["items"]} >= {
        f"ka-{i}" for i in range(20)
    }
    conn.close()


async def test_a_request_split_across_packets(server: ApiServer) -> None:
    conn = await Conn.open(server.url)
    raw = post(CM, cm("split"))
    cut = [0, 5, 30, raw.index(b"\r\n\r\n") + 2, len(raw) - 7, len(raw)]
    await conn.send(*[raw[a:b] for a, b in itertools.pairwise(cut)], pause=0.02)
    status, _, body, _ = await conn.answer()
    assert status == 201, body
    assert orjson.loads(body)["metadata"]["name"] == "split"
    conn.close()


async def test_pipelined_requests_are_answered_in_order(server: ApiServer) -> None:
    conn = await Conn.open(server.url)
    names = [f"pipe-{i}" for i in range(5)]
    await conn.send(b"".join(post(CM, cm(n)) for n in names) + get(f"{CM}/pipe-0"))
    for name in names:
        status, _, body, _ = await conn.answer()
        assert status == 201 and orjson.loads(body)["metadata"]["name"] == name
    status, _, body, _ = await conn.answer()
    assert status == 200 and orjson.loads(body)["metadata"]["name"] == "pipe-0"
    conn.close()


async def test_a_chunked_request_body(server: ApiServer) -> None:
    body = cm("chunked")
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(piece), piece) for piece in (body[:10], body[10:25], body[25:])
    )
    head = (
        f"POST {CM} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    conn = await Conn.open(server.url)
    await conn.send(head, chunked[:7], chunked[7:] + b"0\r\n\r\n", pause=0.02)
    status, _, answer, _ = await conn.answer()
    assert status == 201, answer
    assert orjson.loads(answer)["data"] == {"k": "v"}
    await conn.send(get(f"{CM}/chunked"))  # still in step after a chunked body
    status, _, _, _ = await conn.answer()
    assert status == 200
    conn.close()


async def test_a_body_over_the_limit_is_413(server: ApiServer) -> None:
    big = orjson.dumps({"metadata": {"name": "big"}, "data": {"k": "x" * 70_000}})
    conn = await Conn.open(server.url)
    await conn.send(post(CM, big))  # Content-Length over the limit: aiohttp's own answer
    status, _, body, _ = await conn.answer()
    assert status == 413
    status_obj = orjson.loads(body)
    assert status_obj["kind"] == "Status" and status_obj["reason"] == "RequestEntityTooLarge"
    conn.close()
    # chunked: no length up front, refused when read
    conn = await Conn.open(server.url)
    head = (
        f"POST {CM} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    await conn.send(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big))
    status, _, body, _ = await conn.answer()
    assert status == 413
    assert orjson.loads(body)["reason"] == "RequestEntityTooLarge"
    await conn.send(get(f"{CM}/big"))  # the connection is still in step
    status, _, _, _ = await conn.answer()
    assert status == 404
    conn.close()


async def test_http_1_0_and_connection_close(server: ApiServer) -> None:
    conn = await Conn.open(server.url)
    await conn.send(get(CM, version="1.0"))
    status, headers, _, head = await conn.answer()
    assert status == 200 and head.startswith(b"HTTP/1.0 200 OK\r\n")
    assert "connection" not in headers
    assert await conn.eof()
    conn = await Conn.open(server.url)
    await conn.send(get(CM, version="1.0", extra=b"Connection: keep-alive\r\n"))
    status, headers, _, _ = await conn.answer()
    assert headers["connection"] == "keep-alive"
    await conn.send(get(CM, extra=b"Connection: close\r\n"))
    status, headers, _, _ = await conn.answer()
    assert status == 200 and headers["connection"] == "close"
    assert await conn.eof()


async def test_a_connection_is_handed_to_aiohttp_for_what_the_fast_path_does_not_serve(
    server: ApiServer,
) -> None:
    conn = await Conn.open(server.url)
    await conn.send(post(CM, cm("handover")))
    assert (await conn.answer())[0] == 201
    await conn.send(get("/version"))  # not a resource path: aiohttp from here on
    status, _, body, _ = await conn.answer()
    assert status == 200 and "gitVersion" in orjson.loads(body)
    await conn.send(get(f"{CM}/handover"))
    status, _, body, _ = await conn.answer()
    assert status == 200 and orjson.loads(body)["metadata"]["name"] == "handover"
    await conn.send(get("/no/such/path"))
    status, _, body, _ = await conn.answer()
    assert status == 404 and body == b"404 page not found\n"
    conn.close()


async def test_a_pipelined_watch_after_a_fast_request(server: ApiServer) -> None:
    """The watch is handed over after the create is answered; the stream then carries events."""
    conn = await Conn.open(server.url)
    await conn.send(post(CM, cm("w-0")) + get(f"{CM}?watch=true&resourceVersion=0"))
    assert (await conn.answer())[0] == 201
    head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200 OK") and b"chunked" in head.lower()
    seen = b""
    while b"w-0" not in seen:
        seen += await asyncio.wait_for(conn.reader.read(65536), 5)
    conn.close()


async def test_malformed_requests_get_aiohttps_400(server: ApiServer) -> None:
    conn = await Conn.open(server.url)
    await conn.send(b"POST /api/v1 HTTP/1.1\r\nContent-Length: abc\r\n\r\n")
    status, _, _, _ = await conn.answer()
    assert status == 400
    conn.close()
    conn = await Conn.open(server.url)
    await conn.send(post(CM, cm("then-bad")))
    assert (await conn.answer())[0] == 201
    await conn.send(b"GARBAGE\x00\r\n\r\n")
    status, _, _, _ = await conn.answer()
    assert status == 400
    conn.close()


def _comparable(head: bytes, body: bytes) -> tuple[str, bytes]:
    text = re.sub(r"Date: [^\r]*", "Date: -", head.decode())
    body = re.sub(rb'"(uid|creationTimestamp|resourceVersion)":"[^"]*"', b'"\\1":"-"', body)
    return text, body


async def test_answers_are_as_aiohttp_sends_them() -> None:
    """The same requests against a server with the fast path and one without (an extra
    middleware turns it off): the same bytes, bar Date and per-object fields."""

    async def exchange(api: ApiServer) -> list[tuple[str, bytes]]:
        await api.start()
        try:
            conn = await Conn.open(api.url)
            out = []
            for request in (
                post(CM, cm("same")),
                post(CM, cm("same")),  # 409
                get(f"{CM}/same"),
                get(f"{CM}/nope"),
                get(CM + "?limit=1"),
                get("/api/v1/namespaces/default/nosuch"),
                get(CM + "?labelSelector=a%3D%3D%3Db"),
                (
                    f"PATCH {CM}/same HTTP/1.1\r\nHost: x\r\n"
                    "Content-Type: application/merge-patch+json\r\nContent-Length: 24\r\n\r\n"
                    '{"data":{"k":"patched"}}'
                ).encode(),
                f"DELETE {CM}/same HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                post(CM, b"{not json"),
                post(CM + "?dryRun=All", cm("dry"), extra=b"X: y\r\n"),
            ):
                await conn.send(request)
                _status, _, body, head = await conn.answer()
                out.append(_comparable(head, body))
            conn.close()
            return out
        finally:
            await api.stop()

    @web.middleware
    async def passthrough(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await handler(request)

    fast = ApiServer()
    slow = ApiServer()
    slow.middlewares.append(passthrough)
    fast_answers = await exchange(fast)
    slow_answers = await exchange(slow)
    assert fast._fast is None and slow._fast is None  # stopped
    assert fast_answers == slow_answers


def test_encode_response_writes_headers_as_aiohttp_does() -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    headers.add("Warning", '299 - "one"')
    headers.add("Warning", '299 - "two"')
    resp = json_bytes_response(b"{}", status=201, headers=headers)
    out = encode_response(resp, "POST", "1.1", True).decode()
    out = re.sub(r"Date: [^\r]*", "Date: -", out)
    assert out == (
        'HTTP/1.1 201 Created\r\nWarning: 299 - "one"\r\nWarning: 299 - "two"\r\n'
        "Content-Type: application/json\r\nContent-Length: 2\r\nDate: -\r\n"
        f"Server: {SERVER_SOFTWARE}\r\n\r\n{{}}"
    )
    # the same head again (remembered) with another body: only Content-Length and body change
    again = encode_response(
        json_bytes_response(b"[1]", status=201, headers=headers), "POST", "1.1", True
    )
    assert re.sub(r"Date: [^\r]*", "Date: -", again.decode()) == out.replace(
        "Content-Length: 2", "Content-Length: 3"
    ).replace("{}", "[1]")
    closing = encode_response(web.Response(status=204), "DELETE", "1.1", False).decode()
    assert "Content-Length" not in closing and closing.endswith("Connection: close\r\n\r\n")


async def test_a_tls_client_closing_its_side_brings_no_asyncio_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """TLS has no half-close: the fast path must not ask asyncio to keep the transport open
    (asyncio warns "returning true from eof_received() has no effect when using ssl", once per
    connection of every ``kubetrain up``)."""
    import ssl

    from kubetrain.cluster.embedded import EmbeddedCluster

    async with EmbeddedCluster(secure=True) as cluster:
        assert cluster.credentials is not None
        context = ssl.create_default_context(cadata=cluster.credentials.ca_pem.decode())
        host, port = cluster.url.removeprefix("https://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
        writer.write(
            b"GET /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + cluster.credentials.token.encode() + b"\r\n\r\n"
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        with caplog.at_level("WARNING", logger="asyncio"):
            writer.close()  # close_notify, then EOF
            await writer.wait_closed()
            await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if "eof_received" in r.getMessage()]
