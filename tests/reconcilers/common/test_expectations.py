"""Expectations: UID-keyed, by name, AND over keys, timeout as a safety net."""

from __future__ import annotations

import pytest

from kubetrain.base.clock import FakeClock
from kubetrain.reconcilers.common.expectations import ExpectationKey, Expectations

PODS_W = ExpectationKey("worker", "pods")
SVC_W = ExpectationKey("worker", "services")


def test_unknown_job_is_satisfied() -> None:
    assert Expectations().satisfied("uid")


def test_and_semantics_over_pods_and_services() -> None:
    e = Expectations()
    e.expect_creations("u", PODS_W, ["p0", "p1"])
    e.expect_creations("u", SVC_W, ["p0"])
    e.observe_created("u", "pods", "p0")
    e.observe_created("u", "pods", "p1")
    assert not e.satisfied("u")  # services still pending: AND, not the reference's OR
    e.observe_created("u", "services", "p0")
    assert e.satisfied("u")
    assert len(e) == 0


def test_keyed_by_uid_not_name() -> None:
    e = Expectations()
    e.expect_creations("old-uid", PODS_W, ["j-worker-0"])
    # A job re-created under the same name has a new UID: no stall (trainer#1306).
    assert e.satisfied("new-uid")
    # An observation for the new job's pod does not satisfy the old job.
    e.observe_created("new-uid", "pods", "j-worker-0")
    assert not e.satisfied("old-uid")


def test_duplicate_and_foreign_observations_do_not_count() -> None:
    e = Expectations()
    e.expect_creations("u", PODS_W, ["a", "b"])
    e.observe_created("u", "pods", "a")
    e.observe_created("u", "pods", "a")
    e.observe_created("u", "pods", "zzz")
    assert e.pending("u") == {PODS_W: (frozenset({"b"}), frozenset())}


def test_deletions_pending_until_observed() -> None:
    e = Expectations()
    e.expect_deletions("u", PODS_W, ["a"])
    e.observe_created("u", "pods", "a")  # an update of the pod before the delete landed
    assert not e.satisfied("u")
    e.observe_deleted("u", "pods", "a")
    assert e.satisfied("u")


def test_timeout_releases_gate() -> None:
    clock = FakeClock()
    e = Expectations(timeout=10, clock=clock)
    e.expect_creations("u", PODS_W, ["a"])
    clock.advance(9.0)
    assert not e.satisfied("u")
    assert e.seconds_until_timeout("u") == pytest.approx(1.0)
    clock.advance(1.0)
    assert e.satisfied("u")
    assert e.pending("u") == {}


def test_forget_drops_job() -> None:
    e = Expectations()
    e.expect_creations("u", PODS_W, ["a"])
    e.forget("u")
    assert e.satisfied("u") and len(e) == 0


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Expectations(timeout=0)
