"""The ``tune run`` command Trainer v2.3.0 synthesizes for a TorchTune (LLM fine-tuning) TrainJob.

Why a module of its own: the TorchTune runtimes (``torchtune-llama3.2-1b``, ``-3b``,
``torchtune-qwen2.5-1.5b``; Go also knows ``llama3.3-70b``, which v2.3.0 does not ship) are torch
runtimes whose trainer is started by a command Trainer *writes*, not by the one the user or the
runtime gave. The Kubeflow SDK's ``BuiltinTrainer(TorchTuneConfig(...))`` sends only
``command: [tune, run]`` and ``key=value`` overrides as ``args``, and relies on the controller
to pick the recipe and config file. Getting that choice wrong starts the wrong recipe on real
GPUs, so the decision table lives here, pure, next to tests that pin each row.

Ported from ``pkg/runtime/framework/plugins/torch/{torch,torchtune}.go`` (the Torch plugin's
EnforceMLPolicy, which mutates ``trainJob.spec.trainer.command`` before the JobSet is built).
When the TrainJob's ``trainer.command`` is exactly ``["tune", "run"]`` the node container's
command becomes::

    tune run [--rdzv_endpoint=<tj>-node-0-0.<tj>:29500] <recipe> --config <model><suffix> <overrides>

- ``--rdzv_endpoint`` only for multi-node or multi-device training: ``numNodes > 1``, or an
  explicit ``numProcPerNode > 1``, or ``numProcPerNode: auto`` with more than one GPU;
- recipe and config suffix (``getRecipeAndConfig``): one node and one device (``numProcPerNode``
  1, or one GPU) is single-device: QLoRA (``model.quantize_base=True`` without
  ``model.use_dora=True``) -> ``lora_finetune_single_device``/``_qlora_single_device``, LoRA (an
  arg containing ``model.lora_attn_modules``) -> ``lora_finetune_single_device``/
  ``_lora_single_device``, else ``full_finetune_single_device``/``_full_single_device``. One
  node otherwise: QLoRA -> ``lora_finetune_distributed``/``_qlora``, LoRA ->
  ``lora_finetune_distributed``/``_lora``, else ``full_finetune_distributed``/``_full``. More
  than one node: ``full_finetune_distributed``/``_full_multinode`` (LoRA args are dropped
  silently; Trainer's webhook rejects that combination);
- model: from the runtime's *name* ``torchtune-<model>-<size>``: ``llama3.2`` -> ``llama3_2``,
  ``1b`` -> ``1B``, giving ``llama3_2/1B``; a name of other than three ``-`` fields gives ``""``
  (the config is then the bare suffix, as in Go);
- overrides: the entries of the runtime's trainer ``node`` container command whose key (before
  ``=``) is one of ``output_dir``, ``tokenizer.path``, ``tokenizer.merges_file``,
  ``checkpointer.checkpoint_dir``, in order. The runtime's other command entries (its dataset
  settings, its own recipe) are dropped, as Go drops them; the TrainJob's ``args`` stay args.

``numProcPerNode`` arrives after the Torch plugin resolved ``auto`` without a GPU to the CPU
count, so ``"auto"`` here always means "a GPU decides".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "IMMUTABLE_CONFIGS",
    "LLAMA3_2_1B",
    "LLAMA3_2_3B",
    "LLAMA3_3_70B",
    "QWEN2_5_1_5B",
    "RDZV_ENDPOINT_ARG",
    "SUFFIX_QLORA_DISTRIBUTED",
    "SUFFIX_QLORA_SINGLE_DEVICE",
    "SUPPORTED_MODELS",
    "TORCHTUNE_ENTRYPOINT",
    "is_lora",
    "is_qlora",
    "model_from_runtime_name",
    "recipe_and_config",
    "runtime_overrides",
    "torchtune_command",
]

TORCHTUNE_ENTRYPOINT: tuple[str, str] = ("tune", "run")
RDZV_ENDPOINT_ARG = "--rdzv_endpoint"
CONFIG_ARG = "--config"

FULL_SINGLE_DEVICE = "full_finetune_single_device"
FULL_DISTRIBUTED = "full_finetune_distributed"
LORA_SINGLE_DEVICE = "lora_finetune_single_device"
LORA_DISTRIBUTED = "lora_finetune_distributed"

SUFFIX_FULL_SINGLE_DEVICE = "_full_single_device"
SUFFIX_FULL_MULTI_DEVICES = "_full"
SUFFIX_FULL_MULTI_NODES = "_full_multinode"
SUFFIX_LORA_SINGLE_DEVICE = "_lora_single_device"
SUFFIX_QLORA_SINGLE_DEVICE = "_qlora_single_device"
SUFFIX_LORA_DISTRIBUTED = "_lora"
SUFFIX_QLORA_DISTRIBUTED = "_qlora"

LORA_ATTN_MODULES = "model.lora_attn_modules"
QUANTIZE_BASE = "model.quantize_base"
USE_DORA = "model.use_dora"

#: ``constants.TorchTuneImmutableConfigs``: what the runtime owns (its paths under /workspace).
IMMUTABLE_CONFIGS = frozenset(
    {"output_dir", "tokenizer.path", "tokenizer.merges_file", "checkpointer.checkpoint_dir"}
)
#: ``constants.TorchTuneSupportedPretrainedModels`` (the validating webhook's list; the build
#: itself accepts any name).
LLAMA3_2_1B, LLAMA3_2_3B = "llama3_2/1B", "llama3_2/3B"
LLAMA3_3_70B, QWEN2_5_1_5B = "llama3_3/70B", "qwen2_5/1.5B"
SUPPORTED_MODELS = frozenset({LLAMA3_2_1B, LLAMA3_2_3B, LLAMA3_3_70B, QWEN2_5_1_5B})


def model_from_runtime_name(runtime_name: str) -> str:
    """``getModelFromRuntimeRef``: ``torchtune-llama3.2-1b`` -> ``llama3_2/1B``; ``""`` unless
    the name has exactly three ``-``-separated fields."""
    fields = runtime_name.split("-")
    if len(fields) != 3:
        return ""
    return f"{fields[1].replace('.', '_')}/{fields[2].upper()}"


def is_lora(args: Iterable[str]) -> bool:
    """``isLoraConfigEnabled``: some arg mentions ``model.lora_attn_modules`` (anywhere)."""
    return any(LORA_ATTN_MODULES in arg for arg in args)


def _bool_arg_enabled(args: Iterable[str], item: str) -> bool:
    """``isBoolArgEnabled``: a ``key=value`` arg whose key contains ``item`` and whose value is
    ``true`` in any case, blanks trimmed."""
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and item in key and value.strip().lower() == "true":
            return True
    return False


def is_qlora(args: Iterable[str]) -> bool:
    """``isUseQLoraFinetune``: ``model.quantize_base=True`` unless ``model.use_dora=True``."""
    args = list(args)
    return not _bool_arg_enabled(args, USE_DORA) and _bool_arg_enabled(args, QUANTIZE_BASE)


def recipe_and_config(
    *, num_nodes: int, num_proc_per_node: str, gpus: int, args: Sequence[str], runtime_name: str
) -> tuple[str, str]:
    """``getRecipeAndConfig``: the recipe and the config file name (see the module docstring).
    ``num_proc_per_node`` is ``"auto"`` or a decimal integer."""
    one_device = num_proc_per_node == "1" or gpus == 1
    recipe, suffix = FULL_DISTRIBUTED, SUFFIX_FULL_MULTI_DEVICES
    if num_nodes == 1 and one_device:
        if is_qlora(args):
            recipe, suffix = LORA_SINGLE_DEVICE, SUFFIX_QLORA_SINGLE_DEVICE
        elif is_lora(args):
            recipe, suffix = LORA_SINGLE_DEVICE, SUFFIX_LORA_SINGLE_DEVICE
        else:
            recipe, suffix = FULL_SINGLE_DEVICE, SUFFIX_FULL_SINGLE_DEVICE
    elif num_nodes == 1 and is_qlora(args):
        recipe, suffix = LORA_DISTRIBUTED, SUFFIX_QLORA_DISTRIBUTED
    elif num_nodes == 1 and is_lora(args):
        recipe, suffix = LORA_DISTRIBUTED, SUFFIX_LORA_DISTRIBUTED
    elif num_nodes > 1:
        suffix = SUFFIX_FULL_MULTI_NODES
    return recipe, f"{model_from_runtime_name(runtime_name)}{suffix}"


def runtime_overrides(runtime_commands: Iterable[Sequence[str]]) -> list[str]:
    """``extractOverridesFromRuntime``: the entries of each given command (the runtime's trainer
    ``node`` containers, in order) whose key before ``=`` is an ``IMMUTABLE_CONFIGS`` one."""
    return [
        entry
        for command in runtime_commands
        for entry in command
        if entry.split("=", 1)[0] in IMMUTABLE_CONFIGS
    ]


def needs_rendezvous(*, num_nodes: int, num_proc_per_node: str, gpus: int) -> bool:
    """Multi-node or multi-device: ``tune run`` then gets ``--rdzv_endpoint``."""
    if num_nodes > 1:
        return True
    if num_proc_per_node == "auto":
        return gpus > 1
    return int(num_proc_per_node) > 1


def torchtune_command(
    *,
    entrypoint: Sequence[str],
    trainjob_name: str,
    runtime_name: str,
    num_nodes: int,
    num_proc_per_node: str,
    gpus: int,
    args: Sequence[str],
    runtime_commands: Iterable[Sequence[str]],
    port: int,
) -> list[str]:
    """The trainer container's command: ``entrypoint`` (the TrainJob's ``tune run``) plus what
    Trainer appends (see the module docstring)."""
    command = list(entrypoint)
    if needs_rendezvous(num_nodes=num_nodes, num_proc_per_node=num_proc_per_node, gpus=gpus):
        master = f"{trainjob_name}-node-0-0.{trainjob_name}"
        command.append(f"{RDZV_ENDPOINT_ARG}={master}:{port}")
    recipe, config = recipe_and_config(
        num_nodes=num_nodes,
        num_proc_per_node=num_proc_per_node,
        gpus=gpus,
        args=args,
        runtime_name=runtime_name,
    )
    command += [recipe, CONFIG_ARG, config]
    command += runtime_overrides(runtime_commands)
    return command
