"""``--gang-scheduler-name`` -> the gang scheduler (``reconcilers/gang/flavour.py``)."""

from __future__ import annotations

import pytest

from kubetrain.informers.resource import PODGROUPS_SCHEDULER_PLUGINS, PODGROUPS_VOLCANO
from kubetrain.reconcilers.gang import GangScheduler, gang_scheduler_from_flag


@pytest.mark.parametrize("flag", ["volcano", "Volcano", "VOLCANO", " volcano "])
def test_volcano_in_any_case_is_volcano_with_its_podgroup(flag: str) -> None:
    gang = gang_scheduler_from_flag(flag)
    assert gang == GangScheduler(scheduler_name="volcano", volcano=True)
    assert gang.podgroup_resource == PODGROUPS_VOLCANO
    assert gang.podgroup_resource.api_version == "scheduling.volcano.sh/v1beta1"
    assert gang.crd_name == "podgroups.scheduling.volcano.sh"


def test_any_other_name_is_scheduler_plugins_with_that_scheduler_name() -> None:
    gang = gang_scheduler_from_flag("scheduler-plugins-scheduler")
    assert gang == GangScheduler(scheduler_name="scheduler-plugins-scheduler", volcano=False)
    assert gang.podgroup_resource == PODGROUPS_SCHEDULER_PLUGINS
    assert gang.podgroup_resource.api_version == "scheduling.x-k8s.io/v1alpha1"
    assert gang.crd_name == "podgroups.scheduling.x-k8s.io"
    assert "scheduler-plugins" in gang.installer_hint


@pytest.mark.parametrize("flag", ["", "  "])
def test_empty_is_off(flag: str) -> None:
    assert gang_scheduler_from_flag(flag) is None
