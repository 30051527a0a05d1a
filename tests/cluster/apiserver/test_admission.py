"""Admission webhooks over real HTTPS: a test webhook server with a CA made here."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from apiserver_helpers import WIDGETS, Raw, widget, widget_crd

from kubetrain.cluster.apiserver.certs import CertificateAuthority, make_ca
from kubetrain.cluster.embedded import EmbeddedCluster

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


@dataclass
class HookServer:
    """A webhook server: ``/deny`` refuses objects labelled deny=yes, ``/mutate`` adds a label,
    ``/allow`` allows, ``/slow`` answers after 3 s. Every review received is kept."""

    ca: CertificateAuthority
    port: int = 0
    reviews: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca.cert_pem).decode()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        review = orjson.loads(await request.read())
        req = review["request"]
        path = request.path
        self.reviews.setdefault(path, []).append(req)
        response: dict[str, Any] = {"uid": req["uid"], "allowed": True}
        obj = req.get("object") or {}
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if path == "/deny" and labels.get("deny") == "yes":
            response = {
                "uid": req["uid"],
                "allowed": False,
                "status": {"code": 403, "message": "objects labelled deny=yes are not welcome"},
            }
        elif path == "/deny-plain":
            response = {"uid": req["uid"], "allowed": False}
        elif path == "/mutate" and req["operation"] == "CREATE":
            ops = [{"op": "add", "path": "/metadata/labels", "value": {**labels, "mutated": "yes"}}]
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
        elif path == "/mutate-second" and req["operation"] == "CREATE":
            # sees the first webhook's label, adds its own
            ops = [
                {
                    "op": "add",
                    "path": "/metadata/labels/second",
                    "value": labels.get("mutated", "no"),
                }
            ]
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
        elif path == "/slow":
            await asyncio.sleep(3)
        body = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }
        return web.json_response(body)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca()


@pytest.fixture
async def hooks(ca: CertificateAuthority) -> AsyncIterator[HookServer]:
    server = HookServer(ca=ca)
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    cert = ca.issue_server_cert(dns_names=["localhost", "hooks.default.svc"])
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=cert.ssl_context())
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server
    await runner.cleanup()


def config(
    kind: str,
    name: str,
    client: dict[str, Any],
    *,
    rules: list[dict[str, Any]] | None = None,
    **hook: Any,
) -> dict[str, Any]:
    webhook = {
        "name": name,
        "clientConfig": client,
        "rules": rules
        or [
            {
                "operations": ["CREATE", "UPDATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["configmaps"],
            }
        ],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        **hook,
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name.split(".")[0]},
        "webhooks": [webhook],
    }


async def register(raw: Raw, body: dict[str, Any]) -> None:
    path = VWC if body["kind"] == "ValidatingWebhookConfiguration" else MWC
    status, out, _ = await raw.post(path, body)
    assert status == 201, out


def url_client(hooks: HookServer, path: str) -> dict[str, Any]:
    return {"url": hooks.url(path), "caBundle": hooks.ca_bundle}


async def test_denial_carries_the_webhooks_code_and_message(hooks: HookServer, raw: Raw) -> None:
    await register(
        raw,
        config("ValidatingWebhookConfiguration", "deny.example.com", url_client(hooks, "/deny")),
    )
    status, body, _ = await raw.post(CM, {"metadata": {"name": "bad", "labels": {"deny": "yes"}}})
    assert status == 403
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == 403
    assert body["message"] == (
        'admission webhook "deny.example.com" denied the request: '
        "objects labelled deny=yes are not welcome"
    )
    assert (await raw.get(f"{CM}/bad"))[0] == 404
    status, _, _ = await raw.post(CM, {"metadata": {"name": "good"}})
    assert status == 201
    # the review the webhook got
    req = hooks.reviews["/deny"][-1]
    assert req["operation"] == "CREATE" and req["name"] == "good" and req["namespace"] == "default"
    assert req["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert req["resource"] == {"group": "", "version": "v1", "resource": "configmaps"}
    assert req["requestKind"] == req["kind"] and req["requestResource"] == req["resource"]
    assert req["object"]["metadata"]["name"] == "good" and req["oldObject"] is None
    assert req["dryRun"] is False and req["options"]["kind"] == "CreateOptions"
    assert req["userInfo"]["username"] and req["uid"]


async def test_denial_without_code_or_message(hooks: HookServer, raw: Raw) -> None:
    await register(
        raw,
        config(
            "ValidatingWebhookConfiguration", "plain.example.com", url_client(hooks, "/deny-plain")
        ),
    )
    status, body, _ = await raw.post(CM, {"metadata": {"name": "x"}})
    assert status == 400
    assert (
        body["message"]
        == 'admission webhook "plain.example.com" denied the request without explanation'
    )


async def test_mutations_apply_in_order_before_validation(hooks: HookServer, raw: Raw) -> None:
    await register(
        raw,
        config(
            "MutatingWebhookConfiguration", "a-mutate.example.com", url_client(hooks, "/mutate")
        ),
    )
    await register(
        raw,
        config(
            "MutatingWebhookConfiguration",
            "b-mutate.example.com",
            url_client(hooks, "/mutate-second"),
        ),
    )
    await register(
        raw,
        config("ValidatingWebhookConfiguration", "check.example.com", url_client(hooks, "/allow")),
    )
    status, body, _ = await raw.post(CM, {"metadata": {"name": "m", "labels": {"own": "1"}}})
    assert status == 201
    assert body["metadata"]["labels"] == {"own": "1", "mutated": "yes", "second": "yes"}
    _, stored, _ = await raw.get(f"{CM}/m")
    assert stored["metadata"]["labels"]["second"] == "yes"
    # the validating webhook saw the mutated object
    assert hooks.reviews["/allow"][-1]["object"]["metadata"]["labels"]["mutated"] == "yes"
    # updates go to the webhooks with the old object
    status, _, _ = await raw.patch(f"{CM}/m", {"data": {"k": "v"}})
    assert status == 200
    update = hooks.reviews["/allow"][-1]
    assert update["operation"] == "UPDATE" and update["options"]["kind"] == "UpdateOptions"
    assert update["oldObject"]["metadata"]["name"] == "m" and update["object"]["data"] == {"k": "v"}


async def test_failure_policy_when_the_webhook_is_down(raw: Raw) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    ca = make_ca()
    client = {
        "url": f"https://127.0.0.1:{closed_port}/x",
        "caBundle": base64.b64encode(ca.cert_pem).decode(),
    }
    await register(
        raw,
        config(
            "ValidatingWebhookConfiguration", "ignored.example.com", client, failurePolicy="Ignore"
        ),
    )
    assert (await raw.post(CM, {"metadata": {"name": "passes"}}))[0] == 201
    await register(
        raw,
        config("ValidatingWebhookConfiguration", "fatal.example.com", client, failurePolicy="Fail"),
    )
    status, body, _ = await raw.post(CM, {"metadata": {"name": "blocked"}})
    assert status == 500 and body["reason"] == "InternalError"
    assert body["message"].startswith(
        'Internal error occurred: failed calling webhook "fatal.example.com": failed to call '
        f'webhook: Post "https://127.0.0.1:{closed_port}/x?timeout=10s": dial tcp'
    )
    assert "connection refused" in body["message"].lower()
    # removing the configuration stops the calls (the cache follows the store)
    assert (await raw.delete(f"{VWC}/fatal"))[0] == 200
    assert (await raw.post(CM, {"metadata": {"name": "blocked"}}))[0] == 201


async def test_untrusted_certificate_and_timeout_fail_closed(hooks: HookServer, raw: Raw) -> None:
    stranger = base64.b64encode(make_ca().cert_pem).decode()
    await register(
        raw,
        config(
            "ValidatingWebhookConfiguration",
            "tls.example.com",
            {"url": hooks.url("/allow"), "caBundle": stranger},
        ),
    )
    status, body, _ = await raw.post(CM, {"metadata": {"name": "t"}})
    assert status == 500 and "certificate" in body["message"]
    assert "/allow" not in hooks.reviews
    await raw.delete(f"{VWC}/tls")
    await register(
        raw,
        config(
            "ValidatingWebhookConfiguration",
            "slow.example.com",
            url_client(hooks, "/slow"),
            timeoutSeconds=1,
        ),
    )
    status, body, _ = await raw.post(CM, {"metadata": {"name": "t"}})
    assert status == 500 and body["message"].endswith('?timeout=1s": context deadline exceeded')


async def test_namespace_and_object_selectors(hooks: HookServer, raw: Raw) -> None:
    await raw.post(
        "/api/v1/namespaces", {"metadata": {"name": "guarded", "labels": {"policy": "strict"}}}
    )
    await raw.post("/api/v1/namespaces", {"metadata": {"name": "open"}})
    await register(
        raw,
        config(
            "ValidatingWebhookConfiguration",
            "ns.example.com",
            url_client(hooks, "/deny-plain"),
            namespaceSelector={"matchLabels": {"policy": "strict"}},
            objectSelector={"matchExpressions": [{"key": "skip", "operator": "DoesNotExist"}]},
        ),
    )
    assert (await raw.post("/api/v1/namespaces/open/configmaps", {"metadata": {"name": "a"}}))[
        0
    ] == 201
    status, _, _ = await raw.post(
        "/api/v1/namespaces/guarded/configmaps", {"metadata": {"name": "a"}}
    )
    assert status == 400
    skipped = {"metadata": {"name": "b", "labels": {"skip": "true"}}}
    assert (await raw.post("/api/v1/namespaces/guarded/configmaps", skipped))[0] == 201
    # an update matches when the OLD object matches the objectSelector, too
    status, _, _ = await raw.patch(
        "/api/v1/namespaces/guarded/configmaps/b", {"metadata": {"labels": {"skip": None}}}
    )
    assert status == 400
    # relabelling the namespace changes the outcome at once
    await raw.patch("/api/v1/namespaces/open", {"metadata": {"labels": {"policy": "strict"}}})
    status, _, _ = await raw.post("/api/v1/namespaces/open/configmaps", {"metadata": {"name": "c"}})
    assert status == 400


async def test_rules_on_a_custom_resource_and_on_pods_status(hooks: HookServer, raw: Raw) -> None:
    await raw.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", widget_crd())
    await register(
        raw,
        config(
            "ValidatingWebhookConfiguration",
            "widgets.example.com",
            url_client(hooks, "/deny"),
            rules=[
                {
                    "operations": ["CREATE"],
                    "apiGroups": ["example.com"],
                    "apiVersions": ["v1beta1"],
                    "resources": ["widgets"],
                    "scope": "Namespaced",
                }
            ],
            matchPolicy="Equivalent",
        ),
    )
    bad = widget("w-bad")
    bad["metadata"]["labels"] = {"deny": "yes"}
    status, body, _ = await raw.post(WIDGETS, bad)
    assert status == 403 and "widgets.example.com" in body["message"]
    req = hooks.reviews["/deny"][-1]
    # matched through the equivalent v1beta1 rule: the webhook sees its own version
    assert req["resource"] == {"group": "example.com", "version": "v1beta1", "resource": "widgets"}
    assert req["requestResource"]["version"] == "v1"
    assert req["object"]["apiVersion"] == "example.com/v1beta1"
    assert (await raw.post(WIDGETS, widget("w-ok")))[0] == 201
    await raw.delete(f"{VWC}/widgets")

    await register(
        raw,
        config(
            "ValidatingWebhookConfiguration",
            "status.example.com",
            url_client(hooks, "/deny"),
            rules=[
                {
                    "operations": ["UPDATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["pods/status"],
                }
            ],
            matchPolicy="Exact",
        ),
    )
    pod = {
        "metadata": {"name": "p", "labels": {"deny": "yes"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    assert (await raw.post(PODS, pod))[0] == 201  # main resource: not matched
    assert (await raw.patch(f"{PODS}/p", {"metadata": {"annotations": {"a": "b"}}}))[0] == 200
    status, body, _ = await raw.patch(f"{PODS}/p/status", {"status": {"phase": "Running"}})
    assert status == 403
    req = hooks.reviews["/deny"][-1]
    assert req["subResource"] == "status" and req["kind"]["kind"] == "Pod"


async def test_service_client_config_and_dry_run(hooks: HookServer, raw: Raw) -> None:
    svc = {
        "metadata": {"name": "hooks"},
        "spec": {"ports": [{"port": 443, "targetPort": hooks.port}], "selector": {"app": "h"}},
    }
    assert (await raw.post("/api/v1/namespaces/default/services", svc))[0] == 201
    client = {
        "service": {"namespace": "default", "name": "hooks", "path": "/deny"},
        "caBundle": hooks.ca_bundle,
    }
    await register(
        raw,
        config("ValidatingWebhookConfiguration", "svc.example.com", client, sideEffects="Unknown"),
    )
    status, body, _ = await raw.post(CM, {"metadata": {"name": "s", "labels": {"deny": "yes"}}})
    assert status == 403 and body["message"].startswith(
        'admission webhook "svc.example.com" denied'
    )
    # a dry run may not reach a webhook with side effects
    status, body, _ = await raw.post(CM, {"metadata": {"name": "s"}}, params={"dryRun": "All"})
    assert status == 400
    assert body["message"] == 'admission webhook "svc.example.com" does not support dry run'
    assert (await raw.post(CM, {"metadata": {"name": "s"}}))[0] == 201


async def test_webhook_configurations_are_never_subject_to_webhooks(
    hooks: HookServer, raw: Raw, cluster: EmbeddedCluster
) -> None:
    everything = [
        {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}
    ]
    await register(
        raw,
        config(
            "ValidatingWebhookConfiguration",
            "all.example.com",
            url_client(hooks, "/deny-plain"),
            rules=everything,
        ),
    )
    assert (await raw.post(CM, {"metadata": {"name": "z"}}))[0] == 400
    # the configuration itself can still be removed
    assert (await raw.delete(f"{VWC}/all"))[0] == 200
    assert not cluster.api.webhooks.validating_hooks
