"""How a pod joins its gang (``reconcilers/gang/decorate.py``)."""

from __future__ import annotations

from kubetrain.base.objects import Obj
from kubetrain.reconcilers.gang import GangScheduler, decorate_pod_for_gang

VOLCANO = GangScheduler(scheduler_name="volcano", volcano=True)
PLUGINS = GangScheduler(scheduler_name="sp-scheduler", volcano=False)


def pod(**spec: object) -> Obj:
    return {
        "metadata": {"name": "j-worker-0", "labels": {"a": "b"}, "annotations": {"c": "d"}},
        "spec": {"containers": [], **spec},
    }


def test_volcano_sets_scheduler_name_and_group_annotations() -> None:
    body = pod()
    assert decorate_pod_for_gang(VOLCANO, body, job_name="j", rtype="Worker") == []
    assert body["spec"]["schedulerName"] == "volcano"
    assert body["metadata"]["annotations"] == {
        "c": "d",
        "scheduling.k8s.io/group-name": "j",
        "volcano.sh/task-spec": "worker",
    }
    assert body["metadata"]["labels"] == {"a": "b"}


def test_scheduler_plugins_sets_scheduler_name_and_pod_group_label() -> None:
    body = pod()
    assert decorate_pod_for_gang(PLUGINS, body, job_name="j", rtype="Master") == []
    assert body["spec"]["schedulerName"] == "sp-scheduler"
    assert body["metadata"]["labels"] == {"a": "b", "scheduling.x-k8s.io/pod-group": "j"}
    assert body["metadata"]["annotations"] == {"c": "d"}


def test_a_template_naming_another_scheduler_keeps_it_with_a_warning() -> None:
    body = pod(schedulerName="my-scheduler")
    events = decorate_pod_for_gang(VOLCANO, body, job_name="j", rtype="PS")
    assert body["spec"]["schedulerName"] == "my-scheduler"
    assert [(e.type, e.reason) for e in events] == [("Warning", "SetPodTemplateSchedulerName")]
    assert "it will not be overwritten" in events[0].message
    assert "PS" in events[0].message and "my-scheduler" in events[0].message
    # the group annotations are still set: the pod belongs to the group whoever schedules it
    assert body["metadata"]["annotations"]["scheduling.k8s.io/group-name"] == "j"


def test_a_template_naming_the_gang_scheduler_itself_is_no_warning() -> None:
    body = pod(schedulerName="volcano")
    assert decorate_pod_for_gang(VOLCANO, body, job_name="j", rtype="Worker") == []
