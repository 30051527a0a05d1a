"""``reconcilers/api/trainer_webhooks.py``: Kubeflow Trainer v2.3.0's admission webhooks, rule by
rule, each with the message and field path of the Go source (``pkg/webhooks``,
``pkg/runtime/core``, the plugins' ``Validate`` and their ``*_test.go``), so removing a rule fails
a test here; plus the refusal's shape, the runtimePatches time defaulting and the webhook
configurations."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import jsonpatch
import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.engine.webhook.admission import AdmissionResponse, Handler
from kubetrain.engine.webhook.server import WebhookServer, WebhookServerOptions
from kubetrain.reconcilers.api.trainer_webhooks import (
    CLUSTER_TRAINING_RUNTIME_VALIDATE_PATH,
    TRAINING_RUNTIME_VALIDATE_PATH,
    TRAINJOB_MUTATE_PATH,
    TRAINJOB_VALIDATE_PATH,
    register_trainer_webhooks,
    training_runtime_validator,
    trainjob_defaulter,
    trainjob_validator,
)
from kubetrain.reconcilers.api.webhooks import webhook_configurations
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

Obj = dict[str, Any]
ANCESTOR = "trainer.kubeflow.org/trainjob-ancestor-step"
NOW = datetime(2026, 8, 6, 12, 0, 0, tzinfo=UTC)
NOW_TEXT = "2026-08-06T12:00:00Z"
NS = "team"


class Objects:
    """A fake ``TrainerObjects``."""

    def __init__(self) -> None:
        self.runtimes: dict[tuple[str, str, str], Obj] = {}
        self.jobsets: dict[tuple[str, str], Obj] = {}
        self.priority_classes: set[str] = set()

    def add(self, runtime: Obj) -> Obj:
        meta = runtime["metadata"]
        self.runtimes[(runtime["kind"], meta.get("namespace", ""), meta["name"])] = runtime
        return runtime

    async def runtime(self, kind: str, namespace: str, name: str) -> Obj | None:
        ns = "" if kind == "ClusterTrainingRuntime" else namespace
        return self.runtimes.get((kind, ns, name))

    async def jobset(self, namespace: str, name: str) -> Obj | None:
        return self.jobsets.get((namespace, name))

    async def priority_class_exists(self, name: str) -> bool:
        return name in self.priority_classes


def rjob(name: str, ancestor: str | None, *containers: Obj, **extra: Any) -> Obj:
    labels = {ANCESTOR: ancestor} if ancestor else {}
    pod: Obj = {"containers": list(containers)}
    pod.update(extra.pop("pod", {}))
    return {
        "name": name,
        "replicas": 1,
        "template": {
            "metadata": {"labels": labels},
            "spec": {"template": {"spec": pod}},
        },
        **extra,
    }


def container(name: str, *mounts: str) -> Obj:
    c: Obj = {"name": name, "image": "busybox"}
    if mounts:
        c["volumeMounts"] = [{"name": m, "mountPath": f"/{m}"} for m in mounts]
    return c


def runtime(
    name: str = "rt",
    *,
    kind: str = "TrainingRuntime",
    ml_policy: Obj | None = None,
    jobs: list[Obj] | None = None,
    **spec: Any,
) -> Obj:
    meta: Obj = {"name": name}
    if kind == "TrainingRuntime":
        meta["namespace"] = NS
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": kind,
        "metadata": meta,
        "spec": {
            "mlPolicy": ml_policy if ml_policy is not None else {"numNodes": 1},
            "template": {
                "spec": {
                    "replicatedJobs": jobs
                    if jobs is not None
                    else [
                        rjob(
                            "dataset-initializer",
                            "dataset-initializer",
                            container("dataset-initializer", "initializer"),
                        ),
                        rjob(
                            "model-initializer",
                            "model-initializer",
                            container("model-initializer", "initializer"),
                        ),
                        rjob("node", "trainer", container("node"), container("sidecar")),
                    ]
                }
            },
            **spec,
        },
    }


def trainjob(name: str = "tj", runtime_name: str = "rt", **spec: Any) -> Obj:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "runtimeRef": {
                "name": runtime_name,
                "apiGroup": "trainer.kubeflow.org",
                "kind": "TrainingRuntime",
            },
            **spec,
        },
    }


def review(operation: str, obj: Obj, old: Obj | None = None) -> Obj:
    return {"uid": "1", "operation": operation, "object": obj, "oldObject": old}


async def decide(handler: Handler, request: Obj) -> AdmissionResponse:
    outcome = handler(request)
    if isinstance(outcome, AdmissionResponse):
        return outcome
    return await outcome


def causes(response: AdmissionResponse) -> list[tuple[str, str]]:
    """``(field, message)`` of each cause of a refusal."""
    assert not response.allowed
    assert response.status is not None
    return [(c["field"], c["message"]) for c in response.status["details"]["causes"]]


@pytest.fixture
def objects() -> Objects:
    o = Objects()
    o.add(runtime())
    return o


async def validate(objects: Objects, obj: Obj, old: Obj | None = None) -> AdmissionResponse:
    op = "CREATE" if old is None else "UPDATE"
    return await decide(trainjob_validator(objects), review(op, obj, old))


# -- runtimes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["TrainingRuntime", "ClusterTrainingRuntime"])
async def test_runtime_ancestor_job_needs_one_replica_and_its_container(kind: str) -> None:
    rt = runtime(
        kind=kind,
        jobs=[
            rjob("init", "dataset-initializer", container("other"), replicas=2),
            rjob("m", "model-initializer", container("model-initializer")),
            rjob("node", "trainer", container("trainer")),
            rjob("free", None, container("x"), replicas=3),  # no ancestor: not checked
        ],
    )
    response = await decide(training_runtime_validator(kind), review("CREATE", rt))
    jobs = "spec.template.spec.replicatedJobs"
    assert causes(response) == [
        (f"{jobs}[0].replicas", "Invalid value: 2: always must be 1"),
        (
            f"{jobs}[0].template.spec.template.spec.containers",
            'Invalid value: "array": must contain the required container for the ancestor: '
            "dataset-initializer",
        ),
        (
            f"{jobs}[2].template.spec.template.spec.containers",
            'Invalid value: "array": must contain the required container for the ancestor: trainer',
        ),
    ]
    assert response.status is not None
    assert response.status["code"] == 403 and response.status["reason"] == "Forbidden"
    assert response.status["details"]["kind"] == kind
    assert response.status["message"].startswith(f"[{jobs}[0].replicas: Invalid value: 2")


async def test_training_runtime_updates_are_not_checked_cluster_ones_are() -> None:
    bad = runtime(jobs=[rjob("node", "trainer", container("x"), replicas=2)])
    update = review("UPDATE", bad, bad)
    assert (await decide(training_runtime_validator("TrainingRuntime"), update)).allowed
    cluster = dict(bad, kind="ClusterTrainingRuntime")
    response = await decide(
        training_runtime_validator("ClusterTrainingRuntime"), review("UPDATE", cluster, cluster)
    )
    assert not response.allowed


async def test_a_deprecated_cluster_runtime_is_created_with_a_warning() -> None:
    rt = runtime("old", kind="ClusterTrainingRuntime")
    rt["metadata"]["labels"] = {"trainer.kubeflow.org/support": "deprecated"}
    response = await decide(
        training_runtime_validator("ClusterTrainingRuntime"), review("CREATE", rt)
    )
    assert response.allowed
    assert response.warnings == (
        'ClusterTrainingRuntime "old" is deprecated and will be removed in a future release of '
        "Kubeflow Trainer. See runtime deprecation policy: https://trainer.kubeflow.org/en/"
        "latest/operator-guides/runtime.html#runtime-deprecation-policy",
    )


@pytest.mark.parametrize("rt", builtin_runtimes(), ids=lambda r: r["metadata"]["name"])
async def test_every_builtin_runtime_is_admitted(rt: Obj) -> None:
    handler = training_runtime_validator(rt["kind"])
    assert (await decide(handler, review("CREATE", rt))).allowed


# -- defaulting: runtimePatches[].time --------------------------------------------------------


async def default(obj: Obj, old: Obj | None = None) -> Obj:
    handler = trainjob_defaulter(FakeClock(wall_start=NOW))
    response = await decide(handler, review("CREATE" if old is None else "UPDATE", obj, old))
    assert response.allowed
    return jsonpatch.apply_patch(obj, list(response.patch or []))  # type: ignore[no-any-return]


def patch(manager: str, sa: str = "a", time: str | None = None) -> Obj:
    p: Obj = {
        "manager": manager,
        "trainingRuntimeSpec": {
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "spec": {"template": {"spec": {"serviceAccountName": sa}}}
                            },
                        }
                    ]
                }
            }
        },
    }
    if time is not None:
        p["time"] = time
    return p


async def test_create_sets_unset_times_and_keeps_a_users() -> None:
    obj = trainjob(runtimePatches=[patch("a.io/x"), patch("b.io/y", time="2020-01-01T00:00:00Z")])
    out = await default(obj)
    assert [p["time"] for p in out["spec"]["runtimePatches"]] == [NOW_TEXT, "2020-01-01T00:00:00Z"]
    assert await default(trainjob()) == trainjob()  # nothing to set


async def test_update_keeps_an_unchanged_patchs_time_and_stamps_a_changed_one() -> None:
    old = trainjob(
        runtimePatches=[
            patch("a.io/x", time="2020-01-01T00:00:00Z"),
            patch("b.io/y", time="2020-01-01T00:00:00Z"),
        ]
    )
    new = trainjob(
        runtimePatches=[
            patch("a.io/x"),  # unchanged but for the time: the old time comes back
            patch("b.io/y", sa="changed", time="2020-01-01T00:00:00Z"),  # changed: now
            patch("c.io/z", time="2021-01-01T00:00:00Z"),  # new with a time: kept
            patch("d.io/w"),  # new without: now
        ]
    )
    out = await default(new, old)
    assert [p["time"] for p in out["spec"]["runtimePatches"]] == [
        "2020-01-01T00:00:00Z",
        NOW_TEXT,
        "2021-01-01T00:00:00Z",
        NOW_TEXT,
    ]


# -- TrainJob validation ------------------------------------------------------------------------


async def test_a_valid_trainjob_is_admitted(objects: Objects) -> None:
    response = await validate(objects, trainjob(runtimePatches=[patch("kueue.x-k8s.io/manager")]))
    assert response.allowed, response.status


async def test_the_runtime_must_exist(objects: Objects) -> None:
    response = await validate(objects, trainjob(runtime_name="missing"))
    assert causes(response) == [
        (
            "spec.runtimeRef",
            'Invalid value: "object": trainingruntimes.trainer.kubeflow.org "missing" not found: '
            "specified trainingRuntime must be created before the TrainJob is created",
        )
    ]
    tj = trainjob(runtime_name="missing")
    tj["spec"]["runtimeRef"]["kind"] = "ClusterTrainingRuntime"
    assert causes(await validate(objects, tj)) == [
        (
            "spec.runtimeRef",
            'Invalid value: "object": clustertrainingruntimes.trainer.kubeflow.org "missing" not '
            "found: specified clusterTrainingRuntime must be created before the TrainJob is "
            "created",
        )
    ]


async def test_an_unknown_runtime_kind_is_not_supported(objects: Objects) -> None:
    tj = trainjob()
    tj["spec"]["runtimeRef"]["kind"] = "Other"
    assert causes(await validate(objects, tj)) == [
        (
            "spec.runtimeRef",
            'Unsupported value: "Other.trainer.kubeflow.org": supported values: '
            '"TrainingRuntime.trainer.kubeflow.org", "ClusterTrainingRuntime.trainer.kubeflow.org"',
        )
    ]


async def test_the_default_runtime_kind_is_cluster_training_runtime(objects: Objects) -> None:
    objects.add(runtime("shared", kind="ClusterTrainingRuntime"))
    tj = trainjob(runtime_name="shared")
    del tj["spec"]["runtimeRef"]["kind"]
    assert (await validate(objects, tj)).allowed


@pytest.mark.parametrize(
    ("jobs", "detail"),
    [
        (
            [rjob("node", "trainer", container("node"))],
            "must have dataset-initializer job when trainJob is configured with input "
            "datasetConfig",
        ),
        (
            [
                rjob("dataset-initializer", None, container("x")),
                rjob("node", "trainer", container("node")),
            ],
            "must have container with name - dataset-initializer in the dataset-initializer job",
        ),
        (
            [
                rjob("dataset-initializer", None, container("dataset-initializer")),
                rjob("node", "trainer", container("node")),
            ],
            "must have volumeMount with name - initializer in container dataset-initializer of "
            "the dataset-initializer job",
        ),
    ],
)
async def test_a_dataset_initializer_needs_its_job_container_and_mount(
    objects: Objects, jobs: list[Obj], detail: str
) -> None:
    objects.add(runtime("bare", jobs=jobs))
    tj = trainjob(runtime_name="bare", initializer={"dataset": {"storageUri": "hf://x"}})
    assert causes(await validate(objects, tj)) == [
        ("spec.runtimeRef", f'Invalid value: "object": {detail}')
    ]


async def test_a_model_initializer_needs_its_job(objects: Objects) -> None:
    objects.add(runtime("bare", jobs=[rjob("node", "trainer", container("node"))]))
    tj = trainjob(runtime_name="bare", initializer={"model": {"storageUri": "hf://x"}})
    assert causes(await validate(objects, tj)) == [
        (
            "spec.runtimeRef",
            'Invalid value: "object": must have model-initializer job when trainJob is '
            "configured with input modelConfig",
        )
    ]
    assert (await validate(objects, trainjob(initializer={"model": {}}))).allowed


async def test_a_runtime_patch_may_add_the_initializer_mount(objects: Objects) -> None:
    objects.add(
        runtime(
            "nomount",
            jobs=[
                rjob("model-initializer", None, container("model-initializer")),
                rjob("node", "trainer", container("node")),
            ],
        )
    )
    mount = {
        "manager": "acme.io/m",
        "trainingRuntimeSpec": {
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "model-initializer",
                            "template": {
                                "spec": {
                                    "template": {
                                        "spec": {
                                            "containers": [
                                                {
                                                    "name": "model-initializer",
                                                    "volumeMounts": [
                                                        {"name": "initializer", "mountPath": "/w"}
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
    tj = trainjob(runtime_name="nomount", initializer={"model": {}}, runtimePatches=[mount])
    assert (await validate(objects, tj)).allowed


@pytest.mark.parametrize(
    ("manager", "expected"),
    [
        (
            "kueue.k8s.io/",
            'Invalid value: "kueue.k8s.io/": must be a domain-prefixed path (such as "acme.io/foo")',
        ),
        (
            "no-slash",
            'Invalid value: "no-slash": must be a domain-prefixed path (such as "acme.io/foo")',
        ),
        ("Bad_Host/x", 'Invalid value: "Bad_Host": a lowercase RFC 1123 subdomain must consist of'),
        ("acme.io/a b", 'Invalid value: "a b": Invalid path (regex used for validation is'),
    ],
)
async def test_a_patch_manager_is_a_domain_prefixed_path(
    objects: Objects, manager: str, expected: str
) -> None:
    (field, message), *rest = causes(
        await validate(objects, trainjob(runtimePatches=[{"manager": manager}]))
    )
    assert not rest
    assert field == "spec.runtimePatches.manager"
    assert message.startswith(expected)


def job_patch(job: str, pod: Obj) -> Obj:
    return {
        "manager": "acme.io/m",
        "trainingRuntimeSpec": {
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {"name": job, "template": {"spec": {"template": {"spec": pod}}}}
                    ]
                }
            }
        },
    }


@pytest.mark.parametrize(
    ("p", "detail"),
    [
        (
            job_patch("ghost", {"nodeSelector": {"a": "b"}}),
            "must not have replicated job that doesn't exist in the runtime job template",
        ),
        (
            job_patch("node", {"containers": [{"name": "ghost"}]}),
            "must not have container that doesn't exist in the runtime job node",
        ),
        (
            job_patch("node", {"initContainers": [{"name": "ghost"}]}),
            "must not have initContainer that doesn't exist in the runtime job node",
        ),
        (
            job_patch(
                "node", {"containers": [{"name": "node", "env": [{"name": "A", "value": "1"}]}]}
            ),
            "must not have envs for the dataset-initializer, model-initializer, node containers",
        ),
        (
            job_patch(
                "dataset-initializer",
                {"containers": [{"name": "dataset-initializer", "env": [{"name": "A"}]}]},
            ),
            "must not have envs for the dataset-initializer, model-initializer, node containers",
        ),
    ],
)
async def test_patched_jobs_and_containers_exist_and_trainer_envs_are_not_patched(
    objects: Objects, p: Obj, detail: str
) -> None:
    assert causes(await validate(objects, trainjob(runtimePatches=[p]))) == [
        ("spec.runtimePatches", f'Invalid value: "array": {detail}')
    ]


async def test_a_sidecar_env_may_be_patched(objects: Objects) -> None:
    p = job_patch("node", {"containers": [{"name": "sidecar", "env": [{"name": "A"}]}]})
    assert (await validate(objects, trainjob(runtimePatches=[p]))).allowed


async def test_runtime_patches_change_only_around_a_suspension(objects: Objects) -> None:
    old = trainjob(runtimePatches=[patch("acme.io/m", time=NOW_TEXT)])
    new = trainjob(runtimePatches=[patch("acme.io/m", sa="b", time=NOW_TEXT)])
    assert causes(await validate(objects, new, old)) == [
        (
            "spec.runtimePatches",
            "Forbidden: RuntimePatches can only be modified when the TrainJob is suspended "
            "before or after the update",
        )
    ]
    for before, after in ((True, True), (True, False), (False, True)):
        o, n = copy.deepcopy(old), copy.deepcopy(new)
        o["spec"]["suspend"], n["spec"]["suspend"] = before, after
        assert (await validate(objects, n, o)).allowed, (before, after)
    # the same patches, any suspension: nothing changed
    unsuspended = copy.deepcopy(old)
    unsuspended["spec"]["suspend"] = False
    assert (await validate(objects, unsuspended, old)).allowed


async def test_runtime_patches_do_not_change_while_the_jobset_is_active(objects: Objects) -> None:
    objects.jobsets[(NS, "tj")] = {
        "status": {
            "replicatedJobsStatus": [
                {"name": "dataset-initializer", "active": 1},
                {"name": "model-initializer", "active": 0},
                {"name": "node", "active": 2},
            ]
        }
    }
    old = trainjob(suspend=False, runtimePatches=[patch("acme.io/m", time=NOW_TEXT)])
    new = trainjob(suspend=True, runtimePatches=[patch("acme.io/m", sa="b", time=NOW_TEXT)])
    message = "Forbidden: RuntimePatches cannot be modified when the JobSet's ReplicatedJob {} is still active"
    assert causes(await validate(objects, new, old)) == [
        ("spec.runtimePatches", message.format("dataset-initializer")),
        ("spec.runtimePatches", message.format("node")),
    ]


async def test_an_update_leaving_spec_alone_is_ratcheted(objects: Objects) -> None:
    old = trainjob(runtime_name="deleted-since")
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"a": "b"}
    assert (await validate(objects, new, old)).allowed
    new["spec"]["suspend"] = True
    assert not (await validate(objects, new, old)).allowed


TORCH = {"numNodes": 1, "torch": {}}


async def test_torch_reserved_envs(objects: Objects) -> None:
    objects.add(runtime("torch", ml_policy=TORCH))
    env = [{"name": "PET_NODE_RANK", "value": "1"}, {"name": "PET_MASTER_ADDR"}, {"name": "OK"}]
    tj = trainjob(runtime_name="torch", trainer={"env": env})
    assert causes(await validate(objects, tj)) == [
        (
            "spec.trainer.env",
            'Invalid value: "array": must not have reserved envs, invalid envs configured: '
            "[PET_MASTER_ADDR PET_NODE_RANK]",
        )
    ]
    # not reserved for a runtime without the torch policy
    assert (await validate(objects, trainjob(trainer={"env": env}))).allowed


async def test_torch_env_injection_targets_exist(objects: Objects) -> None:
    targets = [{"jobName": "node", "containerNames": ["sidecar", "ghost"]}]
    objects.add(runtime("torch", ml_policy={"torch": {"envInjection": {"targets": targets}}}))
    assert causes(await validate(objects, trainjob(runtime_name="torch"))) == [
        (
            "spec.runtimeRef",
            'Invalid value: "object": envInjection target podSet "node" container "ghost" not '
            "found in runtime template",
        )
    ]


def tune(runtime_name: str, **trainer: Any) -> Obj:
    return trainjob(runtime_name=runtime_name, trainer={"command": ["tune", "run"], **trainer})


@pytest.fixture
def tune_objects(objects: Objects) -> Objects:
    for name in (
        "torchtune-llama3.2-1b",
        "torchtune-llama3.3-70b",
        "torchtune-qwen2.5-1.5b",
        "torchtune-bad",
    ):
        objects.add(runtime(name, ml_policy=TORCH))
    return objects


async def test_torchtune_supported_model(tune_objects: Objects) -> None:
    assert causes(await validate(tune_objects, tune("torchtune-bad"))) == [
        (
            "spec.runtimeRef.name",
            'Invalid value: "torchtune-bad": must have a supported pretrained model, invalid '
            "model configured: ",
        )
    ]
    assert (await validate(tune_objects, tune("torchtune-llama3.2-1b"))).allowed


async def test_torchtune_single_node_but_70b(tune_objects: Objects) -> None:
    assert causes(await validate(tune_objects, tune("torchtune-llama3.2-1b", numNodes=2))) == [
        ("spec.trainer.numNodes", "Invalid value: 2: must be 1 for llama3_2/1B model")
    ]
    assert (await validate(tune_objects, tune("torchtune-llama3.3-70b", numNodes=2))).allowed


async def test_torchtune_lora_is_single_node(tune_objects: Objects) -> None:
    tj = tune("torchtune-llama3.3-70b", numNodes=2, args=["model.lora_attn_modules=[q_proj]"])
    assert causes(await validate(tune_objects, tj)) == [
        (
            "spec.trainer.numNodes",
            "Invalid value: 2: LoRA fine-tuning is not supported for multi-node training in "
            "TorchTune",
        )
    ]


async def test_torchtune_runtime_managed_args(tune_objects: Objects) -> None:
    tj = tune("torchtune-llama3.2-1b", args=["batch_size=2", "output_dir=/x", "tokenizer.path=/t"])
    assert causes(await validate(tune_objects, tj)) == [
        (
            "spec.trainer.args[1]",
            'Invalid value: "output_dir=/x": must not set immutable config "output_dir" in '
            "trainer args; it is managed by the runtime",
        ),
        (
            "spec.trainer.args[2]",
            'Invalid value: "tokenizer.path=/t": must not set immutable config "tokenizer.path" '
            "in trainer args; it is managed by the runtime",
        ),
    ]


async def test_torchtune_qlora(tune_objects: Objects) -> None:
    qlora = ["model.quantize_base=True"]
    assert causes(
        await validate(tune_objects, tune("torchtune-qwen2.5-1.5b", numProcPerNode=2, args=qlora))
    ) == [
        (
            "spec.runtimeRef.name",
            'Invalid value: "torchtune-qwen2.5-1.5b": QLoRA is not supported for qwen2_5/1.5B '
            "model",
        )
    ]
    assert causes(
        await validate(tune_objects, tune("torchtune-llama3.2-1b", numProcPerNode=2, args=qlora))
    ) == [
        (
            "spec.trainer.numProcPerNode",
            "Invalid value: 2: must be auto or 1 for llama3_2/1B model when using QLoRA",
        ),
        (
            "spec.trainer.resourcesPerNode",
            "Invalid value: null: must have gpu resource with value 1 for llama3_2/1B model "
            "when using QLoRA",
        ),
    ]
    one_gpu = {"limits": {"nvidia.com/gpu": 1}}
    tj = tune("torchtune-llama3.2-1b", resourcesPerNode=one_gpu, args=qlora)
    assert (await validate(tune_objects, tj)).allowed  # single device QLoRA


MPI_AS_NODE = {"mpi": {"runLauncherAsNode": True}}


async def test_mpi_launcher_as_node_needs_launcher_and_node_jobs(objects: Objects) -> None:
    objects.add(
        runtime("mpi", ml_policy=MPI_AS_NODE, jobs=[rjob("node", "trainer", container("node"))])
    )
    assert causes(
        await validate(objects, trainjob(runtime_name="mpi", trainer={"numNodes": 2}))
    ) == [
        (
            "spec.trainer.numNodes",
            "Invalid value: 2: must have 1 when MPI trainingRuntime with enabled "
            "runLauncherAsNode does not have either launcher and node",
        )
    ]
    assert (await validate(objects, trainjob(runtime_name="mpi", trainer={"numNodes": 1}))).allowed
    objects.add(
        runtime(
            "mpi2",
            ml_policy=MPI_AS_NODE,
            jobs=[
                rjob("launcher", None, container("node")),
                rjob("node", "trainer", container("node")),
            ],
        )
    )
    assert (await validate(objects, trainjob(runtime_name="mpi2", trainer={"numNodes": 2}))).allowed


async def test_mpi_reserved_envs(objects: Objects) -> None:
    objects.add(runtime("mpi", ml_policy={"mpi": {}}))
    env = [{"name": "OMPI_MCA_orte_default_hostfile", "value": "x"}]
    assert causes(await validate(objects, trainjob(runtime_name="mpi", trainer={"env": env}))) == [
        (
            "spec.trainer.env",
            'Invalid value: "array": must not have reserved envs, invalid envs configured: '
            "[OMPI_MCA_orte_default_hostfile]",
        )
    ]


async def test_xgboost_reserved_envs(objects: Objects) -> None:
    objects.add(runtime("xgb", ml_policy={"xgboost": {}}))
    env = [{"name": "OK"}, {"name": "DMLC_TASK_ID", "value": "0"}]
    assert causes(await validate(objects, trainjob(runtime_name="xgb", trainer={"env": env}))) == [
        ("spec.trainer.env[1]", "Forbidden: DMLC_TASK_ID is reserved for the XGBoost runtime")
    ]


async def test_flux_procs_per_node_and_reserved_init_container(objects: Objects) -> None:
    jobs = [
        rjob(
            "node",
            "trainer",
            container("node"),
            pod={"initContainers": [container("flux-installer")]},
        )
    ]
    objects.add(runtime("flux", ml_policy={"flux": {"numProcPerNode": 1}}, jobs=jobs))
    tj = trainjob(runtime_name="flux", trainer={"numProcPerNode": 0})
    assert causes(await validate(objects, tj)) == [
        (
            "spec.trainer.numProcPerNode",
            "Invalid value: 0: must be greater than or equal to 1 for Flux TrainJob",
        ),
        (
            "spec.trainer.initContainers",
            "Invalid value: \"flux-installer\": InitContainer 'flux-installer' is reserved",
        ),
    ]


async def test_volcano_queue_and_priority_class(objects: Objects) -> None:
    jobs = [
        rjob("a", None, container("a"), pod={"priorityClassName": "system-node-critical"}),
        rjob("node", "trainer", container("node"), pod={"priorityClassName": "missing"}),
        rjob("c", None, container("c"), pod={"priorityClassName": "high"}),
    ]
    rt = runtime("vc", jobs=jobs, podGroupPolicy={"volcano": {}})
    rt["spec"]["template"]["metadata"] = {"annotations": {"scheduling.volcano.sh/queue-name": ""}}
    objects.add(rt)
    objects.priority_classes.add("high")
    assert causes(await validate(objects, trainjob(runtime_name="vc"))) == [
        (
            "spec.annotations[scheduling.volcano.sh/queue-name]",
            'Invalid value: "": Volcano queue name must not be empty',
        ),
        (
            "spec.templateSpec.priorityClassName",
            'Invalid value: "missing": PriorityClass "missing" doesn\'t exist: '
            'priorityclasses.scheduling.k8s.io "missing" not found',
        ),
    ]
    objects.priority_classes.add("missing")
    queue = job_patch("node", {})
    queue["trainingRuntimeSpec"]["template"]["metadata"] = {
        "annotations": {"scheduling.volcano.sh/queue-name": "q"}
    }
    assert (await validate(objects, trainjob(runtime_name="vc", runtimePatches=[queue]))).allowed


async def test_a_deprecated_cluster_runtime_reference_is_warned_about(objects: Objects) -> None:
    rt = objects.add(runtime("old", kind="ClusterTrainingRuntime"))
    rt["metadata"]["labels"] = {"trainer.kubeflow.org/support": "deprecated"}
    tj = trainjob(runtime_name="old")
    tj["spec"]["runtimeRef"]["kind"] = "ClusterTrainingRuntime"
    response = await validate(objects, tj)
    assert response.allowed
    assert response.warnings[0].startswith('Referenced ClusterTrainingRuntime "old" is deprecated')


@pytest.mark.parametrize("rt", builtin_runtimes(), ids=lambda r: r["metadata"]["name"])
async def test_a_plain_trainjob_on_each_builtin_runtime_is_admitted(rt: Obj) -> None:
    objects = Objects()
    objects.add(rt)
    tj = trainjob(runtime_name=rt["metadata"]["name"], trainer={"numNodes": 1})
    tj["spec"]["runtimeRef"]["kind"] = rt["kind"]
    response = await validate(objects, tj)
    assert response.allowed, response.status


async def test_malformed_values_are_not_a_crash(objects: Objects) -> None:
    tj = trainjob(runtimePatches="nope", trainer=[1], initializer=3)
    await validate(objects, tj)
    await decide(trainjob_defaulter(FakeClock(wall_start=NOW)), review("CREATE", tj))
    weird = runtime(jobs=["x", {"template": 1}])  # type: ignore[list-item]
    await decide(training_runtime_validator("TrainingRuntime"), review("CREATE", weird))


# -- serving and configurations ---------------------------------------------------------------


def test_the_four_paths_are_served() -> None:
    server = WebhookServer(WebhookServerOptions(port=0))
    register_trainer_webhooks(server, Objects())
    paths = set(server.paths)
    assert {
        TRAINJOB_MUTATE_PATH,
        TRAINJOB_VALIDATE_PATH,
        TRAINING_RUNTIME_VALIDATE_PATH,
        CLUSTER_TRAINING_RUNTIME_VALIDATE_PATH,
    } <= paths
    assert TRAINJOB_MUTATE_PATH == "/mutate-trainer-kubeflow-org-v1alpha1-trainjob"


def test_the_configurations_route_trainers_resources() -> None:
    mutating, validating = webhook_configurations()
    hooks = {h["name"]: h for h in mutating["webhooks"] + validating["webhooks"]}
    assert hooks["defaulter.trainjob.trainer.kubeflow.org"]["clientConfig"]["service"]["path"] == (
        TRAINJOB_MUTATE_PATH
    )
    selector = {
        "matchExpressions": [
            {
                "key": "trainer.kubeflow.org/webhook-validation",
                "operator": "NotIn",
                "values": ["disabled"],
            }
        ]
    }
    for name, resource, scope, selected in (
        ("validator.trainjob", "trainjobs", "Namespaced", False),
        ("validator.trainingruntime", "trainingruntimes", "Namespaced", True),
        ("validator.clustertrainingruntime", "clustertrainingruntimes", "Cluster", True),
    ):
        hook = hooks[f"{name}.trainer.kubeflow.org"]
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
        assert hook["rules"] == [
            {
                "apiGroups": ["trainer.kubeflow.org"],
                "apiVersions": ["v1alpha1"],
                "operations": ["CREATE", "UPDATE"],
                "resources": [resource],
                "scope": scope,
            }
        ]
        assert hook.get("objectSelector") == (selector if selected else None)
    _, plain = webhook_configurations(trainer=False)
    assert not any("trainer" in h["name"] for h in plain["webhooks"])
