"""Admission webhooks over real HTTPS: a test webhook server with a CA made here.

These run on the embedded server and, under ``--apiserver=real``, on a real kube-apiserver (the
webhook server listens on every interface: a real server reaches a ``clientConfig.service``
webhook at an EndpointSlice address, which may not be loopback). The embedded server's own ways
(service webhooks dialed on loopback, configurations kube v1 can no longer store) are pinned by
the ``embedded_only`` tests at the end."""

from __future__ import annotations

import asyncio
import base64
import copy
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from apiserver_helpers import WIDGETS, Raw, create_crd, eventually, widget, widget_crd
from conformance.controlplane import host_address

from kubetrain.cluster.embedded import EmbeddedCluster
from kubetrain.engine.webhook.certs import CertificateAuthority, make_ca

CM = "/api/v1/namespaces/default/configmaps"
PODS = "/api/v1/namespaces/default/pods"
VWC = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
SECRETS = "/api/v1/namespaces/default/secrets"
MARKER_LABEL = "kubetrain.test/webhook-marker"

pytestmark = pytest.mark.http_api


@dataclass
class HookServer:
    """A webhook server: ``/deny`` refuses objects labelled deny=yes, ``/mutate`` adds a label,
    ``/allow`` allows, ``/slow`` answers after 3 s, ``/deny-plain`` and ``/marker`` refuse
    without a message. Every review received is kept."""

    ca: CertificateAuthority
    port: int = 0
    reviews: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    registered: list[tuple[str, str]] = field(default_factory=list)
    """(collection path, name) of every configuration ``register`` made and nothing removed."""

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
        elif path in ("/deny-plain", "/marker"):
            response = {"uid": req["uid"], "allowed": False}
        elif path == "/warn":
            response["warnings"] = ["configmaps are watched", 'a "quoted" warning']
        elif path == "/drop-color" and req["operation"] == "CREATE":
            ops = [{"op": "remove", "path": "/spec/color"}]
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(orjson.dumps(ops)).decode()
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
async def hooks(ca: CertificateAuthority, raw: Raw) -> AsyncIterator[HookServer]:
    """The webhook server; at teardown the configurations still registered are removed and
    waited out (a real server would otherwise call them during the next test)."""
    server = HookServer(ca=ca)
    app = web.Application()
    app.router.add_post("/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    cert = ca.issue_server_cert(dns_names=["localhost", "hooks.default.svc"])
    # every interface: a real kube-apiserver dials a service webhook at a non-loopback address
    site = web.TCPSite(runner, "0.0.0.0", 0, ssl_context=cert.ssl_context())
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server
    for path, name in list(server.registered):
        await unregister(server, raw, path, name)
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


async def register(hooks: HookServer, raw: Raw, body: dict[str, Any]) -> None:
    """POST the configuration with a marker webhook added, and return once the server calls it.

    A real kube-apiserver starts calling a stored configuration a few milliseconds later (its
    informer); the embedded one at once (pinned by ``test_configurations_apply_at_once``). The
    marker matches only a dry-run Secret labelled with the configuration's name, which no other
    webhook of these tests meets, so it changes nothing the tests look at."""
    path = VWC if body["kind"] == "ValidatingWebhookConfiguration" else MWC
    name = body["metadata"]["name"]
    marked = copy.deepcopy(body)
    marked["webhooks"].append(
        {
            "name": f"{name}.marker.kubetrain.test",
            "clientConfig": url_client(hooks, "/marker"),
            "rules": [
                {
                    "operations": ["CREATE"],
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "resources": ["secrets"],
                }
            ],
            "objectSelector": {"matchLabels": {MARKER_LABEL: name}},
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }
    )
    status, out, _ = await raw.post(path, marked)
    assert status == 201, out
    hooks.registered.append((path, name))
    await eventually(lambda: marker_answers(raw, name), f"webhook configuration {name} in effect")


async def unregister(hooks: HookServer, raw: Raw, path: str, name: str) -> None:
    """DELETE a configuration ``register`` made; return once the server stopped calling it."""
    status, out, _ = await raw.delete(f"{path}/{name}")
    assert status in (200, 404), out
    hooks.registered.remove((path, name))

    async def gone() -> bool:
        return not await marker_answers(raw, name)

    await eventually(gone, f"webhook configuration {name} out of effect")


async def marker_answers(raw: Raw, name: str) -> bool:
    """Whether configuration ``name``'s marker webhook refuses its dry-run probe."""
    probe = {"metadata": {"name": "marker", "labels": {MARKER_LABEL: name}}}
    status, _, _ = await raw.post(SECRETS, probe, params={"dryRun": "All"})
    return status != 201


def url_client(hooks: HookServer, path: str) -> dict[str, Any]:
    return {"url": hooks.url(path), "caBundle": hooks.ca_bundle}


async def hooks_service(raw: Raw, hooks: HookServer) -> None:
    """Service ``default/hooks`` (port 443 -> the hook server's port) and its EndpointSlice,
    one ready address of this machine: what a real cluster's endpoint controller would make
    for a webhook pod."""
    svc = {
        "metadata": {"name": "hooks"},
        "spec": {"ports": [{"port": 443, "targetPort": hooks.port}], "selector": {"app": "h"}},
    }
    assert (await raw.post("/api/v1/namespaces/default/services", svc))[0] == 201
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "hooks-1", "labels": {"kubernetes.io/service-name": "hooks"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host_address()], "conditions": {"ready": True}}],
        "ports": [{"port": hooks.port, "protocol": "TCP"}],
    }
    status, body, _ = await raw.post(SLICES, endpoint_slice)
    assert status == 201, body


async def test_denial_carries_the_webhooks_code_and_message(hooks: HookServer, raw: Raw) -> None:
    await register(
        hooks,
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
        hooks,
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
        hooks,
        raw,
        config(
            "MutatingWebhookConfiguration", "a-mutate.example.com", url_client(hooks, "/mutate")
        ),
    )
    await register(
        hooks,
        raw,
        config(
            "MutatingWebhookConfiguration",
            "b-mutate.example.com",
            url_client(hooks, "/mutate-second"),
        ),
    )
    await register(
        hooks,
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


async def test_failure_policy_when_the_webhook_is_down(hooks: HookServer, raw: Raw) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    ca = make_ca()
    client = {
        "url": f"https://127.0.0.1:{closed_port}/x",
        "caBundle": base64.b64encode(ca.cert_pem).decode(),
    }
    await register(
        hooks,
        raw,
        config(
            "ValidatingWebhookConfiguration", "ignored.example.com", client, failurePolicy="Ignore"
        ),
    )
    assert (await raw.post(CM, {"metadata": {"name": "passes"}}))[0] == 201
    await register(
        hooks,
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
    await unregister(hooks, raw, VWC, "fatal")
    assert (await raw.post(CM, {"metadata": {"name": "blocked"}}))[0] == 201


async def test_untrusted_certificate_and_timeout_fail_closed(hooks: HookServer, raw: Raw) -> None:
    stranger = base64.b64encode(make_ca().cert_pem).decode()
    await register(
        hooks,
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
    await unregister(hooks, raw, VWC, "tls")
    await register(
        hooks,
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
        hooks,
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
    # relabelling the namespace changes the outcome (a real server: once its namespace informer
    # has the labels; the embedded one at once, see test_configurations_and_namespace_labels_...)
    await raw.patch("/api/v1/namespaces/open", {"metadata": {"labels": {"policy": "strict"}}})
    cm_c = {"metadata": {"name": "c"}}

    async def refused() -> bool:
        dry = await raw.post("/api/v1/namespaces/open/configmaps", cm_c, params={"dryRun": "All"})
        return dry[0] == 400

    await eventually(refused, "configmaps of the relabelled namespace refused")
    status, _, _ = await raw.post("/api/v1/namespaces/open/configmaps", cm_c)
    assert status == 400


async def test_webhook_warnings_reach_the_client(hooks: HookServer, raw: Raw) -> None:
    await register(
        hooks,
        raw,
        config("ValidatingWebhookConfiguration", "warn.example.com", url_client(hooks, "/warn")),
    )
    status, _, headers = await raw.post(CM, {"metadata": {"name": "warned"}})
    assert status == 201
    assert headers.getall("Warning") == [
        '299 - "configmaps are watched"',
        '299 - "a \\"quoted\\" warning"',
    ]


async def test_schema_defaults_apply_again_after_a_webhooks_patch(
    hooks: HookServer, raw: Raw
) -> None:
    """kube-apiserver defaults the object again after a mutating webhook's patch, so a field the
    webhook removes (or an object it adds) gets its schema default."""
    await create_crd(raw, widget_crd())
    await register(
        hooks,
        raw,
        config(
            "MutatingWebhookConfiguration",
            "drop-color.example.com",
            url_client(hooks, "/drop-color"),
            rules=[
                {
                    "operations": ["CREATE"],
                    "apiGroups": ["example.com"],
                    "apiVersions": ["v1"],
                    "resources": ["widgets"],
                }
            ],
        ),
    )
    blue = widget("w-blue")
    blue["spec"]["color"] = "blue"
    status, body, _ = await raw.post(WIDGETS, blue)
    assert status == 201, body
    assert body["spec"]["color"] == "red"  # removed by the webhook, defaulted again
    assert body["metadata"]["generation"] == 1


async def test_rules_on_a_custom_resource_and_on_pods_status(hooks: HookServer, raw: Raw) -> None:
    await create_crd(raw, widget_crd())  # a real server serves it once Established
    await register(
        hooks,
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
    await unregister(hooks, raw, VWC, "widgets")

    await register(
        hooks,
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
    await hooks_service(raw, hooks)
    client = {
        "service": {"namespace": "default", "name": "hooks", "path": "/deny"},
        "caBundle": hooks.ca_bundle,
    }
    await register(
        hooks,
        raw,
        config(
            "ValidatingWebhookConfiguration", "svc.example.com", client, sideEffects="NoneOnDryRun"
        ),
    )
    denied = {"metadata": {"name": "s", "labels": {"deny": "yes"}}}
    status, body, _ = await raw.post(CM, denied)
    assert status == 403 and body["message"].startswith(
        'admission webhook "svc.example.com" denied'
    )
    # a webhook without side effects on dry run is called for one, and told so
    status, body, _ = await raw.post(CM, denied, params={"dryRun": "All"})
    assert status == 403 and "svc.example.com" in body["message"]
    assert hooks.reviews["/deny"][-1]["dryRun"] is True
    status, body, _ = await raw.post(CM, {"metadata": {"name": "s"}}, params={"dryRun": "All"})
    assert status == 201 and hooks.reviews["/deny"][-1]["dryRun"] is True
    assert (await raw.get(f"{CM}/s"))[0] == 404
    assert (await raw.post(CM, {"metadata": {"name": "s"}}))[0] == 201
    assert hooks.reviews["/deny"][-1]["dryRun"] is False


async def test_webhook_configurations_are_never_subject_to_webhooks(
    hooks: HookServer, raw: Raw
) -> None:
    everything = [
        {"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*/*"]}
    ]
    await register(
        hooks,
        raw,
        config(
            "ValidatingWebhookConfiguration",
            "all.example.com",
            url_client(hooks, "/deny-plain"),
            rules=everything,
        ),
    )
    assert (await raw.post(CM, {"metadata": {"name": "z"}}))[0] == 400
    # the configuration itself can still be removed, and then nothing is refused any more
    await unregister(hooks, raw, VWC, "all")
    assert (await raw.post(CM, {"metadata": {"name": "z"}}))[0] == 201


# -- the embedded server's own ways ----------------------------------------------------------------


@pytest.mark.embedded_only(
    reason="a real kube-apiserver applies a stored webhook configuration, its removal and a "
    "namespace's new labels through its informers, milliseconds after the write returned (seen: "
    "a POST right after the configuration's 201 admitted unchecked); the embedded server applies "
    "them before it answers"
)
async def test_configurations_and_namespace_labels_apply_at_once(
    hooks: HookServer, raw: Raw
) -> None:
    assert (await raw.post("/api/v1/namespaces", {"metadata": {"name": "open"}}))[0] == 201
    in_open = "/api/v1/namespaces/open/configmaps"
    strict_only = config(
        "ValidatingWebhookConfiguration",
        "now.example.com",
        url_client(hooks, "/deny-plain"),
        namespaceSelector={"matchLabels": {"policy": "strict"}},
    )
    assert (await raw.post(VWC, strict_only))[0] == 201  # no marker, no wait
    assert (await raw.post(CM, {"metadata": {"name": "a"}}))[0] == 201
    assert hooks.reviews == {}  # default is not strict: not called
    await raw.patch("/api/v1/namespaces/open", {"metadata": {"labels": {"policy": "strict"}}})
    assert (await raw.post(in_open, {"metadata": {"name": "b"}}))[0] == 400
    assert [r["name"] for r in hooks.reviews["/deny-plain"]] == ["b"]
    assert (await raw.delete(f"{VWC}/now"))[0] == 200
    assert (await raw.post(in_open, {"metadata": {"name": "b"}}))[0] == 201


@pytest.mark.embedded_only(
    reason="no cluster network in the embedded cluster: a clientConfig.service webhook is dialed "
    "at 127.0.0.1:<targetPort> whatever the service's endpoints; a real kube-apiserver dials its "
    "ClusterIP, or with --enable-aggregator-routing a ready EndpointSlice address (never loopback)"
)
async def test_a_service_webhook_is_dialed_on_loopback_at_its_target_port(
    hooks: HookServer, raw: Raw
) -> None:
    svc = {
        "metadata": {"name": "hooks"},
        "spec": {"ports": [{"port": 443, "targetPort": hooks.port}], "selector": {"app": "h"}},
    }
    assert (await raw.post("/api/v1/namespaces/default/services", svc))[0] == 201
    client = {
        "service": {"namespace": "default", "name": "hooks", "path": "/deny"},
        "caBundle": hooks.ca_bundle,
    }
    await register(hooks, raw, config("ValidatingWebhookConfiguration", "svc.example.com", client))
    status, body, _ = await raw.post(CM, {"metadata": {"name": "s", "labels": {"deny": "yes"}}})
    assert status == 403 and "svc.example.com" in body["message"]
    assert hooks.reviews["/deny"][-1]["name"] == "s"


@pytest.mark.embedded_only(
    reason="admissionregistration v1 refuses sideEffects Unknown/Some (422), so only a "
    "configuration stored some other way (v1beta1, gone since kube 1.22) can hold them; the "
    "test stores one straight into the embedded store"
)
async def test_a_stored_configuration_with_side_effects_refuses_dry_runs(
    hooks: HookServer, raw: Raw, cluster: EmbeddedCluster
) -> None:
    body = config("ValidatingWebhookConfiguration", "legacy.example.com", url_client(hooks, "/x"))
    body["webhooks"][0]["sideEffects"] = "Unknown"
    status, refused, _ = await raw.post(VWC, body)
    assert status == 422 and refused["details"]["causes"][0]["field"] == "webhooks[0].sideEffects"
    info = cluster.api.registry.lookup(
        "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations"
    )
    assert info is not None
    body["metadata"].update(uid="legacy", creationTimestamp="2020-01-01T00:00:00Z")
    cluster.api.store.create(info, body)
    status, refused, _ = await raw.post(CM, {"metadata": {"name": "d"}}, params={"dryRun": "All"})
    assert status == 400
    assert refused["message"] == 'admission webhook "legacy.example.com" does not support dry run'
    assert "/x" not in hooks.reviews
    assert (await raw.post(CM, {"metadata": {"name": "d"}}))[0] == 201


@pytest.mark.embedded_only(
    reason="a real kube-apiserver sends a v1beta1 AdmissionReview to a webhook whose "
    "admissionReviewVersions lists only v1beta1; the embedded server speaks v1 only and fails "
    "the call (subject to failurePolicy)"
)
async def test_a_webhook_without_v1_reviews_fails_its_calls(hooks: HookServer, raw: Raw) -> None:
    body = config(
        "ValidatingWebhookConfiguration",
        "old.example.com",
        url_client(hooks, "/allow"),
        admissionReviewVersions=["v1beta1"],
    )
    await register(hooks, raw, body)
    status, refused, _ = await raw.post(CM, {"metadata": {"name": "o"}})
    assert status == 500
    assert refused["message"] == (
        'Internal error occurred: failed calling webhook "old.example.com": webhook does not '
        "accept v1 AdmissionReview: admissionReviewVersions ['v1beta1'] must include v1"
    )
    assert "/allow" not in hooks.reviews
