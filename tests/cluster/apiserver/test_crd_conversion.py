"""CRD conversion webhooks (``spec.conversion.strategy: Webhook``) over real HTTPS.

A Gizmo CRD serves v1 (storage, ``spec.replicas``) and v2 (``spec.size``); a test conversion
webhook renames the field between them. Objects are stored in v1 whatever version wrote them,
and every read in v2 goes through the webhook. These run on the embedded server and, under
``--apiserver=real``, on a real kube-apiserver: the webhook is a Service ``convhooks`` (443 ->
the server's port) with an EndpointSlice at an address of this machine, as in
``test_admission.py``.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from apiserver_helpers import CRDS, Raw, create_crd, eventually
from conformance.controlplane import host_address

from kubetrain.engine.webhook.certs import CertificateAuthority, make_ca

pytestmark = pytest.mark.http_api

GROUP = "conv.example.com"
CRD_NAME = f"gizmos.{GROUP}"
V1 = f"/apis/{GROUP}/v1/namespaces/default/gizmos"
V2 = f"/apis/{GROUP}/v2/namespaces/default/gizmos"
SVC = "/api/v1/namespaces/default/services"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


def _schema(spec_field: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {spec_field: {"type": "integer"}}},
        },
    }


@dataclass
class ConversionHook:
    """The webhook: ``mode`` "ok" converts, "fail" answers a Failure result, "rename"
    converts but changes the object's name. Every request received is kept."""

    ca: CertificateAuthority
    port: int = 0
    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    admitted: list[dict[str, Any]] = field(default_factory=list)
    """The objects the mutating webhook at ``/mutate`` was shown (it adds 1 to replicas)."""

    async def mutate(self, request: web.Request) -> web.Response:
        req = orjson.loads(await request.read())["request"]
        obj = req["object"]
        self.admitted.append(obj)
        response: dict[str, Any] = {"uid": req["uid"], "allowed": True}
        replicas = (obj.get("spec") or {}).get("replicas")
        if isinstance(replicas, int):
            patch = [{"op": "replace", "path": "/spec/replicas", "value": replicas + 1}]
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(patch)).decode()
        body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
        return web.json_response({**body, "response": response})

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca.cert_pem).decode()

    async def handle(self, request: web.Request) -> web.Response:
        review = orjson.loads(await request.read())
        req = review["request"]
        self.requests.append(req)
        desired = req["desiredAPIVersion"]
        response: dict[str, Any] = {"uid": req["uid"]}
        if self.mode == "fail":
            response["result"] = {"status": "Failure", "message": "conversion is broken"}
        else:
            response["result"] = {"status": "Success"}
            response["convertedObjects"] = [self.convert(o, desired) for o in req["objects"]]
        body = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "response": response,
        }
        return web.json_response(body)

    def convert(self, obj: dict[str, Any], desired: str) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        spec = out.setdefault("spec", {})
        if desired.endswith("/v2") and "replicas" in spec:
            spec["size"] = spec.pop("replicas")
        elif desired.endswith("/v1") and "size" in spec:
            spec["replicas"] = spec.pop("size")
        out["apiVersion"] = desired
        if self.mode == "rename":
            out["metadata"]["name"] += "-renamed"
        return out


def gizmo_crd(hook: ConversionHook) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": _schema("replicas")},
                },
                {
                    "name": "v2",
                    "served": True,
                    "storage": False,
                    "schema": {"openAPIV3Schema": _schema("size")},
                },
            ],
            "conversion": {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {
                        "service": {
                            "namespace": "default",
                            "name": "convhooks",
                            "path": "/convert",
                            "port": 443,
                        },
                        "caBundle": hook.ca_bundle,
                    },
                    "conversionReviewVersions": ["v1"],
                },
            },
        },
    }


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca()


async def _serve(hook: ConversionHook) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/convert", hook.handle)
    app.router.add_post("/mutate", hook.mutate)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    cert = hook.ca.issue_server_cert(dns_names=["convhooks.default.svc"])
    # every interface: a real kube-apiserver dials the EndpointSlice's non-loopback address
    site = web.TCPSite(runner, "0.0.0.0", 0, ssl_context=cert.ssl_context())
    await site.start()
    hook.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner


async def _unservice(raw: Raw) -> None:
    for path in (f"{SVC}/convhooks", f"{SLICES}/convhooks-1"):
        assert (await raw.delete(path))[0] in (200, 404)

        async def gone(path: str = path) -> bool:
            return (await raw.get(path))[0] == 404

        await eventually(gone, f"{path} deleted")


async def _service(raw: Raw, hook: ConversionHook) -> None:
    await _unservice(raw)
    svc = {
        "metadata": {"name": "convhooks"},
        "spec": {"ports": [{"port": 443, "targetPort": hook.port}], "selector": {"app": "c"}},
    }
    status, body, _ = await raw.post(SVC, svc)
    assert status == 201, body
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "convhooks-1", "labels": {"kubernetes.io/service-name": "convhooks"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host_address()], "conditions": {"ready": True}}],
        "ports": [{"port": hook.port, "protocol": "TCP"}],
    }
    status, body, _ = await raw.post(SLICES, endpoint_slice)
    assert status == 201, body


@pytest.fixture
async def hook(ca: CertificateAuthority, raw: Raw) -> AsyncIterator[ConversionHook]:
    """The webhook, its Service and the Gizmo CRD; at teardown the CRD is deleted and waited
    out while the webhook still answers (a real server converts during that cleanup)."""
    server = ConversionHook(ca=ca)
    runner = await _serve(server)
    await _service(raw, server)
    await create_crd(raw, gizmo_crd(server))
    try:
        yield server
    finally:
        server.mode = "ok"
        await raw.delete(f"{CRDS}/{CRD_NAME}")

        async def gone() -> bool:
            return (await raw.get(f"{CRDS}/{CRD_NAME}"))[0] == 404

        await eventually(gone, "the Gizmo CRD deleted")
        await _unservice(raw)
        await runner.cleanup()


def gizmo(name: str, version: str, **spec: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{version}",
        "kind": "Gizmo",
        "metadata": {"name": name, "labels": {"app": "gizmo"}},
        "spec": spec,
    }


async def test_create_via_v2_is_stored_as_v1_and_read_in_either(
    hook: ConversionHook, raw: Raw
) -> None:
    status, created, _ = await raw.post(V2, gizmo("g1", "v2", size=3))
    assert status == 201, created
    assert created["apiVersion"] == f"{GROUP}/v2"
    assert created["spec"] == {"size": 3}
    assert created["metadata"]["labels"] == {"app": "gizmo"}
    # the webhook was asked for the storage version, with the object as written
    to_v1 = [r for r in hook.requests if r["desiredAPIVersion"] == f"{GROUP}/v1"]
    assert to_v1 and to_v1[0]["objects"][0]["apiVersion"] == f"{GROUP}/v2"
    assert to_v1[0]["objects"][0]["spec"] == {"size": 3}

    status, in_v1, _ = await raw.get(f"{V1}/g1")
    assert status == 200, in_v1
    assert in_v1["apiVersion"] == f"{GROUP}/v1"
    assert in_v1["spec"] == {"replicas": 3}
    assert in_v1["metadata"]["uid"] == created["metadata"]["uid"]

    status, in_v2, _ = await raw.get(f"{V2}/g1")
    assert status == 200, in_v2
    assert in_v2["apiVersion"] == f"{GROUP}/v2"
    assert in_v2["spec"] == {"size": 3}
    assert in_v2["metadata"] == in_v1["metadata"]

    assert (await raw.post(V1, gizmo("g2", "v1", replicas=4)))[0] == 201
    status, listed, _ = await raw.get(V2)
    assert status == 200, listed
    assert listed["apiVersion"] == f"{GROUP}/v2" and listed["kind"] == "GizmoList"
    by_name = {i["metadata"]["name"]: i for i in listed["items"]}
    assert {n: i["spec"] for n, i in by_name.items()} == {"g1": {"size": 3}, "g2": {"size": 4}}
    assert {i["apiVersion"] for i in listed["items"]} == {f"{GROUP}/v2"}
    status, listed_v1, _ = await raw.get(V1)
    assert status == 200
    assert sorted(i["spec"]["replicas"] for i in listed_v1["items"]) == [3, 4]


async def test_watch_via_v2_shows_the_v2_shape(hook: ConversionHook, raw: Raw) -> None:
    _, listed, _ = await raw.get(V2)
    rv = listed["metadata"]["resourceVersion"]
    assert (await raw.post(V1, gizmo("w1", "v1", replicas=7)))[0] == 201
    events = await raw.watch_lines(V2, {"watch": "true", "resourceVersion": rv}, 1)
    assert events[0]["type"] == "ADDED"
    obj = events[0]["object"]
    assert obj["apiVersion"] == f"{GROUP}/v2"
    assert obj["metadata"]["name"] == "w1"
    assert obj["spec"] == {"size": 7}


async def test_patch_and_update_via_v2(hook: ConversionHook, raw: Raw) -> None:
    assert (await raw.post(V1, gizmo("p1", "v1", replicas=2)))[0] == 201
    status, patched, _ = await raw.patch(f"{V2}/p1", {"spec": {"size": 5}})
    assert status == 200, patched
    assert patched["apiVersion"] == f"{GROUP}/v2" and patched["spec"] == {"size": 5}
    status, in_v1, _ = await raw.get(f"{V1}/p1")
    assert in_v1["spec"] == {"replicas": 5}
    assert in_v1["metadata"]["generation"] == 2

    _, current, _ = await raw.get(f"{V2}/p1")
    current["spec"]["size"] = 6
    status, updated, _ = await raw.put(f"{V2}/p1", current)
    assert status == 200, updated
    assert updated["spec"] == {"size": 6}
    assert (await raw.get(f"{V1}/p1"))[1]["spec"] == {"replicas": 6}


async def test_a_failing_webhook_fails_the_request(hook: ConversionHook, raw: Raw) -> None:
    assert (await raw.post(V1, gizmo("f1", "v1", replicas=1)))[0] == 201
    hook.mode = "fail"
    status, body, _ = await raw.get(f"{V2}/f1")
    assert status == 500, body
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == 500
    assert body["message"] == (
        f"conversion webhook for {GROUP}/v1, Kind=Gizmo failed: conversion is broken"
    )
    status, body, _ = await raw.post(V2, gizmo("f2", "v2", size=1))
    assert status == 500, body
    assert body["message"] == (
        f"conversion webhook for {GROUP}/v2, Kind=Gizmo failed: conversion is broken"
    )
    assert (await raw.get(f"{V1}/f2"))[0] == 404
    # the storage version needs no conversion: still served
    status, body, _ = await raw.get(f"{V1}/f1")
    assert status == 200 and body["spec"] == {"replicas": 1}


async def test_a_webhook_changing_the_name_is_refused(hook: ConversionHook, raw: Raw) -> None:
    hook.mode = "rename"
    status, body, _ = await raw.post(V2, gizmo("r1", "v2", size=1))
    assert status == 500, body
    assert body["message"] == (
        f"conversion webhook for {GROUP}/v2, Kind=Gizmo returned invalid object: "
        "must have the same name: r1 != r1-renamed"
    )
    assert (await raw.get(f"{V1}/r1"))[0] == 404


@pytest.mark.parametrize(
    ("conversion", "message"),
    [
        (
            {"strategy": "Webhook"},
            "[spec.conversion.webhookClientConfig: Required value: required when strategy is "
            "set to Webhook, spec.conversion.conversionReviewVersions: Required value]",
        ),
        (
            {"strategy": "Magic"},
            'spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", '
            '"Webhook"',
        ),
        (
            {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {"url": "https://conv.example.com/convert"},
                    "conversionReviewVersions": ["v9"],
                },
            },
            'spec.conversion.conversionReviewVersions: Invalid value: ["v9"]: must '
            "include at least one of v1, v1beta1",
        ),
        (
            {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {"url": "http://conv.example.com/convert"},
                    "conversionReviewVersions": ["v1"],
                },
            },
            "spec.conversion.webhookClientConfig.url: Invalid value: \"http\": 'https' is the "
            "only allowed URL scheme; desired format: https://host[/path]",
        ),
    ],
)
async def test_an_invalid_spec_conversion_is_refused(
    raw: Raw, ca: CertificateAuthority, conversion: dict[str, Any], message: str
) -> None:
    crd = gizmo_crd(ConversionHook(ca=ca))
    crd["spec"]["conversion"] = conversion
    status, body, _ = await raw.post(CRDS, crd)
    assert status == 422, body
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        f'CustomResourceDefinition.apiextensions.k8s.io "{CRD_NAME}" is invalid: {message}'
    )


MUTATING = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


async def test_an_equivalent_webhook_sees_the_object_converted_to_its_version(
    hook: ConversionHook, raw: Raw
) -> None:
    """A mutating webhook registered for v1 (matchPolicy Equivalent) is shown a v2 create
    converted to v1 by the CRD's conversion webhook (``spec.replicas``, not v2's ``size``), and
    its patch applies to that object, converted back: kube's order, not a relabel."""
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "gizmo-plus-one"},
        "webhooks": [
            {
                "name": "plus-one.conv.example.com",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "matchPolicy": "Equivalent",
                "failurePolicy": "Fail",
                "clientConfig": {
                    "service": {
                        "namespace": "default",
                        "name": "convhooks",
                        "path": "/mutate",
                        "port": 443,
                    },
                    "caBundle": hook.ca_bundle,
                },
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["gizmos"],
                    }
                ],
            }
        ],
    }
    status, body, _ = await raw.post(MUTATING, config)
    assert status == 201, body
    try:

        async def admitted() -> bool:  # a real server reads configurations through a watch
            status, body, _ = await raw.post(f"{V2}?dryRun=All", gizmo("probe", "v2", size=1))
            return status == 201 and body["spec"]["size"] == 2

        await eventually(admitted, "the mutating webhook consulted")
        hook.admitted.clear()
        status, body, _ = await raw.post(V2, gizmo("plus", "v2", size=3))
        assert status == 201, body
        assert body["apiVersion"] == f"{GROUP}/v2" and body["spec"] == {"size": 4}
        (shown,) = hook.admitted
        assert shown["apiVersion"] == f"{GROUP}/v1" and shown["spec"] == {"replicas": 3}
        status, stored, _ = await raw.get(f"{V1}/plus")
        assert status == 200 and stored["spec"] == {"replicas": 4}
    finally:
        await raw.delete(f"{MUTATING}/gizmo-plus-one")
        await raw.delete(f"{V1}/plus")
