"""Pure parts of the simulator: quantities, pod requests, capacity fit, annotations, timelines."""

from __future__ import annotations

import pytest

from kubetrain.cluster.nodesim.behaviour import behaviour_of
from kubetrain.cluster.nodesim.capacity import NodeCapacity
from kubetrain.cluster.nodesim.options import NodeSimOptions
from kubetrain.cluster.nodesim.quantity import milli, pod_requests
from kubetrain.cluster.nodesim.timeline import build_timeline


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500m", 500),
        ("2", 2000),
        ("1.5", 1500),
        ("1Ki", 1024_000),
        ("1e3", 1_000_000),
        ("1n", 1),
        (3, 3000),
    ],
)
def test_quantities_in_milli_units(text: object, expected: int) -> None:
    assert milli(text) == expected


def test_bad_quantity_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"spec.containers\[0\].resources.requests\[cpu\]"):
        pod_requests({"spec": {"containers": [{"resources": {"requests": {"cpu": "lots"}}}]}})


def test_pod_requests_sum_containers_max_init_limits_fallback() -> None:
    pod = {
        "spec": {
            "containers": [
                {
                    "resources": {
                        "requests": {"cpu": "1"},
                        "limits": {"cpu": "4", "nvidia.com/gpu": "2"},
                    }
                },
                {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            ],
            "initContainers": [
                {"resources": {"requests": {"cpu": "3"}}},
                {"resources": {"requests": {"memory": "512Mi"}}},
            ],
        }
    }
    req = pod_requests(pod)
    assert req["cpu"] == 3000  # init max (3) beats the sum (1.5)
    assert req["memory"] == 2**30 * 1000  # sum of containers beats the init's 512Mi
    assert req["nvidia.com/gpu"] == 2000  # limit stands in for the missing request
    assert req["pods"] == 1000


def test_capacity_fit_spreads_and_explains() -> None:
    cap = NodeCapacity()
    for n in ("a", "b"):
        cap.add_node(n, {"cpu": 4000, "nvidia.com/gpu": 2000, "pods": 110_000}, {})
    gpu2 = {"nvidia.com/gpu": 2000, "pods": 1000}
    first = cap.fit(gpu2).node
    assert first is not None
    cap.hold("ns/p1", first, gpu2)
    second = cap.fit(gpu2).node
    assert second is not None and second != first
    cap.hold("ns/p2", second, gpu2)
    miss = cap.fit(gpu2)
    assert miss.node is None
    assert miss.message == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."
    assert cap.release("ns/p1") and not cap.release("ns/p1")
    assert cap.fit(gpu2).node == first
    both = cap.fit({"cpu": 8000, "nvidia.com/gpu": 4000})
    assert (
        both.message
        == "0/2 nodes are available: 2 Insufficient cpu, 2 Insufficient nvidia.com/gpu."
    )


def _behaviour(ann: dict[str, str], containers: tuple[str, ...] = ("main",)) -> object:
    pod = {
        "metadata": {
            "name": "p",
            "annotations": {"sim.kubetrain.dev/" + k: v for k, v in ann.items()},
        },
        "spec": {"containers": [{"name": c} for c in containers]},
    }
    return behaviour_of(pod, NodeSimOptions(default_run_seconds=2.0))


def _timeline(ann: dict[str, str], policy: str, containers: tuple[str, ...] = ("main",)) -> list:  # type: ignore[type-arg]
    return build_timeline(
        _behaviour(ann, containers),  # type: ignore[arg-type]
        restart_policy=policy,
        init_run_seconds=0.0,
        restart_delay_seconds=0.0,
    )


def test_timeline_never_success_and_failure() -> None:
    ok = _timeline({}, "Never")
    assert [(s.at, s.phase) for s in ok] == [(0.0, "Running"), (2.0, "Succeeded")]
    bad = _timeline({"exit-code": "3", "fail-after-seconds": "0.5"}, "Never")
    assert [(s.at, s.phase) for s in bad] == [(0.0, "Running"), (0.5, "Failed")]
    term = bad[-1].main[0].terminated
    assert term is not None and term.exit_code == 3 and term.reason == "Error"


def test_timeline_onfailure_restarts_in_place_then_succeeds() -> None:
    stages = _timeline(
        {"restarts": "2", "fail-after-seconds": "0.5", "run-seconds": "1"}, "OnFailure"
    )
    assert [(s.at, s.phase, s.main[0].restart_count) for s in stages] == [
        (0.0, "Running", 0),
        (0.5, "Running", 1),
        (1.0, "Running", 2),
        (2.0, "Succeeded", 2),
    ]
    last = stages[2].main[0].last
    assert last is not None and last.exit_code == 1 and last.finished == 1.0


def test_timeline_never_with_restarts_fails_on_first_crash() -> None:
    stages = _timeline({"restarts": "2"}, "Never")
    assert stages[-1].phase == "Failed" and stages[-1].main[0].restart_count == 0


def test_timeline_per_container_exit_codes_and_always() -> None:
    stages = _timeline({"exit-code-b": "7", "fail-after-seconds": "1"}, "Never", ("a", "b"))
    # a exits 1 after 1 s (fail-after alone means exit 1), b exits 7 after 1 s
    assert stages[-1].phase == "Failed"
    codes = [c.terminated.exit_code for c in stages[-1].main if c.terminated]
    assert codes == [1, 7]
    forever = _timeline({"restarts": "1"}, "Always")
    assert forever[-1].phase == "Running" and forever[-1].main[0].state == "running"
    assert forever[-1].main[0].restart_count == 1


def test_bad_annotation_falls_back_to_default() -> None:
    b = _behaviour({"run-seconds": "soon"})
    assert b.run_seconds == 2.0  # type: ignore[attr-defined]
