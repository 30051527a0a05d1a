"""The contention scenario's figures from pod samples (``GangTally``): admission by priority,
half-scheduled jobs and the room they hold, idle room while pods wait."""

from __future__ import annotations

import pytest

from kubetrain.bench.jobs import JobShape
from kubetrain.bench.scenarios.contention import (
    HALF_SCHEDULED_SECONDS,
    HIGH,
    LOW,
    GangTally,
    contention_job,
)


def test_a_job_with_some_pods_bound_for_long_is_half_scheduled_and_holds_room() -> None:
    tally = GangTally(capacity_pods=4, pods_per_job=4, expected_jobs=2)
    # a: 2 of 4 pods bound for 2 s; b: waits with nothing bound; room for 4, 2 used.
    for t in (0.0, 1.0, 2.0):
        tally.observe(
            t, [("a", True, False)] * 2 + [("a", False, False)] * 2 + [("b", False, False)] * 4
        )
    tally.observe(3.0, [("a", True, False)] * 4 + [("b", False, False)] * 4)
    figures = tally.figures({"a": -1.0, "b": 0.0}, {"a": HIGH, "b": LOW})
    assert tally.half_scheduled == {"a"}
    assert figures["half_scheduled_jobs"] == 1
    assert figures["held_pod_seconds"] == pytest.approx(2 * 3.0)
    # Between samples 0..3 pods waited; half the room was empty for 3 s of 3.
    assert figures["idle_capacity_while_waiting"] == pytest.approx(0.5)
    assert figures["admission_seconds_high_p50"] == pytest.approx(4.0)
    assert figures["admission_seconds_low_p50"] is None  # b never got all its pods bound


def test_a_group_bound_pod_by_pod_within_a_moment_is_not_half_scheduled() -> None:
    tally = GangTally(capacity_pods=8, pods_per_job=4, expected_jobs=1)
    tally.observe(0.0, [("a", True, False)] + [("a", False, False)] * 3)
    tally.observe(HALF_SCHEDULED_SECONDS / 4, [("a", True, False)] * 4)
    tally.observe(2.0, [("a", True, True)] * 4)  # finished pods keep their node
    assert tally.half_scheduled == set()
    assert tally.all_bound_at == {"a": HALF_SCHEDULED_SECONDS / 4}


def test_no_waiting_pods_no_idle_figure() -> None:
    tally = GangTally(capacity_pods=8, pods_per_job=2, expected_jobs=1)
    tally.observe(0.0, [("a", True, False)] * 2)
    tally.observe(1.0, [("a", True, False)] * 2)
    assert tally.figures({}, {})["idle_capacity_while_waiting"] is None


def test_contention_jobs_carry_their_priority_class_in_policy_and_pods() -> None:
    job = contention_job("j", "ns", JobShape(), HIGH)
    assert job["spec"]["runPolicy"]["schedulingPolicy"] == {"priorityClass": HIGH}
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        assert replica["template"]["spec"]["priorityClassName"] == HIGH


def test_a_job_without_any_pod_yet_waits_too() -> None:
    """With Volcano a job waiting for room has no pods at all: the room left idle meanwhile
    still counts."""
    tally = GangTally(capacity_pods=4, pods_per_job=2, expected_jobs=2)
    tally.observe(0.0, [("a", True, False)] * 2)  # b: created, no pods
    tally.observe(2.0, [("a", True, True)] * 2 + [("b", True, False)] * 2)
    tally.observe(3.0, [("a", True, True)] * 2 + [("b", True, True)] * 2)
    assert tally.figures({}, {})["idle_capacity_while_waiting"] == pytest.approx(0.5)
