"""TorchTune TrainJobs end to end: a TrainJob on the built-in ``torchtune-llama3.2-1b`` and
``torchtune-qwen2.5-1.5b`` runtimes (``kubectl apply``), the JobSet the TrainJob controller
builds for it, field by field (the synthesized ``tune run`` command, env, the initializers'
``STORAGE_URI``, the claim policy and the two-item ``dependsOn``), and the TrainJob completing:
both initializers first, then the trainer on simulated nodes with GPUs (``nvidia.com/gpu: 2``).

On the embedded cluster (its ``cluster/jobset`` and Job controllers) and, under
``--apiserver=real``, on a real kube-apiserver with the real JobSet controller.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

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
    async for e in open_trainer_env(request, tmp_path_factory, nodes=2):
        yield e


def rjob(jobset: Obj, name: str) -> Obj:
    (found,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == name]
    return found


def container(jobset: Obj, job: str) -> Obj:
    (found,) = [
        c for c in rjob(jobset, job)["template"]["spec"]["template"]["spec"]["containers"]
        if c["name"] == job
    ]  # fmt: skip
    return found


async def wait_complete(env: Env, ns: str, name: str) -> Obj:
    async def complete() -> Obj | None:
        tj = await get(env, TRAINJOBS, ns, name)
        if tj is not None and condition(tj, "Failed"):
            raise AssertionError(f"TrainJob {name} failed: {tj['status']}")
        return tj if tj is not None and condition(tj, "Complete") else None

    done: Obj = await poll(complete, timeout=90, what=f"TrainJob {name} Complete")
    return done


async def test_llama_default_is_distributed_and_completes_after_both_initializers(
    env: Env,
) -> None:
    ns = await env.namespace("tt")
    job = trainjob(
        "llama",
        ns,
        runtimeRef={"name": "torchtune-llama3.2-1b"},
        initializer={
            "dataset": {"storageUri": "hf://tatsu-lab/alpaca/data"},
            "model": {"storageUri": "hf://meta-llama/Llama-3.2-1B-Instruct"},
        },
        trainer={"command": ["tune", "run"], "args": ["epochs=1", "batch_size=4"]},
    )
    out = await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))
    assert out.returncode == 0, out.stderr

    jobset = await poll(lambda: get(env, JOBSETS, ns, "llama"), timeout=30, what="the JobSet")
    node = container(jobset, "node")
    assert node["command"] == [
        "tune",
        "run",
        "--rdzv_endpoint=llama-node-0-0.llama:29500",
        "full_finetune_distributed",
        "--config",
        "llama3_2/1B_full",
        "output_dir=/workspace/output",
        "tokenizer.path=/workspace/model/original/tokenizer.model",
        "checkpointer.checkpoint_dir=/workspace/model",
    ]
    assert node["args"] == ["epochs=1", "batch_size=4"]
    assert node["image"] == "ghcr.io/kubeflow/trainer/torchtune-trainer:v2.3.0"
    assert node["env"] == [
        {"name": "PET_NNODES", "value": "1"},
        {"name": "PET_NPROC_PER_NODE", "value": "auto"},
        {"name": "PET_NODE_RANK", "valueFrom": RANK},
    ]
    assert node["ports"][0]["containerPort"] == 29500
    assert {k: str(v) for k, v in node["resources"]["limits"].items()} == {"nvidia.com/gpu": "2"}
    assert node["volumeMounts"] == [{"mountPath": "/workspace", "name": "initializer"}]
    assert container(jobset, "dataset-initializer")["env"] == [
        {"name": "STORAGE_URI", "value": "hf://tatsu-lab/alpaca/data"}
    ]
    assert container(jobset, "model-initializer")["env"] == [
        {"name": "STORAGE_URI", "value": "hf://meta-llama/Llama-3.2-1B-Instruct"}
    ]
    assert rjob(jobset, "node")["dependsOn"] == [
        {"name": "dataset-initializer", "status": "Complete"},
        {"name": "model-initializer", "status": "Complete"},
    ]
    (policy,) = jobset["spec"]["volumeClaimPolicies"]
    (claim,) = policy["templates"]
    assert claim["metadata"]["name"] == "initializer"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    for name in ("dataset-initializer", "model-initializer", "node"):
        spec = rjob(jobset, name)["template"]["spec"]
        assert (spec["parallelism"], spec["completions"]) == (1, 1)

    done = await wait_complete(env, ns, "llama")
    assert condition(done, "Complete")["reason"] == "AllJobsCompleted"
    statuses = {s["name"]: s for s in done["status"]["jobsStatus"]}
    assert {n: s["succeeded"] for n, s in statuses.items()} == {
        "dataset-initializer": 1,
        "model-initializer": 1,
        "node": 1,
    }
    pods = {p["metadata"]["name"]: p for p in await env.client.list_all(PODS, ns)}
    (trainer_pod,) = [p for n, p in pods.items() if n.startswith("llama-node-0-0")]
    assert trainer_pod["spec"]["containers"][0]["command"] == node["command"]
    assert trainer_pod["spec"]["nodeName"]  # placed on a node with room for 2 GPUs
    # dependsOn: the trainer pod started only after both initializers had finished.
    finished = []
    for prefix in ("llama-dataset-initializer-0-0", "llama-model-initializer-0-0"):
        (init_pod,) = [p for n, p in pods.items() if n.startswith(prefix)]
        terminated = init_pod["status"]["containerStatuses"][0]["state"]["terminated"]
        finished.append(terminated["finishedAt"])
    started = trainer_pod["metadata"]["creationTimestamp"]
    assert all(f <= started for f in finished), (finished, started)


async def test_qwen_lora_on_one_gpu_is_single_device_without_rendezvous(env: Env) -> None:
    ns = await env.namespace("tt-lora")
    job = trainjob(
        "qwen",
        ns,
        runtimeRef={"name": "torchtune-qwen2.5-1.5b"},
        trainer={
            "command": ["tune", "run"],
            "args": ["model.lora_attn_modules=[q_proj,v_proj]", "model.lora_rank=8"],
            "resourcesPerNode": {"limits": {"nvidia.com/gpu": "1"}},
        },
    )
    out = await run_kubectl(env, "apply", "-f", "-", stdin=yaml.safe_dump(job))
    assert out.returncode == 0, out.stderr
    jobset = await poll(lambda: get(env, JOBSETS, ns, "qwen"), timeout=30, what="the JobSet")
    node = container(jobset, "node")
    assert node["command"] == [
        "tune",
        "run",
        "lora_finetune_single_device",
        "--config",
        "qwen2_5/1.5B_lora_single_device",
        "output_dir=/workspace/output",
        "tokenizer.path=/workspace/model/vocab.json",
        "tokenizer.merges_file=/workspace/model/merges.txt",
        "checkpointer.checkpoint_dir=/workspace/model",
    ]
    assert {k: str(v) for k, v in node["resources"]["limits"].items()} == {"nvidia.com/gpu": "1"}
    assert container(jobset, "model-initializer")["env"] == [
        {"name": "STORAGE_URI", "value": "hf://Qwen/Qwen2.5-1.5B-Instruct"}
    ]
    await wait_complete(env, ns, "qwen")
