"""Gang scheduling of MPIJob v2beta1, ported from mpi-operator v0.8.2's
``pkg/controller/podgroup_test.go`` (``TestNewPodGroup``, ``TestCalcPriorityClassName``,
``TestDecoratePodTemplateSpec``, ``TestCalculatePGMinResources``, ``TestAddResources``,
``TestCalculateMinAvailable``, ``TestReplicasOrder``) plus ``pgSpecsAreEqual`` and the update.

Go compares quantities semantically; the expectations here are the canonical strings Go would
print for the same values.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.common.decision import SpecError
from kubetrain.reconcilers.gang.flavour import GangScheduler, gang_scheduler_from_flag
from kubetrain.reconcilers.gang.view import PriorityLookup
from kubetrain.reconcilers.mpiv2 import podgroup as pg

from .mpijobs import UID, mpijob

VOLCANO = GangScheduler(scheduler_name="volcano", volcano=True)
PLUGINS = GangScheduler(scheduler_name="default-scheduler", volcano=False)

OWNER = {
    "apiVersion": "kubeflow.org/v2beta1",
    "kind": "MPIJob",
    "name": "test",
    "uid": UID,
    "controller": True,
    "blockOwnerDeletion": True,
}

MIN_RESOURCES = {"cpu": "100", "memory": "512Gi", "example.com/gpu": "40"}
MIN_RESOURCES_NO_MIN_MEMBER = {"cpu": "1", "memory": "2Gi"}


def no_classes(name: str) -> int | None:
    return None


def classes(**values: int) -> PriorityLookup:
    return values.get


def template(*requests: dict[str, str], priority_class: str | None = None) -> dict[str, Any]:
    """A pod template whose containers request ``requests``."""
    spec: dict[str, Any] = {
        "containers": [{"resources": {"requests": dict(r)}} for r in requests] or [{}]
    }
    if priority_class:
        spec["priorityClassName"] = priority_class
    return {"spec": spec}


def job(
    *,
    workers: int | None,
    launcher: dict[str, Any],
    worker: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Obj:
    out = mpijob(
        "test",
        "ns",
        workers=workers,
        launcher_template=launcher,
        worker_template=worker,
        runPolicy={"schedulingPolicy": policy} if policy is not None else {},
        **spec,
    )
    if annotations:
        out["metadata"]["annotations"] = annotations
    return out


def pod_group(api_version: str, spec: dict[str, Any]) -> Obj:
    return {
        "apiVersion": api_version,
        "kind": "PodGroup",
        "metadata": {"name": "test", "namespace": "ns", "ownerReferences": [OWNER]},
        "spec": spec,
    }


def volcano_pg(spec: dict[str, Any]) -> Obj:
    return pod_group("scheduling.volcano.sh/v1beta1", spec)


def plugins_pg(spec: dict[str, Any]) -> Obj:
    return pod_group("scheduling.x-k8s.io/v1alpha1", spec)


# -- TestNewPodGroup -----------------------------------------------------------------------------

ALL_POLICY_FIELDS = job(
    annotations={"scheduling.volcano.sh/queue-name": "project-x"},
    policy={
        "minAvailable": 2,
        "queue": "project-y",
        "priorityClass": "high",
        "minResources": MIN_RESOURCES,
        "scheduleTimeoutSeconds": 100,
    },
    workers=1000,
    launcher=template({"cpu": "1", "memory": "2Gi"}),
    worker=template({"cpu": "10", "memory": "20Gi"}),
)
POLICY_NIL = job(
    annotations={"scheduling.volcano.sh/queue-name": "project-x"},
    workers=2,
    launcher=template({"cpu": "1", "memory": "2Gi"}, priority_class="high"),
    worker=template({"cpu": "10", "memory": "20Gi"}),
)
NO_WORKER = job(
    annotations={"scheduling.volcano.sh/queue-name": "project-x"},
    runLauncherAsWorker=True,
    policy={
        "minAvailable": 1,
        "queue": "project-y",
        "priorityClass": "high",
        "scheduleTimeoutSeconds": 100,
    },
    workers=None,
    launcher=template({"cpu": "1", "memory": "2Gi"}),
)


@pytest.mark.parametrize(
    ("mpi_job", "want_volcano", "want_plugins"),
    [
        pytest.param(
            ALL_POLICY_FIELDS,
            {
                "minMember": 2,
                "queue": "project-y",
                "priorityClassName": "high",
                "minResources": MIN_RESOURCES,
            },
            {"minMember": 2, "minResources": MIN_RESOURCES, "scheduleTimeoutSeconds": 100},
            id="all schedulingPolicy fields are set",
        ),
        pytest.param(
            POLICY_NIL,
            {
                "minMember": 3,
                "queue": "project-x",
                "priorityClassName": "high",
                "minResources": {"cpu": "21", "memory": "42Gi"},
            },
            {
                "minMember": 3,
                "scheduleTimeoutSeconds": 0,
                "minResources": {"cpu": "21", "memory": "42Gi"},
            },
            id="schedulingPolicy is nil",
        ),
        pytest.param(
            NO_WORKER,
            {
                "minMember": 1,
                "queue": "project-y",
                "priorityClassName": "high",
                "minResources": MIN_RESOURCES_NO_MIN_MEMBER,
            },
            {
                "minMember": 1,
                "minResources": MIN_RESOURCES_NO_MIN_MEMBER,
                "scheduleTimeoutSeconds": 100,
            },
            id="no worker no MinResources",
        ),
    ],
)
def test_new_pod_group(mpi_job: Obj, want_volcano: Obj, want_plugins: Obj) -> None:
    before = copy.deepcopy(mpi_job)
    assert pg.new_pod_group(mpi_job, VOLCANO, priority_classes=no_classes) == volcano_pg(
        want_volcano
    )
    assert pg.new_pod_group(mpi_job, PLUGINS, priority_classes=no_classes) == plugins_pg(
        want_plugins
    )
    assert mpi_job == before


def test_new_pod_group_with_flag_schedulers() -> None:
    volcano = gang_scheduler_from_flag("Volcano")
    plugins = gang_scheduler_from_flag("scheduler-plugins-scheduler")
    assert volcano is not None and plugins is not None
    assert pg.new_pod_group(POLICY_NIL, volcano, priority_classes=no_classes)["apiVersion"] == (
        "scheduling.volcano.sh/v1beta1"
    )
    assert pg.new_pod_group(POLICY_NIL, plugins, priority_classes=no_classes)["apiVersion"] == (
        "scheduling.x-k8s.io/v1alpha1"
    )


def test_new_pod_group_omits_zero_values() -> None:
    """Go's omitempty: no queue, no priorityClassName, minMember 0 absent; Volcano keeps an empty
    minResources (a pointer), scheduler-plugins drops it."""
    mpi_job = job(policy={"minAvailable": 0}, workers=1, launcher=template())
    assert pg.new_pod_group(mpi_job, VOLCANO, priority_classes=no_classes)["spec"] == {}
    assert pg.new_pod_group(mpi_job, PLUGINS, priority_classes=no_classes)["spec"] == {
        "scheduleTimeoutSeconds": 0
    }
    no_requests = job(workers=1, launcher=template())
    assert pg.new_pod_group(no_requests, VOLCANO, priority_classes=no_classes)["spec"] == {
        "minMember": 2,
        "minResources": {},
    }
    assert pg.new_pod_group(no_requests, PLUGINS, priority_classes=no_classes)["spec"] == {
        "minMember": 2,
        "scheduleTimeoutSeconds": 0,
    }


def test_given_min_resources_are_canonical() -> None:
    mpi_job = job(
        policy={"minResources": {"cpu": "0.5", "memory": "1536Mi", "nvidia.com/gpu": 2}},
        workers=1,
        launcher=template(),
    )
    assert pg.new_pod_group(mpi_job, VOLCANO, priority_classes=no_classes)["spec"][
        "minResources"
    ] == {"cpu": "500m", "memory": "1536Mi", "nvidia.com/gpu": "2"}


# -- TestCalcPriorityClassName -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("launcher_class", "worker_class", "policy", "want"),
    [
        pytest.param(None, None, {"priorityClass": "high"}, "high", id="use schedulingPolicy"),
        pytest.param("high", "low", None, "high", id="use launcher"),
        pytest.param(None, "low", None, "low", id="use worker"),
        pytest.param(None, None, None, "", id="nothing"),
    ],
)
def test_priority_class_name(
    launcher_class: str | None, worker_class: str | None, policy: Obj | None, want: str
) -> None:
    mpi_job = job(
        policy=policy,
        workers=1,
        launcher=template(priority_class=launcher_class),
        worker=template(priority_class=worker_class),
    )
    assert pg.priority_class_name(mpi_job) == want


def test_volcano_queue() -> None:
    annotated = {"scheduling.volcano.sh/queue-name": "project-x"}
    assert pg.volcano_queue(job(workers=0, launcher=template(), annotations=annotated)) == (
        "project-x"
    )
    assert (
        pg.volcano_queue(
            job(workers=0, launcher=template(), annotations=annotated, policy={"queue": "y"})
        )
        == "y"
    )
    assert pg.volcano_queue(job(workers=0, launcher=template())) == ""


# -- TestDecoratePodTemplateSpec -----------------------------------------------------------------


def test_decorate_pod_template() -> None:
    empty: Obj = {}
    assert pg.decorate_pod_template(empty, "test-mpijob", VOLCANO) == {
        "metadata": {"annotations": {"scheduling.k8s.io/group-name": "test-mpijob"}},
        "spec": {"schedulerName": "volcano"},
    }
    assert pg.decorate_pod_template(empty, "test-mpijob", PLUGINS) == {
        "metadata": {"labels": {"scheduling.x-k8s.io/pod-group": "test-mpijob"}},
        "spec": {"schedulerName": "default-scheduler"},
    }
    assert empty == {}


def test_decorate_pod_template_overwrites_scheduler_and_keeps_the_rest() -> None:
    original: Obj = {
        "metadata": {"labels": {"app": "x"}, "annotations": {"a": "b"}},
        "spec": {"schedulerName": "other", "containers": [{"name": "c"}]},
    }
    before = copy.deepcopy(original)
    assert pg.overwritten_scheduler_name(original, PLUGINS) == "other"
    out = pg.decorate_pod_template(original, "job", PLUGINS)
    assert out == {
        "metadata": {
            "labels": {"app": "x", "scheduling.x-k8s.io/pod-group": "job"},
            "annotations": {"a": "b"},
        },
        "spec": {"schedulerName": "default-scheduler", "containers": [{"name": "c"}]},
    }
    assert original == before
    assert pg.overwritten_scheduler_name(out, PLUGINS) is None
    assert pg.overwritten_scheduler_name({"spec": {}}, VOLCANO) is None


# -- TestCalculatePGMinResources -----------------------------------------------------------------


def test_min_resources_given() -> None:
    mpi_job = job(policy={"minResources": MIN_RESOURCES}, workers=0, launcher=template())
    for members in (None, 0, 3):
        assert pg.min_resources(mpi_job, members, priority_classes=no_classes) == MIN_RESOURCES


def test_min_resources_min_member_zero() -> None:
    mpi_job = job(workers=2, launcher=template({"cpu": "2"}))
    assert pg.min_resources(mpi_job, 0, priority_classes=no_classes) is None


@pytest.mark.parametrize(
    ("mpi_job", "members", "lookup", "want"),
    [
        pytest.param(
            job(
                workers=2,
                launcher=template({"cpu": "2", "memory": "1Gi"}),
                worker=template({"cpu": "10", "memory": "32Gi"}),
            ),
            3,
            no_classes,
            {"cpu": "22", "memory": "65Gi"},
            id="volcano: without priorityClass",
        ),
        pytest.param(
            job(workers=None, launcher=template({"cpu": "2", "memory": "1Gi"})),
            1,
            no_classes,
            {"cpu": "2", "memory": "1Gi"},
            id="volcano: without worker without priorityClass",
        ),
        pytest.param(
            job(
                workers=2,
                launcher=template({"cpu": "2", "memory": "1Gi"}),
                worker=template({"cpu": "10", "memory": "32Gi"}, {"cpu": "50", "memory": "512Gi"}),
            ),
            None,
            no_classes,
            {"cpu": "122", "memory": "1089Gi"},
            id="scheduler-plugins: without priorityClass",
        ),
        pytest.param(
            job(
                workers=2,
                launcher=template({"cpu": "2", "memory": "2Gi"}, priority_class="non-existence"),
                worker=template({"cpu": "5", "memory": "16Gi"}, priority_class="non-existence"),
            ),
            2,
            no_classes,
            {"cpu": "7", "memory": "18Gi"},
            id="scheduler-plugins: with non-existence priorityClass",
        ),
        pytest.param(
            job(
                workers=100,
                launcher=template({"cpu": "2", "memory": "4Gi"}, priority_class="high"),
                worker=template({"cpu": "20", "memory": "64Gi"}, priority_class="low"),
            ),
            2,
            classes(high=100_010, low=10_010),
            {"cpu": "22", "memory": "68Gi"},
            id="scheduler-plugins: with existence priorityClass",
        ),
    ],
)
def test_min_resources_calculated(
    mpi_job: Obj, members: int | None, lookup: PriorityLookup, want: dict[str, str]
) -> None:
    before = copy.deepcopy(mpi_job)
    assert pg.min_resources(mpi_job, members, priority_classes=lookup) == want
    assert mpi_job == before


def test_min_resources_lower_priority_launcher_is_the_one_cut() -> None:
    """Go cuts the second of the priority order to ``minMember - 1``, whichever it is: with a
    higher-priority worker, all workers count and the launcher is cut to minMember - 1."""
    mpi_job = job(
        workers=4,
        launcher=template({"cpu": "1"}, priority_class="low"),
        worker=template({"cpu": "10"}, priority_class="high"),
    )
    lookup = classes(high=1000, low=1)
    assert pg.min_resources(mpi_job, 3, priority_classes=lookup) == {"cpu": "42"}
    assert pg.min_resources(mpi_job, 1, priority_classes=lookup) == {"cpu": "40"}


def test_min_resources_equal_priority_without_workers_is_none() -> None:
    """Equal priorities cut the workers; an extra replica type without a Worker gives up."""
    mpi_job = job(workers=None, launcher=template({"cpu": "1"}))
    mpi_job["spec"]["mpiReplicaSpecs"]["Other"] = {"replicas": 3, "template": template()}
    assert pg.min_resources(mpi_job, 2, priority_classes=no_classes) is None


def test_min_resources_only_counts_named_classes() -> None:
    calls: list[str] = []

    def lookup(name: str) -> int | None:
        calls.append(name)
        return 5

    mpi_job = job(
        workers=3,
        launcher=template({"cpu": "1"}, priority_class="high"),
        worker=template({"cpu": "1"}),
    )
    assert pg.min_resources(mpi_job, 2, priority_classes=lookup) == {"cpu": "2"}
    assert calls == ["high"]


# -- TestAddResources ----------------------------------------------------------------------------


def resources_job(resources: dict[str, Any], replicas: int = 1) -> Obj:
    return job(
        workers=replicas,
        launcher={"spec": {"containers": [{}]}},
        worker={"spec": {"containers": [{"resources": resources}]}},
    )


@pytest.mark.parametrize(
    ("resources", "want"),
    [
        pytest.param({"requests": {"cpu": "20"}}, {"cpu": "20"}, id="add a new resource"),
        pytest.param(
            {
                "requests": {"cpu": "10", "memory": "16Gi"},
                "limits": {"example.com/gpu": "8", "cpu": "20", "memory": "32Gi"},
            },
            {"example.com/gpu": "8", "cpu": "10", "memory": "16Gi"},
            id="same resource names exist in requests and limits",
        ),
        pytest.param({"limits": {"cpu": "3"}}, {"cpu": "3"}, id="limits only"),
        pytest.param({}, {}, id="no resources"),
    ],
)
def test_add_resources(resources: dict[str, Any], want: dict[str, str]) -> None:
    assert pg.min_resources(resources_job(resources), None, priority_classes=no_classes) == want


def test_add_resources_increases_a_quantity() -> None:
    mpi_job = job(
        workers=1,
        launcher=template({"memory": "20Gi"}),
        worker=template({"memory": "10Gi"}),
    )
    assert pg.min_resources(mpi_job, None, priority_classes=no_classes) == {"memory": "30Gi"}


def test_add_resources_zero_replicas_still_names_the_resource() -> None:
    """Go multiplies by 0 and adds the (zero) quantity under its name."""
    assert pg.min_resources(
        resources_job({"requests": {"nvidia.com/gpu": "1"}}, replicas=0),
        1,
        priority_classes=no_classes,
    ) == {"nvidia.com/gpu": "0"}


def test_bad_quantity_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"Worker\].*requests\[cpu\]"):
        pg.min_resources(
            resources_job({"requests": {"cpu": "lots"}}), None, priority_classes=no_classes
        )


# -- TestCalculateMinAvailable -------------------------------------------------------------------


def test_min_member() -> None:
    assert pg.min_member(job(policy={"minAvailable": 2}, workers=1000, launcher=template())) == 2
    assert pg.min_member(job(workers=99, launcher=template())) == 100
    assert pg.min_member(job(workers=None, launcher=template())) == 1


# -- TestReplicasOrder ---------------------------------------------------------------------------


def test_equal_priority_cuts_the_workers() -> None:
    """Launcher and workers at the same priority (both 'same', or neither named): the workers
    are the lower priority, cut to minMember - 1."""
    mpi_job = job(
        workers=2,
        launcher=template({"cpu": "1"}, priority_class="same"),
        worker=template({"cpu": "10"}, priority_class="same"),
    )
    assert pg.min_resources(mpi_job, 2, priority_classes=classes(same=7)) == {"cpu": "11"}


def test_higher_priority_launcher_first() -> None:
    mpi_job = job(
        workers=2,
        launcher=template({"cpu": "1"}, priority_class="high"),
        worker=template({"cpu": "10"}),
    )
    assert pg.min_resources(mpi_job, 2, priority_classes=classes(high=1)) == {"cpu": "11"}


# -- pgSpecsAreEqual and updatePodGroup ----------------------------------------------------------


def test_pod_group_needs_update_semantic_equality() -> None:
    desired = pg.new_pod_group(POLICY_NIL, VOLCANO, priority_classes=no_classes)
    current = copy.deepcopy(desired)
    current["metadata"]["resourceVersion"] = "7"
    current["status"] = {"phase": "Running"}
    current["spec"]["minResources"] = {"cpu": "21000m", "memory": "43008Mi"}
    current["spec"]["minTaskMember"] = {}
    assert not pg.pod_group_needs_update(current, desired)

    for field, value in [
        ("minMember", 4),
        ("queue", "other"),
        ("priorityClassName", "low"),
        ("minResources", {"cpu": "22", "memory": "42Gi"}),
        ("minResources", {"cpu": "21"}),
        ("minTaskMember", {"Worker": 1}),
    ]:
        changed = copy.deepcopy(current)
        changed["spec"][field] = value
        assert pg.pod_group_needs_update(changed, desired), field
    removed = copy.deepcopy(current)
    del removed["spec"]["minResources"]
    assert pg.pod_group_needs_update(removed, desired)


def test_pod_group_needs_update_pointer_fields() -> None:
    """Volcano's minResources is a pointer: absent differs from {}; scheduler-plugins' is a
    map (absent equals {}) and its scheduleTimeoutSeconds a pointer (absent differs from 0)."""
    volcano = volcano_pg({"minMember": 1, "minResources": {}})
    assert pg.pod_group_needs_update(volcano_pg({"minMember": 1}), volcano)
    assert not pg.pod_group_needs_update(volcano_pg({"minMember": 1, "minResources": {}}), volcano)
    assert not pg.pod_group_needs_update(
        volcano_pg({"minMember": 1, "minResources": {}, "queue": ""}), volcano
    )
    assert pg.pod_group_needs_update(
        volcano_pg({"minMember": 1, "minResources": {}, "networkTopology": {}}), volcano
    )

    plugins = plugins_pg({"minMember": 1, "scheduleTimeoutSeconds": 0})
    assert not pg.pod_group_needs_update(
        plugins_pg({"minMember": 1, "scheduleTimeoutSeconds": 0, "minResources": {}}), plugins
    )
    assert pg.pod_group_needs_update(plugins_pg({"minMember": 1}), plugins)
    assert pg.pod_group_needs_update(
        plugins_pg({"minMember": 1, "scheduleTimeoutSeconds": 5}), plugins
    )
    assert not pg.pod_group_needs_update(
        plugins_pg({"minMember": 0, "scheduleTimeoutSeconds": 0}),
        plugins_pg({"scheduleTimeoutSeconds": 0}),
    )


def test_with_pod_group_spec_replaces_the_spec_only() -> None:
    desired = pg.new_pod_group(ALL_POLICY_FIELDS, PLUGINS, priority_classes=no_classes)
    current = plugins_pg({"minMember": 9, "minResources": {"cpu": "1"}})
    current["metadata"]["resourceVersion"] = "42"
    current["status"] = {"phase": "Scheduling"}
    before_current, before_desired = copy.deepcopy(current), copy.deepcopy(desired)

    updated = pg.with_pod_group_spec(current, desired)

    assert updated["spec"] == desired["spec"]
    assert updated["metadata"] == current["metadata"]
    assert updated["status"] == {"phase": "Scheduling"}
    assert not pg.pod_group_needs_update(updated, desired)
    assert current == before_current and desired == before_desired
    updated["spec"]["minResources"]["cpu"] = "1"
    assert desired == before_desired
