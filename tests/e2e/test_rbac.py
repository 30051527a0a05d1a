"""The RBAC proof (``make conformance`` only, marked ``conformance``): kube-apiserver with ``--authorization-mode=Node,RBAC``
and an audit log; ``deploy/overlays/standalone`` rendered by kubectl's kustomize and applied
with kubectl; the operator runs with a token of the deployed ServiceAccount (TokenRequest) and a
job suite that reaches every write it makes (every kind, MPIJob's launcher RBAC, an elastic
PyTorchJob's HPA, TTL deletion, cleanPodPolicy, restarts, suspend, leader election, webhook
certificate renewal). The audit log then shows every (verb, resource) the operator used: the
test fails on a request RBAC refused and on a grant never used, except the grants listed in
``GRANTED_FOR_OTHERS`` with the reason.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from conformance.controlplane import ControlPlaneOptions, host_address
from jobkit_e2e import SIM, Env, job_manifest, open_env, poll
from kubeapply import KUBECTL, kubectl_apply, mint_token, render

from kubetrain.engine.client import ApiClient, ClientOptions
from kubetrain.engine.config import ClientConfig
from kubetrain.engine.metrics import new_registry
from kubetrain.example_jobs import load_examples
from kubetrain.informers.resource import NAMESPACES, ResourceRef, kubeflow
from kubetrain.operator import Operator, OperatorOptions
from kubetrain.reconcilers.api.kinds import BY_KIND
from kubetrain.up import free_port
from kubetrain.webhook_install import ENDPOINTSLICES, wait_until_admitting

pytestmark = [pytest.mark.conformance, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "kubeflow"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:kubetrain"
AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    users: ["{SERVICE_ACCOUNT}"]
  - level: None
"""

MPIJOBS_V2BETA1 = ResourceRef("kubeflow.org", "v2beta1", "mpijobs", True, "MPIJob")

TRAINJOBS_ONLY = "the TrainJob controller, which runs only where JobSet is installed (not here)"
GANG_ONLY = "only with --gang-scheduler-name, which this suite runs without"

#: Grants the suite does not see used, each with why it is needed all the same.
GRANTED_FOR_OTHERS: dict[tuple[str, str, str], str] = {
    ("", "pods", "get"): "granted on: the Role of an MPIJob's launcher",
    ("", "pods/exec", "create"): "granted on: the Role of an MPIJob's launcher",
    (
        "",
        "events",
        "patch",
    ): "a repeated Event is aggregated (count): timing decides if a run has one",
    ("kubeflow.org", "<jobs>/status", "patch"): "a finished job's status, from its compacted cache",
    (
        "",
        "serviceaccounts",
        "get",
    ): "after a restart: the launcher's is found existing (create, get)",
    ("", "serviceaccounts", "update"): "repairs a launcher ServiceAccount someone changed",
    ("rbac.authorization.k8s.io", "rolebindings", "get"): "after a restart, as serviceaccounts",
    ("rbac.authorization.k8s.io", "rolebindings", "update"): "repairs a launcher RoleBinding",
    ("", "configmaps", "get"): "a create that finds it existing before the cache shows it",
    ("", "services", "update"): "an MPIJob v2beta1 Service whose selector changed",
    ("batch", "jobs/status", "update"): "resuming an MPIJob v2beta1 whose launcher had started",
    **{
        ("trainer.kubeflow.org", resource, verb): TRAINJOBS_ONLY
        for resource in ("trainjobs", "trainingruntimes", "clustertrainingruntimes")
        for verb in ("list", "watch")
    },
    ("trainer.kubeflow.org", "trainjobs/status", "patch"): TRAINJOBS_ONLY,
    ("", "configmaps", "patch"): TRAINJOBS_ONLY + ": runtime snapshots, MPI hostfiles",
    ("authentication.k8s.io", "tokenreviews", "create"): TRAINJOBS_ONLY + ": trainerStatus posts",
    **{
        ("jobset.x-k8s.io", "jobsets", verb): TRAINJOBS_ONLY
        for verb in ("list", "watch", "patch", "update", "delete")
    },
    ("autoscaling", "horizontalpodautoscalers", "get"): "as configmaps",
    **{
        (group, "podgroups", verb): GANG_ONLY
        for group in ("scheduling.volcano.sh", "scheduling.x-k8s.io")
        for verb in ("list", "watch", "create", "update", "delete", "get", "patch")
    },
    **{("scheduling.k8s.io", "priorityclasses", verb): GANG_ONLY for verb in ("list", "watch")},
}

Rule = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

#: KUBETRAIN_RBAC_DISCOVER=1: bind cluster-admin too and print what the operator used (to write
#: deploy/base/rbac.yaml after a change), instead of judging the manifests.
DISCOVER = os.environ.get("KUBETRAIN_RBAC_DISCOVER") == "1"
CLUSTER_ADMIN_BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "kubetrain-rbac-discovery"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    },
    "subjects": [{"kind": "ServiceAccount", "name": "kubetrain", "namespace": NAMESPACE}],
}


JOB_PLURALS = {k.plural for k in BY_KIND.values()}


def normalized(rule: Rule) -> Rule:
    """The six job kinds are one class to the operator's code: one rule stands for all."""
    group, resource, verb = rule
    plural, _, sub = resource.partition("/")
    if group == "kubeflow.org" and plural in JOB_PLURALS:
        resource = "<jobs>" + (f"/{sub}" if sub else "")
    return group, resource, verb


def granted(docs: list[dict[str, Any]]) -> set[Rule]:
    """The (group, resource, verb) triples the operator's ClusterRole and Role grant."""
    out: set[Rule] = set()
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "Role") or doc["metadata"]["name"] != "kubetrain":
            continue
        for rule in doc.get("rules") or []:
            for group in rule.get("apiGroups") or [""]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        out.add(normalized((group, resource, verb)))
    return out


def used(audit_log: str) -> tuple[set[Rule], list[str]]:
    """What the operator's ServiceAccount asked for, and the requests RBAC refused."""
    asked: set[Rule] = set()
    refused: list[str] = []
    for line in Path(audit_log).read_text().splitlines():
        event = json.loads(line)
        if event.get("user", {}).get("username") != SERVICE_ACCOUNT:
            continue
        ref = event.get("objectRef") or {}
        if not ref.get("resource"):
            continue  # discovery (/apis/...) is granted to every authenticated user
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        rule = normalized((ref.get("apiGroup", ""), resource, event["verb"]))
        asked.add(rule)
        # RBAC's own refusals (a 403 may also come from admission, e.g. a ServiceAccount the
        # admission plugin's cache does not show yet)
        if (event.get("annotations") or {}).get("authorization.k8s.io/decision") == "forbid":
            refused.append(f"{rule} {event.get('requestURI')}")
    return asked, refused


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> AsyncIterator[Env]:
    options = ControlPlaneOptions(authorization_mode="Node,RBAC", audit_policy=AUDIT_POLICY)
    async for e in open_env(apiserver="real", plane_options=options):
        yield e


async def service_account_client(env: Env) -> ApiClient:
    """A client holding a TokenRequest token of the deployed ServiceAccount."""
    plane = env.cluster
    token = await mint_token(env.client, NAMESPACE, "kubetrain")
    config = ClientConfig(server=plane.url, token=token, ca_file=plane.ca_path)
    return ApiClient(config, ClientOptions(qps=0, registry=new_registry(process_metrics=False)))


def suite(ns: str) -> list[dict[str, Any]]:
    """Jobs that reach every write the operator makes."""
    jobs: list[dict[str, Any]] = []
    for example in load_examples():  # every kind; MPIJob: ConfigMap, ServiceAccount, Role(Binding)
        if example.kind == "TrainJob":
            continue  # no JobSet here: its rules are TRAINJOBS_ONLY
        job = json.loads(json.dumps(example.manifest))
        job["metadata"]["namespace"] = ns
        job["spec"].setdefault("runPolicy", {})["cleanPodPolicy"] = "All"  # pod/service deletes
        for rspec in job["spec"][BY_KIND[job["kind"]].replica_field].values():
            meta = rspec["template"].setdefault("metadata", {})
            meta.setdefault("annotations", {})[SIM + "run-seconds"] = "0.5"
        jobs.append(job)
    jobs.append(  # TTL: the job itself is deleted
        job_manifest(
            "JAXJob", "jaxReplicaSpecs", "jax", {"Worker": 1}, name="ttl", namespace=ns,
            run_policy={"ttlSecondsAfterFinished": 0},
        )
    )  # fmt: skip
    jobs.append(  # a retryable exit code: the pod is replaced and the restart counted (patch)
        job_manifest(
            "TFJob", "tfReplicaSpecs", "tensorflow", {"Worker": 1}, name="restarts",
            namespace=ns, restart_policy="ExitCode",
            annotations={"Worker": {SIM + "exit-code": "130"}},
            run_policy={"backoffLimit": 1},
        )
    )  # fmt: skip
    jobs.append(  # workers outlive the master: the finished job's status is patched
        job_manifest(
            "PyTorchJob", "pytorchReplicaSpecs", "pytorch", {"Master": 1, "Worker": 1},
            name="outlived", namespace=ns,
            annotations={"Master": {SIM + "run-seconds": "0.3"},
                         "Worker": {SIM + "run-seconds": "3"}},
        )
    )  # fmt: skip
    return jobs


async def test_the_deployed_rbac_grants_exactly_what_the_operator_uses(env: Env) -> None:
    plane = env.cluster
    docs = render("standalone")
    # No kubelet here to run the Deployment's pod: the operator runs in this process with the
    # pod's identity, and an EndpointSlice points the webhook Service at it.
    kubectl_apply(plane.kubeconfig_path, docs)
    if DISCOVER:
        kubectl_apply(plane.kubeconfig_path, [CLUSTER_ADMIN_BINDING])
    port = free_port()
    await env.client.create(
        ENDPOINTSLICES,
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": "kubetrain-webhook-test",
                "namespace": NAMESPACE,
                "labels": {"kubernetes.io/service-name": "kubetrain-webhook-service"},
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [host_address()], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        },
    )
    async with await service_account_client(env) as client:
        options = OperatorOptions(
            metrics_bind_address="0",
            health_probe_bind_address="0",
            webhook_server_port=port,
            operator_namespace=NAMESPACE,
            # renewed a few times during the run: the Secret's update is used
            webhook_cert_validity=datetime.timedelta(seconds=6),
            leader_elect=True,
            component_host="rbac-test",
            graceful_shutdown_timeout=2.0,
        )
        operator = Operator(client, options, registry=new_registry(process_metrics=False))
        run = asyncio.create_task(operator.run())
        try:
            await wait_until_admitting(env.client, timeout=60)
            ns = await env.namespace("rbac")
            jobs = suite(ns)
            for job in jobs:
                await env.create_job(job)
            # An elastic PyTorchJob: its HPA is created, updated (maxReplicas), and deleted
            # with its pods and services when the job is suspended.
            elastic = job_manifest(
                "PyTorchJob", "pytorchReplicaSpecs", "pytorch", {"Worker": 2}, name="elastic",
                namespace=ns, run_seconds=120,
                ports=[{"name": "pytorchjob-port", "containerPort": 23456}],
                elasticPolicy={
                    "minReplicas": 1, "maxReplicas": 3, "rdzvBackend": "c10d",
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 80},
                    }}],
                },
            )  # fmt: skip
            # A long MPIJob scaled while running: its hostfile ConfigMap and the launcher's Role
            # (resourceNames) are updated; the Role is found existing (create, then get).
            mpi = job_manifest(
                "MPIJob", "mpiReplicaSpecs", "mpi", {"Launcher": 1, "Worker": 2}, name="scaled",
                namespace=ns, run_seconds=120,
                annotations={"Launcher": {SIM + "run-seconds": "15"}},
            )  # fmt: skip
            for long_job in (elastic, mpi):
                await env.create_job(long_job)
            # An MPIJob v2beta1 (conversion webhook; its Secret, ConfigMap, Service, workers and
            # launcher Job), created suspended and resumed: the launcher Job is updated.
            v2 = job_manifest(
                "MPIJob", "mpiReplicaSpecs", "mpi", {"Launcher": 1, "Worker": 1}, name="v2",
                namespace=ns, run_seconds=120, run_policy={"suspend": True},
                annotations={"Launcher": {SIM + "run-seconds": "1"}},
            )  # fmt: skip
            v2["apiVersion"] = "kubeflow.org/v2beta1"
            await env.client.create(MPIJOBS_V2BETA1, v2)
            await env.wait_condition("MPIJob", ns, "v2", "Suspended", timeout=60)
            await env.client.patch(
                kubeflow("MPIJob"), ns, "v2", {"spec": {"runPolicy": {"suspend": False}}}
            )
            await env.wait_condition("PyTorchJob", ns, "elastic", "Running", timeout=60)
            await env.wait_condition("MPIJob", ns, "scaled", "Running", timeout=60)
            await env.client.patch(
                kubeflow("PyTorchJob"),
                ns,
                "elastic",
                {"spec": {"elasticPolicy": {"maxReplicas": 4}}},
            )
            await env.client.patch(
                kubeflow("MPIJob"), ns, "scaled",
                {"spec": {"mpiReplicaSpecs": {"Worker": {"replicas": 3}}}},
            )  # fmt: skip
            await asyncio.sleep(2)
            await env.client.patch(
                kubeflow("PyTorchJob"), ns, "elastic", {"spec": {"runPolicy": {"suspend": True}}}
            )
            await env.wait_condition("PyTorchJob", ns, "elastic", "Suspended", timeout=60)
            await env.wait_condition("MPIJob", ns, "scaled", "Succeeded", timeout=90)
            await env.wait_condition("MPIJob", ns, "v2", "Succeeded", timeout=90)
            for job in jobs:
                kind, name = job["kind"], job["metadata"]["name"]
                if name == "ttl":
                    await poll(lambda k=kind, n=name: _gone(env, k, ns, n), timeout=60, what="TTL")
                    continue
                finished = "Failed" if name == "restarts" else "Succeeded"
                await env.wait_condition(kind, ns, name, finished, timeout=90)
            await asyncio.sleep(7)  # one more certificate renewal
        finally:
            operator.request_stop()
            await asyncio.wait_for(run, 30)
            await operator.close()
    asked, refused = used(plane.audit_log_path)
    grants = granted(docs)
    if DISCOVER:
        print("\nused by the operator:\n" + "\n".join(str(r) for r in sorted(asked)))
    if DISCOVER:
        return
    assert refused == [], "RBAC refused requests the operator needed:\n" + "\n".join(refused)
    assert set(GRANTED_FOR_OTHERS) <= grants, "GRANTED_FOR_OTHERS names a rule not granted"
    unused = sorted(grants - asked - set(GRANTED_FOR_OTHERS))
    assert unused == [], f"granted but never used (remove them, or say why): {unused}"
    assert asked <= grants  # nothing allowed by some other binding


async def _gone(env: Env, kind: str, ns: str, name: str) -> bool:
    return await env.get_job(kind, ns, name) is None


async def test_every_rendered_manifest_passes_strict_server_validation(env: Env) -> None:
    """Every overlay and the chart (defaults and cert-manager), checked by this kube-apiserver
    as a server-side dry run with strict field validation; cert-manager's own kinds are left
    out (its CRDs are not installed here)."""
    await env.client.create_if_absent(
        NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    )  # a dry run creates nothing: the namespaced objects need it to exist
    sys.path.insert(0, str(ROOT / "tests" / "deploy"))
    from test_helm_chart import template  # the real helm; skips when it is not built

    outputs = {
        "standalone": render("standalone"),
        "cert-manager": render("cert-manager"),
        "ha": render("ha"),
        "helm": template(),
        "helm cert-manager": template("--set", "certManager.enabled=true"),
    }
    for what, docs in outputs.items():
        docs = [d for d in docs if d["apiVersion"].split("/")[0] != "cert-manager.io"]
        done = await asyncio.to_thread(
            subprocess.run,
            [KUBECTL, "--kubeconfig", env.cluster.kubeconfig_path, "apply", "--server-side",
             "--dry-run=server", "--validate=strict", "--force-conflicts", "-f", "-"],
            input=yaml.safe_dump_all(docs), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{what}: {done.stderr}"
