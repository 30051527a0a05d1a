"""The built-in runtimes the other TrainJob tests do not run end to end: ``jax-distributed``,
``xgboost-distributed`` and ``torchtune-llama3.2-3b``, each ``kubectl apply``'d as a user would,
their JobSet checked field by field against Trainer v2.3.0's plugins (reference section 1.4:
``JAX_*``, ``DMLC_*``, the torchtune command) and run to ``Complete`` with ``jobsStatus``. On the
embedded cluster and, under ``--apiserver=real``, beside the real JobSet controller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import yaml
from jobkit_e2e import Env, poll
from trainjob_e2e import Obj, condition, get, open_trainer_env, run_kubectl, trainjob

from kubetrain.informers.resource import PODS
from kubetrain.reconcilers.trainer.resources import JOBSETS, TRAINJOBS

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

RANK = {
    "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory):
        yield e


def node_container(jobset: Obj) -> Obj:
    (rjob,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == "node"]
    pod_spec = rjob["template"]["spec"]["template"]["spec"]
    return next(c for c in pod_spec["containers"] if c["name"] == "node")


async def apply_and_complete(env: Env, job: Obj) -> tuple[Obj, Obj]:
    """``kubectl apply`` the TrainJob; its JobSet as first built and the TrainJob once Complete."""
    ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
    out = await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))
    assert out.returncode == 0, out.stderr
    jobset = await poll(lambda: get(env, JOBSETS, ns, name), timeout=30, what="the JobSet")

    async def complete() -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, name)
        return tj if tj is not None and condition(tj, "Complete") else None

    done = await poll(complete, timeout=90, what=f"TrainJob {name} Complete")
    return jobset, done


@pytest.mark.parametrize(
    ("runtime", "expected_env"),
    [
        pytest.param(
            "jax-distributed",
            [
                {"name": "JAX_NUM_PROCESSES", "value": "3"},
                {"name": "JAX_PROCESS_ID", "valueFrom": RANK},
                {"name": "JAX_COORDINATOR_ADDRESS", "value": "tj-node-0-0.tj:29500"},
            ],
            id="jax",
        ),
        pytest.param(
            "xgboost-distributed",
            [
                {"name": "LEARNING_RATE", "value": "0.1"},
                {"name": "DMLC_TRACKER_URI", "value": "tj-node-0-0.tj"},
                {"name": "DMLC_TRACKER_PORT", "value": "29500"},
                {"name": "DMLC_TASK_ID", "valueFrom": RANK},
                {"name": "DMLC_NUM_WORKER", "value": "3"},
            ],
            id="xgboost",
        ),
    ],
)
async def test_a_runtime_builds_its_env_and_completes(
    env: Env, runtime: str, expected_env: list[dict[str, Any]]
) -> None:
    ns = await env.namespace(runtime.split("-")[0])
    trainer: Obj = {"numNodes": 3, "command": ["python", "train.py"]}
    if runtime == "xgboost-distributed":
        trainer["env"] = [{"name": "LEARNING_RATE", "value": "0.1"}]
    jobset, done = await apply_and_complete(
        env, trainjob("tj", ns, runtimeRef={"name": runtime}, trainer=trainer)
    )
    node = node_container(jobset)
    # JAX's plugin does not copy the TrainJob's env (Trainer's JAX plugin only sets JAX_*)
    assert node["env"] == expected_env
    assert node["command"] == ["python", "train.py"]
    assert [p["containerPort"] for p in node["ports"]] == [29500]
    (rjob,) = jobset["spec"]["replicatedJobs"]
    assert (rjob["template"]["spec"]["parallelism"], rjob["template"]["spec"]["completions"]) == (
        3,
        3,
    )
    assert done["status"]["phase"] == "Complete"
    (node_status,) = done["status"]["jobsStatus"]
    assert (node_status["name"], node_status["succeeded"], node_status["failed"]) == ("node", 1, 0)
    pods = [
        p for p in await env.client.list_all(PODS, ns) if p["metadata"]["name"].startswith("tj-")
    ]
    assert sorted(p["spec"]["hostname"] for p in pods) == [
        "tj-node-0-0",
        "tj-node-0-1",
        "tj-node-0-2",
    ]
    assert {p["spec"]["subdomain"] for p in pods} == {"tj"}


async def test_the_llama_3b_runtime_synthesizes_its_tune_command(env: Env) -> None:
    ns = await env.namespace("tt3b")
    job = trainjob(
        "llama3b",
        ns,
        runtimeRef={"name": "torchtune-llama3.2-3b"},
        trainer={"command": ["tune", "run"]},
    )
    jobset, done = await apply_and_complete(env, job)
    node = node_container(jobset)
    assert node["command"] == [
        "tune",
        "run",
        "--rdzv_endpoint=llama3b-node-0-0.llama3b:29500",
        "full_finetune_distributed",
        "--config",
        "llama3_2/3B_full",
        "output_dir=/workspace/output",
        "tokenizer.path=/workspace/model/original/tokenizer.model",
        "checkpointer.checkpoint_dir=/workspace/model",
    ]
    model_init = next(
        c
        for r in jobset["spec"]["replicatedJobs"]
        if r["name"] == "model-initializer"
        for c in r["template"]["spec"]["template"]["spec"]["containers"]
    )
    assert model_init["env"] == [
        {"name": "STORAGE_URI", "value": "hf://meta-llama/Llama-3.2-3B-Instruct"}
    ]
    assert {s["name"]: s["succeeded"] for s in done["status"]["jobsStatus"]} == {
        "dataset-initializer": 1,
        "model-initializer": 1,
        "node": 1,
    }
