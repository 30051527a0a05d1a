"""TorchTune command synthesis (``reconcilers/trainer/torchtune.py`` and its wiring in
``jobset_build.py``), against Trainer v2.3.0's ``plugins/torch/torchtune_test.go`` tables and
``pkg/runtime/core/trainingruntime_test.go``'s TorchTune cases, built from the release's own
TorchTune runtimes (``reconcilers/trainer/runtimes/torchtune/``)."""

from __future__ import annotations

from typing import Any

import pytest

from kubetrain.reconcilers.trainer.jobset_build import JOB_COMPLETION_INDEX_FIELD_PATH, build_jobset
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes
from kubetrain.reconcilers.trainer.torchtune import (
    is_lora,
    is_qlora,
    model_from_runtime_name,
    recipe_and_config,
    runtime_overrides,
)

Obj = dict[str, Any]
LORA = ["model.lora_attn_modules=['q_proj']"]
QLORA = ["model.quantize_base=True"]
LLAMA_OVERRIDES = [
    "output_dir=/workspace/output",
    "tokenizer.path=/workspace/model/original/tokenizer.model",
    "checkpointer.checkpoint_dir=/workspace/model",
]
QWEN_OVERRIDES = [
    "output_dir=/workspace/output",
    "tokenizer.path=/workspace/model/vocab.json",
    "tokenizer.merges_file=/workspace/model/merges.txt",
    "checkpointer.checkpoint_dir=/workspace/model",
]


def runtime_spec(name: str) -> Obj:
    (found,) = [r for r in builtin_runtimes() if r["metadata"]["name"] == name]
    spec: Obj = found["spec"]
    return spec


def tune_job(runtime_name: str, name: str = "tt", **trainer: Any) -> Obj:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": "ns", "uid": "uid-1"},
        "spec": {
            "runtimeRef": {"name": runtime_name},
            "trainer": {"command": ["tune", "run"], **trainer},
        },
    }


def rjob(jobset: Obj, name: str) -> Obj:
    (found,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == name]
    return found


def container(jobset: Obj, job: str, name: str) -> Obj:
    (found,) = [
        c for c in rjob(jobset, job)["template"]["spec"]["template"]["spec"]["containers"]
        if c["name"] == name
    ]  # fmt: skip
    return found


# --- the tables of torchtune_test.go ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("torchtune-llama3.2-1b", "llama3_2/1B"),
        ("torchtune-llama3.2-3b", "llama3_2/3B"),
        ("torchtune-llama3.3-70b", "llama3_3/70B"),
        ("torchtune-qwen2.5-1.5b", "qwen2_5/1.5B"),
        ("torchtune-llama3.2", ""),
        ("torchtune-llama3.2-1b-extra", ""),
        ("", ""),
    ],
)
def test_model_from_runtime_name(name: str, model: str) -> None:
    assert model_from_runtime_name(name) == model


def test_lora_and_qlora_detection() -> None:
    assert is_lora(["batch_size=32", "model.lora_attn_modules=['q_proj','v_proj']"])
    assert not is_lora(["batch_size=32", "epochs=10"]) and not is_lora([])
    assert is_qlora(["model.quantize_base=True"])
    assert is_qlora(["model.quantize_base= true "])  # case and blanks, as strings.EqualFold+Trim
    assert not is_qlora(["model.quantize_base=False"])
    assert not is_qlora(["model.quantize_base=True", "model.use_dora=True"])  # DoRA wins
    assert is_qlora(["model.quantize_base=True", "model.use_dora=False"])
    assert not is_qlora(["batch_size=32"]) and not is_qlora([])
    assert not is_qlora(["model.quantize_base"])  # no "=": not a bool arg


@pytest.mark.parametrize(
    ("nodes", "nproc", "gpus", "args", "recipe", "suffix"),
    [
        (1, "auto", 1, [], "full_finetune_single_device", "_full_single_device"),
        (1, "auto", 1, LORA, "lora_finetune_single_device", "_lora_single_device"),
        (1, "auto", 1, QLORA, "lora_finetune_single_device", "_qlora_single_device"),
        (1, "auto", 4, [], "full_finetune_distributed", "_full"),
        (1, "auto", 4, LORA, "lora_finetune_distributed", "_lora"),
        (1, "auto", 4, QLORA, "lora_finetune_distributed", "_qlora"),
        (2, "auto", 8, [], "full_finetune_distributed", "_full_multinode"),
        (2, "auto", 8, LORA, "full_finetune_distributed", "_full_multinode"),  # LoRA dropped
        (1, "1", 4, [], "full_finetune_single_device", "_full_single_device"),
        (1, "4", 4, [], "full_finetune_distributed", "_full"),
        (2, "1", 1, [], "full_finetune_distributed", "_full_multinode"),
    ],
)
def test_recipe_and_config(
    nodes: int, nproc: str, gpus: int, args: list[str], recipe: str, suffix: str
) -> None:
    got = recipe_and_config(
        num_nodes=nodes,
        num_proc_per_node=nproc,
        gpus=gpus,
        args=args,
        runtime_name="torchtune-llama3.2-1b",
    )
    assert got == (recipe, "llama3_2/1B" + suffix)


def test_runtime_overrides_keep_only_the_immutable_configs_in_order() -> None:
    command = ["tune", "run", "--config", "x", "dataset.source=parquet", *QWEN_OVERRIDES]
    assert runtime_overrides([command]) == QWEN_OVERRIDES
    assert runtime_overrides([["output_dirs=/x", "tokenizer.path"]]) == ["tokenizer.path"]


# --- the JobSet built from the release's TorchTune runtimes -----------------------------------


@pytest.mark.parametrize(
    ("runtime_name", "config", "overrides", "model_uri"),
    [
        (
            "torchtune-llama3.2-1b",
            "llama3_2/1B_full",
            LLAMA_OVERRIDES,
            "hf://meta-llama/Llama-3.2-1B-Instruct",
        ),
        (
            "torchtune-llama3.2-3b",
            "llama3_2/3B_full",
            LLAMA_OVERRIDES,
            "hf://meta-llama/Llama-3.2-3B-Instruct",
        ),
        (
            "torchtune-qwen2.5-1.5b",
            "qwen2_5/1.5B_full",
            QWEN_OVERRIDES,
            "hf://Qwen/Qwen2.5-1.5B-Instruct",
        ),
    ],
)
def test_default_runtime_two_gpus_is_distributed_with_rendezvous(
    runtime_name: str, config: str, overrides: list[str], model_uri: str
) -> None:
    job = tune_job(runtime_name, args=["epochs=1", "batch_size=2"])
    jobset = build_jobset(job, runtime_spec(runtime_name))
    node = container(jobset, "node", "node")
    assert node["command"] == [
        "tune",
        "run",
        "--rdzv_endpoint=tt-node-0-0.tt:29500",
        "full_finetune_distributed",
        "--config",
        config,
        *overrides,
    ]
    assert node["args"] == ["epochs=1", "batch_size=2"]  # args stay args
    # PET_* but no PET_MASTER_*: the rendezvous is on the command line.
    assert node["env"] == [
        {"name": "PET_NNODES", "value": "1"},
        {"name": "PET_NPROC_PER_NODE", "value": "auto"},
        {
            "name": "PET_NODE_RANK",
            "valueFrom": {"fieldRef": {"fieldPath": JOB_COMPLETION_INDEX_FIELD_PATH}},
        },
    ]
    assert node["ports"] == [{"containerPort": 29500}]
    assert node["image"] == "ghcr.io/kubeflow/trainer/torchtune-trainer:v2.3.0"
    assert node["resources"] == {"limits": {"nvidia.com/gpu": 2}}
    # The runtime's initializers keep their STORAGE_URI; the JobSet keeps the claim policy and
    # the two dependencies.
    dataset = container(jobset, "dataset-initializer", "dataset-initializer")
    model = container(jobset, "model-initializer", "model-initializer")
    assert dataset["env"] == [{"name": "STORAGE_URI", "value": "hf://tatsu-lab/alpaca"}]
    assert model["env"] == [{"name": "STORAGE_URI", "value": model_uri}]
    assert rjob(jobset, "node")["dependsOn"] == [
        {"name": "dataset-initializer", "status": "Complete"},
        {"name": "model-initializer", "status": "Complete"},
    ]
    (claim,) = jobset["spec"]["volumeClaimPolicies"][0]["templates"]
    assert claim["metadata"]["name"] == "initializer"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    for name in ("dataset-initializer", "model-initializer", "node"):
        spec = rjob(jobset, name)
        assert (spec["replicas"], spec["template"]["spec"]["parallelism"]) == (1, 1)


def test_single_gpu_is_single_device_without_rendezvous() -> None:
    job = tune_job("torchtune-llama3.2-1b", resourcesPerNode={"limits": {"nvidia.com/gpu": "1"}})
    node = container(build_jobset(job, runtime_spec("torchtune-llama3.2-1b")), "node", "node")
    assert node["command"] == [
        "tune",
        "run",
        "full_finetune_single_device",
        "--config",
        "llama3_2/1B_full_single_device",
        *LLAMA_OVERRIDES,
    ]
    assert node["resources"] == {"limits": {"nvidia.com/gpu": "1"}}


def test_lora_args_pick_the_lora_recipe() -> None:
    args = ["model.apply_lora_to_mlp=True", "model.lora_attn_modules=[q_proj,k_proj,v_proj]"]
    job = tune_job("torchtune-llama3.2-1b", name="test-job", args=args)
    node = container(build_jobset(job, runtime_spec("torchtune-llama3.2-1b")), "node", "node")
    assert node["command"] == [
        "tune",
        "run",
        "--rdzv_endpoint=test-job-node-0-0.test-job:29500",
        "lora_finetune_distributed",
        "--config",
        "llama3_2/1B_lora",
        *LLAMA_OVERRIDES,
    ]
    assert node["args"] == args
    single = tune_job(
        "torchtune-llama3.2-1b", args=[*args, "model.quantize_base=True"], numProcPerNode=1
    )
    node = container(build_jobset(single, runtime_spec("torchtune-llama3.2-1b")), "node", "node")
    assert node["command"][2:5] == [
        "lora_finetune_single_device",
        "--config",
        "llama3_2/1B_qlora_single_device",
    ]
    assert {"name": "PET_NPROC_PER_NODE", "value": "1"} in node["env"]


def test_multi_node_is_multinode_with_rendezvous() -> None:
    job = tune_job("torchtune-llama3.2-1b", numNodes=2)
    jobset = build_jobset(job, runtime_spec("torchtune-llama3.2-1b"))
    node = container(jobset, "node", "node")
    assert node["command"][2:6] == [
        "--rdzv_endpoint=tt-node-0-0.tt:29500",
        "full_finetune_distributed",
        "--config",
        "llama3_2/1B_full_multinode",
    ]
    assert {"name": "PET_NNODES", "value": "2"} in node["env"]
    assert rjob(jobset, "node")["template"]["spec"]["parallelism"] == 2


def test_cpu_only_resolves_auto_to_the_cpu_count_first() -> None:
    # No GPU: "auto" becomes the CPU request (4) before the recipe is chosen, so 4 processes on
    # one node are distributed; with 1 CPU it is single-device and has no rendezvous.
    four = tune_job("torchtune-qwen2.5-1.5b", resourcesPerNode={"requests": {"cpu": "4"}})
    spec = runtime_spec("torchtune-qwen2.5-1.5b")
    node_pod = rjob(spec["template"], "node")["template"]["spec"]["template"]["spec"]
    node_pod["containers"][0]["resources"] = {}
    node = container(build_jobset(four, spec), "node", "node")
    assert node["command"][2:6] == [
        "--rdzv_endpoint=tt-node-0-0.tt:29500",
        "full_finetune_distributed",
        "--config",
        "qwen2_5/1.5B_full",
    ]
    one = tune_job("torchtune-qwen2.5-1.5b", resourcesPerNode={"requests": {"cpu": "1"}})
    node = container(build_jobset(one, spec), "node", "node")
    assert node["command"][2:5] == [
        "full_finetune_single_device",
        "--config",
        "qwen2_5/1.5B_full_single_device",
    ]


def test_initializer_storage_uris_from_the_trainjob_replace_the_runtime_ones() -> None:
    job = tune_job("torchtune-llama3.2-1b")
    job["spec"]["initializer"] = {
        "dataset": {"storageUri": "hf://tatsu-lab/alpaca/data"},
        "model": {
            "storageUri": "hf://meta-llama/Llama-3.2-1B-Instruct",
            "env": [{"name": "ACCESS_TOKEN", "value": "t"}],
        },
    }
    jobset = build_jobset(job, runtime_spec("torchtune-llama3.2-1b"))
    dataset = container(jobset, "dataset-initializer", "dataset-initializer")
    assert dataset["env"] == [{"name": "STORAGE_URI", "value": "hf://tatsu-lab/alpaca/data"}]
    model = container(jobset, "model-initializer", "model-initializer")
    assert model["env"] == [
        {"name": "STORAGE_URI", "value": "hf://meta-llama/Llama-3.2-1B-Instruct"},
        {"name": "ACCESS_TOKEN", "value": "t"},
    ]


def test_a_command_other_than_tune_run_is_plain_torch() -> None:
    job = tune_job("torchtune-llama3.2-1b")
    job["spec"]["trainer"]["command"] = ["tune", "run", "my_recipe"]
    node = container(build_jobset(job, runtime_spec("torchtune-llama3.2-1b")), "node", "node")
    assert node["command"] == ["tune", "run", "my_recipe"]
    names = [e["name"] for e in node["env"]]
    assert "PET_MASTER_ADDR" in names and "PET_MASTER_PORT" in names


def test_runtime_patches_reach_the_overrides_and_the_trainjob_is_not_changed() -> None:
    job = tune_job("torchtune-llama3.2-1b")
    job["spec"]["runtimePatches"] = [
        {
            "manager": "example.com/x",
            "trainingRuntimeSpec": {
                "template": {
                    "spec": {
                        "replicatedJobs": [
                            {
                                "name": "node",
                                "template": {
                                    "spec": {
                                        "template": {
                                            "spec": {
                                                "containers": [
                                                    {
                                                        "name": "node",
                                                        "command": [
                                                            "tune",
                                                            "run",
                                                            "output_dir=/out",
                                                        ],
                                                    }
                                                ]
                                            }
                                        }
                                    }
                                },
                            }
                        ]
                    }
                }
            },
        }
    ]
    before = repr(job)
    node = container(build_jobset(job, runtime_spec("torchtune-llama3.2-1b")), "node", "node")
    assert node["command"][-1:] == ["output_dir=/out"]
    assert repr(job) == before
    assert job["spec"]["trainer"]["command"] == ["tune", "run"]


def test_env_injection_targets_keep_the_master_env() -> None:
    spec = runtime_spec("torchtune-llama3.2-1b")
    spec["mlPolicy"]["torch"] = {
        "envInjection": {"targets": [{"jobName": "node", "containerNames": ["node"]}]}
    }
    node = container(build_jobset(tune_job("torchtune-llama3.2-1b"), spec), "node", "node")
    names = [e["name"] for e in node["env"]]
    assert names[-2:] == ["PET_MASTER_ADDR", "PET_MASTER_PORT"]
    assert node["command"][2] == "--rdzv_endpoint=tt-node-0-0.tt:29500"
