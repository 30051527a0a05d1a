"""The gang plugins (``reconcilers/trainer/plugins/podgroup.py`` and the pod label/annotation step
of ``jobset_build.py``), against Trainer v2.3.0's ``plugins/coscheduling/coscheduling.go`` and
``plugins/volcano/volcano.go`` (and their tests): the PodGroup of each flavour field by field,
the pods' group label or annotation, and no PodGroup without a ``podGroupPolicy``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kubetrain.reconcilers.trainer.jobset_build import BuildError, build_jobset
from kubetrain.reconcilers.trainer.objects import TRAINJOB_NAME_LABEL, build_objects
from kubetrain.reconcilers.trainer.plugins.podgroup import pod_requests
from kubetrain.reconcilers.trainer.runtimes import builtin_runtimes

Obj = dict[str, Any]
OWNER = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "TrainJob",
    "name": "tj",
    "uid": "uid-1",
    "controller": True,
    "blockOwnerDeletion": True,
}


def pod(containers: list[Obj], **spec: Any) -> Obj:
    return {"spec": {"template": {"spec": {"containers": containers, **spec}}}}


def job(
    name: str, pod_spec: Obj, *, ancestor: str | None = None, parallelism: int | None = None
) -> Obj:
    template: Obj = {"spec": pod_spec["spec"]}
    if parallelism is not None:
        template["spec"] = {**template["spec"], "parallelism": parallelism}
    if ancestor is not None:
        template["metadata"] = {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": ancestor}}
    return {"name": name, "template": template}


def c(name: str, **requests: str) -> Obj:
    return {"name": name, "image": "i", "resources": {"requests": requests}}


def gang_runtime(policy: Obj, **template_meta: Any) -> Obj:
    """An initializer (1 pod, 1 cpu + 1Gi) and a torch trainer of 2 nodes (500m + 2Gi each)."""
    template: Obj = {
        "spec": {
            "replicatedJobs": [
                job(
                    "dataset-initializer",
                    pod([c("dataset-initializer", cpu="1", memory="1Gi")]),
                    ancestor="dataset-initializer",
                ),
                job(
                    "node",
                    pod([c("node", cpu="500m", memory="2Gi")]),
                    ancestor="trainer",
                ),
            ]
        }
    }
    if template_meta:
        template["metadata"] = template_meta
    return {
        "mlPolicy": {"numNodes": 2, "torch": {}},
        "podGroupPolicy": policy,
        "template": template,
    }


def trainjob(**spec: Any) -> Obj:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "tj", "namespace": "team-a", "uid": "uid-1"},
        "spec": {"runtimeRef": {"name": "gang"}, **spec},
    }


def pod_meta(jobset: Obj, name: str) -> Obj:
    (rjob,) = [r for r in jobset["spec"]["replicatedJobs"] if r["name"] == name]
    meta: Obj = rjob["template"]["spec"]["template"].get("metadata") or {}
    return meta


def the_podgroup(built: Any) -> Obj:
    (podgroup,) = built.applied
    assert built.created == []
    assert isinstance(podgroup, dict)
    return podgroup


def test_coscheduling_podgroup_counts_initializers_and_multiplies_requests() -> None:
    built = build_objects(
        trainjob(), gang_runtime({"coscheduling": {"scheduleTimeoutSeconds": 120}})
    )
    assert the_podgroup(built) == {
        "apiVersion": "scheduling.x-k8s.io/v1alpha1",
        "kind": "PodGroup",
        "metadata": {
            "name": "tj",
            "namespace": "team-a",
            "labels": {TRAINJOB_NAME_LABEL: "tj"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "minMember": 3,  # 1 initializer + 2 nodes
            "minResources": {"cpu": "2", "memory": "5Gi"},  # 1 + 2x500m; 1Gi + 2x2Gi
            "scheduleTimeoutSeconds": 120,
        },
    }
    for name in ("dataset-initializer", "node"):
        meta = pod_meta(built.jobset, name)
        assert meta["labels"] == {"scheduling.x-k8s.io/pod-group": "tj"}
        assert "annotations" not in meta


def test_coscheduling_timeout_defaults_to_60_and_num_nodes_and_resources_per_node_count() -> None:
    job = trainjob(trainer={"numNodes": 4, "resourcesPerNode": {"requests": {"cpu": "2"}}})
    podgroup = the_podgroup(build_objects(job, gang_runtime({"coscheduling": {}})))
    assert podgroup["spec"] == {
        "minMember": 5,
        "minResources": {"cpu": "9", "memory": "9Gi"},  # 1 + 4x2 cpu; 1Gi + 4x2Gi
        "scheduleTimeoutSeconds": 60,
    }


def test_volcano_podgroup_queue_priority_class_and_network_topology() -> None:
    runtime = gang_runtime(
        {"volcano": {"networkTopology": {"mode": "hard", "highestTierAllowed": 2}}},
        annotations={"scheduling.volcano.sh/queue-name": "research"},
    )
    jobs = runtime["template"]["spec"]["replicatedJobs"]
    jobs[0]["template"]["spec"]["template"]["spec"]["priorityClassName"] = "low"
    jobs[1]["template"]["spec"]["template"]["spec"]["priorityClassName"] = "high"
    built = build_objects(trainjob(), runtime)
    assert the_podgroup(built) == {
        "apiVersion": "scheduling.volcano.sh/v1beta1",
        "kind": "PodGroup",
        "metadata": {
            "name": "tj",
            "namespace": "team-a",
            "labels": {TRAINJOB_NAME_LABEL: "tj"},
            "ownerReferences": [OWNER],
        },
        "spec": {
            "minMember": 3,
            "minResources": {"cpu": "2", "memory": "5Gi"},
            "queue": "research",
            "priorityClassName": "high",  # the last job that names one, as Go's loop leaves it
            "networkTopology": {"mode": "hard", "highestTierAllowed": 2},
        },
    }
    for name in ("dataset-initializer", "node"):
        meta = pod_meta(built.jobset, name)
        assert meta["annotations"] == {"scheduling.k8s.io/group-name": "tj"}
        assert "labels" not in meta


def test_volcano_without_queue_annotation_leaves_the_queue_to_the_crd_default() -> None:
    podgroup = the_podgroup(build_objects(trainjob(), gang_runtime({"volcano": {}})))
    assert podgroup["spec"] == {"minMember": 3, "minResources": {"cpu": "2", "memory": "5Gi"}}


def test_volcano_queue_from_a_runtime_patch_overrides_the_runtime() -> None:
    job = trainjob(
        runtimePatches=[
            {
                "manager": "example.com/kueue-like",
                "trainingRuntimeSpec": {
                    "template": {
                        "metadata": {"annotations": {"scheduling.volcano.sh/queue-name": "q2"}}
                    }
                },
            }
        ]
    )
    runtime = gang_runtime({"volcano": {}}, annotations={"scheduling.volcano.sh/queue-name": "q1"})
    assert the_podgroup(build_objects(job, runtime))["spec"]["queue"] == "q2"


def test_no_pod_group_policy_no_podgroup_no_label() -> None:
    built = build_objects(trainjob(), gang_runtime({}))
    assert built.applied == [] and built.created == []
    for name in ("dataset-initializer", "node"):
        assert pod_meta(built.jobset, name) == {}
    runtime = gang_runtime({})
    del runtime["podGroupPolicy"]
    assert build_objects(trainjob(), runtime).applied == []


def test_pod_label_merges_with_the_template_labels() -> None:
    runtime = gang_runtime({"coscheduling": {}})
    node = runtime["template"]["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]
    node["metadata"] = {"labels": {"app": "x"}, "annotations": {"keep": "me"}}
    jobset = build_jobset(trainjob(), runtime)
    assert pod_meta(jobset, "node") == {
        "labels": {"app": "x", "scheduling.x-k8s.io/pod-group": "tj"},
        "annotations": {"keep": "me"},
    }


def test_torchtune_runtime_with_coscheduling_counts_three_pods_and_only_requests() -> None:
    (runtime,) = [r for r in builtin_runtimes() if r["metadata"]["name"] == "torchtune-llama3.2-1b"]
    spec = runtime["spec"]
    spec["podGroupPolicy"] = {"coscheduling": {"scheduleTimeoutSeconds": 30}}
    job = trainjob(trainer={"command": ["tune", "run"]})
    job["spec"]["runtimeRef"]["name"] = "torchtune-llama3.2-1b"
    podgroup = the_podgroup(build_objects(job, spec))
    # The runtime asks for nvidia.com/gpu only as a limit: Go's PodRequests reads requests.
    assert podgroup["spec"] == {"minMember": 3, "minResources": {}, "scheduleTimeoutSeconds": 30}


def test_pod_requests_init_containers_sidecars_overhead_and_pod_level() -> None:
    spec: Obj = {
        "containers": [c("a", cpu="1", memory="1Gi"), c("b", cpu="500m")],
        "initContainers": [
            c("init-big", cpu="4", memory="512Mi"),
            {**c("sidecar", cpu="250m", memory="256Mi"), "restartPolicy": "Always"},
            c("init-after-sidecar", memory="2Gi"),
        ],
        "overhead": {"cpu": "100m"},
    }
    got = {name: amount for name, (amount, _) in pod_requests(spec, field_path="p").items()}
    # containers 1.5 cpu + sidecar 250m = 1.75 < init-big 4 -> 4; memory: 1Gi + 256Mi < 2Gi +
    # 256Mi (the init container after the sidecar runs beside it); then the overhead.
    assert got == {"cpu": Decimal("4.1"), "memory": Decimal((2048 + 256) * 1024 * 1024)}
    spec["resources"] = {"requests": {"cpu": "8"}}
    amount, binary = pod_requests(spec, field_path="p")["cpu"]
    assert (str(amount), binary) == ("8", False)


def test_a_request_that_is_not_a_quantity_is_a_build_error() -> None:
    runtime = gang_runtime({"coscheduling": {}})
    init_pod = runtime["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
    init_pod["spec"]["containers"][0]["resources"]["requests"]["memory"] = "lots"
    with pytest.raises(BuildError, match=r"replicatedJobs\[0\].*containers\[0\]\[memory\]"):
        build_objects(trainjob(), runtime)
