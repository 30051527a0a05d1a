"""Kubeflow Trainer v2's API (``trainer.kubeflow.org/v1alpha1``, release v2.3.0) installed and
served, with kubectl as a user has it: the vendored CRDs (``deploy/crds/trainer.kubeflow.org_*``)
applied server-side, the built-in runtimes by ``kubectl apply -k deploy/runtimes``, and a TrainJob
stored with its schema defaults. No controller runs TrainJobs yet.

These run on the embedded cluster and, under ``--apiserver=real``, on the conformance tier's
kube-apiserver; the CRDs' CEL rules (``x-kubernetes-validations``) are checked on the real one
only: the embedded server does not evaluate CEL rules of CRD schemas.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from conformance.apiserver_switch import selected_apiserver
from jobkit_e2e import Env, open_env, poll
from kubeapply import kubectl

from kubetrain.informers.resource import ResourceRef
from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer import crds, runtimes

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
CRDS = ResourceRef(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", False, "CustomResourceDefinition"
)
TRAINJOBS = ResourceRef("trainer.kubeflow.org", "v1alpha1", "trainjobs", True, "TrainJob")
TRAINING_RUNTIMES = ResourceRef(
    "trainer.kubeflow.org", "v1alpha1", "trainingruntimes", True, "TrainingRuntime"
)
NO_CEL = (
    "the embedded API server does not evaluate CRD CEL rules (x-kubernetes-validations); "
    "the real kube-apiserver does"
)

#: The built-in runtimes of Trainer v2.3.0's manifests/base/runtimes, with their framework label.
BUILTIN = {
    "deepspeed-distributed": "deepspeed",
    "jax-distributed": "jax",
    "mlx-distributed": "mlx",
    "torch-distributed": "torch",
    "torchtune-llama3.2-1b": "torchtune",
    "torchtune-llama3.2-3b": "torchtune",
    "torchtune-qwen2.5-1.5b": "torchtune",
    "xgboost-distributed": "xgboost",
}


class TrainerEnv:
    def __init__(self, env: Env) -> None:
        self.env = env

    async def kubectl(
        self, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """kubectl off the event loop (the embedded cluster serves from this loop)."""
        return await asyncio.to_thread(
            kubectl, self.env.cluster.kubeconfig_path, *args, stdin=stdin
        )

    async def ok(self, *args: str, stdin: str | None = None) -> str:
        done = await self.kubectl(*args, stdin=stdin)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout


async def _established(env: Env, name: str) -> bool:
    crd = await env.client.get(CRDS, None, name)
    return any(
        c.get("type") == "Established" and c.get("status") == "True"
        for c in (crd.get("status") or {}).get("conditions") or []
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def trainer(request: pytest.FixtureRequest) -> AsyncIterator[TrainerEnv]:
    """A cluster with the Trainer CRDs applied as a user applies them (server-side: the runtime
    CRDs are about 0.9 MB each, beyond the 256 KiB last-applied annotation)."""
    async for env in open_env(nodes=1, apiserver=selected_apiserver(request.config)):
        t = TrainerEnv(env)
        files = [f"--filename={ROOT / 'deploy' / 'crds' / name}" for name in crds.CRD_FILES]
        await t.ok("apply", "--server-side", *files)
        for name in crds.CRD_NAMES:
            await poll(
                lambda e=env, n=name: _established(e, n), timeout=30, what=f"{name} Established"
            )
        yield t


def trainjob(name: str, ns: str, runtime: str = "torch-distributed", **spec: Any) -> Obj:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"runtimeRef": {"name": runtime}, **spec},
    }


async def test_the_trainer_resources_are_served(trainer: TrainerEnv) -> None:
    out = await trainer.ok("api-resources", "--api-group=trainer.kubeflow.org", "-o", "name")
    assert sorted(out.split()) == [
        "clustertrainingruntimes.trainer.kubeflow.org",
        "trainingruntimes.trainer.kubeflow.org",
        "trainjobs.trainer.kubeflow.org",
    ]
    namespaced = await trainer.ok(
        "api-resources", "--api-group=trainer.kubeflow.org", "--namespaced=false", "-o", "name"
    )
    assert namespaced.split() == ["clustertrainingruntimes.trainer.kubeflow.org"]


async def test_the_builtin_runtimes_apply_with_kustomize_and_list(trainer: TrainerEnv) -> None:
    await trainer.ok("apply", "--server-side", "-k", str(ROOT / "deploy" / "runtimes"))
    listed = json.loads(await trainer.ok("get", "clustertrainingruntimes", "-o", "json"))
    assert {
        item["metadata"]["name"]: item["metadata"]["labels"][runtimes.FRAMEWORK_LABEL]
        for item in listed["items"]
    } == BUILTIN

    # kustomize's labels and images transformations are what builtin_runtimes() applies
    def images(runtime: dict[str, Any]) -> list[str]:
        return [
            c["image"]
            for rjob in runtime["spec"]["template"]["spec"]["replicatedJobs"]
            for c in rjob["template"]["spec"]["template"]["spec"]["containers"]
        ]

    packaged = {r["metadata"]["name"]: r for r in runtimes.builtin_runtimes()}
    for item in listed["items"]:
        want = packaged[item["metadata"]["name"]]
        assert item["metadata"]["labels"] == want["metadata"]["labels"]
        assert images(item) == images(want)
    # The release's runtimes print no extra columns: NAME and AGE, one row each.
    table = (await trainer.ok("get", "clustertrainingruntimes")).splitlines()
    assert table[0].split() == ["NAME", "AGE"]
    assert sorted(row.split()[0] for row in table[1:]) == sorted(BUILTIN)
    torch = json.loads(
        await trainer.ok("get", "clustertrainingruntime/torch-distributed", "-o", "json")
    )
    assert torch["spec"]["mlPolicy"] == {"numNodes": 1, "torch": {}}
    (node,) = torch["spec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node"
    assert node["replicas"] == 1  # the embedded JobSetSpec's schema default


async def test_a_namespaced_training_runtime_is_stored(trainer: TrainerEnv) -> None:
    ns = await trainer.env.namespace("trainer-runtime")
    runtime = yaml.safe_load((runtimes.RUNTIME_DIR / "torch_distributed.yaml").read_text())
    runtime["kind"] = "TrainingRuntime"
    runtime["metadata"] = {"name": "my-torch", "namespace": ns}
    await trainer.ok("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(runtime))
    stored = await trainer.env.client.get(TRAINING_RUNTIMES, ns, "my-torch")
    assert stored["spec"]["mlPolicy"]["torch"] == {}


async def test_a_trainjob_is_stored_with_its_defaults(trainer: TrainerEnv) -> None:
    ns = await trainer.env.namespace("trainjob")
    await trainer.ok("create", "-f", "-", stdin=yaml.safe_dump(trainjob("llm", ns)))
    stored = await trainer.env.client.get(TRAINJOBS, ns, "llm")
    assert stored["spec"]["runtimeRef"] == {
        "name": "torch-distributed",
        "apiGroup": "trainer.kubeflow.org",
        "kind": "ClusterTrainingRuntime",
    }
    assert stored["spec"]["managedBy"] == "trainer.kubeflow.org/trainjob-controller"
    assert stored["spec"]["suspend"] is False
    assert "status" not in stored  # no controller yet
    table = (await trainer.ok("get", "trainjobs", "-n", ns)).splitlines()
    assert table[0].split() == ["NAME", "STATE", "PROGRESS", "%", "ETA", "AGE"]
    assert table[1].split()[0] == "llm"


async def test_the_schema_refuses_a_mistyped_trainjob(trainer: TrainerEnv) -> None:
    ns = await trainer.env.namespace("trainjob-schema")
    bad = trainjob("bad-numnodes", ns, trainer={"numNodes": "two"})
    with pytest.raises(ApiStatusError) as caught:
        await trainer.env.client.create(TRAINJOBS, bad)
    assert caught.value.code == 422
    assert "spec.trainer.numNodes" in str(caught.value)


async def test_cel_refuses_changing_the_runtime_ref(trainer: TrainerEnv) -> None:
    if not trainer.env.real:
        pytest.skip(NO_CEL)
    ns = await trainer.env.namespace("trainjob-cel")
    stored = await trainer.env.client.create(TRAINJOBS, trainjob("fixed", ns))
    stored["spec"]["runtimeRef"]["name"] = "deepspeed-distributed"
    with pytest.raises(ApiStatusError) as caught:
        await trainer.env.client.update(TRAINJOBS, stored)
    assert caught.value.code == 422
    assert "spec.runtimeRef" in str(caught.value) and "field is immutable" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("dotted.name", "metadata.name must match RFC 1035 DNS label format"),
        ("x" * 64, "metadata.name must be no more than 63 characters"),
    ],
)
async def test_cel_refuses_a_bad_trainjob_name(
    trainer: TrainerEnv, name: str, message: str
) -> None:
    if not trainer.env.real:
        pytest.skip(NO_CEL)
    ns = await trainer.env.namespace("trainjob-name")
    with pytest.raises(ApiStatusError) as caught:
        await trainer.env.client.create(TRAINJOBS, trainjob(name, ns))
    assert caught.value.code == 422
    assert message in str(caught.value)
