"""WebhookServer answering ConversionReviews (apiextensions.k8s.io/v1) over real HTTPS: the
converter per object in order, Failure results (refusals and converter bugs), 400 for malformed
reviews, registration rules and the metrics shared with admission paths."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from prometheus_client import CollectorRegistry

from kubetrain.base.objects import Obj
from kubetrain.engine.webhook.admission import Request, allowed
from kubetrain.engine.webhook.certs import CertificateAuthority, make_ca
from kubetrain.engine.webhook.conversion import (
    BadConversionReview,
    ConversionError,
    answer_conversion,
)
from kubetrain.engine.webhook.server import WebhookServer, WebhookServerOptions

LOCAL = WebhookServerOptions(host="127.0.0.1", port=0)
REQUESTS = "controller_runtime_webhook_requests_total"
LATENCY_COUNT = "controller_runtime_webhook_latency_seconds_count"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca("conversion-review-test-ca")


def rename(obj: Obj, desired: str) -> Obj:
    """A test converter: v1 ``spec.replicas`` <-> v2 ``spec.size``; refuses kind Nope."""
    if obj.get("kind") == "Nope":
        raise ConversionError("Nope does not convert")
    if obj.get("kind") == "Bug":
        raise KeyError("kaput")
    spec = dict(obj.get("spec") or {})
    if desired.endswith("/v2") and "replicas" in spec:
        spec["size"] = spec.pop("replicas")
    elif desired.endswith("/v1") and "size" in spec:
        spec["replicas"] = spec.pop("size")
    return {**obj, "apiVersion": desired, "spec": spec}


def gizmo(name: str, version: str, **spec: int) -> Obj:
    return {
        "apiVersion": f"example.com/{version}",
        "kind": "Gizmo",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": spec,
    }


def review(objects: list[Any], desired: str = "example.com/v2", uid: str = "c-1") -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects},
    }


class Started:
    def __init__(self, server: WebhookServer, registry: CollectorRegistry) -> None:
        self.server = server
        self.registry = registry

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server.port}{path}"

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def started(ca: CertificateAuthority) -> AsyncIterator[Started]:
    registry = CollectorRegistry()
    server = WebhookServer(LOCAL, registry=registry)

    def allow(request: Request) -> Any:
        return allowed()

    server.register("/validate", allow)
    server.register_conversion("/convert", rename)
    server.use_certificate(ca.issue_server_cert())
    await server.start()
    try:
        yield Started(server, registry)
    finally:
        await server.stop()


@pytest.fixture
async def session(ca: CertificateAuthority) -> AsyncIterator[aiohttp.ClientSession]:
    ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as s:
        yield s


async def post(
    session: aiohttp.ClientSession, url: str, body: Any, content_type: str = "application/json"
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    async with session.post(url, data=data, headers={"Content-Type": content_type}) as resp:
        return resp.status, orjson.loads(await resp.read())


async def test_every_object_is_converted_in_order(
    started: Started, session: aiohttp.ClientSession
) -> None:
    objects = [gizmo("a", "v1", replicas=1), gizmo("b", "v1", replicas=2)]
    status, body = await post(session, started.url("/convert"), review(objects, uid="u-42"))
    assert status == 200
    assert body == {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {
            "uid": "u-42",
            "convertedObjects": [
                {**gizmo("a", "v2", size=1)},
                {**gizmo("b", "v2", size=2)},
            ],
            "result": {"metadata": {}, "status": "Success"},
        },
    }
    assert started.metric(REQUESTS, webhook="/convert", code="200") == 1
    assert started.metric(LATENCY_COUNT, webhook="/convert") == 1


async def test_no_objects_is_an_empty_success(
    started: Started, session: aiohttp.ClientSession
) -> None:
    status, body = await post(session, started.url("/convert"), review([]))
    assert status == 200
    assert body["response"]["convertedObjects"] == []
    assert body["response"]["result"]["status"] == "Success"


async def test_a_refusal_is_a_failure_naming_the_object(
    started: Started, session: aiohttp.ClientSession
) -> None:
    nope = {**gizmo("n", "v1"), "kind": "Nope"}
    status, body = await post(
        session, started.url("/convert"), review([gizmo("a", "v1"), nope], uid="u-7")
    )
    assert status == 200
    response = body["response"]
    assert response["uid"] == "u-7"
    assert response["convertedObjects"] == []
    assert response["result"] == {
        "metadata": {},
        "status": "Failure",
        "message": "Nope default/n (example.com/v1): Nope does not convert",
    }


async def test_a_converter_bug_is_a_failure_not_a_dropped_request(
    started: Started, session: aiohttp.ClientSession
) -> None:
    bug = {**gizmo("x", "v1"), "kind": "Bug"}
    status, body = await post(session, started.url("/convert"), review([bug], uid="u-9"))
    assert status == 200
    assert body["response"]["uid"] == "u-9"
    assert body["response"]["result"]["status"] == "Failure"
    assert body["response"]["result"]["message"] == (
        "internal error in conversion webhook /convert: KeyError: 'kaput'"
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "couldn't decode the ConversionReview"),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}},
            "expected an apiextensions.k8s.io/v1 ConversionReview, got 'admission.k8s.io/v1'",
        ),
        (
            {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"},
            "expected a ConversionReview with a request",
        ),
        (
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "ConversionReview",
                "request": {"desiredAPIVersion": "example.com/v2", "objects": []},
            },
            "the ConversionReview's request has no uid",
        ),
        (
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "ConversionReview",
                "request": {"uid": "u", "objects": []},
            },
            "the ConversionReview's request has no desiredAPIVersion",
        ),
        (
            review(["not an object"]),
            "the ConversionReview's request.objects is not a list of objects",
        ),
    ],
    ids=["not-json", "admission-review", "no-request", "no-uid", "no-desired", "bad-objects"],
)
async def test_a_malformed_review_is_400(
    started: Started, session: aiohttp.ClientSession, body: Any, error: str
) -> None:
    status, answer = await post(session, started.url("/convert"), body)
    assert status == 400
    assert error in answer["error"]
    assert started.metric(REQUESTS, webhook="/convert", code="400") == 1


async def test_wrong_content_type_is_400(started: Started, session: aiohttp.ClientSession) -> None:
    status, answer = await post(session, started.url("/convert"), review([]), "text/plain")
    assert status == 400
    assert "expected application/json" in answer["error"]


async def test_admission_paths_still_answer_beside_conversion(
    started: Started, session: aiohttp.ClientSession
) -> None:
    admission = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "a-1", "operation": "CREATE", "object": {}},
    }
    status, body = await post(session, started.url("/validate"), admission)
    assert status == 200 and body["response"] == {"uid": "a-1", "allowed": True}
    # a ConversionReview sent to an admission path is refused as not an AdmissionReview
    status, _ = await post(session, started.url("/validate"), review([]))
    assert status == 400
    assert started.server.paths == ["/convert", "/validate"]


def test_registration_rules() -> None:
    server = WebhookServer(LOCAL, registry=CollectorRegistry())
    server.register("/a", lambda request: allowed())
    with pytest.raises(ValueError, match="already registered"):
        server.register_conversion("/a", rename)
    server.register_conversion("/convert", rename)
    with pytest.raises(ValueError, match="already registered"):
        server.register("/convert", lambda request: allowed())
    with pytest.raises(ValueError, match="must start with '/'"):
        server.register_conversion("convert", rename)


def test_answer_conversion_without_a_server() -> None:
    answer = answer_conversion(review([gizmo("a", "v2", size=3)], "example.com/v1"), rename)
    assert answer["response"]["convertedObjects"] == [gizmo("a", "v1", replicas=3)]
    with pytest.raises(BadConversionReview):
        answer_conversion({"apiVersion": "apiextensions.k8s.io/v1"}, rename)
