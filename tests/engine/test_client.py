"""ApiClient: Transport behaviour, throttling, 429 retries, metrics, conveniences, config loading.

Fault behaviour (429, 5xx, broken bodies, long watch lines) runs against a tiny aiohttp app we
control; CRUD conveniences and conflict retries run against the embedded API server.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from kubetrain.engine import client as client_module
from kubetrain.engine.client import ApiClient, ApiConnectionError, ClientOptions
from kubetrain.engine.config import (
    ClientConfig,
)
from kubetrain.informers.resource import CONFIGMAPS, PODS
from kubetrain.informers.transport import ApiStatusError, Transport


class InstantClock:
    """A clock whose sleeps return at once and advance time by the slept amount."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        raise NotImplementedError


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status_body(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reason,
            "message": message,
        }
    )


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def client_for(url: str, **options: Any) -> tuple[ApiClient, CollectorRegistry, InstantClock]:
    registry = CollectorRegistry()
    clock = InstantClock()
    options.setdefault("qps", 0)
    client = ApiClient(
        ClientConfig(server=url, token="t0k"),
        ClientOptions(registry=registry, clock=clock, **options),
    )
    return client, registry, clock


# -- Transport contract ---------------------------------------------------------------------------


async def test_implements_transport_and_sends_auth_and_body(fake_server: Any) -> None:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.Response:
        seen["auth"] = request.headers.get("Authorization")
        seen["ctype"] = request.headers.get("Content-Type")
        seen["query"] = dict(request.query)
        seen["body"] = await request.read()
        return web.Response(body=b'{"ok": true}', content_type="application/json")

    url = await fake_server(handler)
    client, registry, _ = client_for(url)
    async with client:
        assert isinstance(client, Transport)
        answer = await client.request_json(
            "post", "/api/v1/x", query={"dryRun": "All"}, body={"a": [1, 2]}
        )
    assert answer == {"ok": True}
    assert seen["auth"] == "Bearer t0k"
    assert seen["ctype"] == "application/json"
    assert seen["query"] == {"dryRun": "All"}
    assert orjson.loads(seen["body"]) == {"a": [1, 2]}
    host = url.removeprefix("http://")
    assert metric(registry, "rest_client_requests_total", code="200", method="POST", host=host) == 1
    assert (
        metric(registry, "rest_client_request_duration_seconds_count", verb="POST", host=host) == 1
    )


async def test_each_verb_and_status_counts_into_its_own_series(fake_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        if request.path.endswith("/missing"):
            return web.Response(status=404, body=status_body(404, "NotFound", "gone"))
        return web.Response(body=b'{"ok": true}', content_type="application/json")

    url = await fake_server(handler)
    client, registry, _ = client_for(url)
    async with client:
        for _ in range(2):
            await client.request_json("POST", "/api/v1/x", body={"a": 1})
        await client.request_json("GET", "/api/v1/x")
        with pytest.raises(ApiStatusError):
            await client.request_json("POST", "/api/v1/missing", body={"a": 1})
    host = url.removeprefix("http://")
    requests = "rest_client_requests_total"
    assert metric(registry, requests, code="200", method="POST", host=host) == 2
    assert metric(registry, requests, code="200", method="GET", host=host) == 1
    assert metric(registry, requests, code="404", method="POST", host=host) == 1
    sizes = "rest_client_request_size_bytes_sum"
    assert metric(registry, sizes, verb="POST", host=host) == 3 * len(b'{"a":1}')
    assert metric(registry, sizes, verb="GET", host=host) == 0
    assert metric(registry, "rest_client_response_size_bytes_sum", verb="GET", host=host) == len(
        b'{"ok": true}'
    )
    assert (
        metric(registry, "rest_client_request_duration_seconds_count", verb="POST", host=host) == 3
    )


async def test_status_error_decoded_and_plain_errors_named(fake_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/missing"):
            return web.Response(
                status=404, body=status_body(404, "NotFound", 'pods "missing" not found')
            )
        return web.Response(status=500, text="boom")

    url = await fake_server(handler)
    client, _, _ = client_for(url)
    async with client:
        with pytest.raises(ApiStatusError) as missing:
            await client.request_json("GET", "/api/v1/namespaces/d/pods/missing")
        with pytest.raises(ApiStatusError) as plain:
            await client.request_json("GET", "/other")
    assert missing.value.is_not_found and missing.value.message == 'pods "missing" not found'
    assert missing.value.status is not None and missing.value.status["kind"] == "Status"
    assert plain.value.code == 500 and plain.value.reason == "InternalError"
    assert "boom" in plain.value.message and plain.value.status is None


async def test_429_retried_after_retry_after_then_succeeds(fake_server: Any) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return web.Response(
                status=429,
                body=status_body(429, "TooManyRequests", "slow down"),
                headers={"Retry-After": "3"},
            )
        return web.Response(body=b"{}", content_type="application/json")

    url = await fake_server(handler)
    client, registry, clock = client_for(url)
    async with client:
        assert await client.request_json("GET", "/x") == {}
    assert calls == 3
    assert clock.sleeps == [3.0, 3.0]
    host = url.removeprefix("http://")
    assert (
        metric(registry, "rest_client_request_retries_total", code="429", verb="GET", host=host)
        == 2
    )
    assert metric(registry, "rest_client_requests_total", code="429", method="GET", host=host) == 2


async def test_429_retries_are_bounded_and_capped(fake_server: Any) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.Response(
            status=429,
            body=status_body(429, "TooManyRequests", "busy"),
            headers={"Retry-After": "3600"},
        )

    url = await fake_server(handler)
    client, _, clock = client_for(url, max_retries=2, max_retry_after=5.0)
    async with client:
        with pytest.raises(ApiStatusError) as err:
            await client.request_json("GET", "/x")
    assert calls == 3
    assert clock.sleeps == [5.0, 5.0]
    assert err.value.is_too_many_requests and err.value.retry_after == 3600.0


async def test_5xx_retried_only_with_retry_after(fake_server: Any) -> None:
    calls: dict[str, int] = {"/with": 0, "/without": 0}

    async def handler(request: web.Request) -> web.Response:
        calls[request.path] += 1
        if request.path == "/with" and calls["/with"] == 1:
            return web.Response(status=503, text="later", headers={"Retry-After": "1"})
        if request.path == "/without":
            return web.Response(status=503, text="down")
        return web.Response(body=b'{"n": 1}', content_type="application/json")

    url = await fake_server(handler)
    client, _, _ = client_for(url)
    async with client:
        assert await client.request_json("GET", "/with") == {"n": 1}
        with pytest.raises(ApiStatusError) as err:
            await client.request_json("GET", "/without")
    assert calls == {"/with": 2, "/without": 1}
    assert err.value.code == 503


async def test_connection_refused_is_a_connection_error_with_error_code() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client, registry, _ = client_for(f"http://127.0.0.1:{port}")
    async with client:
        with pytest.raises(ConnectionError) as err:
            await client.request_json("GET", "/x")
    assert isinstance(err.value, ApiConnectionError)
    assert (
        metric(
            registry,
            "rest_client_requests_total",
            code="<error>",
            method="GET",
            host=f"127.0.0.1:{port}",
        )
        == 1
    )


async def test_timeout_raises_timeout_error(fake_server: Any) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(body=b"{}")

    url = await fake_server(handler)
    client, _, _ = client_for(url)
    async with client:
        with pytest.raises(TimeoutError):
            await client.request_json("GET", "/slow", timeout=0.2)
    release.set()


# -- throttling -----------------------------------------------------------------------------------


async def test_qps_and_burst_throttle_requests(fake_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=b"{}", content_type="application/json")

    url = await fake_server(handler)
    client, registry, clock = client_for(url, qps=10.0, burst=2)
    start = clock.monotonic()
    async with client:
        await asyncio.gather(*(client.request_json("GET", f"/x{i}") for i in range(6)))
    # 2 immediately, then 4 more at 10/s.
    assert clock.monotonic() - start == pytest.approx(0.4)
    host = url.removeprefix("http://")
    count = metric(
        registry, "rest_client_rate_limiter_duration_seconds_count", verb="GET", host=host
    )
    assert count == 6


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="burst"):
        ClientOptions(qps=5, burst=-1)
    assert ClientOptions(qps=5).effective_burst == 8  # 0: 1.5 x qps, rounded up
    assert ClientOptions(qps=5, burst=2).effective_burst == 2
    with pytest.raises(ValueError, match="max_retries"):
        ClientOptions(max_retries=-1)


# -- watch streams --------------------------------------------------------------------------------


async def test_stream_lines_splits_chunks_and_long_lines(fake_server: Any) -> None:
    long_value = "v" * 300_000  # longer than aiohttp's readline limit

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        first = orjson.dumps({"type": "ADDED", "object": {"v": long_value}}) + b"\n"
        second = orjson.dumps({"type": "DELETED", "object": {"v": "x"}})
        await resp.write(first[:1000])
        await resp.write(first[1000:] + second[:5])
        await resp.write(second[5:] + b"\n\n")
        await resp.write_eof()
        return resp

    url = await fake_server(handler)
    client, _, _ = client_for(url)
    async with client, client.stream_lines("/w", query={"watch": "true"}) as lines:
        got = [orjson.loads(line) async for line in lines]
    assert [e["type"] for e in got] == ["ADDED", "DELETED"]
    assert got[0]["object"]["v"] == long_value


async def test_stream_lines_keeps_blank_lines_only_when_asked(fake_server: Any) -> None:
    """A watch skips blank lines; a followed pod log (``keep_blank``) keeps them: they are text."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"epoch 1\n\n")
        await resp.write(b"\nepoch 2\n")
        await resp.write_eof()
        return resp

    url = await fake_server(handler)
    client, _, _ = client_for(url)
    async with client:
        async with client.stream_lines("/log") as lines:
            assert [line async for line in lines] == [b"epoch 1", b"epoch 2"]
        async with client.stream_lines("/log", keep_blank=True) as lines:
            assert [line async for line in lines] == [b"epoch 1", b"", b"", b"epoch 2"]


async def test_a_stream_lost_with_the_connection_raises_api_connection_error() -> None:
    """aiohttp raises a bare ``RuntimeError("Connection closed.")`` when the server's process
    died (SIGKILL) before the payload was marked broken; a watch reports it as every other
    broken stream (``ApiConnectionError``, a ``ConnectionError``: the reflector's "closed")."""

    class LostContent:
        async def iter_any(self) -> Any:
            yield b'{"type":"ADDED","object":{}}\n'
            raise RuntimeError("Connection closed.")

    class Resp:
        content = LostContent()

    lines = client_module._lines(Resp(), "/w")  # type: ignore[arg-type]
    assert await lines.__anext__() == b'{"type":"ADDED","object":{}}'
    with pytest.raises(ApiConnectionError, match="stream broken: Connection closed"):
        await lines.__anext__()


async def test_stream_open_error_raises_status(fake_server: Any) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=410, body=status_body(410, "Expired", "too old"))

    url = await fake_server(handler)
    client, _, _ = client_for(url)
    async with client:
        with pytest.raises(ApiStatusError) as err:
            async with client.stream_lines("/w"):
                pass
    assert err.value.is_gone


async def test_token_file_is_read(fake_server: Any, tmp_path: Path) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.Response(body=b"{}")

    url = await fake_server(handler)
    token = tmp_path / "token"
    token.write_text("first\n")
    clock = InstantClock()
    client = ApiClient(
        ClientConfig(server=url, token_file=str(token)),
        ClientOptions(registry=CollectorRegistry(), clock=clock, qps=0),
    )
    async with client:
        await client.request_json("GET", "/a")
        token.write_text("second")
        await client.request_json("GET", "/a")  # cached within a minute
        clock.t += 61
        await client.request_json("GET", "/a")
    assert seen == ["Bearer first", "Bearer first", "Bearer second"]


# -- conveniences against the embedded API server ------------------------------------------------


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }


async def test_crud_conveniences(api: ApiClient) -> None:
    created = await api.create(CONFIGMAPS, {"metadata": {"name": "a", "namespace": "default"}})
    assert created["metadata"]["uid"]
    for i in range(3):
        await api.create(CONFIGMAPS, {"metadata": {"name": f"p{i}"}}, namespace="default")
    page = await api.list(CONFIGMAPS, "default", limit=2)
    assert len(page["items"]) == 2 and page["metadata"].get("continue")
    names = {o["metadata"]["name"] for o in await api.list_all(CONFIGMAPS, "default", page_size=2)}
    assert {"a", "p0", "p1", "p2"} <= names

    merged = await api.patch(CONFIGMAPS, "default", "a", {"data": {"k": "1"}})
    assert merged["data"] == {"k": "1"}
    jsonp = await api.patch(
        CONFIGMAPS,
        "default",
        "a",
        [{"op": "add", "path": "/data/j", "value": "2"}],
        patch_type="json",
    )
    assert jsonp["data"] == {"k": "1", "j": "2"}
    applied = await api.patch(
        CONFIGMAPS,
        "default",
        "a",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"s": "3"}},
        patch_type="apply",
        field_manager="tester",
    )
    assert applied["data"]["s"] == "3"

    stale = dict(created, data={"old": "x"})
    with pytest.raises(ApiStatusError) as conflict:
        await api.update(CONFIGMAPS, stale)
    assert conflict.value.is_conflict

    fresh = await api.get(CONFIGMAPS, "default", "a")
    fresh["data"] = {"new": "y"}
    assert (await api.update(CONFIGMAPS, fresh))["data"] == {"new": "y"}

    with pytest.raises(ApiStatusError) as precondition:
        await api.delete(CONFIGMAPS, "default", "a", uid="not-the-uid")
    assert precondition.value.code == 409
    await api.delete(CONFIGMAPS, "default", "a", uid=created["metadata"]["uid"])
    with pytest.raises(ApiStatusError) as gone:
        await api.get(CONFIGMAPS, "default", "a")
    assert gone.value.is_not_found


async def test_patch_and_create_argument_errors(api: ApiClient) -> None:
    with pytest.raises(ValueError, match="field_manager"):
        await api.patch(CONFIGMAPS, "default", "a", {}, patch_type="apply")
    with pytest.raises(ValueError, match="namespace"):
        await api.create(CONFIGMAPS, {"metadata": {"name": "x"}})


async def test_update_status_with_retry_rereads_on_conflict(api: ApiClient) -> None:
    cached = await api.create(PODS, pod("p"))
    # Someone else writes meanwhile: our cached copy is now stale.
    other = await api.get(PODS, "default", "p")
    other["metadata"]["labels"] = {"touched": "yes"}
    await api.update(PODS, other)

    seen_versions: list[str] = []

    def mutate(obj: dict[str, Any]) -> dict[str, Any]:
        seen_versions.append(obj["metadata"]["resourceVersion"])
        obj.setdefault("status", {})["message"] = "hello"
        return obj

    written = await api.update_status_with_retry(PODS, "default", "p", mutate, current=cached)
    assert written is not None and written["status"]["message"] == "hello"
    assert len(seen_versions) == 2 and seen_versions[0] == cached["metadata"]["resourceVersion"]
    assert seen_versions[1] != seen_versions[0]
    assert cached.get("status", {}).get("message") != "hello"  # the caller's object is untouched

    # Nothing to change: no write, resourceVersion stays.
    before = (await api.get(PODS, "default", "p"))["metadata"]["resourceVersion"]
    assert await api.update_status_with_retry(PODS, "default", "p", lambda o: o) is None
    assert await api.update_status_with_retry(PODS, "default", "p", lambda o: None) is None
    assert (await api.get(PODS, "default", "p"))["metadata"]["resourceVersion"] == before


async def test_update_status_with_retry_gives_up_after_max_attempts(api: ApiClient) -> None:
    await api.create(PODS, pod("q"))
    calls = 0

    def mutate(obj: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        obj["metadata"]["resourceVersion"] = "1"  # always stale
        obj.setdefault("status", {})["message"] = f"try {calls}"
        return obj

    with pytest.raises(ApiStatusError) as err:
        await api.update_status_with_retry(PODS, "default", "q", mutate, max_attempts=3)
    assert err.value.is_conflict and calls == 3


async def test_watch_through_client(api: ApiClient) -> None:
    await api.create(CONFIGMAPS, {"metadata": {"name": "w", "namespace": "default"}})
    query = {"watch": "true", "resourceVersion": "0", "timeoutSeconds": "1"}
    async with api.stream_lines(CONFIGMAPS.collection_path("default"), query=query) as lines:
        events = [orjson.loads(line) async for line in lines]
    assert any(e["type"] == "ADDED" and e["object"]["metadata"]["name"] == "w" for e in events)


async def test_create_if_absent_creates_once_and_raises_other_refusals(api: ApiClient) -> None:
    cm = {"metadata": {"name": "once", "namespace": "default"}, "data": {"v": "1"}}
    assert await api.create_if_absent(CONFIGMAPS, cm) is True
    assert await api.create_if_absent(CONFIGMAPS, {**cm, "data": {"v": "2"}}) is False
    assert (await api.get(CONFIGMAPS, "default", "once"))["data"] == {"v": "1"}  # not replaced
    with pytest.raises(ApiStatusError) as err:
        await api.create_if_absent(CONFIGMAPS, {"metadata": {"name": "x", "namespace": "nope"}})
    assert err.value.is_not_found


async def test_create_without_reading_the_answer(api: ApiClient) -> None:
    """``read_answer=False`` creates the same object and returns ``{}``; a refusal still raises."""
    cm = {"metadata": {"name": "unread", "namespace": "default"}, "data": {"v": "1"}}
    assert await api.create(CONFIGMAPS, cm, read_answer=False) == {}
    assert (await api.get(CONFIGMAPS, "default", "unread"))["data"] == {"v": "1"}
    with pytest.raises(ApiStatusError) as err:
        await api.create(CONFIGMAPS, cm, read_answer=False)
    assert err.value.is_already_exists
