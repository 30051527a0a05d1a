"""tools/conformance/real_cluster.py --service-accounts: the kubeconfigs it writes next to
--kubeconfig and the RBAC it applies (default suite: no Go needed), and, against a real
kube-apiserver with Node,RBAC (``conformance``), that the two identities are service accounts
with the rights the benchmark needs and that priority and fairness classifies them as workloads.
"""

from __future__ import annotations

import stat
from pathlib import Path

import aiohttp
import pytest
from toolmodules import load_tool

from kubetrain.bench.scenarios.tenant_probe import PROBE_NAMESPACE
from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import load_kubeconfig
from kubetrain.engine.metrics import new_registry
from kubetrain.informers.resource import CONFIGMAPS, PODS
from kubetrain.informers.transport import ApiStatusError

real_cluster = load_tool("tools/conformance/real_cluster.py")


async def allowed(client: ApiClient, verb: str, group: str, resource: str) -> bool:
    """A SelfSubjectAccessReview of ``verb`` on ``resource[/subresource]`` in namespace "x"."""
    plural, _, sub = resource.partition("/")
    attributes = {"verb": verb, "group": group, "resource": plural, "namespace": "x"}
    if sub:
        attributes["subresource"] = sub
    review = await client.request_json(
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        body={
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        },
    )
    return bool(review["status"].get("allowed"))


def test_kubeconfigs_go_next_to_the_admin_one() -> None:
    assert real_cluster.service_account_paths("/tmp/real.kubeconfig") == (
        Path("/tmp/real.operator.kubeconfig"),
        Path("/tmp/real.probe.kubeconfig"),
    )
    assert real_cluster.service_account_paths("cfg") == (
        Path("cfg.operator.kubeconfig"),
        Path("cfg.probe.kubeconfig"),
    )


async def test_a_written_kubeconfig_loads_with_its_token_and_ca(tmp_path: Path) -> None:
    from kubetrain.engine.webhook.certs import make_ca

    ca = make_ca("test-ca", valid_days=1)
    path = tmp_path / "real.operator.kubeconfig"
    path.write_text("stale")
    config = real_cluster.token_kubeconfig(
        server="https://127.0.0.1:6443",
        ca_pem=ca.cert_pem,
        user="system:serviceaccount:kubeflow:kubetrain",
        token="sa-token",
        namespace="kubeflow",
    )
    real_cluster.write_kubeconfig(path, config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds a token
    loaded = await load_kubeconfig(str(path))
    assert loaded.server == "https://127.0.0.1:6443"
    assert await loaded.new_credentials().authorization() == "Bearer sa-token"
    assert loaded.ssl_context() is not None


def test_only_deploys_identity_and_rbac_are_applied() -> None:
    docs = real_cluster.deploy_rbac() + real_cluster.bench_rbac()
    kinds = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs}
    assert ("ServiceAccount", "kubeflow", "kubetrain") in kinds
    assert ("ClusterRole", None, "kubetrain") in kinds
    assert ("ClusterRoleBinding", None, "kubetrain-bench-baselines") in kinds
    assert ("ServiceAccount", PROBE_NAMESPACE, "probe") in kinds
    # no Deployment (nothing would run it) and no webhook configurations (nothing would answer)
    assert {d["kind"] for d in docs} <= real_cluster.RBAC_KINDS


@pytest.mark.conformance
async def test_the_operator_and_the_probe_are_workload_service_accounts(tmp_path: Path) -> None:
    from conformance.controlplane import ControlPlaneOptions, RealControlPlane

    async with RealControlPlane(ControlPlaneOptions(authorization_mode="Node,RBAC")) as plane:
        operator_path, probe_path = await real_cluster.set_up_service_accounts(
            plane, str(tmp_path / "real.kubeconfig")
        )
        assert await real_cluster.who_am_i(operator_path) == (
            "system:serviceaccount:kubeflow:kubetrain"
        )
        assert await real_cluster.who_am_i(probe_path) == (
            "system:serviceaccount:tenant-probe:probe"
        )
        options = ClientOptions(qps=0, adaptive=None, registry=new_registry(process_metrics=False))
        operator_config = await load_kubeconfig(str(operator_path))
        probe_config = await load_kubeconfig(str(probe_path))
        async with (
            ApiClient(operator_config, options) as operator,
            ApiClient(probe_config, options) as probe,
        ):
            await operator.list(PODS)  # every namespace: the bench's are made per run
            # the CRDs are not installed here: ask instead of listing
            for verb, resource in (("watch", "pytorchjobs"), ("patch", "pytorchjobs/status")):
                assert await allowed(operator, verb, "kubeflow.org", resource), resource
            # kopf's and the reference's extras (BASELINES_RULES)
            assert await allowed(operator, "update", "kubeflow.org", "pytorchjobs/finalizers")
            assert await allowed(operator, "update", "", "secrets")
            # kubetrain's own ClusterRole creates MPIJob v2beta1's SSH Secrets
            assert await allowed(operator, "create", "", "secrets")
            assert not await allowed(operator, "delete", "", "secrets")
            await probe.list(CONFIGMAPS, PROBE_NAMESPACE)
            with pytest.raises(ApiStatusError) as refused:
                await probe.list(CONFIGMAPS, "default")
            assert refused.value.code == 403
        # APF: a service account falls under FlowSchema "service-accounts" (not "exempt")
        headers = {"Authorization": await probe_config.new_credentials().authorization() or ""}
        connector = aiohttp.TCPConnector(ssl=probe_config.ssl_context())
        async with (
            aiohttp.ClientSession(connector=connector, headers=headers) as session,
            session.get(f"{plane.url}/api/v1/namespaces/{PROBE_NAMESPACE}/configmaps") as resp,
        ):
            assert resp.status == 200
            flow_schema_uid = resp.headers["X-Kubernetes-PF-FlowSchema-UID"]
        async with ApiClient(await load_kubeconfig(plane.kubeconfig_path), options) as admin:
            schema = await admin.request_json(
                "GET", "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas/service-accounts"
            )
        assert schema["metadata"]["uid"] == flow_schema_uid
        assert schema["spec"]["priorityLevelConfiguration"]["name"] == "workload-low"
