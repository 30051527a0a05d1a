"""Install the admission webhooks into a cluster for an operator that runs outside it.

Why: ``kubetrain up`` runs the operator in-process next to the embedded cluster, and tests run it
next to the embedded or a real control plane; either way the API server must reach the operator's
webhook server through the objects a cluster install would have: the webhook Service (port 443 to
the server's port), the two webhook configurations (``deploy/webhooks``), the MPIJob CRD's
conversion webhook (its v2beta1 is converted by the operator, ``reconcilers/api/mpi_conversion.py``), and, for a real
kube-apiserver (which dials a Service's endpoints, never loopback), an EndpointSlice with an
address of this machine. ``wait_until_admitting`` returns once the API server really consults the
webhooks (the operator injected the CA and serves a certificate).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from kubetrain.base.objects import Obj
from kubetrain.engine.client import ApiClient
from kubetrain.engine.webhook.rotator import MUTATING_CONFIGURATIONS, VALIDATING_CONFIGURATIONS
from kubetrain.informers.resource import (
    CUSTOM_RESOURCE_DEFINITIONS,
    NAMESPACES,
    SERVICES,
    ResourceRef,
    kubeflow,
)
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.api.kinds import ALL_KINDS, API_VERSION, GROUP, MPIJOB, JobKind
from kubetrain.reconcilers.api.mpi_conversion import CONVERSION_PATH
from kubetrain.reconcilers.api.webhooks import WebhookService, webhook_configurations

__all__ = ["install_webhooks", "route_mpijob_conversion", "wait_until_admitting"]

ENDPOINTSLICES = ResourceRef("discovery.k8s.io", "v1", "endpointslices", True, "EndpointSlice")


async def install_webhooks(
    client: ApiClient,
    *,
    port: int,
    service: WebhookService,
    kinds: Iterable[JobKind] = ALL_KINDS,
    endpoint_address: str | None = None,
) -> None:
    """Create or replace the namespace, the Service (``service.port`` -> ``port``), the
    EndpointSlice when ``endpoint_address`` is given, and both webhook configurations.

    A replaced configuration keeps the ``caBundle`` it had (the CA lives in the operator's
    Secret and survives restarts), so admission never pauses on a re-install."""
    await client.create_if_absent(
        NAMESPACES,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": service.namespace}},
    )
    await _apply(
        client,
        SERVICES,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service.name, "namespace": service.namespace},
            "spec": {"ports": [{"name": "https", "port": service.port, "targetPort": port}]},
        },
    )
    if endpoint_address is not None:
        await _apply(
            client,
            ENDPOINTSLICES,
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{service.name}-host",
                    "namespace": service.namespace,
                    "labels": {"kubernetes.io/service-name": service.name},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [endpoint_address], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        )
    kinds = list(kinds)
    mutating, validating = webhook_configurations(kinds, service=service)
    await _apply(client, MUTATING_CONFIGURATIONS, mutating, keep_ca_bundle=True)
    await _apply(client, VALIDATING_CONFIGURATIONS, validating, keep_ca_bundle=True)
    if MPIJOB in kinds:
        await route_mpijob_conversion(client, service)


async def route_mpijob_conversion(client: ApiClient, service: WebhookService) -> None:
    """Point the MPIJob CRD's conversion webhook (v1 <-> v2beta1) at ``service``'s
    ``/convert``, keeping the ``caBundle`` the operator injected. A cluster without the CRD is
    left alone (the operator then reports the missing CRD)."""
    name = f"{MPIJOB.plural}.{GROUP}"
    for _ in range(5):
        try:
            crd = await client.get(CUSTOM_RESOURCE_DEFINITIONS, None, name)
        except ApiStatusError as e:
            if e.is_not_found:
                return
            raise
        conversion = crd["spec"].get("conversion") or {}
        old_config = (conversion.get("webhook") or {}).get("clientConfig") or {}
        client_config: dict[str, Any] = {
            "service": {
                "namespace": service.namespace,
                "name": service.name,
                "path": CONVERSION_PATH,
                "port": service.port,
            }
        }
        if old_config.get("caBundle"):
            client_config["caBundle"] = old_config["caBundle"]
        wanted = {
            "strategy": "Webhook",
            "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client_config},
        }
        if conversion == wanted:
            return
        crd["spec"]["conversion"] = wanted
        try:
            await client.update(CUSTOM_RESOURCE_DEFINITIONS, crd)
            return
        except ApiStatusError as e:
            if not e.is_conflict:
                raise
    raise RuntimeError(f"CRD {name} kept changing while its conversion webhook was routed")


async def wait_until_admitting(
    client: ApiClient,
    *,
    namespace: str = "default",
    kind: JobKind = ALL_KINDS[0],
    timeout: float = 30.0,
) -> None:
    """Return once a dry-run create of an invalid ``kind`` job is refused by the validating
    webhook; raise ``TimeoutError`` with the last answer otherwise."""
    probe: Obj = {
        "apiVersion": API_VERSION,
        "kind": kind.kind,
        "metadata": {"name": "kubetrain-webhook-probe", "namespace": namespace},
        # a container without an image: refused by every kind's validator
        "spec": {
            kind.replica_field: {
                kind.replica_types[-1]: {"template": {"spec": {"containers": [{"name": "x"}]}}}
            }
        },
    }
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            await client.request_json(
                "POST",
                kubeflow(kind.kind).collection_path(namespace),
                body=probe,
                query={"dryRun": "All"},
            )
            last = "the probe was admitted (webhooks not consulted)"
        except ApiStatusError as e:
            last = e.message or str(e)
            if "admission webhook" in last and "denied the request" in last:
                return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"the admission webhooks did not answer within {timeout:g} s: {last}")


async def _apply(
    client: ApiClient, ref: ResourceRef, obj: Obj, *, keep_ca_bundle: bool = False
) -> None:
    meta = obj["metadata"]
    ns = meta.get("namespace") if ref.namespaced else None
    for _ in range(5):
        try:
            await client.create(ref, obj)
            return
        except ApiStatusError as e:
            if not e.is_already_exists:
                raise
        current = await client.get(ref, ns, meta["name"])
        desired: dict[str, Any] = {**obj, "metadata": {**meta, **_version(current)}}
        if keep_ca_bundle:
            _keep_ca_bundles(current, desired)
        cluster_ip = (current.get("spec") or {}).get("clusterIP")
        if ref is SERVICES and cluster_ip:  # a Service's clusterIP is immutable
            desired["spec"] = {**desired["spec"], "clusterIP": cluster_ip}
        try:
            await client.update(ref, desired)
            return
        except ApiStatusError as e:
            if not (e.is_conflict or e.is_not_found):
                raise
    raise RuntimeError(f"{ref.kind} {meta['name']} kept changing while it was installed")


def _version(obj: Obj) -> dict[str, Any]:
    return {"resourceVersion": obj["metadata"].get("resourceVersion")}


def _keep_ca_bundles(current: Obj, desired: dict[str, Any]) -> None:
    bundles = {
        h.get("name"): (h.get("clientConfig") or {}).get("caBundle")
        for h in current.get("webhooks") or []
    }
    hooks = []
    for hook in desired.get("webhooks") or []:
        bundle = bundles.get(hook.get("name"))
        if bundle:
            hook = {**hook, "clientConfig": {**hook["clientConfig"], "caBundle": bundle}}
        hooks.append(hook)
    desired["webhooks"] = hooks
