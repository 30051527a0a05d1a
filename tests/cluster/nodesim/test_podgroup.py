"""The pure PodGroup rules: membership, spec reading, each flavour's status."""

from __future__ import annotations

from kubetrain.cluster.nodesim.podgroup import (
    Counts,
    GroupSpec,
    group_of,
    plugins_status,
    volcano_status,
)

BOTH = frozenset({"volcano", "plugins"})


def _pod(scheduler: str, *, annotation: str = "", label: str = "") -> dict:  # type: ignore[type-arg]
    meta: dict = {"name": "p", "namespace": "ns"}  # type: ignore[type-arg]
    if annotation:
        meta["annotations"] = {"scheduling.k8s.io/group-name": annotation}
    if label:
        meta["labels"] = {"scheduling.x-k8s.io/pod-group": label}
    return {"metadata": meta, "spec": {"schedulerName": scheduler}}


def test_membership_by_scheduler_name_and_flavour_served() -> None:
    assert group_of(_pod("volcano", annotation="g"), BOTH) == ("volcano", "ns", "g")
    assert group_of(_pod("volcano", annotation="g"), frozenset({"plugins"})) is None
    assert group_of(_pod("scheduler-plugins-scheduler", label="g"), BOTH) == ("plugins", "ns", "g")
    assert group_of(_pod("default-scheduler", label="g"), BOTH) is None  # kube ignores the label
    assert group_of(_pod("volcano", label="g"), BOTH) is None
    assert group_of(_pod("volcano"), BOTH) is None


def test_spec_reservation_counts_one_pod_per_member() -> None:
    spec = GroupSpec.of(
        {
            "metadata": {"name": "g"},
            "spec": {"minMember": 3, "minResources": {"cpu": "1500m", "nvidia.com/gpu": 3}},
        }
    )
    assert spec.reservation == {"cpu": 1500, "nvidia.com/gpu": 3000, "pods": 3000}
    assert not GroupSpec.of({"metadata": {}, "spec": {"minResources": {"cpu": "x"}}}).valid


def test_volcano_phases_and_unchanged_status_stays_equal() -> None:
    spec = GroupSpec.of({"metadata": {}, "spec": {"minMember": 2}})
    pending = volcano_status(
        {}, spec, Counts(waiting=2), admitted=False, reason="NotEnoughResources", now="T1"
    )
    assert pending["phase"] == "Pending"
    assert pending["conditions"][0]["reason"] == "NotEnoughResources"
    # decided again later: equal, so nothing is written
    again = volcano_status(
        pending, spec, Counts(waiting=2), admitted=False, reason="NotEnoughResources", now="T2"
    )
    assert again == pending
    inqueue = volcano_status(pending, spec, Counts(), admitted=True, reason="", now="T3")
    assert inqueue["phase"] == "Inqueue"
    running = volcano_status(
        inqueue, spec, Counts(allocated=2, running=1), admitted=True, reason="", now="T4"
    )
    assert running["phase"] == "Running" and running["running"] == 1
    assert running["conditions"][0]["type"] == "Scheduled"
    done = volcano_status(running, spec, Counts(succeeded=2), admitted=True, reason="", now="T5")
    assert done["phase"] == "Completed" and done["succeeded"] == 2 and "running" not in done


def test_scheduler_plugins_phases() -> None:
    spec = GroupSpec.of({"metadata": {}, "spec": {"minMember": 2}})
    assert plugins_status({}, spec, Counts())["phase"] == "Pending"
    assert plugins_status({}, spec, Counts(waiting=2))["phase"] == "Scheduling"
    assert (
        plugins_status({"phase": "Scheduling"}, spec, Counts(allocated=2, running=2))["phase"]
        == "Running"
    )
    assert plugins_status({"phase": "Running"}, spec, Counts(succeeded=2))["phase"] == "Finished"
    assert (
        plugins_status({"phase": "Running"}, spec, Counts(failed=1, allocated=1, running=1))[
            "phase"
        ]
        == "Failed"
    )
