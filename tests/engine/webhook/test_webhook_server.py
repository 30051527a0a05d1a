"""WebhookServer over real HTTPS: AdmissionReview dispatch by path, refusals of bad bodies,
handler failures, certificate hot swap seen by the next handshake, readiness and metrics.

Clients trust only the test CA (``ssl.create_default_context(cadata=...)``) and connect to
127.0.0.1, which the serving certificates name as an IP SAN, so every request is fully verified.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from cryptography import x509
from prometheus_client import CollectorRegistry
from tlsprobe import served_certificate

from kubetrain.engine.webhook.admission import (
    AdmissionResponse,
    Request,
    allowed,
    denied,
    patched,
)
from kubetrain.engine.webhook.certs import (
    CertificateAuthority,
    CertificateError,
    ServerCertificate,
    make_ca,
)
from kubetrain.engine.webhook.server import (
    MAX_REVIEW_BYTES,
    WebhookServer,
    WebhookServerOptions,
)

LOCAL = WebhookServerOptions(host="127.0.0.1", port=0)
REQUESTS = "controller_runtime_webhook_requests_total"
LATENCY_COUNT = "controller_runtime_webhook_latency_seconds_count"
IN_FLIGHT = "controller_runtime_webhook_requests_in_flight"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca("webhook-server-test-ca")


@pytest.fixture(scope="module")
def other_ca() -> CertificateAuthority:
    return make_ca("webhook-server-other-ca")


def client_ctx(*cas: CertificateAuthority) -> ssl.SSLContext:
    """A client context trusting only ``cas``."""
    return ssl.create_default_context(cadata="".join(c.cert_pem.decode() for c in cas))


def review(uid: Any = "uid-1", **request: Any) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "operation": "CREATE",
            "namespace": "default",
            "name": "cm",
            "object": {"metadata": {"name": "cm", "labels": {"a": "b"}}},
            **request,
        },
    }


class Gate:
    """An async handler that waits until released; ``entered`` is set while it waits."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: Request) -> AdmissionResponse:
        self.entered.set()
        await self.release.wait()
        return allowed(warnings=["waited"])


class Started:
    def __init__(self, server: WebhookServer, registry: CollectorRegistry, gate: Gate) -> None:
        self.server = server
        self.registry = registry
        self.gate = gate
        self.seen: list[Request] = []

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server.port}{path}"

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def hooks(ca: CertificateAuthority) -> AsyncIterator[Started]:
    """A started server with a certificate of ``ca`` and handlers: ``/allow`` (sync, records
    the request), ``/async-deny`` (coroutine), ``/patch``, ``/warn``, ``/raise``, ``/gate``."""
    registry = CollectorRegistry()
    server = WebhookServer(LOCAL, registry=registry)
    gate = Gate()
    started = Started(server, registry, gate)

    def allow(request: Request) -> AdmissionResponse:
        started.seen.append(request)
        return allowed()

    async def async_deny(request: Request) -> AdmissionResponse:
        await asyncio.sleep(0)
        return denied(f"no {request['name']}", code=422, reason="Invalid")

    def patch(request: Request) -> AdmissionResponse:
        return patched([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])

    def warn(request: Request) -> AdmissionResponse:
        return allowed(warnings=["deprecated field", "second"])

    def boom(request: Request) -> AdmissionResponse:
        raise KeyError("kaput")

    server.register("/allow", allow)
    server.register("/async-deny", async_deny)
    server.register("/patch", patch)
    server.register("/warn", warn)
    server.register("/raise", boom)
    server.register("/gate", gate)
    server.use_certificate(ca.issue_server_cert())
    await server.start()
    try:
        yield started
    finally:
        gate.release.set()
        await server.stop()


@pytest.fixture
async def session(ca: CertificateAuthority) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ctx(ca))) as s:
        yield s


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    *,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with session.post(url, data=data, headers={"Content-Type": content_type}) as resp:
        raw = await resp.read()
        try:
            return resp.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return resp.status, raw


async def peer_serial(port: int, ctx: ssl.SSLContext) -> int:
    """The serial of the certificate a NEW TLS connection is served (verified by ``ctx``)."""
    return x509.load_der_x509_certificate(await served_certificate(port, ctx)).serial_number


def serial(cert: ServerCertificate) -> int:
    return cert.certificate.serial_number


# -- dispatch --------------------------------------------------------------------------------------


async def test_sync_handler_answers_with_the_request_uid(
    hooks: Started, session: aiohttp.ClientSession
) -> None:
    status, body = await post(session, hooks.url("/allow"), review("abc-123"))
    assert status == 200
    assert body == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "abc-123", "allowed": True},
    }
    # the handler got the request as sent
    assert len(hooks.seen) == 1
    assert hooks.seen[0]["uid"] == "abc-123"
    assert hooks.seen[0]["object"] == {"metadata": {"name": "cm", "labels": {"a": "b"}}}
    assert hooks.seen[0]["operation"] == "CREATE"


async def test_async_handler_answers_with_the_request_uid(
    hooks: Started, session: aiohttp.ClientSession
) -> None:
    status, body = await post(session, hooks.url("/async-deny"), review("u-async", name="job-7"))
    assert status == 200
    response = body["response"]
    assert response["uid"] == "u-async"
    assert response["allowed"] is False
    assert response["status"]["code"] == 422
    assert response["status"]["reason"] == "Invalid"
    assert response["status"]["message"] == "no job-7"


async def test_paths_dispatch_to_their_own_handler(
    hooks: Started, session: aiohttp.ClientSession
) -> None:
    _, allow = await post(session, hooks.url("/allow"), review("1"))
    _, deny = await post(session, hooks.url("/async-deny"), review("2"))
    assert allow["response"]["allowed"] is True
    assert deny["response"]["allowed"] is False
    assert [r["uid"] for r in hooks.seen] == ["1"]
    assert hooks.server.paths == ["/allow", "/async-deny", "/gate", "/patch", "/raise", "/warn"]


async def test_patch_is_base64_jsonpatch(hooks: Started, session: aiohttp.ClientSession) -> None:
    status, body = await post(session, hooks.url("/patch"), review("p"))
    assert status == 200
    response = body["response"]
    assert response["uid"] == "p" and response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert orjson.loads(base64.b64decode(response["patch"])) == [
        {"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}
    ]


async def test_warnings_are_returned(hooks: Started, session: aiohttp.ClientSession) -> None:
    status, body = await post(session, hooks.url("/warn"), review("w"))
    assert status == 200
    assert body["response"]["warnings"] == ["deprecated field", "second"]
    assert "patch" not in body["response"]


async def test_content_type_with_charset_is_accepted(
    hooks: Started, session: aiohttp.ClientSession
) -> None:
    status, body = await post(
        session, hooks.url("/allow"), review("cs"), content_type="application/json; charset=utf-8"
    )
    assert status == 200 and body["response"]["uid"] == "cs"


# -- bad requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (review(), "text/plain", "contentType=text/plain"),
        (review(), "application/yaml", "expected application/json"),
        (b"{not json", "application/json", "couldn't decode"),
        (b"", "application/json", "couldn't decode"),
        ({**review(), "apiVersion": "admission.k8s.io/v1beta1"}, "application/json", "v1beta1"),
        ([1, 2, 3], "application/json", "list"),
        ({**review(), "kind": "Pod"}, "application/json", "with a request"),
        ({k: v for k, v in review().items() if k != "request"}, "application/json", "request"),
        ({**review(), "request": "nope"}, "application/json", "request"),
        (review(uid=""), "application/json", "no uid"),
        (review(uid=None), "application/json", "no uid"),
        (review(uid=42), "application/json", "no uid"),
    ],
)
async def test_malformed_reviews_get_400(
    hooks: Started,
    session: aiohttp.ClientSession,
    body: Any,
    content_type: str,
    message: str,
) -> None:
    status, answer = await post(session, hooks.url("/allow"), body, content_type=content_type)
    assert status == 400
    assert message in answer["error"]
    assert hooks.seen == []  # the handler never ran
    assert hooks.metric(REQUESTS, webhook="/allow", code="400") == 1.0
    assert hooks.metric(REQUESTS, webhook="/allow", code="200") == 0.0


async def test_missing_uid_key_gets_400(hooks: Started, session: aiohttp.ClientSession) -> None:
    body = review()
    del body["request"]["uid"]
    status, answer = await post(session, hooks.url("/allow"), body)
    assert status == 400 and "no uid" in answer["error"]


async def test_body_over_the_limit_is_refused(
    hooks: Started, session: aiohttp.ClientSession
) -> None:
    huge = review("big", object={"data": "x" * (MAX_REVIEW_BYTES + 10)})
    status, _ = await post(session, hooks.url("/allow"), huge)
    assert status == 413
    assert hooks.seen == []


async def test_unknown_path_and_wrong_method(
    hooks: Started, session: aiohttp.ClientSession
) -> None:
    status, _ = await post(session, hooks.url("/nope"), review())
    assert status == 404
    async with session.get(hooks.url("/allow")) as resp:
        assert resp.status == 405
    # still serving
    status, body = await post(session, hooks.url("/allow"), review("after"))
    assert status == 200 and body["response"]["uid"] == "after"


# -- handler failures ------------------------------------------------------------------------------


async def test_handler_exception_is_a_500_refusal_and_the_server_keeps_serving(
    hooks: Started, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("ERROR", logger="kubetrain.engine.webhook.server"):
        status, body = await post(session, hooks.url("/raise"), review("r-1"))
    assert status == 200
    response = body["response"]
    assert response["uid"] == "r-1"
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert response["status"]["reason"] == "InternalError"
    assert "KeyError" in response["status"]["message"]
    assert "/raise" in response["status"]["message"]
    assert any("/raise" in r.getMessage() and r.exc_info for r in caplog.records)
    assert hooks.metric(REQUESTS, webhook="/raise", code="200") == 1.0
    # the same path and the others keep answering
    status, again = await post(session, hooks.url("/raise"), review("r-2"))
    assert status == 200 and again["response"]["uid"] == "r-2"
    status, body = await post(session, hooks.url("/allow"), review("ok"))
    assert status == 200 and body["response"]["allowed"] is True


async def test_slow_async_handler_does_not_block_other_requests(
    hooks: Started, session: aiohttp.ClientSession
) -> None:
    waiting = asyncio.create_task(post(session, hooks.url("/gate"), review("slow")))
    try:
        await asyncio.wait_for(hooks.gate.entered.wait(), 5)
        assert hooks.metric(IN_FLIGHT, webhook="/gate") == 1.0
        status, body = await post(session, hooks.url("/allow"), review("fast"))
        assert status == 200 and body["response"]["uid"] == "fast"
        assert not waiting.done()
        hooks.gate.release.set()
        status, body = await asyncio.wait_for(waiting, 5)
        assert status == 200
        assert body["response"] == {"uid": "slow", "allowed": True, "warnings": ["waited"]}
        assert hooks.metric(IN_FLIGHT, webhook="/gate") == 0.0
    finally:
        hooks.gate.release.set()
        await asyncio.gather(waiting, return_exceptions=True)


# -- metrics ---------------------------------------------------------------------------------------


async def test_request_and_latency_metrics(hooks: Started, session: aiohttp.ClientSession) -> None:
    assert hooks.metric(REQUESTS, webhook="/allow", code="200") == 0.0
    assert hooks.metric(LATENCY_COUNT, webhook="/allow") == 0.0
    for i in range(3):
        assert (await post(session, hooks.url("/allow"), review(f"m{i}")))[0] == 200
    await post(session, hooks.url("/allow"), b"{", content_type="application/json")
    await post(session, hooks.url("/warn"), review("w"))
    assert hooks.metric(REQUESTS, webhook="/allow", code="200") == 3.0
    assert hooks.metric(REQUESTS, webhook="/allow", code="400") == 1.0
    assert hooks.metric(REQUESTS, webhook="/warn", code="200") == 1.0
    assert hooks.metric(LATENCY_COUNT, webhook="/allow") == 4.0
    assert hooks.metric(LATENCY_COUNT, webhook="/warn") == 1.0
    # a path nobody registered is not a webhook: no series
    await post(session, hooks.url("/nope"), review())
    assert hooks.registry.get_sample_value(REQUESTS, {"webhook": "/nope", "code": "404"}) is None


async def test_two_servers_on_one_registry_share_metrics(ca: CertificateAuthority) -> None:
    registry = CollectorRegistry()
    servers = [WebhookServer(LOCAL, registry=registry) for _ in range(2)]
    for server in servers:
        server.register("/allow", lambda request: allowed())
        server.use_certificate(ca.issue_server_cert())
        await server.start()
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_ctx(ca))
        ) as session:
            for server in servers:
                url = f"https://127.0.0.1:{server.port}/allow"
                assert (await post(session, url, review()))[0] == 200
        value = registry.get_sample_value(REQUESTS, {"webhook": "/allow", "code": "200"})
        assert value == 2.0
    finally:
        for server in servers:
            await server.stop()


# -- certificates ----------------------------------------------------------------------------------


async def test_no_handshake_and_not_ready_before_a_certificate(ca: CertificateAuthority) -> None:
    server = WebhookServer(LOCAL, registry=CollectorRegistry())
    server.register("/allow", lambda request: allowed())
    with pytest.raises(RuntimeError, match="not started"):
        server.check_ready()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port
    await server.start()
    try:
        assert server.port > 0
        assert server.certificate is None
        with pytest.raises(RuntimeError, match="no certificate"):
            server.check_ready()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await peer_serial(server.port, client_ctx(ca))
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_ctx(ca))
        ) as session:
            with pytest.raises(aiohttp.ClientError):
                await post(session, f"https://127.0.0.1:{server.port}/allow", review())

            cert = ca.issue_server_cert()
            server.use_certificate(cert)
            server.check_ready()
            assert server.certificate is cert
            status, body = await post(session, f"https://127.0.0.1:{server.port}/allow", review())
            assert status == 200 and body["response"]["allowed"] is True
    finally:
        await server.stop()


async def test_expired_certificate_is_not_ready(ca: CertificateAuthority) -> None:
    server = WebhookServer(LOCAL, registry=CollectorRegistry())
    await server.start()
    try:
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
        expired = make_ca(now=past).issue_server_cert(
            now=past, validity=datetime.timedelta(hours=1)
        )
        server.use_certificate(expired)
        with pytest.raises(RuntimeError, match="expired"):
            server.check_ready()
        server.use_certificate(ca.issue_server_cert())
        server.check_ready()
    finally:
        await server.stop()


async def test_use_certificate_swaps_for_the_next_connection(
    hooks: Started, ca: CertificateAuthority, session: aiohttp.ClientSession
) -> None:
    port = hooks.server.port
    first = hooks.server.certificate
    assert first is not None
    assert await peer_serial(port, client_ctx(ca)) == serial(first)

    # a connection set up before the swap
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_ctx(ca))
    try:
        second = ca.issue_server_cert()
        hooks.server.use_certificate(second)
        assert hooks.server.certificate is second
        assert serial(second) != serial(first)
        # new handshakes get the new certificate, on the same running listener
        assert await peer_serial(port, client_ctx(ca)) == serial(second)
        assert hooks.server.port == port
        status, body = await post(session, hooks.url("/allow"), review("after-swap"))
        assert status == 200 and body["response"]["uid"] == "after-swap"

        # the live connection keeps its certificate and is still answered
        old_der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert x509.load_der_x509_certificate(old_der).serial_number == serial(first)
        payload = orjson.dumps(review("live"))
        writer.write(
            b"POST /allow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5)
        head, _, answer = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert orjson.loads(answer)["response"]["uid"] == "live"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def test_swap_to_a_certificate_of_another_ca(
    hooks: Started, ca: CertificateAuthority, other_ca: CertificateAuthority
) -> None:
    port = hooks.server.port
    renewed = other_ca.issue_server_cert()
    hooks.server.use_certificate(renewed)
    # a client trusting only the old CA now refuses the server ...
    with pytest.raises(ssl.SSLCertVerificationError):
        await peer_serial(port, client_ctx(ca))
    # ... one trusting the bundle of both accepts it
    assert await peer_serial(port, client_ctx(ca, other_ca)) == serial(renewed)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_ctx(other_ca))
    ) as session:
        status, body = await post(session, hooks.url("/allow"), review("other"))
        assert status == 200 and body["response"]["uid"] == "other"


def _mismatched(ca: CertificateAuthority) -> ServerCertificate:
    a, b = ca.issue_server_cert(), ca.issue_server_cert()
    return ServerCertificate(cert_pem=a.cert_pem, key_pem=b.key_pem)


def _garbage_key(ca: CertificateAuthority) -> ServerCertificate:
    return ServerCertificate(cert_pem=ca.issue_server_cert().cert_pem, key_pem=b"garbage")


def _garbage_cert(ca: CertificateAuthority) -> ServerCertificate:
    return ServerCertificate(cert_pem=b"garbage", key_pem=ca.issue_server_cert().key_pem)


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(_garbage_cert, id="garbage-cert"),
        pytest.param(_mismatched, id="mismatched-key"),
        pytest.param(_garbage_key, id="garbage-key"),
    ],
)
async def test_bad_certificate_is_refused_and_the_old_one_kept(
    hooks: Started,
    ca: CertificateAuthority,
    session: aiohttp.ClientSession,
    make_bad: Callable[[CertificateAuthority], ServerCertificate],
) -> None:
    port = hooks.server.port
    current = hooks.server.certificate
    assert current is not None
    with pytest.raises(CertificateError):
        hooks.server.use_certificate(make_bad(ca))
    assert hooks.server.certificate is current
    hooks.server.check_ready()
    # what matters: new connections are still served the previous certificate
    assert await peer_serial(port, client_ctx(ca)) == serial(current)
    status, body = await post(session, hooks.url("/allow"), review("still"))
    assert status == 200 and body["response"]["uid"] == "still"


# -- wiring and lifecycle --------------------------------------------------------------------------


def test_register_refusals() -> None:
    server = WebhookServer(LOCAL, registry=CollectorRegistry())
    server.register("/a", lambda request: allowed())
    with pytest.raises(ValueError, match="already registered"):
        server.register("/a", lambda request: allowed())
    with pytest.raises(ValueError, match="must start with '/'"):
        server.register("a", lambda request: allowed())
    assert server.paths == ["/a"]


async def test_register_after_start_raises(hooks: Started) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        hooks.server.register("/late", lambda request: allowed())
    assert "/late" not in hooks.server.paths


@pytest.mark.parametrize("port", [-1, 65536])
def test_options_refuse_bad_ports(port: int) -> None:
    with pytest.raises(ValueError, match="port"):
        WebhookServerOptions(port=port)


def test_default_options() -> None:
    options = WebhookServerOptions()
    assert options.port == 9443 and options.host == ""
    assert WebhookServer(registry=CollectorRegistry()).options == options


async def test_port_in_use_fails_start_naming_the_address() -> None:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    try:
        port = blocker.getsockname()[1]
        server = WebhookServer(
            WebhookServerOptions(host="127.0.0.1", port=port), registry=CollectorRegistry()
        )
        with pytest.raises(OSError, match=f"127.0.0.1:{port}") as err:
            await server.start()
        assert "--webhook-server-port" in str(err.value)
        with pytest.raises(RuntimeError):
            _ = server.port
        await server.stop()  # nothing to stop: no error
    finally:
        blocker.close()


async def test_stop_closes_the_listener_and_is_idempotent(ca: CertificateAuthority) -> None:
    server = WebhookServer(LOCAL, registry=CollectorRegistry())
    server.register("/allow", lambda request: allowed())
    server.use_certificate(ca.issue_server_cert())
    await server.start()
    port = server.port
    assert await peer_serial(port, client_ctx(ca)) > 0
    await server.stop()
    await server.stop()
    with pytest.raises(OSError):
        await peer_serial(port, client_ctx(ca))
