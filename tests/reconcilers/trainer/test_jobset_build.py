"""``reconcilers/trainer/jobset_build.py``: the JobSet Trainer v2.3.0 builds for a TrainJob, checked
field by field against ``../shared/reference/trainer-v2.md`` §1.3-1.4 and the Go tests
(``pkg/runtime/core/trainingruntime_test.go``, ``plugins/{torch,jax,xgboost,jobset}/*_test.go``),
from the release's own built-in runtimes (``reconcilers/trainer/runtimes/``); and the strategic
merge helper against outputs of apimachinery v0.35.3's ``StrategicMergePatch``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetrain.base.jsoncopy import json_copy
from kubetrain.reconcilers.trainer.jobset_build import (
    JOB_COMPLETION_INDEX_FIELD_PATH,
    BuildError,
    RuntimeRef,
    UnsupportedRuntime,
    build_jobset,
    ml_policy_name,
    runtime_key,
    runtime_registry_key,
    should_apply_jobset,
)
from kubetrain.reconcilers.trainer.strategic_merge import (
    JOBSET_SPEC,
    PatchMeta,
    StrategicMergeError,
    strategic_merge,
    typed_patch,
)

RUNTIMES = Path(__file__).resolve().parents[3] / "reconcilers" / "trainer" / "runtimes"
ANCESTOR = "trainer.kubeflow.org/trainjob-ancestor-step"
RANK_REF = {"fieldRef": {"fieldPath": JOB_COMPLETION_INDEX_FIELD_PATH}}


def runtime(file: str) -> dict[str, Any]:
    """A built-in ClusterTrainingRuntime as the release ships it."""
    with (RUNTIMES / file).open(encoding="utf-8") as fh:
        doc: dict[str, Any] = yaml.safe_load(fh)
    return doc


def trainjob(runtime_name: str, **trainer: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"runtimeRef": {"name": runtime_name}}
    if trainer:
        spec["trainer"] = trainer
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "tj", "namespace": "team-a", "uid": "uid-1"},
        "spec": spec,
    }


RESOURCES = {"limits": {"cpu": "4", "memory": "8Gi"}, "requests": {"cpu": "3", "memory": "8Gi"}}
GPU_RESOURCES = {"limits": {"nvidia.com/gpu": "4"}}


def two_nodes(runtime_name: str, resources: dict[str, Any] = RESOURCES) -> dict[str, Any]:
    return trainjob(
        runtime_name,
        image="example.com/train:1",
        command=["python", "train.py"],
        args=["--epochs", "3"],
        env=[{"name": "LR", "value": "0.1"}],
        numNodes=2,
        resourcesPerNode=resources,
    )


def only_job(jobset: dict[str, Any]) -> dict[str, Any]:
    (rjob,) = jobset["spec"]["replicatedJobs"]
    assert isinstance(rjob, dict)
    return rjob


def container(rjob: dict[str, Any], name: str = "node", *, init: bool = False) -> dict[str, Any]:
    pod = rjob["template"]["spec"]["template"]["spec"]
    (found,) = [c for c in pod["initContainers" if init else "containers"] if c["name"] == name]
    assert isinstance(found, dict)
    return found


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


# --- the built-in runtimes ---------------------------------------------------------------------


def test_torch_distributed_jobset_field_by_field() -> None:
    tj = two_nodes("torch-distributed")
    tj["spec"]["suspend"] = True
    jobset = build_jobset(tj, runtime("torch_distributed.yaml")["spec"])

    assert jobset["apiVersion"] == "jobset.x-k8s.io/v1alpha2"
    assert jobset["kind"] == "JobSet"
    assert jobset["metadata"] == {
        "name": "tj",
        "namespace": "team-a",
        "ownerReferences": [
            {
                "apiVersion": "trainer.kubeflow.org/v1alpha1",
                "kind": "TrainJob",
                "name": "tj",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    assert jobset["spec"]["suspend"] is True
    rjob = only_job(jobset)
    assert rjob["name"] == "node"
    assert rjob["replicas"] == 1
    assert rjob["template"]["metadata"] == {"labels": {ANCESTOR: "trainer"}}
    assert rjob["template"]["spec"]["parallelism"] == 2
    assert rjob["template"]["spec"]["completions"] == 2
    node = container(rjob)
    assert node["image"] == "example.com/train:1"
    assert node["command"] == ["python", "train.py"]
    assert node["args"] == ["--epochs", "3"]
    assert node["resources"] == RESOURCES
    assert node["ports"] == [{"containerPort": 29500}]
    # The TrainJob's env first (the torch plugin upserts it before PET_*), in Go's order.
    assert node["env"] == [
        {"name": "LR", "value": "0.1"},
        {"name": "PET_NNODES", "value": "2"},
        {"name": "PET_NPROC_PER_NODE", "value": "3"},  # auto, no GPU: the CPU request
        {"name": "PET_NODE_RANK", "valueFrom": RANK_REF},
        {"name": "PET_MASTER_ADDR", "value": "tj-node-0-0.tj"},
        {"name": "PET_MASTER_PORT", "value": "29500"},
    ]


def test_jax_distributed_jobset() -> None:
    jobset = build_jobset(two_nodes("jax-distributed"), runtime("jax_distributed.yaml")["spec"])
    rjob = only_job(jobset)
    assert rjob["replicas"] == 1
    assert (rjob["template"]["spec"]["parallelism"], rjob["template"]["spec"]["completions"]) == (
        2,
        2,
    )
    node = container(rjob)
    assert node["image"] == "example.com/train:1"
    assert node["resources"] == RESOURCES
    assert node["ports"] == [{"containerPort": 29500}]
    # The JAX plugin does not add the TrainJob's env; the JobSet builder appends it afterwards.
    assert node["env"] == [
        {"name": "JAX_NUM_PROCESSES", "value": "2"},
        {"name": "JAX_PROCESS_ID", "valueFrom": RANK_REF},
        {"name": "JAX_COORDINATOR_ADDRESS", "value": "tj-node-0-0.tj:29500"},
        {"name": "LR", "value": "0.1"},
    ]
    assert "suspend" not in jobset["spec"]
    assert jobset["metadata"]["ownerReferences"][0]["controller"] is True


def test_xgboost_distributed_jobset_cpu_and_gpu() -> None:
    spec = runtime("xgboost_distributed.yaml")["spec"]
    node = container(only_job(build_jobset(two_nodes("xgboost-distributed"), spec)))
    assert node["image"] == "example.com/train:1"
    assert node["ports"] == [{"containerPort": 29500}]
    assert node["env"] == [
        {"name": "LR", "value": "0.1"},
        {"name": "DMLC_TRACKER_URI", "value": "tj-node-0-0.tj"},
        {"name": "DMLC_TRACKER_PORT", "value": "29500"},
        {"name": "DMLC_TASK_ID", "valueFrom": RANK_REF},
        {"name": "DMLC_NUM_WORKER", "value": "2"},  # CPU: one worker per node
    ]
    gpu = build_jobset(two_nodes("xgboost-distributed", GPU_RESOURCES), spec)
    rjob = only_job(gpu)
    assert rjob["template"]["spec"]["parallelism"] == 2
    assert env_of(container(rjob))["DMLC_NUM_WORKER"] == "8"  # 2 nodes x 4 GPUs


def test_runtime_numnodes_when_trainjob_has_none() -> None:
    spec = json_copy(runtime("torch_distributed.yaml")["spec"])
    spec["mlPolicy"]["numNodes"] = 3
    rjob = only_job(build_jobset(trainjob("torch-distributed", image="x"), spec))
    assert rjob["template"]["spec"]["parallelism"] == 3
    assert env_of(container(rjob))["PET_NNODES"] == "3"
    assert "resources" not in container(rjob)


# --- the torch `auto` rule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "nproc"),
    [
        ({"limits": {"nvidia.com/gpu": "2"}}, "auto"),  # a GPU: torchrun decides
        ({"requests": {"example.com/gpu": "1"}, "limits": {"cpu": "8"}}, "auto"),
        ({"limits": {"cpu": "4"}}, "4"),
        ({"requests": {"cpu": "2"}, "limits": {"cpu": "6"}}, "2"),  # the request wins
        ({"requests": {"cpu": "0"}, "limits": {"cpu": "5"}}, "5"),
        ({"limits": {"cpu": "1500m"}}, "2"),  # Quantity.Value() rounds up
        ({"limits": {"cpu": "250m"}}, "1"),
        ({"limits": {"memory": "1Gi"}}, "1"),  # no CPU at all: at least 1
    ],
)
def test_torch_auto_nproc(resources: dict[str, Any], nproc: str) -> None:
    tj = trainjob("torch-distributed", resourcesPerNode=resources)
    node = container(only_job(build_jobset(tj, runtime("torch_distributed.yaml")["spec"])))
    assert env_of(node)["PET_NPROC_PER_NODE"] == nproc


def test_torch_explicit_nproc_and_runtime_resources() -> None:
    spec = json_copy(runtime("torch_distributed.yaml")["spec"])
    pod = spec["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
    pod["containers"][0]["resources"] = {"requests": {"cpu": "7"}}
    explicit = trainjob("torch-distributed", numProcPerNode=3, resourcesPerNode=GPU_RESOURCES)
    assert env_of(container(only_job(build_jobset(explicit, spec))))["PET_NPROC_PER_NODE"] == "3"
    # No resourcesPerNode: the runtime's container `node` resources decide.
    node = container(only_job(build_jobset(trainjob("torch-distributed", image="x"), spec)))
    assert env_of(node)["PET_NPROC_PER_NODE"] == "7"
    # resourcesPerNode merges into the runtime's resources per resource name.
    merged = build_jobset(trainjob("torch-distributed", resourcesPerNode=GPU_RESOURCES), spec)
    assert container(only_job(merged))["resources"] == {
        "limits": {"nvidia.com/gpu": "4"},
        "requests": {"cpu": "7"},
    }


def test_no_trainer_section_means_no_trainer_env() -> None:
    """Go looks up the trainer container only when ``spec.trainer`` is set."""
    jobset = build_jobset(trainjob("torch-distributed"), runtime("torch_distributed.yaml")["spec"])
    node = container(only_job(jobset))
    assert "env" not in node and "ports" not in node
    assert only_job(jobset)["template"]["spec"]["parallelism"] == 1


# --- runtimePatches, initializers, envInjection ------------------------------------------------


def rich_runtime() -> dict[str, Any]:
    """Initializers, a trainer with a sidecar, a torch policy injecting into an init container."""

    def job(
        name: str, ancestor: str, containers: list[dict[str, Any]], **pod: Any
    ) -> dict[str, Any]:
        return {
            "name": name,
            "replicas": 1,
            "template": {
                "metadata": {"labels": {ANCESTOR: ancestor}},
                "spec": {"template": {"spec": {"containers": containers, **pod}}},
            },
        }

    return {
        "mlPolicy": {
            "numNodes": 1,
            "torch": {
                "envInjection": {"targets": [{"jobName": "node", "containerNames": ["preflight"]}]}
            },
        },
        "template": {
            "metadata": {"labels": {"team": "ml"}, "annotations": {"a": "1"}},
            "spec": {
                "suspend": True,
                "replicatedJobs": [
                    job(
                        "dataset-initializer",
                        "dataset-initializer",
                        [
                            {
                                "name": "dataset-initializer",
                                "image": "init",
                                "env": [{"name": "X", "value": "1"}],
                            }
                        ],
                    ),
                    job(
                        "model-initializer",
                        "model-initializer",
                        [{"name": "model-initializer", "image": "init"}],
                    ),
                    job(
                        "node",
                        "trainer",
                        [
                            {
                                "name": "node",
                                "image": "train",
                                "env": [{"name": "A", "value": "a"}],
                            },
                            {
                                "name": "sidecar",
                                "image": "side",
                                "env": [{"name": "S1", "value": "1"}],
                            },
                        ],
                        initContainers=[{"name": "preflight", "image": "check"}],
                        nodeSelector={"pool": "default"},
                        tolerations=[{"key": "old"}],
                    ),
                ],
            },
        },
    }


def patch(manager: str, jobs: list[dict[str, Any]], **metadata: Any) -> dict[str, Any]:
    template: dict[str, Any] = {"spec": {"replicatedJobs": jobs}}
    if metadata:
        template["metadata"] = metadata
    return {"manager": manager, "trainingRuntimeSpec": {"template": template}}


def pod_patch(job: str, **pod: Any) -> dict[str, Any]:
    return {"name": job, "template": {"spec": {"template": {"spec": pod}}}}


def test_runtime_patches_strategic_merge() -> None:
    tj = trainjob("rich", image="mine", numNodes=2)
    tj["spec"]["runtimePatches"] = [
        patch(
            "kueue.x-k8s.io/manager",
            [
                pod_patch(
                    "node",
                    nodeSelector={"cloud.example.com/gpu": "a100"},
                    tolerations=[{"key": "new", "operator": "Exists"}],
                    containers=[
                        {
                            "name": "sidecar",
                            "env": [{"name": "S1", "value": "2"}, {"name": "S2", "value": "x"}],
                        }
                    ],
                ),
                # Listed after `node`: SMP reorders the list, Trainer restores the runtime's order.
                pod_patch("dataset-initializer", schedulingGates=[{"name": "gate"}]),
            ],
            labels={"kueue.x-k8s.io/queue-name": "q"},
        ),
        patch(
            "trainer.kubeflow.org/kubeflow-sdk",
            [
                pod_patch(
                    "node",
                    nodeSelector={"zone": "z1"},
                    containers=[{"name": "sidecar", "env": [{"name": "S3", "value": "y"}]}],
                )
            ],
            annotations={"b": "2"},
        ),
    ]
    original = json_copy(tj)
    spec = rich_runtime()
    spec_copy = json_copy(spec)

    jobset = build_jobset(tj, spec)

    assert tj == original and spec == spec_copy  # the arguments are not changed
    assert jobset["metadata"]["labels"] == {"team": "ml", "kueue.x-k8s.io/queue-name": "q"}
    assert jobset["metadata"]["annotations"] == {"a": "1", "b": "2"}
    jobs = jobset["spec"]["replicatedJobs"]
    assert [j["name"] for j in jobs] == ["dataset-initializer", "model-initializer", "node"]
    node_pod = jobs[2]["template"]["spec"]["template"]["spec"]
    assert node_pod["nodeSelector"] == {
        "pool": "default",
        "cloud.example.com/gpu": "a100",
        "zone": "z1",
    }
    assert node_pod["tolerations"] == [{"key": "new", "operator": "Exists"}]  # replaced, not merged
    # env merged by name: S1 patched in place, S2 after it, then S3 (new with no anchor: first).
    assert container(jobs[2], "sidecar")["env"] == [
        {"name": "S3", "value": "y"},
        {"name": "S1", "value": "2"},
        {"name": "S2", "value": "x"},
    ]
    assert container(jobs[2], "sidecar")["image"] == "side"
    assert jobs[0]["template"]["spec"]["template"]["spec"]["schedulingGates"] == [{"name": "gate"}]
    assert [c["name"] for c in node_pod["containers"]] == ["node", "sidecar"]
    # The template's suspend is the TrainJob's: it has none, so the JobSet has none.
    assert "suspend" not in jobset["spec"]
    # Counts: initializers 1, trainer = numNodes; replicas 1 everywhere.
    assert [
        (j["replicas"], j["template"]["spec"]["parallelism"], j["template"]["spec"]["completions"])
        for j in jobs
    ] == [
        (1, 1, 1),
        (1, 1, 1),
        (1, 2, 2),
    ]


def test_envinjection_and_initializers() -> None:
    tj = trainjob("rich", env=[{"name": "A", "value": "mine"}])
    tj["spec"]["initializer"] = {
        "dataset": {
            "storageUri": "hf://tatsu-lab/alpaca",
            "env": [
                {"name": "X", "value": "2"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
            "secretRef": {"name": "hf-secret"},
        },
    }
    tj["spec"]["suspend"] = False
    jobset = build_jobset(tj, rich_runtime())
    jobs = jobset["spec"]["replicatedJobs"]
    dataset = container(jobs[0], "dataset-initializer")
    assert dataset["env"] == [
        {"name": "X", "value": "2"},
        {"name": "STORAGE_URI", "value": "hf://tatsu-lab/alpaca"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"key": "k", "name": "s"}}},
    ]
    assert dataset["envFrom"] == [{"secretRef": {"name": "hf-secret"}}]
    model = container(jobs[1], "model-initializer")
    assert "env" not in model and "envFrom" not in model  # no model initializer in the TrainJob
    preflight = container(jobs[2], "preflight", init=True)
    assert preflight["env"] == [
        {"name": "PET_NNODES", "value": "1"},
        {"name": "PET_NPROC_PER_NODE", "value": "1"},
        {"name": "PET_NODE_RANK", "valueFrom": RANK_REF},
        {"name": "PET_MASTER_ADDR", "value": "tj-node-0-0.tj"},
        {"name": "PET_MASTER_PORT", "value": "29500"},
    ]
    assert "ports" not in preflight
    node = container(jobs[2])
    assert node["env"][0] == {"name": "A", "value": "mine"}  # upserted in place over the runtime's
    # Neither the TrainJob's env nor PET_* reach a container that is not a target.
    assert container(jobs[2], "sidecar")["env"] == [{"name": "S1", "value": "1"}]
    assert jobset["spec"]["suspend"] is False


def test_envinjection_missing_target_is_a_build_error() -> None:
    spec = rich_runtime()
    spec["mlPolicy"]["torch"]["envInjection"]["targets"][0]["containerNames"] = ["absent"]
    with pytest.raises(BuildError, match="absent"):
        build_jobset(trainjob("rich", image="x"), spec)


def test_plain_ml_runtime() -> None:
    spec = json_copy(runtime("torch_distributed.yaml")["spec"])
    del spec["mlPolicy"]
    jobset = build_jobset(two_nodes("plain"), spec)
    rjob = only_job(jobset)
    node = container(rjob)
    assert node["env"] == [{"name": "LR", "value": "0.1"}]
    assert "ports" not in node
    # No mlPolicy: TrainJob numNodes still sets the count, but resourcesPerNode is not merged.
    assert rjob["template"]["spec"]["parallelism"] == 2
    assert "resources" not in node


def test_runtime_labels_do_not_reach_the_jobset() -> None:
    rt = runtime("torch_distributed.yaml")
    jobset = build_jobset(
        two_nodes("torch-distributed"), rt["spec"], runtime_labels=rt["metadata"]["labels"]
    )
    assert "labels" not in jobset["metadata"]
    assert jobset == build_jobset(two_nodes("torch-distributed"), rt["spec"])


@pytest.mark.parametrize(
    ("policy", "mlpolicy"),
    [("flux", {"flux": {"numProcPerNode": 1}})],  # MPI is built: test_mpi_plugin.py
)
def test_flux_is_unsupported(policy: str, mlpolicy: dict[str, Any]) -> None:
    spec = json_copy(runtime("torch_distributed.yaml")["spec"])
    spec["mlPolicy"] = {"numNodes": 1, **mlpolicy}
    with pytest.raises(UnsupportedRuntime, match=policy) as info:
        build_jobset(trainjob("x", image="i"), spec)
    assert info.value.policy == policy
    assert isinstance(info.value, ValueError)


def test_ml_policy_name() -> None:
    assert ml_policy_name(None) == "plainml"
    assert ml_policy_name({"numNodes": 2}) == "plainml"
    assert ml_policy_name({"jax": {}}) == "jax"
    assert ml_policy_name({"xgboost": {}}) == "xgboost"


# --- runtimeRef and when to build ----------------------------------------------------------------


def test_runtime_key_defaults() -> None:
    assert runtime_key(trainjob("torch-distributed")) == (
        "ClusterTrainingRuntime",
        "trainer.kubeflow.org",
        "torch-distributed",
    )
    tj = trainjob("mine")
    tj["spec"]["runtimeRef"].update(kind="TrainingRuntime", apiGroup="trainer.kubeflow.org")
    ref = runtime_key(tj)
    assert ref == RuntimeRef("TrainingRuntime", "trainer.kubeflow.org", "mine")
    assert runtime_registry_key(ref) == "TrainingRuntime.trainer.kubeflow.org"
    assert runtime_registry_key(RuntimeRef("Foo", "", "x")) == "Foo"


def test_should_apply_jobset() -> None:
    tj = trainjob("t")
    assert should_apply_jobset(tj, None)
    assert not should_apply_jobset(tj, {"spec": {"suspend": False}})
    assert should_apply_jobset(tj, {"spec": {"suspend": True}})
    tj["spec"]["suspend"] = True
    assert should_apply_jobset(tj, {"spec": {}})


# --- the strategic merge helper ------------------------------------------------------------------
# Expected values are what apimachinery v0.35.3 StrategicMergePatch(…, corev1.PodSpec{}) printed.

POD_SPEC = (
    JOBSET_SPEC.fields["replicatedJobs"]
    .fields["template"]
    .fields["spec"]
    .fields["template"]
    .fields["spec"]
)
ORIGINAL = {
    "containers": [
        {
            "name": "a",
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "value": "2"},
                {"name": "C", "value": "3"},
            ],
        },
        {"name": "b"},
    ]
}


def env_names(result: dict[str, Any], at: int) -> list[tuple[str, str]]:
    return [(e["name"], e["value"]) for e in result["containers"][at]["env"]]


def test_smp_new_element_without_anchor_goes_first() -> None:
    result = strategic_merge(
        ORIGINAL, {"containers": [{"name": "a", "env": [{"name": "D", "value": "x"}]}]}, POD_SPEC
    )
    assert env_names(result, 0) == [("D", "x"), ("A", "1"), ("B", "2"), ("C", "3")]
    assert ORIGINAL["containers"][0]["env"][0] == {"name": "A", "value": "1"}  # not changed


def test_smp_new_element_after_last_patched() -> None:
    patch = {
        "containers": [
            {"name": "a", "env": [{"name": "B", "value": "x"}, {"name": "D", "value": "y"}]}
        ]
    }
    result = strategic_merge(ORIGINAL, patch, POD_SPEC)
    assert env_names(result, 0) == [("A", "1"), ("B", "x"), ("D", "y"), ("C", "3")]


def test_smp_patch_order_wins_for_patched_elements() -> None:
    patch = {
        "containers": [
            {"name": "b", "image": "i"},
            {"name": "a", "env": [{"name": "C", "value": "x"}, {"name": "A", "value": "y"}]},
        ]
    }
    result = strategic_merge(ORIGINAL, patch, POD_SPEC)
    assert [c["name"] for c in result["containers"]] == ["b", "a"]
    assert result["containers"][0] == {"name": "b", "image": "i"}
    assert env_names(result, 1) == [("B", "2"), ("C", "x"), ("A", "y")]


def test_smp_maps_merge_other_lists_replace() -> None:
    patch = {
        "containers": [{"name": "z"}],
        "tolerations": [{"key": "k"}],
        "nodeSelector": {"x": "y"},
    }
    original = {**ORIGINAL, "tolerations": [{"key": "old"}], "nodeSelector": {"p": "q"}}
    result = strategic_merge(original, patch, POD_SPEC)
    assert [c["name"] for c in result["containers"]] == ["z", "a", "b"]
    assert result["tolerations"] == [{"key": "k"}]
    assert result["nodeSelector"] == {"p": "q", "x": "y"}


def test_smp_nulls_keys_and_errors() -> None:
    assert strategic_merge({"a": 1, "b": {"c": 2}}, {"a": None, "b": {"d": 3}}, PatchMeta()) == {
        "b": {"c": 2, "d": 3}
    }
    assert strategic_merge(
        {"finalizers": ["x"]},
        {"finalizers": ["y", "x"]},
        PatchMeta(fields={"finalizers": PatchMeta(merge=True)}),
    ) == {"finalizers": ["x", "y"]}
    with pytest.raises(StrategicMergeError, match="merge key"):
        strategic_merge(ORIGINAL, {"containers": [{"image": "no-name"}]}, POD_SPEC)


def test_typed_patch_drops_what_go_omits() -> None:
    assert typed_patch(
        {"a": None, "b": "", "c": [], "d": {}, "e": [{"x": None, "$patch": "delete"}], "f": 0}
    ) == {
        "d": {},
        "e": [{}],
        "f": 0,
    }
