"""The condition algorithm of reference 2.4, example-based and property-based."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st
from jobkit import T0

from kubetrain.reconcilers.common import conditions as c


def apply(seq: list[tuple[str, str, str]]) -> list[dict]:
    conds: list[dict] = []
    for i, (ctype, status, reason) in enumerate(seq):
        conds = c.set_condition(conds, ctype, status, reason, "m", now=T0 + timedelta(seconds=i))
    return conds


def shape(conds: list[dict]) -> list[tuple[str, str]]:
    return [(x["type"], x["status"]) for x in conds]


def test_success_sequence() -> None:
    conds = apply(
        [
            ("Created", "True", "JCreated"),
            ("Running", "True", "JRunning"),
            ("Succeeded", "True", "JSucceeded"),
        ]
    )
    assert shape(conds) == [("Created", "True"), ("Running", "False"), ("Succeeded", "True")]


def test_fast_success_and_suspend_resume() -> None:
    assert shape(apply([("Created", "True", "a"), ("Succeeded", "True", "b")])) == [
        ("Created", "True"),
        ("Succeeded", "True"),
    ]
    conds = apply(
        [
            ("Created", "True", "JCreated"),
            ("Running", "True", "JRunning"),
            ("Running", "False", "JSuspended"),
            ("Suspended", "True", "JSuspended"),
        ]
    )
    assert shape(conds) == [("Created", "True"), ("Running", "False"), ("Suspended", "True")]
    conds = c.set_condition(conds, "Suspended", "False", "JResumed", "r", now=T0)
    assert conds[-1]["type"] == "Suspended" and conds[-1]["reason"] == "JResumed"


def test_same_status_and_reason_is_a_no_op_returning_same_list() -> None:
    conds = apply([("Running", "True", "R")])
    again = c.set_condition(conds, "Running", "True", "R", "other", now=T0 + timedelta(hours=1))
    assert again is conds


def test_transition_time_kept_when_status_unchanged() -> None:
    conds = apply([("Running", "True", "R1")])
    later = c.set_condition(conds, "Running", "True", "R2", "m", now=T0 + timedelta(hours=1))
    assert later[-1]["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    assert later[-1]["lastUpdateTime"] == "2025-01-01T13:00:00Z"
    flipped = c.set_condition(later, "Running", "False", "R3", "m", now=T0 + timedelta(hours=2))
    assert flipped[-1]["lastTransitionTime"] == "2025-01-01T14:00:00Z"


def test_failed_is_frozen_and_running_restarting_exclusive() -> None:
    conds = apply([("Running", "True", "a"), ("Restarting", "True", "b")])
    assert shape(conds) == [("Restarting", "True")]
    conds = c.set_condition(conds, "Running", "True", "a", "m", now=T0)
    assert shape(conds) == [("Running", "True")]
    conds = c.set_condition(conds, "Failed", "True", "f", "m", now=T0)
    assert shape(conds) == [("Running", "False"), ("Failed", "True")]
    assert c.set_condition(conds, "Succeeded", "True", "s", "m", now=T0) is conds


def test_helpers_and_reason() -> None:
    status = {"conditions": apply([("Created", "True", "a"), ("Suspended", "True", "b")])}
    assert c.is_suspended(status) and not c.is_finished(status)
    assert c.has_condition(status, "Created") and not c.is_running(status)
    assert c.reason("MPIJob", c.REASON_FAILED) == "MPIJobFailed"


steps = st.lists(
    st.tuples(
        st.sampled_from(c.CONDITION_TYPES),
        st.sampled_from(["True", "False"]),
        st.sampled_from(["r1", "r2"]),
    ),
    max_size=25,
)


@given(steps)
def test_invariants(seq: list[tuple[str, str, str]]) -> None:
    conds: list[dict] = []
    frozen: list[dict] | None = None
    for i, (ctype, status, reason) in enumerate(seq):
        before = conds
        conds = c.set_condition(conds, ctype, status, reason, "m", now=T0 + timedelta(seconds=i))
        if frozen is not None:
            assert conds == frozen, "a Failed job is frozen"
        types = [x["type"] for x in conds]
        assert len(types) == len(set(types)), "at most one condition per type"
        true = {x["type"] for x in conds if x["status"] == "True"}
        assert not {"Running", "Restarting"} <= true
        if c.is_failed({"conditions": conds}):
            frozen = conds
        assert before is conds or conds[-1]["type"] == ctype
