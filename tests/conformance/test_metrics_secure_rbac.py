"""``--metrics-secure`` against a real kube-apiserver with ``--authorization-mode=Node,RBAC``
(``make conformance`` only): the manager serves ``/metrics`` through ``engine/metrics_auth.py``
with a ServiceAccount token that holds only the component's ``kubetrain-metrics-auth`` role
(deploy/components/metrics-secure); kube-apiserver's own TokenReview and SubjectAccessReview then
let in a ServiceAccount bound to ``kubetrain-metrics-reader`` (200), and refuse one without the
binding (403) and a request without or with a bad token (401)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubeapply import mint_token
from prometheus_client import CollectorRegistry

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.engine.manager import Manager, ManagerOptions
from kubetrain.engine.metrics_auth import MetricsAuthorizer
from kubetrain.engine.webhook.certs import make_ca, server_ssl_context

pytestmark = pytest.mark.conformance

ROOT = Path(__file__).resolve().parents[2]
NS = "metrics-test"
RBAC_PATHS = {
    "ClusterRole": "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
}


def component_rbac() -> list[dict[str, Any]]:
    text = (ROOT / "deploy/components/metrics-secure/metrics-rbac.yaml").read_text()
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        for subject in doc.get("subjects", []):
            subject["namespace"] = NS
    return docs


async def test_real_token_and_access_reviews_gate_the_secure_metrics() -> None:
    from conformance.controlplane import ControlPlaneOptions, RealControlPlane

    async with RealControlPlane(ControlPlaneOptions(authorization_mode="Node,RBAC")) as plane:
        options = ClientOptions(qps=0, adaptive=None, registry=CollectorRegistry())
        admin_config = ClientConfig(server=plane.url, token=plane.token, ca_file=plane.ca_path)
        async with ApiClient(admin_config, options) as admin:
            await admin.request_json(
                "POST",
                "/api/v1/namespaces",
                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
            )
            for account in ("kubetrain", "prometheus", "nobody"):
                await admin.request_json(
                    "POST",
                    f"/api/v1/namespaces/{NS}/serviceaccounts",
                    body={
                        "apiVersion": "v1",
                        "kind": "ServiceAccount",
                        "metadata": {"name": account},
                    },
                )
            reader_binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "prometheus-metrics-reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "kubetrain-metrics-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": NS}],
            }
            for doc in [*component_rbac(), reader_binding]:
                await admin.request_json("POST", RBAC_PATHS[doc["kind"]], body=doc)
            tokens = {
                a: await mint_token(admin, NS, a) for a in ("kubetrain", "prometheus", "nobody")
            }

        operator_config = ClientConfig(
            server=plane.url, token=tokens["kubetrain"], ca_file=plane.ca_path
        )
        ca = make_ca()
        server_ctx = server_ssl_context()
        ca.issue_server_cert().load_into(server_ctx)
        async with ApiClient(operator_config, options) as operator:
            manager = Manager(
                operator,
                ManagerOptions(
                    metrics_bind_address="127.0.0.1:0",
                    health_probe_bind_address="0",
                    metrics_ssl_context=server_ctx,
                    metrics_filter=MetricsAuthorizer(operator).wrap,
                    registry=CollectorRegistry(),
                ),
            )
            run = asyncio.create_task(manager.run())
            try:
                client_ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())
                connector = aiohttp.TCPConnector(ssl=client_ctx)
                async with aiohttp.ClientSession(connector=connector) as session:

                    async def scrape(token: str | None) -> int:
                        url = f"https://127.0.0.1:{manager.metrics_port}/metrics"
                        headers = {"Authorization": f"Bearer {token}"} if token else {}
                        async with session.get(url, headers=headers) as resp:
                            await resp.read()
                            return resp.status

                    for _ in range(100):  # the port, then RBAC's caches of the new bindings
                        try:
                            if await scrape(tokens["prometheus"]) == 200:
                                break
                        except (RuntimeError, aiohttp.ClientConnectionError):
                            pass
                        await asyncio.sleep(0.2)
                    assert await scrape(tokens["prometheus"]) == 200
                    assert await scrape(tokens["nobody"]) == 403
                    assert await scrape(None) == 401
                    assert await scrape("not-a-token") == 401
            finally:
                manager.request_stop()
                await asyncio.wait_for(run, 30)
