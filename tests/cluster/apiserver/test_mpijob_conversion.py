"""kubeflow.org/v2beta1 MPIJob through the API server with kubetrain's own webhook server:
the MPIJob CRD (``crds.crd``, v1 storage + v2beta1 with webhook conversion) and the MPIJob
admission webhooks (``webhook_configurations``) both served by a ``WebhookServer`` with
``register_job_webhooks``, reached through a Service as in ``test_crd_conversion.py``.

A job created as v2beta1 is defaulted and validated by v2beta1's rules, stored as v1 with the
origin annotation and the v2beta1-only fields, and read back in either version."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from apiserver_helpers import CRDS, Raw, create_crd, eventually
from conformance.controlplane import host_address
from prometheus_client import CollectorRegistry

from kubetrain.engine.webhook.certs import CertificateAuthority, make_ca
from kubetrain.engine.webhook.server import WebhookServer, WebhookServerOptions
from kubetrain.reconcilers.api.crds import crd
from kubetrain.reconcilers.api.kinds import MPIJOB
from kubetrain.reconcilers.api.mpi_v2beta1 import ORIGIN_ANNOTATION
from kubetrain.reconcilers.api.webhooks import (
    WebhookService,
    register_job_webhooks,
    webhook_configurations,
)

pytestmark = pytest.mark.http_api

SERVICE = WebhookService(namespace="default", name="kubetrain-webhook-service", port=443)
V1 = "/apis/kubeflow.org/v1/namespaces/default/mpijobs"
V2 = "/apis/kubeflow.org/v2beta1/namespaces/default/mpijobs"
SVC = "/api/v1/namespaces/default/services"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
ADMISSION = "/apis/admissionregistration.k8s.io/v1"
CONFIG_PATHS = {
    "MutatingWebhookConfiguration": f"{ADMISSION}/mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": f"{ADMISSION}/validatingwebhookconfigurations",
}


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return make_ca("mpijob-v2beta1-test-ca")


async def _service(raw: Raw, port: int) -> None:
    svc = {
        "metadata": {"name": SERVICE.name},
        "spec": {"ports": [{"port": 443, "targetPort": port}], "selector": {"app": "kt"}},
    }
    status, body, _ = await raw.post(SVC, svc)
    assert status == 201, body
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{SERVICE.name}-1",
            "labels": {"kubernetes.io/service-name": SERVICE.name},
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host_address()], "conditions": {"ready": True}}],
        "ports": [{"port": port, "protocol": "TCP"}],
    }
    status, body, _ = await raw.post(SLICES, endpoint_slice)
    assert status == 201, body


@pytest.fixture
async def kubetrain_webhooks(ca: CertificateAuthority, raw: Raw) -> AsyncIterator[None]:
    """kubetrain's webhook server (MPIJob admission + conversion), its Service, the MPIJob CRD
    and the webhook configurations; removed at teardown while the server still answers."""
    server = WebhookServer(
        WebhookServerOptions(host="0.0.0.0", port=0), registry=CollectorRegistry()
    )
    register_job_webhooks(server, [MPIJOB])
    server.use_certificate(ca.issue_server_cert(dns_names=[f"{SERVICE.name}.default.svc"]))
    await server.start()
    bundle = base64.b64encode(ca.cert_pem).decode()
    configs = webhook_configurations([MPIJOB], service=SERVICE, ca_bundle=bundle)
    try:
        await _service(raw, server.port)
        await create_crd(raw, crd(MPIJOB, service=SERVICE, ca_bundle=bundle))
        for config in configs:
            status, body, _ = await raw.post(CONFIG_PATHS[config["kind"]], config)
            assert status == 201, body
        yield
    finally:
        for config in configs:
            await raw.delete(f"{CONFIG_PATHS[config['kind']]}/{config['metadata']['name']}")
        await raw.delete(f"{CRDS}/mpijobs.kubeflow.org")

        async def gone() -> bool:
            return (await raw.get(f"{CRDS}/mpijobs.kubeflow.org"))[0] == 404

        await eventually(gone, "the MPIJob CRD deleted")
        await raw.delete(f"{SVC}/{SERVICE.name}")
        await raw.delete(f"{SLICES}/{SERVICE.name}-1")
        await server.stop()


def v2beta1_job(name: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "mpi", "image": "mpioperator/mpi-pi"}
    template = {"spec": {"containers": [container]}}
    return {
        "apiVersion": "kubeflow.org/v2beta1",
        "kind": "MPIJob",
        "metadata": {"name": name},
        "spec": {
            "mpiReplicaSpecs": {
                "Launcher": {"template": template},
                "Worker": {"replicas": 2, "template": template},
            },
            **spec,
        },
    }


async def test_a_v2beta1_job_is_stored_as_v1_and_read_in_either(
    kubetrain_webhooks: None, raw: Raw
) -> None:
    status, created, _ = await raw.post(V2, v2beta1_job("pi", runLauncherAsWorker=True))
    assert status == 201, created
    assert created["apiVersion"] == "kubeflow.org/v2beta1"
    spec = created["spec"]
    # v2beta1's defaults (schema and webhook), not v1's
    assert spec["slotsPerWorker"] == 1
    assert spec["sshAuthMountPath"] == "/root/.ssh"
    assert spec["mpiImplementation"] == "OpenMPI"
    assert spec["launcherCreationPolicy"] == "AtStartup"
    assert spec["runPolicy"]["cleanPodPolicy"] == "None"
    assert spec["mpiReplicaSpecs"]["Launcher"]["restartPolicy"] == "OnFailure"
    assert spec["mpiReplicaSpecs"]["Launcher"]["replicas"] == 1
    assert spec["mpiReplicaSpecs"]["Worker"]["restartPolicy"] == "Never"
    assert "cleanPodPolicy" not in spec  # v1's deprecated field is not defaulted
    assert created["metadata"]["annotations"][ORIGIN_ANNOTATION] == "v2beta1"

    status, in_v1, _ = await raw.get(f"{V1}/pi")
    assert status == 200, in_v1
    assert in_v1["apiVersion"] == "kubeflow.org/v1"
    assert in_v1["metadata"]["annotations"][ORIGIN_ANNOTATION] == "v2beta1"
    for field in ("runLauncherAsWorker", "sshAuthMountPath", "launcherCreationPolicy"):
        assert in_v1["spec"][field] == spec[field], field
    assert in_v1["spec"]["runLauncherAsWorker"] is True
    assert in_v1["spec"]["mpiImplementation"] == "OpenMPI"

    status, in_v2, _ = await raw.get(f"{V2}/pi")
    assert status == 200, in_v2
    assert in_v2["apiVersion"] == "kubeflow.org/v2beta1"
    assert in_v2["spec"] == spec
    assert in_v2["metadata"]["annotations"] == in_v1["metadata"]["annotations"]


async def test_v2beta1_rules_refuse_a_v2beta1_job(kubetrain_webhooks: None, raw: Raw) -> None:
    job = v2beta1_job("bad")
    job["spec"]["mpiReplicaSpecs"]["Worker"]["replicas"] = 0  # v1 allows it, v2beta1 does not
    status, body, _ = await raw.post(V2, job)
    assert status == 422, body
    assert (
        "spec.mpiReplicaSpecs[Worker].replicas: Invalid value: 0: must be greater than or "
        "equal to 1" in body["message"]
    )
    assert (await raw.get(f"{V1}/bad"))[0] == 404


async def test_a_v1_job_stays_v1_through_v2beta1(kubetrain_webhooks: None, raw: Raw) -> None:
    v1 = v2beta1_job("classic")
    v1["apiVersion"] = "kubeflow.org/v1"
    status, created, _ = await raw.post(V1, v1)
    assert status == 201, created
    assert ORIGIN_ANNOTATION not in (created["metadata"].get("annotations") or {})
    assert created["spec"]["cleanPodPolicy"] == "None"  # v1's defaulting
    status, as_v2, _ = await raw.get(f"{V2}/classic")
    assert status == 200, as_v2
    assert as_v2["metadata"]["annotations"][ORIGIN_ANNOTATION] == "v1"
    as_v2["metadata"]["labels"] = {"touched": "yes"}
    status, updated, _ = await raw.put(f"{V2}/classic", as_v2)
    assert status == 200, updated
    _, stored, _ = await raw.get(f"{V1}/classic")
    assert stored["metadata"]["annotations"][ORIGIN_ANNOTATION] == "v1"
    # flipping the origin is refused, naming the annotation
    stored["metadata"]["annotations"][ORIGIN_ANNOTATION] = "v2beta1"
    status, body, _ = await raw.put(f"{V1}/classic", stored)
    assert status == 422, body
    assert f"metadata.annotations[{ORIGIN_ANNOTATION}]" in body["message"]
