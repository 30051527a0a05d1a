"""The CRDs carry Kubernetes' PodTemplateSpec schema: kubectl against the API server shows a
misspelled or mistyped pod field with its path, and a valid rich pod template is stored unchanged.

No operator and no webhook run here: this is the CRD schema alone, as a cluster has it right after
``kubectl apply --server-side -f deploy/crds/``. These run on the embedded cluster and, under
``--apiserver=real``, on the conformance tier's kube-apiserver, so both must say the same.
"""

from __future__ import annotations

import asyncio
import copy
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import yaml
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, open_env
from kubeapply import kubectl

from kubetrain.example_jobs import load_examples
from kubetrain.reconcilers.api.kinds import BY_KIND

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

Obj = dict[str, Any]
# the kubeflow.org/v1 examples (the TrainJob example is tested in test_trainjobs.py and up's)
EXAMPLES = {job.kind: job for job in load_examples() if job.kind != "TrainJob"}
NAMESPACE = "default"

#: A pod spec that uses much of the PodSpec surface: every field must survive the schema as given.
RICH_POD_SPEC: Obj = {
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["a100"]}]}
                ]
            }
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app": "x"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        },
    },
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "securityContext": {
        "runAsNonRoot": True,
        "fsGroup": 2000,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "volumes": [
        {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "a.yaml"}]}},
    ],
    "terminationGracePeriodSeconds": 30,
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    "containers": [
        {
            "name": "trainer",
            "image": "docker.io/kubeflow/trainer:latest",
            "imagePullPolicy": "IfNotPresent",
            "command": ["python", "train.py"],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cfg"}}],
            "ports": [{"containerPort": 23456, "name": "trainer-port", "protocol": "TCP"}],
            "resources": {
                "limits": {"cpu": "1500m", "memory": "4Gi", "nvidia.com/gpu": 1},
                "requests": {"cpu": 1, "memory": "2Gi"},
            },
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "trainer-port"}},
            "livenessProbe": {"tcpSocket": {"port": 23456}, "periodSeconds": 10},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
            "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
        }
    ],
}


class SchemaEnv:
    def __init__(self, env: Env) -> None:
        self.env = env

    async def kubectl(
        self, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """kubectl off the event loop (the embedded cluster serves from this loop)."""
        path = self.env.cluster.kubeconfig_path
        return await asyncio.to_thread(kubectl, path, *args, stdin=stdin)

    async def stored(self, job: Obj) -> Obj:
        stored = await self.env.get_job(job["kind"], NAMESPACE, job["metadata"]["name"])
        assert stored is not None
        return stored


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def schema_env(request: pytest.FixtureRequest) -> AsyncIterator[SchemaEnv]:
    async for env in open_env(apiserver=selected_apiserver(request.config)):
        yield SchemaEnv(env)


def _job(kind: str, name: str, pod_spec: Obj | None = None) -> Obj:
    job = copy.deepcopy(EXAMPLES[kind].manifest)
    job["metadata"] = {"name": name, "namespace": NAMESPACE}
    if pod_spec is not None:
        for replica in job["spec"][BY_KIND[kind].replica_field].values():
            replica["template"]["spec"] = copy.deepcopy(pod_spec)
    return job


def _first_replica(job: Obj) -> Obj:
    replicas: Obj = job["spec"][BY_KIND[job["kind"]].replica_field]
    return replicas[sorted(replicas)[0]]


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
async def test_a_rich_pod_template_is_stored_as_given(schema_env: SchemaEnv, kind: str) -> None:
    job = _job(kind, f"rich-{kind.lower()}", RICH_POD_SPEC)
    done = await schema_env.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(job))
    assert done.returncode == 0, done.stderr
    stored = await schema_env.stored(job)
    assert _first_replica(stored)["template"]["spec"] == RICH_POD_SPEC


async def test_a_misspelled_pod_field_is_named_by_kubectl(schema_env: SchemaEnv) -> None:
    spec = copy.deepcopy(RICH_POD_SPEC)
    spec["containers"][0]["imagePullPolcy"] = "Always"
    job = _job("PyTorchJob", "misspelled", spec)
    done = await schema_env.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(job))
    assert done.returncode != 0
    assert (
        'unknown field "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].imagePullPolcy"'
        in done.stderr
    ), done.stderr

    # Without strict validation the field is pruned, as it would be on a Pod.
    done = await schema_env.kubectl(
        "apply", "--validate=false", "-f", "-", stdin=yaml.safe_dump(job)
    )
    assert done.returncode == 0, done.stderr
    stored = await schema_env.stored(job)
    assert _first_replica(stored)["template"]["spec"] == RICH_POD_SPEC


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (
            ("ports", 0, "containerPort"),
            "http",
            "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].ports[0].containerPort: "
            'Invalid value: "string": spec.pytorchReplicaSpecs.Master.template.spec.containers[0]'
            '.ports[0].containerPort in body must be of type integer: "string"',
        ),
        (
            ("resources", "limits", "cpu"),
            "1.5 cores",
            "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].resources.limits.cpu: "
            'Invalid value: "1.5 cores": spec.pytorchReplicaSpecs.Master.template.spec'
            ".containers[0].resources.limits.cpu in body should match",
        ),
        (
            ("env",),
            [{"value": "no name"}],
            "spec.pytorchReplicaSpecs.Master.template.spec.containers[0].env[0].name: "
            "Required value",
        ),
    ],
    ids=["port-type", "quantity", "env-name"],
)
async def test_a_mistyped_pod_field_is_refused_with_its_path(
    schema_env: SchemaEnv, where: tuple[Any, ...], value: Any, expected: str
) -> None:
    spec = copy.deepcopy(RICH_POD_SPEC)
    parent: Any = spec["containers"][0]
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = value
    job = _job("PyTorchJob", f"mistyped-{where[-1]}", spec)
    done = await schema_env.kubectl("create", "-f", "-", stdin=yaml.safe_dump(job))
    assert done.returncode != 0
    assert expected in done.stderr, done.stderr
