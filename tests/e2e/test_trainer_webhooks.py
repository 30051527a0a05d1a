"""Kubeflow Trainer v2's admission webhooks from outside: ``kubectl apply`` of TrainJobs and
runtimes against the operator's webhook server, installed as a cluster install has it (Service,
configurations, the CA injected by the operator), on the embedded cluster and, under
``--apiserver=real``, on a real kube-apiserver. What a user sees: the refusal kubectl prints
names the field; ``runtimePatches[].time`` is kept for an unchanged patch and renewed for a
changed one; runtimePatches change only around a suspension."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import yaml
from conformance.controlplane import host_address
from jobkit_e2e import Env
from trainjob_e2e import get, open_trainer_env, run_kubectl, trainjob

from kubetrain.reconcilers.api.webhooks import WebhookService
from kubetrain.reconcilers.trainer.resources import TRAINING_RUNTIMES, TRAINJOBS
from kubetrain.up import free_port
from kubetrain.webhook_install import install_webhooks, wait_until_admitting

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

Obj = dict[str, Any]
SERVICE = WebhookService(namespace="kubetrain-system")
DENIED = 'admission webhook "validator.{}.trainer.kubeflow.org" denied the request'


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    port = free_port()
    async for e in open_trainer_env(
        request,
        tmp_path_factory,
        webhook_server_port=port,
        operator_namespace=SERVICE.namespace,
    ):
        await install_webhooks(
            e.client,
            port=port,
            service=SERVICE,
            endpoint_address=host_address() if e.real else None,
        )
        await wait_until_admitting(e.client)
        yield e


async def apply(env: Env, obj: Obj) -> tuple[int, str]:
    done = await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(obj, sort_keys=False))
    return done.returncode, done.stdout + done.stderr


def node_patch(manager: str, selector: str, time: str | None = None) -> Obj:
    patch: Obj = {
        "manager": manager,
        "trainingRuntimeSpec": {
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "spec": {"template": {"spec": {"nodeSelector": {"pool": selector}}}}
                            },
                        }
                    ]
                }
            }
        },
    }
    if time is not None:
        patch["time"] = time
    return patch


async def test_a_trainjob_naming_a_missing_runtime_is_refused(env: Env) -> None:
    ns = await env.namespace("tjw-missing")
    tj = trainjob("lost", ns, runtimeRef={"name": "nope", "kind": "TrainingRuntime"})
    rc, out = await apply(env, tj)
    assert rc != 0
    assert DENIED.format("trainjob") in out
    assert 'spec.runtimeRef: Invalid value: "object": trainingruntimes.trainer.kubeflow.org' in out
    assert "specified trainingRuntime must be created before the TrainJob is created" in out
    assert await get(env, TRAINJOBS, ns, "lost") is None


async def test_reserved_envs_and_unknown_patched_jobs_are_refused(env: Env) -> None:
    ns = await env.namespace("tjw-rules")
    tj = trainjob(
        "bad",
        ns,
        trainer={"env": [{"name": "PET_NODE_RANK", "value": "3"}]},
        runtimePatches=[
            {
                "manager": "acme.io/tool",
                "trainingRuntimeSpec": {
                    "template": {"spec": {"replicatedJobs": [{"name": "ghost"}]}}
                },
            }
        ],
    )
    rc, out = await apply(env, tj)
    assert rc != 0
    assert "spec.trainer.env: Invalid value" in out
    assert "invalid envs configured: [PET_NODE_RANK]" in out
    assert (
        "spec.runtimePatches: Invalid value" in out
        and "must not have replicated job that doesn't exist in the runtime job template" in out
    )
    assert await get(env, TRAINJOBS, ns, "bad") is None


async def test_a_bad_runtime_is_refused_unless_validation_is_disabled(env: Env) -> None:
    ns = await env.namespace("tjw-runtime")
    rt: Obj = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainingRuntime",
        "metadata": {"name": "two-trainers", "namespace": ns},
        "spec": {
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "replicas": 2,
                            "template": {
                                "metadata": {
                                    "labels": {
                                        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
                                    }
                                },
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "containers": [{"name": "node", "image": "busybox"}]
                                        }
                                    }
                                },
                            },
                        }
                    ]
                }
            }
        },
    }
    rc, out = await apply(env, rt)
    assert rc != 0
    assert DENIED.format("trainingruntime") in out
    assert (
        "spec.template.spec.replicatedJobs[0].replicas: Invalid value: 2: always must be 1" in out
    )
    assert await get(env, TRAINING_RUNTIMES, ns, "two-trainers") is None

    rt["metadata"]["labels"] = {"trainer.kubeflow.org/webhook-validation": "disabled"}
    rc, out = await apply(env, rt)
    assert rc == 0, out


async def test_a_deprecated_cluster_runtime_gets_a_warning(env: Env) -> None:
    rt: Obj = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": "tjw-old", "labels": {"trainer.kubeflow.org/support": "deprecated"}},
        "spec": {"template": {"spec": {"replicatedJobs": []}}},
    }
    rc, out = await apply(env, rt)
    assert rc == 0, out
    assert 'Warning: ClusterTrainingRuntime "tjw-old" is deprecated' in out


async def test_patch_times_are_kept_for_unchanged_patches_and_renewed_for_changed(env: Env) -> None:
    ns = await env.namespace("tjw-time")
    user_time = "2021-02-03T04:05:06Z"
    tj = trainjob(
        "timed",
        ns,
        suspend=True,
        runtimePatches=[
            node_patch("acme.io/kept", "a", time=user_time),
            node_patch("acme.io/changed", "a", time="2020-01-01T00:00:00Z"),
            node_patch("acme.io/stamped", "a"),
        ],
    )
    rc, out = await apply(env, tj)
    assert rc == 0, out
    stored = await get(env, TRAINJOBS, ns, "timed")
    assert stored is not None
    times = {p["manager"]: p.get("time") for p in stored["spec"]["runtimePatches"]}
    assert times["acme.io/kept"] == user_time  # a user's time is kept
    assert times["acme.io/changed"] == "2020-01-01T00:00:00Z"
    assert times["acme.io/stamped"]  # set by the webhook

    tj["spec"]["runtimePatches"][1] = node_patch(
        "acme.io/changed", "b", time="2020-01-01T00:00:00Z"
    )
    rc, out = await apply(env, tj)
    assert rc == 0, out
    updated = await get(env, TRAINJOBS, ns, "timed")
    assert updated is not None
    after = {p["manager"]: p.get("time") for p in updated["spec"]["runtimePatches"]}
    assert after["acme.io/kept"] == user_time
    assert after["acme.io/stamped"] == times["acme.io/stamped"]  # unchanged: its time stays
    assert after["acme.io/changed"] not in (None, "2020-01-01T00:00:00Z")  # changed: now


async def test_runtime_patches_change_only_while_suspended(env: Env) -> None:
    ns = await env.namespace("tjw-suspend")
    running = trainjob("running", ns, runtimePatches=[node_patch("acme.io/tool", "a")])
    rc, out = await apply(env, running)
    assert rc == 0, out
    running["spec"]["runtimePatches"] = [node_patch("acme.io/tool", "b")]
    rc, out = await apply(env, running)
    assert rc != 0
    assert DENIED.format("trainjob") in out
    assert (
        "spec.runtimePatches: Forbidden: RuntimePatches can only be modified when the TrainJob "
        "is suspended before or after the update"
    ) in out

    paused = trainjob("paused", ns, suspend=True, runtimePatches=[node_patch("acme.io/tool", "a")])
    rc, out = await apply(env, paused)
    assert rc == 0, out
    paused["spec"]["runtimePatches"] = [node_patch("acme.io/tool", "b")]
    rc, out = await apply(env, paused)
    assert rc == 0, out
    stored = await get(env, TRAINJOBS, ns, "paused")
    assert stored is not None
    selector = stored["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]["template"]["spec"]
    assert selector["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
        "nodeSelector"
    ] == {"pool": "b"}
