"""Ingest transforms: what they drop, what they keep, idempotence, and the memory budget."""

from __future__ import annotations

import copy

import pytest
from informer_samples import finished_job_with_pods, finished_pytorchjob, reparsed

from kubetrain.informers.memory import deep_sizeof
from kubetrain.informers.transforms import (
    LAST_APPLIED_ANNOTATION,
    compact_finished,
    compact_when,
    compose,
    has_true_condition,
    metadata_only,
    phase_in,
    strip_managed_fields,
)

FINISHED_POD = compact_when(phase_in("Succeeded", "Failed"), keep=("status.phase",))


def test_strip_managed_fields_drops_them_and_last_applied_only() -> None:
    job = reparsed(finished_pytorchjob("j"))
    job["metadata"]["annotations"]["keep.me/too"] = "yes"
    out = strip_managed_fields(job)
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["annotations"] == {"keep.me/too": "yes"}
    assert out["spec"] == finished_pytorchjob("j")["spec"]
    assert strip_managed_fields(copy.deepcopy(out)) == out


def test_strip_removes_an_annotations_map_left_empty() -> None:
    job = reparsed(finished_pytorchjob("j"))
    assert list(job["metadata"]["annotations"]) == [LAST_APPLIED_ANNOTATION]
    assert "annotations" not in strip_managed_fields(job)["metadata"]


def test_metadata_only_keeps_identity_metadata_and_chosen_paths() -> None:
    _, pod, *_ = [reparsed(o) for o in finished_job_with_pods("j")]
    out = metadata_only(["status.phase", "status.containerStatuses", "spec.missing.path"])(pod)
    assert set(out) == {"apiVersion", "kind", "metadata", "status"}
    assert out["status"]["phase"] == "Succeeded"
    assert out["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert "managedFields" not in out["metadata"]
    assert out["metadata"]["labels"]["training.kubeflow.org/replica-type"] == "master"


@pytest.mark.parametrize("bad", ["", "status..phase", "metadata.labels"])
def test_metadata_only_rejects_bad_paths_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match="keep path"):
        metadata_only([bad])


def test_compact_when_only_touches_matching_objects() -> None:
    _, done, *_ = [reparsed(o) for o in finished_job_with_pods("j")]
    running = reparsed(done)
    running["status"]["phase"] = "Running"
    assert "spec" not in FINISHED_POD(done)
    kept = FINISHED_POD(running)
    assert "spec" in kept and "managedFields" not in kept["metadata"]


def test_compact_finished_keeps_what_a_finished_job_needs_and_is_idempotent() -> None:
    job = reparsed(finished_pytorchjob("j", "ns"))
    out = compact_finished()(job)
    assert out["spec"] == {"runPolicy": {"cleanPodPolicy": "None", "ttlSecondsAfterFinished": 3600}}
    assert out["status"]["conditions"] == [
        {
            "type": "Succeeded",
            "status": "True",
            "reason": "PyTorchJobSucceeded",
            "lastTransitionTime": "2024-05-01T10:05:00Z",
        }
    ]
    assert out["status"]["completionTime"] == "2024-05-01T10:05:00Z"
    assert out["metadata"]["uid"] == job["metadata"]["uid"]
    assert has_true_condition("Succeeded")(out)  # the predicate still holds after compaction
    assert compact_finished()(copy.deepcopy(out)) == out


def test_compact_finished_leaves_running_jobs_whole_but_stripped() -> None:
    job = reparsed(finished_pytorchjob("j"))
    job["status"]["conditions"] = job["status"]["conditions"][:2]  # Created, Running: not done
    out = compact_finished()(job)
    assert "pytorchReplicaSpecs" in out["spec"]
    assert "managedFields" not in out["metadata"]


def test_compose_runs_left_to_right() -> None:
    seen: list[str] = []

    def first(o: dict[str, object]) -> dict[str, object]:
        seen.append("first")
        return o

    def second(o: dict[str, object]) -> dict[str, object]:
        seen.append("second")
        return o

    compose(first, second)({})
    assert seen == ["first", "second"]


def test_a_cached_finished_job_costs_under_2_kb() -> None:
    """The brief's budget, measured the way it is held: many jobs parsed off the wire, shared
    strings counted once (``deep_sizeof`` over all of them), divided by the count."""
    jobs, pods, raw_jobs = [], [], []
    to_job = compact_finished()
    n = 500
    for i in range(n):
        job, *job_pods = [reparsed(o) for o in finished_job_with_pods(f"job-{i}", rv=10 * i + 1)]
        raw_jobs.append(reparsed(job))
        jobs.append(to_job(job))
        pods.extend(FINISHED_POD(p) for p in job_pods)
    per_job = deep_sizeof(*jobs) / n
    per_pod = deep_sizeof(*pods) / len(pods)
    per_raw_job = deep_sizeof(*raw_jobs) / n
    print(f"bytes per cached finished job {per_job:.0f} (raw {per_raw_job:.0f}), pod {per_pod:.0f}")
    assert per_job < 2048
    assert per_pod < 2560
    assert per_job < per_raw_job / 5


def test_deep_sizeof_counts_shared_objects_once() -> None:
    shared = "x" * 1000
    one = deep_sizeof({"a": shared})
    two = deep_sizeof({"a": shared}, {"b": shared})
    assert two - one < 1000  # the second dict, not a second copy of the string
