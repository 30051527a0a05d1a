"""The ``kubeflow`` SDK's ``BuiltinTrainer`` (0.5.0, ``kubeflow.trainer``) unchanged against
kubetrain: ``TrainerClient.train(runtime=<torchtune runtime>,
trainer=BuiltinTrainer(config=TorchTuneConfig(...)))`` sends only ``command: [tune, run]`` and
``key=value`` args and leaves the recipe to the controller; this checks that the JobSet gets the
command Trainer v2.3.0 would synthesize for what the SDK sent (LoRA on one GPU: single-device
LoRA), that the job completes through both initializers, and that the SDK's own view (steps
``dataset-initializer``, ``model-initializer``, ``node-0``; logs; delete) works.

The SDK is the sync ``kubernetes`` client, so it runs in a thread beside the cluster (as
``test_trainer_sdk.py``): the embedded one, and in the conformance tier a real kube-apiserver with
the real JobSet controller, where only the logs are not read (the simulated kubelets keep them in
the embedded API server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from jobkit_e2e import Env, poll
from trainjob_e2e import open_trainer_env

from kubetrain.informers.transport import ApiStatusError
from kubetrain.reconcilers.trainer.resources import JOBSETS, TRAINJOBS

trainer = pytest.importorskip("kubeflow.trainer")

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.http_api]

RUNTIME = "torchtune-llama3.2-1b"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Env]:
    async for e in open_trainer_env(request, tmp_path_factory, nodes=2):
        yield e


def sdk_session(kubeconfig: str, checkpoint: Any, read_logs: bool) -> dict[str, Any]:
    """A user's fine-tuning script; ``checkpoint(name)`` lets the test read the cluster before
    the SDK deletes the job."""
    from kubeflow.common.types import KubernetesBackendConfig
    from kubeflow.trainer import (
        BuiltinTrainer,
        HuggingFaceDatasetInitializer,
        HuggingFaceModelInitializer,
        Initializer,
        LoraConfig,
        TorchTuneConfig,
        TrainerClient,
    )

    client = TrainerClient(KubernetesBackendConfig(config_file=kubeconfig, namespace="default"))
    runtime = client.get_runtime(RUNTIME)
    seen: dict[str, Any] = {
        "trainer_type": runtime.trainer.trainer_type.name,
        "command": list(runtime.trainer.command),
    }
    name = client.train(
        runtime=runtime,
        initializer=Initializer(
            dataset=HuggingFaceDatasetInitializer(storage_uri="hf://tatsu-lab/alpaca/data"),
            model=HuggingFaceModelInitializer(storage_uri="hf://meta-llama/Llama-3.2-1B-Instruct"),
        ),
        trainer=BuiltinTrainer(
            config=TorchTuneConfig(
                epochs=1,
                batch_size=2,
                peft_config=LoraConfig(lora_rank=8, lora_attn_modules=["q_proj", "v_proj"]),
                resources_per_node={"gpu": 1},
            )
        ),
    )
    seen["name"] = name
    job = client.wait_for_job_status(name, status={"Complete"}, timeout=90, polling_interval=1)
    seen["status"] = job.status
    seen["steps"] = sorted((s.name, s.status) for s in job.steps)
    if read_logs:  # the simulated kubelets keep pod logs in the embedded API server only
        seen["logs"] = list(client.get_job_logs(name))
    seen["cluster"] = checkpoint(name)
    client.delete_job(name)
    return seen


async def test_builtin_trainer_torchtune_lora_runs_and_completes(env: Env) -> None:
    loop = asyncio.get_running_loop()

    async def read(name: str) -> dict[str, Any]:
        return {
            "trainjob": await env.client.get(TRAINJOBS, "default", name),
            "jobset": await env.client.get(JOBSETS, "default", name),
        }

    def checkpoint(name: str) -> dict[str, Any]:
        return asyncio.run_coroutine_threadsafe(read(name), loop).result(timeout=30)

    seen = await asyncio.to_thread(
        sdk_session, env.cluster.kubeconfig_path, checkpoint, not env.real
    )
    assert seen["trainer_type"] == "BUILTIN_TRAINER"
    assert seen["command"] == ["tune", "run"]
    assert seen["status"] == "Complete"
    assert seen["steps"] == [
        ("dataset-initializer", "Succeeded"),
        ("model-initializer", "Succeeded"),
        ("node-0", "Succeeded"),
    ]
    if not env.real:
        assert seen["logs"] and all(isinstance(line, str) for line in seen["logs"])

    # What the SDK sent, and what the controller made of it.
    sent = seen["cluster"]["trainjob"]["spec"]["trainer"]
    assert sent["command"] == ["tune", "run"]
    assert sent["args"] == [
        "batch_size=2",
        "epochs=1",
        "dataset.data_dir=/workspace/dataset/data",
        "model.lora_rank=8",
        "model.lora_attn_modules=[q_proj,v_proj]",
    ]
    jobset = seen["cluster"]["jobset"]
    (node_job,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == "node"]
    (node,) = node_job["template"]["spec"]["template"]["spec"]["containers"]
    assert node["command"] == [
        "tune",
        "run",
        "lora_finetune_single_device",
        "--config",
        "llama3_2/1B_lora_single_device",
        "output_dir=/workspace/output",
        "tokenizer.path=/workspace/model/original/tokenizer.model",
        "checkpointer.checkpoint_dir=/workspace/model",
    ]
    assert node["args"] == sent["args"]
    # The SDK sends the quantity as the number 1.0; only its value is kubetrain's business.
    assert {k: Decimal(str(v)) for k, v in node["resources"]["limits"].items()} == {
        "nvidia.com/gpu": Decimal(1)
    }
    envs = {e["name"]: e.get("value") for e in node["env"]}
    assert envs["PET_NNODES"] == "1" and "PET_MASTER_ADDR" not in envs
    storage = {}
    for rjob in jobset["spec"]["replicatedJobs"]:
        for c in rjob["template"]["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env") or []:
                if e["name"] == "STORAGE_URI":
                    storage[c["name"]] = e["value"]
    assert storage == {
        "dataset-initializer": "hf://tatsu-lab/alpaca/data",
        "model-initializer": "hf://meta-llama/Llama-3.2-1B-Instruct",
    }

    async def gone() -> bool:
        try:
            await env.client.get(TRAINJOBS, "default", seen["name"])
        except ApiStatusError as e:
            return e.is_not_found
        return False

    await poll(gone, timeout=30, what="the TrainJob deleted by the SDK")
